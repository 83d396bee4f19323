"""Tollhouse: the data-sharing hub of an auto-finance ecosystem."""

__version__ = "0.1.0"
