"""Response bodies of the pull API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ReleasedRecord(BaseModel):
    record_key: str
    version: int
    subject: str = Field(description="The subject's pseudonym, stable for this recipient only.")
    fields: dict[str, Any]
    encrypted_fields: list[str] = Field(
        default_factory=list,
        description="Fields sealed to the recipient's registered key (compact JWE).",
    )


class ReleasePage(BaseModel):
    items: list[ReleasedRecord]
    released: int = Field(description="Records released on this page.")
    withheld: int = Field(description="Records on this page that the gates withheld.")
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page.")
    decision_revision: str = Field(description="Revision of the policy bundle that decided.")
    encrypted_fields: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per record key, the fields sealed to the recipient's key (compact JWE).",
    )
