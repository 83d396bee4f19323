from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from hub.crypto import FieldProtector, LocalKeyring, RewrapProgress, SubjectKey
from tests.crypto.conftest import is_postgres

RECORD = {"dataset_id": "ds_loans", "record_key": "rec-1"}


def populate(
    protector: FieldProtector, sessions: sessionmaker[Session], n: int
) -> dict[str, dict[str, str]]:
    with sessions.begin() as s:
        return {
            f"s{i:03}": protector.seal_fields(
                s, subject_id=f"s{i:03}", **RECORD, fields={"v": f"value-{i}"}
            )
            for i in range(n)
        }


def read_all(
    protector: FieldProtector, sessions: sessionmaker[Session], tokens: dict[str, dict[str, str]]
) -> None:
    with sessions.begin() as s:
        protector.preload(s, list(tokens))
        for sid, sealed in tokens.items():
            value = protector.open_fields(s, subject_id=sid, **RECORD, sealed=sealed)["v"]
            assert value == f"value-{int(sid[1:])}"


def versions_in_db(sessions: sessionmaker[Session]) -> dict[int, int]:
    with sessions.begin() as s:
        counts: dict[int, int] = {}
        for v in s.scalars(select(SubjectKey.kek_version).where(SubjectKey.shredded_at.is_(None))):
            counts[v] = counts.get(v, 0) + 1
        return counts


def test_rotate_rewrap_in_batches_then_retire(
    data_dir: Path, protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    tokens = populate(protector, sessions, 25)
    with sessions.begin() as s:
        protector.shred_subject(s, "s000")
    del tokens["s000"]
    assert protector.rotate_kek() == 2
    with sessions.begin() as s:
        assert protector.retire_unused_versions(s) == []  # v1 still in use
    progress: list[RewrapProgress] = []
    for _ in range(3):
        with sessions.begin() as s:
            progress.append(protector.rewrap(s, batch_size=10))
        read_all(FieldProtector(LocalKeyring(data_dir)), sessions, tokens)  # no cache
    assert [(p.rewrapped, p.remaining, p.done) for p in progress] == [
        (10, 14, False),
        (10, 4, False),
        (4, 0, True),
    ]
    assert versions_in_db(sessions) == {2: 24}
    with sessions.begin() as s:
        assert protector.rewrap(s, batch_size=10) == RewrapProgress(0, 0, 2)
        assert protector.retire_unused_versions(s) == [1]
    assert protector.keyring.versions() == [2]
    restarted = FieldProtector(LocalKeyring(data_dir))
    read_all(restarted, sessions, tokens)


def test_rewrap_resumes_across_rotations(
    protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    tokens = populate(protector, sessions, 12)
    protector.rotate_kek()
    with sessions.begin() as s:
        protector.rewrap(s, batch_size=5)
    protector.rotate_kek()  # interrupted, then rotated again: v1 and v2 both move to v3
    seen: list[RewrapProgress] = []
    total = protector.rewrap_all(sessions, batch_size=4, on_progress=seen.append)
    assert total == RewrapProgress(12, 0, 3)
    assert [(p.rewrapped, p.remaining) for p in seen] == [(4, 8), (4, 4), (4, 0)]
    assert versions_in_db(sessions) == {3: 12}
    with sessions.begin() as s:
        assert protector.retire_unused_versions(s) == [1, 2]
    read_all(protector, sessions, tokens)


@pytest.mark.postgres
def test_rewrap_under_concurrent_pulls_loses_nothing(
    data_dir: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    if not is_postgres(engine):
        pytest.skip("needs TOLLHOUSE_DATABASE_URL (PostgreSQL)")
    writer = FieldProtector(LocalKeyring(data_dir))
    tokens = populate(writer, sessions, 200)
    writer.rotate_kek()
    errors: list[BaseException] = []
    stop = threading.Event()

    def puller() -> None:
        reader = FieldProtector(LocalKeyring(data_dir), cache_ttl=0.001)  # re-read keys often
        try:
            while not stop.is_set():
                read_all(reader, sessions, tokens)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def rewrapper(out: list[Any]) -> None:
        try:
            out.append(FieldProtector(LocalKeyring(data_dir)).rewrap_all(sessions, batch_size=7))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    pullers = [threading.Thread(target=puller) for _ in range(3)]
    results: list[Any] = []
    rewrappers = [threading.Thread(target=rewrapper, args=(results,)) for _ in range(2)]
    for t in pullers + rewrappers:
        t.start()
    for t in rewrappers:
        t.join()
    stop.set()
    for t in pullers:
        t.join()
    assert not errors, errors
    assert sum(r.rewrapped for r in results) == 200  # SKIP LOCKED: no row done twice
    assert versions_in_db(sessions) == {2: 200}
    with sessions.begin() as s:
        assert writer.retire_unused_versions(s) == [1]
    read_all(FieldProtector(LocalKeyring(data_dir)), sessions, tokens)
