"""Apply a decision's per-field obligations to a record's opened fields.

``keep`` passes a value, ``drop`` removes it, ``mask`` and ``generalize`` de-identify it
(``hub.deid.transforms``), ``pseudonymize`` replaces it by a keyed pseudonym that only this
recipient sees, and ``encrypt_for_recipient`` seals it to the recipient's registered key (JWE).
An obligation the hub does not know drops the field: the gate never fails open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.crypto import FieldProtector
from hub.crypto.recipient import encrypt_for_recipient, recipient_encryption_key
from hub.deid.transforms import apply_transform

KNOWN_ACTIONS = frozenset(
    {"keep", "drop", "mask", "generalize", "pseudonymize", "encrypt_for_recipient"}
)


class ObligationApplier:
    def __init__(self, protector: FieldProtector) -> None:
        self._protector = protector

    def apply(
        self,
        opened: Mapping[str, Any],
        *,
        obligations: Mapping[str, str],
        categories: Mapping[str, str],
        recipient_id: str,
        recipient_jwks: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], list[str]]:
        """Return the released fields and the names of those sealed to the recipient."""
        released: dict[str, Any] = {}
        sealed: list[str] = []
        for name, value in opened.items():
            action = obligations.get(name, "drop")
            if action == "keep" or value is None and action != "drop":
                released[name] = value
            elif action in ("mask", "generalize"):
                released[name] = apply_transform(
                    action, categories.get(name, ""), value, field=name
                )
            elif action == "pseudonymize":
                released[name] = self._protector.pseudonymize_value(recipient_id, name, value)
            elif action == "encrypt_for_recipient":
                key = recipient_encryption_key(recipient_jwks)
                if key is None:
                    continue  # no registered encryption key: the value cannot leave
                released[name] = encrypt_for_recipient(key, value)
                sealed.append(name)
        return released, sealed
