"""The record pulls are served in one thread-pool call (``hub.api.single_hop``): the same
answers as FastAPI's own dependency handling, in the same order of checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header
from sqlalchemy import func, select

import hub.api.single_hop as single_hop
from hub.api.deps import Puller, SessionDep
from hub.api.routes import agreements
from hub.audit.models import AuditEvent
from hub.errors import NotFoundError
from tests.support.hub import HubEnv

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"


def _unused() -> None:  # pragma: no cover - only a key of ``dependency_overrides``
    return None


@pytest.fixture
def served(hub: HubEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Paths the single-hop handler served (rather than FastAPI's fallback)."""
    paths: list[str] = []
    serve = single_hop._serve

    def counting(plan: Any, request: Any) -> Any:
        paths.append(request.url.path)
        return serve(plan, request)

    monkeypatch.setattr(single_hop, "_serve", counting)
    yield paths


def _answer(hub: HubEnv, url: str, headers: dict[str, str]) -> tuple[int, str, Any]:
    response = hub.client.get(url, headers=headers)
    ctype = response.headers["content-type"]
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, ctype, body


def test_answers_match_fastapis_own_dependency_handling(hub: HubEnv, served: list[str]) -> None:
    agreement = hub.agreement(LENDER, DATASET)
    lender, regulator = hub.auth(LENDER), hub.auth("regulator-fsr")
    key = hub.pull_all(LENDER, agreement)[0]["record_key"]
    long_id = "agr_" + "x" * 80
    cases: list[tuple[str, dict[str, str], int]] = [
        (f"/v1/agreements/{agreement}/records/{key}", lender, 200),
        (f"/v1/agreements/{agreement}/records?limit=3", lender, 200),
        (f"/v1/agreements/{agreement}/records/NO-SUCH-KEY", lender, 404),
        ("/v1/agreements/agr_missing/records?limit=3", lender, 404),
        # the token is checked before the parameters: 401, not 422
        (f"/v1/agreements/{long_id}/records/{key}", {}, 401),
        (f"/v1/agreements/{agreement}/records?limit=0", {"Authorization": "Bearer x.y.z"}, 401),
        (f"/v1/agreements/{agreement}/records", {"Authorization": "Basic abc"}, 401),
        # the scope before the parameters: 403, not 422
        (f"/v1/agreements/{long_id}/records?limit=0", regulator, 403),
        (f"/v1/agreements/{agreement}/records/{key}", regulator, 403),
        (f"/v1/agreements/{long_id}/records/{key}", lender, 422),
        (f"/v1/agreements/{long_id}/records?limit=0&cursor={'c' * 600}", lender, 422),
        (f"/v1/agreements/{agreement}/records?limit=abc", lender, 422),
        (f"/v1/agreements/{agreement}/records?cursor=not-a-cursor", lender, 400),
    ]
    served.clear()
    single = [_answer(hub, url, headers) for url, headers, _ in cases]
    assert [status for status, _, _ in single] == [status for _, _, status in cases]
    assert len(served) == len(cases)
    hub.client.app.dependency_overrides[_unused] = _unused  # type: ignore[attr-defined]
    try:
        fallback = [_answer(hub, url, headers) for url, headers, _ in cases]
    finally:
        hub.client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert len(served) == len(cases)  # FastAPI's own handler answered these
    assert single == fallback


def test_committed_before_the_answer_and_rolled_back_on_any_error(
    hub: HubEnv, served: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def events() -> int:
        with hub.session() as session:
            return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)

    pull, lender = f"/v1/agreements/{hub.agreement(LENDER, DATASET)}/records", hub.auth(LENDER)
    before = events()
    assert hub.client.get(pull + "?limit=2", headers=lender).status_code == 200
    after = events()
    assert after > before  # the page's audit event, committed before the answer

    def pull_then_fail(*args: Any, **kwargs: Any) -> Any:
        agreements.pull_page_real(*args, **kwargs)  # type: ignore[attr-defined]
        raise NotFoundError("failed after the audit event was written")

    monkeypatch.setattr(agreements, "pull_page_real", agreements.pull_page, raising=False)
    monkeypatch.setattr(agreements, "pull_page", pull_then_fail)
    failed = hub.client.get(pull + "?limit=2", headers=lender)
    assert failed.status_code == 404
    assert failed.json()["detail"] == "failed after the audit event was written"
    assert events() == after  # rolled back
    assert len(served) == 2


def _route_with(dependency: Callable[..., Any]) -> FastAPI:
    router = APIRouter(route_class=single_hop.SingleHopRoute)

    @router.get("/v1/agreements/{agreement_id}/records")
    def endpoint(agreement_id: str, caller: Puller, extra: Any = Depends(dependency)) -> None:
        return None  # pragma: no cover

    app = FastAPI()
    app.include_router(router)
    return app


def test_a_dependency_it_does_not_understand_is_refused_when_the_app_is_built() -> None:
    def unknown() -> int:
        return 1

    def header(x_thing: str = Header()) -> str:
        return x_thing

    def session_user(session: SessionDep) -> int:
        return 1

    for dependency in (unknown, header, session_user):
        with pytest.raises(TypeError, match="not understood"):
            _route_with(dependency)
