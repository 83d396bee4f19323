"""``tollhouse demo`` end to end against a hub served on loopback: consent asked and granted over
HTTP, a publish, a pull, a withdrawal, the next pull refused, the regulator's view."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from consent.models import Consent, ConsentEvent, ConsentStatus
from hub.demo.story import LENDER, PURPOSE, run_story
from tests.support.hub import HubEnv
from tests.support.served import private_copy, served_in_thread


def test_the_demo_story_runs_against_a_served_hub(hub: HubEnv, tmp_path: Path) -> None:
    data_dir = private_copy(hub.settings.data_dir, tmp_path / "data")
    (data_dir / "demo-credentials.json").write_text(json.dumps(hub.credentials))
    settings = hub.settings.model_copy(update={"data_dir": data_dir})
    out = io.StringIO()
    with served_in_thread(hub.client.app) as url:
        run_story(hub_url=url, console=Console(file=out, width=200), settings=settings)
    told = out.getvalue()
    assert "withheld" in told and "must never happen" not in told, told
    assert "withdrew 1 consent(s)" in told, told

    # The consent went through the real channel: asked, granted with a receipt, withdrawn.
    with hub.session() as session:
        recipient = hub.partner(LENDER)["partner_id"]
        story = session.scalars(
            select(Consent)
            .where(Consent.recipient_id == recipient, Consent.purpose == PURPOSE)
            .order_by(Consent.created_at.desc())
            .limit(1)
        ).one()
        assert story.status == ConsentStatus.WITHDRAWN and story.receipt_id
        channels = session.scalars(
            select(ConsentEvent.channel)
            .where(ConsentEvent.consent_id == story.id)
            .order_by(ConsentEvent.seq)
        ).all()
        assert len(channels) == 3 and "demo" not in channels
