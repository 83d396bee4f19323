"""Any sequence of changes, valid or not, leaves one consistent history that explains the status."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.errors import ConsentError
from consent.service import ConsentService, GrantChoices, effective_status
from hub.demo.population import Consumer
from hub.store.base import utcnow
from tests.consent.support import LENDER, PURPOSE, person_without_consent
from tests.support.hub import HubEnv

ACTIONS = ["grant", "deny", "pause", "resume", "withdraw", "revoke", "sweep"]
TAKEN: set[str] = set()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(actions=st.lists(st.sampled_from(ACTIONS), max_size=8), days=st.integers(1, 60))
def test_any_sequence_leaves_a_consistent_history(
    hub: HubEnv, people: list[Consumer], actions: list[str], days: int
) -> None:
    service: ConsentService = hub.runtime.consents
    if not TAKEN:
        person_without_consent(hub, people, TAKEN)
    subject_id = next(iter(TAKEN))
    now = utcnow()
    with hub.session() as session:
        consent = service.request_consent(
            session, subject_id=subject_id, recipient_id=str(hub.partner(LENDER)["partner_id"]),
            recipient_role="lender", purpose=PURPOSE, categories=["loan", "income"],
            duration_days=days, reason="loan", now=now,
        )  # fmt: skip
        clock = now
        for action in actions:
            clock += timedelta(days=7)
            kwargs = {"consent_id": consent.id, "subject_id": subject_id, "channel": "t",
                      "now": clock}  # fmt: skip
            try:
                if action == "grant":
                    service.grant_request(
                        session, consent_id=consent.id, subject_id=subject_id,
                        choices=GrantChoices(), channel="t", now=clock,
                    )  # fmt: skip
                elif action == "deny":
                    service.deny_request(session, **kwargs)
                elif action == "pause":
                    service.pause(session, **kwargs)
                elif action == "resume":
                    service.resume(session, **kwargs)
                elif action == "withdraw":
                    service.withdraw(session, **kwargs)
                elif action == "revoke":
                    service.revoke(session, consent_id=consent.id, actor="admin:t", reason="r",
                                   now=clock)  # fmt: skip
                else:
                    service.sweep_expired(session, now=clock)
            except ConsentError:
                pass  # refused: nothing may have been written
            events = service.history(session, consent_id=consent.id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert events[0].from_status is None
            for before, after in zip(events, events[1:], strict=False):
                assert after.from_status == before.to_status
                assert after.at >= before.at
            session.refresh(consent)
            assert consent.status == events[-1].to_status
            assert consent.version == len(events)
            receipts = service.receipts(session, consent_id=consent.id)
            assert len(receipts) == len(events) - 1  # every change but the request itself
            assert effective_status(consent, clock) in (
                "requested", "active", "paused", "denied", "withdrawn", "revoked", "expired",
            )  # fmt: skip
        session.rollback()
