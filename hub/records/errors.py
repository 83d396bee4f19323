"""Typed errors of the publish path."""

from __future__ import annotations

from hub.errors import ConflictError


class VersionConflictError(ConflictError):
    slug = "version-conflict"
    title = "Record version conflict"
