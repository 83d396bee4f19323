"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from hub.api.deps import RuntimeDep
from hub.errors import ServiceUnavailableError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and the policies are loaded")
def readyz(runtime: RuntimeDep) -> dict[str, str]:
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailableError("The database is not reachable.") from exc
    if not runtime.policy.ready():
        raise ServiceUnavailableError("The policy engine is not ready.")
    return {"status": "ready", "policy_revision": runtime.policy.revision}
