"""Secret files under the data directory: created once, atomically, readable only by the owner."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def load_or_create(path: Path, create: Callable[[], bytes]) -> bytes:
    """Return the file's bytes, creating it with ``create()`` (mode 0600) if it does not exist.

    Creation is atomic and race-safe across processes: the first writer wins, later ones read
    what it wrote.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, create())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created it first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()
