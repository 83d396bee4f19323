"""Routers, mounted in one place (``hub.app``)."""
