"""The purpose and category taxonomy as the registry needs it, read from the policies' data
documents (``policies/taxonomy/*/data.json``) by the consent package's loader: never copied."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from consent.taxonomy import Taxonomy

__all__ = ["Taxonomy", "load_taxonomy"]


@lru_cache(maxsize=4)
def load_taxonomy(policies_dir: Path) -> Taxonomy:
    return Taxonomy.load(policies_dir)
