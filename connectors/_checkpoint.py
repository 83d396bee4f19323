"""Durable files: fsync'd writes and the pull checkpoint (atomic: temp file, fsync, rename)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ._models import Page

__all__ = ["Checkpoint", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a pull stands: the cursor of the next page, and the sink position that goes with it.

    It is written only after the sink holds the page durably, so on restart everything the sink
    holds beyond ``position`` is rolled back and pulled again.
    """

    agreement_id: str
    sink: str
    cursor: str | None = None
    position: Any = None  # the sink's own marker (a byte offset for files)
    pages: int = 0
    records: int = 0
    released: int = 0
    withheld: int = 0
    complete: bool = False

    def advance(self, page: Page, position: Any) -> Checkpoint:
        return replace(
            self,
            cursor=page.next_cursor,
            position=position,
            pages=self.pages + 1,
            records=self.records + len(page.items),
            released=self.released + page.released,
            withheld=self.withheld + page.withheld,
            complete=page.next_cursor is None,
        )

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a checkpoint file")
        try:
            return cls(**data)
        except TypeError:
            raise ValueError(f"{path}: not a checkpoint file") from None

    def save(self, path: Path) -> None:
        """Replace ``path`` atomically: readers see the old or the new checkpoint, never half."""
        directory = path.parent if str(path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(self), f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(directory)
