"""The purpose and category taxonomy, read from the policies' data documents (never copied).

``policies/taxonomy/purposes/data.json`` gives each purpose its description, the roles that may
declare it, its categories and its fair-use caps; ``policies/taxonomy/categories/data.json``
gives each data category its description and whether it is sensitive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class FairUse:
    max_duration_days: int
    max_data_range_days: int
    fetches_per_day: int


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    description: str
    roles: frozenset[str]
    categories: frozenset[str]
    fair_use: FairUse


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    description: str
    sensitive: bool


@dataclass(frozen=True)
class Taxonomy:
    purposes: dict[str, Purpose]
    categories: dict[str, Category]

    @classmethod
    def load(cls, policies_dir: Path) -> Taxonomy:
        root = policies_dir / "taxonomy"
        purposes_doc: dict[str, Any] = json.loads(
            (root / "purposes" / "data.json").read_text(encoding="utf-8")
        )
        categories_doc: dict[str, Any] = json.loads(
            (root / "categories" / "data.json").read_text(encoding="utf-8")
        )
        purposes = {
            name: Purpose(
                name=name,
                description=str(doc.get("description", "")),
                roles=frozenset(doc.get("roles", [])),
                categories=frozenset(doc.get("categories", [])),
                fair_use=FairUse(
                    max_duration_days=int(doc["fair_use"]["max_duration_days"]),
                    max_data_range_days=int(doc["fair_use"]["max_data_range_days"]),
                    fetches_per_day=int(doc["fair_use"]["fetches_per_day"]),
                ),
            )
            for name, doc in purposes_doc.items()
        }
        categories = {
            name: Category(
                name=name,
                description=str(doc.get("description", "")),
                sensitive=bool(doc.get("sensitive", False)),
            )
            for name, doc in categories_doc.items()
        }
        return cls(purposes=purposes, categories=categories)

    def is_sensitive(self, category: str) -> bool:
        found = self.categories.get(category)
        return bool(found and found.sensitive)
