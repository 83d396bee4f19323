"""The floor the pipeline is measured against: the same rows of the same database, read with
SQLAlchemy Core (the pipeline's own query: records joined to their subject's jurisdiction) and
returned as orjson bytes by a FastAPI endpoint. No consent, policy, decryption or audit.

Served by ``uvicorn bench.bare:create_app --factory`` with ``BENCH_BARE_DATABASE_URL`` and
``BENCH_BARE_DATASET`` set; paged by id like the hub (``?after=<id>&limit=<n>``).
"""

from __future__ import annotations

import os
from typing import Annotated

import orjson
from fastapi import FastAPI, Query
from sqlalchemy import select
from starlette.responses import Response

from hub.records.models import DataSubject, Record
from hub.store.db import make_engine


def create_app() -> FastAPI:
    engine = make_engine(os.environ["BENCH_BARE_DATABASE_URL"])
    dataset = os.environ["BENCH_BARE_DATASET"]
    columns = ("id", "record_key", "version", "subject_id", "sealed", "jurisdiction")
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/records")
    def records(after: int = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
        query = (
            select(
                Record.id,
                Record.record_key,
                Record.version,
                Record.subject_id,
                Record.sealed,
                DataSubject.jurisdiction,
            )
            .join(DataSubject, DataSubject.id == Record.subject_id)
            .where(Record.dataset_id == dataset, Record.id > after)
            .order_by(Record.id)
            .limit(limit + 1)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        items = [dict(zip(columns, row, strict=True)) for row in rows[:limit]]
        body = {"items": items, "next": items[-1]["id"] if more and items else None}
        return Response(orjson.dumps(body), media_type="application/json")

    return app
