"""Request and response bodies of the publish API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SubjectRef(BaseModel):
    """How the provider identifies the consumer (at least one of ``id_number``, ``mobile``,
    ``vin``, ``email``); the hub keeps only keyed blind indexes, never the values."""

    model_config = ConfigDict(extra="forbid")

    id_number: str | None = Field(default=None, description="PRC resident identity number.")
    mobile: str | None = Field(default=None, description="Mobile number, E.164 or national.")
    vin: str | None = Field(default=None, description="VIN of the subject's vehicle.")
    email: str | None = Field(
        default=None,
        max_length=254,
        description=(
            "E-mail address (one @, at most 254 characters; compared case-insensitively). "
            "Lets the consumer sign in to the portal by e-mail."
        ),
    )
    jurisdiction: str = Field(default="CN", min_length=2, max_length=2)


class PublishedRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_key: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    version: int = Field(default=1, ge=1, le=2**31 - 1)
    subject: SubjectRef
    fields: dict[str, Any]


class PublishRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "records": [
                        {
                            "record_key": "LA-2026-000123",
                            "version": 1,
                            "subject": {"id_number": "11010519491231002X"},
                            "fields": {"applicant_name": "王伟", "loan_amount_cny": 120000},
                        }
                    ]
                }
            ]
        },
    )

    records: list[PublishedRecord] = Field(min_length=1)


class PublishResponse(BaseModel):
    accepted: int
    created: int
    updated: int
    unchanged: int
