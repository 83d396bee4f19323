from __future__ import annotations

import base64
import logging
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hub.crypto import (
    FieldDecryptError,
    FieldEncodeError,
    FieldProtector,
    KeyNotFoundError,
    LocalKeyring,
    SubjectKey,
    SubjectShreddedError,
)
from tests.crypto.conftest import PropertyEnv, is_postgres

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.text(min_size=1, max_size=40)
ids = st.text(min_size=1, max_size=64)
PROP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RECORD = {"subject_id": "subj-1", "dataset_id": "ds_loans", "record_key": "rec-1"}


def seal(env: PropertyEnv, fields: dict[str, Any], **where: str) -> dict[str, str]:
    args = {**RECORD, **where}
    with env.sessions.begin() as s:
        return env.protector.seal_fields(s, fields=fields, **args)


def open_(env: PropertyEnv, sealed: dict[str, str], **where: str) -> dict[str, Any]:
    args = {**RECORD, **where}
    with env.sessions.begin() as s:
        return env.protector.open_fields(s, sealed=sealed, **args)


@PROP
@given(name=field_names, value=json_values)
def test_round_trip_any_json_value(prop_env: PropertyEnv, name: str, value: Any) -> None:
    sealed = seal(prop_env, {name: value})
    assert set(sealed) == {name}
    assert sealed[name].startswith("tf1.1.")
    assert open_(prop_env, sealed) == {name: value}


@PROP
@given(value=json_values, other=st.sampled_from(["field", "record", "dataset", "subject"]))
def test_moved_token_fails(prop_env: PropertyEnv, value: Any, other: str) -> None:
    sealed = seal(prop_env, {"vin": value})
    if other == "field":
        with pytest.raises(FieldDecryptError):
            open_(prop_env, {"mobile": sealed["vin"]})
    elif other == "record":
        with pytest.raises(FieldDecryptError):
            open_(prop_env, sealed, record_key="rec-2")
    elif other == "dataset":
        with pytest.raises(FieldDecryptError):
            open_(prop_env, sealed, dataset_id="ds_other")
    else:
        seal(prop_env, {"x": 1}, subject_id="subj-2")
        with pytest.raises(FieldDecryptError):
            open_(prop_env, sealed, subject_id="subj-2")


@PROP
@given(value=json_values, data=st.data())
def test_tampered_token_fails(prop_env: PropertyEnv, value: Any, data: st.DataObject) -> None:
    token = seal(prop_env, {"f": value})["f"]
    how = data.draw(st.sampled_from(["truncate", "flip_char", "flip_bit", "version", "extend"]))
    if how == "truncate":
        bad = token[: data.draw(st.integers(0, len(token) - 1))]
    elif how == "flip_char":
        i = data.draw(st.integers(0, len(token) - 1))
        c = data.draw(st.characters(codec="ascii").filter(lambda c: c != token[i]))
        bad = token[:i] + c + token[i + 1 :]
    elif how == "flip_bit":
        raw = bytearray(base64.urlsafe_b64decode(token[6:] + "=" * (-len(token[6:]) % 4)))
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
        bad = "tf1.1." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    elif how == "version":
        bad = "tf1." + str(data.draw(st.integers(2, 10**6))) + token[5:]
    else:
        bad = token + data.draw(st.text("ABCabc-_0=", min_size=1, max_size=4))
    with pytest.raises(FieldDecryptError):
        open_(prop_env, {"f": bad})


@pytest.mark.parametrize(
    "token", ["", "tf1", "tf1.1.", "tf1.1.====", "tf2.1.AAAA", "plain", "tf1.x.A"]
)
def test_garbage_tokens(prop_env: PropertyEnv, token: str) -> None:
    seal(prop_env, {"f": 1})
    with pytest.raises(FieldDecryptError):
        open_(prop_env, {"f": token})


def test_non_string_token(prop_env: PropertyEnv) -> None:
    seal(prop_env, {"f": 1})
    with pytest.raises(FieldDecryptError):
        open_(prop_env, {"f": 42})  # type: ignore[dict-item]


def test_only_and_special_values(
    protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    values = {"big": 2**80, "neg": -(2**70), "f": 0.1, "s": "粤B·D12345", "n": None, "l": [1, "a"]}
    with sessions.begin() as s:
        sealed = protector.seal_fields(s, **RECORD, fields=values)
        assert protector.open_fields(s, **RECORD, sealed=sealed) == values
        assert protector.open_fields(s, **RECORD, sealed=sealed, only=["s", "nope"]) == {
            "s": "粤B·D12345"
        }
        assert protector.open_fields(s, **RECORD, sealed=sealed, only=[]) == {}
        assert protector.seal_fields(s, **RECORD, fields={}) == {}


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), [1.0, float("-inf")], object(), {1j}]
)
def test_non_json_values_refused(
    protector: FieldProtector, sessions: sessionmaker[Session], value: Any
) -> None:
    with sessions.begin() as s, pytest.raises(FieldEncodeError):
        protector.seal_fields(s, **RECORD, fields={"x": value})


def test_unknown_subject(protector: FieldProtector, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s, pytest.raises(KeyNotFoundError):
        protector.open_fields(s, **RECORD, sealed={"x": "tf1.1.AAAA"})


def test_persists_across_restart(
    data_dir: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        sealed = FieldProtector(LocalKeyring(data_dir)).seal_fields(s, **RECORD, fields={"a": 1})
    fresh = FieldProtector(LocalKeyring(data_dir))
    with sessions.begin() as s:
        assert fresh.open_fields(s, **RECORD, sealed=sealed) == {"a": 1}


def test_shredded_subject_unreadable_after_restart(
    data_dir: Path, sessions: sessionmaker[Session]
) -> None:
    protector = FieldProtector(LocalKeyring(data_dir))
    with sessions.begin() as s:
        sealed = protector.seal_fields(s, **RECORD, fields={"name": "Li Lei", "vin": "X"})
    with sessions.begin() as s:
        assert protector.open_fields(s, **RECORD, sealed=sealed)["name"] == "Li Lei"
        assert protector.shred_subject(s, "subj-1") is True
    with sessions.begin() as s:
        with pytest.raises(SubjectShreddedError):
            protector.open_fields(s, **RECORD, sealed=sealed)
        with pytest.raises(SubjectShreddedError):
            protector.seal_fields(s, **RECORD, fields={"name": "again"})
        assert protector.shred_subject(s, "subj-1") is False
        row = s.scalars(select(SubjectKey)).one()
        assert row.wrapped_key is None and row.shredded_at is not None
    restarted = FieldProtector(LocalKeyring(data_dir))
    with sessions.begin() as s, pytest.raises(SubjectShreddedError):
        restarted.open_fields(s, **RECORD, sealed=sealed)


def test_shred_unknown_subject_leaves_tombstone(
    protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        assert protector.shred_subject(s, "never-seen") is True
    with sessions.begin() as s, pytest.raises(SubjectShreddedError):
        protector.seal_fields(s, **{**RECORD, "subject_id": "never-seen"}, fields={"a": 1})


def test_rolled_back_key_is_not_reused(
    data_dir: Path, protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s:
        s.begin()
        protector.seal_fields(s, **RECORD, fields={"a": 1})
        s.rollback()
        with s.begin():  # same session object, new transaction: the key must be new and stored
            sealed = protector.seal_fields(s, **RECORD, fields={"a": 2})
    with sessions.begin() as s:
        fresh = FieldProtector(LocalKeyring(data_dir))
        assert fresh.open_fields(s, **RECORD, sealed=sealed) == {"a": 2}


def test_lost_creation_race_uses_winner_key(
    data_dir: Path, sessions: sessionmaker[Session]
) -> None:
    winner, loser = FieldProtector(LocalKeyring(data_dir)), FieldProtector(LocalKeyring(data_dir))
    with sessions.begin() as s:
        sealed = winner.seal_fields(s, **RECORD, fields={"a": 1})
    with sessions.begin() as s:  # as if the loser had looked before the winner committed
        aead = loser._create(s, "subj-1")
        token = loser.seal_fields(s, **RECORD, fields={"b": 2})
        assert aead is not None
    with sessions.begin() as s:
        assert winner.open_fields(s, **RECORD, sealed=token) == {"b": 2}
        assert loser.open_fields(s, **RECORD, sealed=sealed) == {"a": 1}
        assert s.scalars(select(SubjectKey)).all().__len__() == 1


def test_preload_is_one_query_then_cached(
    data_dir: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = FieldProtector(LocalKeyring(data_dir))
    subjects = [f"s{i}" for i in range(50)]
    with sessions.begin() as s:
        tokens = {
            sid: writer.seal_fields(s, **{**RECORD, "subject_id": sid}, fields={"v": sid})
            for sid in subjects
        }
    reader = FieldProtector(LocalKeyring(data_dir))
    statements: list[str] = []

    def count(*args: Any) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with sessions.begin() as s:
            reader.preload(s, subjects)
            n_preload = len(statements)
            for sid in subjects:
                got = reader.open_fields(s, **{**RECORD, "subject_id": sid}, sealed=tokens[sid])
                assert got == {"v": sid}
            reader.preload(s, subjects)  # all cached: no query
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert n_preload == 1
    assert len(statements) == 1


def test_cache_bound_ttl_and_repr(data_dir: Path, sessions: sessionmaker[Session]) -> None:
    now = [0.0]
    protector = FieldProtector(
        LocalKeyring(data_dir), cache_size=3, cache_ttl=10.0, clock=lambda: now[0]
    )
    with sessions.begin() as s:
        for i in range(5):
            protector.seal_fields(s, **{**RECORD, "subject_id": f"s{i}"}, fields={"a": i})
    with sessions.begin() as s:
        protector.preload(s, [f"s{i}" for i in range(5)])
    cache = protector._cache
    assert len(cache) == 3  # bounded
    with sessions.begin() as s:  # LRU: the last three used stay
        for i in (0, 1, 2, 3, 4):
            protector.open_fields(s, **{**RECORD, "subject_id": f"s{i}"}, sealed={})
            protector.preload(s, [f"s{i}"])
    assert [sid in cache for sid in ("s0", "s1", "s2", "s3", "s4")] == [False, False] + [True] * 3
    now[0] = 11.0  # TTL
    assert cache.get("s4") is None
    assert "s4" not in cache
    shown = repr(protector) + repr(cache) + repr(cache.put("x", None)) + repr(cache.get("s3"))
    assert "AESGCM" not in shown and "bytes" not in shown
    with pytest.raises(TypeError):
        pickle.dumps(protector)


def test_key_created_in_rolled_back_savepoint_is_not_used(
    data_dir: Path, protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        try:
            with s.begin_nested():
                protector.seal_fields(s, **RECORD, fields={"a": 1})
                raise RuntimeError("record rejected")
        except RuntimeError:
            pass
        sealed = protector.seal_fields(s, **RECORD, fields={"a": 2})  # must create a stored key
    fresh = FieldProtector(LocalKeyring(data_dir))
    with sessions.begin() as s:
        assert fresh.open_fields(s, **RECORD, sealed=sealed) == {"a": 2}


def test_key_created_in_released_savepoint_is_kept(
    data_dir: Path, protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        with s.begin_nested():
            first = protector.seal_fields(s, **RECORD, fields={"a": 1})
        second = protector.seal_fields(s, **RECORD, fields={"b": 2})
        assert protector._cache.get("subj-1") is None  # uncommitted: not shared yet
    fresh = FieldProtector(LocalKeyring(data_dir))
    with sessions.begin() as s:
        assert fresh.open_fields(s, **RECORD, sealed=first | second) == {"a": 1, "b": 2}


def test_concurrent_first_seal_one_key(
    data_dir: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Racing first seals end with one key. PostgreSQL: the loser waits and uses the winner's
    key. SQLite (WAL, deferred BEGIN): the loser's write may fail "database is locked" (a stale
    read snapshot); its retry then finds the winner's key. Never two keys, never a lost one."""
    protectors = [FieldProtector(LocalKeyring(data_dir)) for _ in range(4)]
    barrier = threading.Barrier(len(protectors))
    tokens: list[dict[str, str]] = []
    errors: list[BaseException] = []
    retries: list[int] = []

    def worker(fp: FieldProtector, i: int) -> None:
        try:
            barrier.wait()
            for attempt in range(20):
                try:
                    with sessions.begin() as s:
                        tokens.append(fp.seal_fields(s, **RECORD, fields={f"f{i}": i}))
                    return
                except OperationalError:
                    if is_postgres(engine):
                        raise
                    retries.append(attempt)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(fp, i)) for i, fp in enumerate(protectors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    merged = {k: v for t in tokens for k, v in t.items()}
    fresh = FieldProtector(LocalKeyring(data_dir))
    with sessions.begin() as s:
        assert fresh.open_fields(s, **RECORD, sealed=merged) == {f"f{i}": i for i in range(4)}
        assert len(s.scalars(select(SubjectKey)).all()) == 1


def test_errors_and_logs_hold_no_secrets(
    protector: FieldProtector, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hub.crypto")
    with sessions.begin() as s:
        sealed = protector.seal_fields(s, **RECORD, fields={"mobile": "+8613812345678"})
        bad = sealed["mobile"][:-2]
        with pytest.raises(FieldDecryptError) as info:
            protector.open_fields(s, **RECORD, sealed={"mobile": bad})
        protector.shred_subject(s, "subj-1")
    text = str(info.value) + caplog.text
    assert "mobile" in str(info.value)
    assert bad[6:] not in text and "13812345678" not in text
    assert "shredded" in caplog.text


def test_lone_surrogate_refused(protector: FieldProtector, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s, pytest.raises(FieldEncodeError):
        protector.seal_fields(s, **RECORD, fields={"x": "\ud800"})


def test_refresh_sees_erasures_elsewhere_and_caches_the_rest_in_one_query(
    data_dir: Path, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = FieldProtector(LocalKeyring(data_dir))
    subjects = [f"r{i}" for i in range(20)]
    with sessions.begin() as s:
        tokens = {
            sid: writer.seal_fields(s, **{**RECORD, "subject_id": sid}, fields={"v": sid})
            for sid in subjects
        }
    reader = FieldProtector(LocalKeyring(data_dir))
    with sessions.begin() as s:
        assert reader.refresh(s, subjects) == frozenset()  # every key now cached here
    with sessions.begin() as s:  # another process erases r3
        writer.shred_subject(s, "r3")
    statements: list[str] = []

    def count(*args: Any) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with sessions.begin() as s:
            assert reader.refresh(s, subjects) == frozenset({"r3"})
            for sid in subjects:
                if sid == "r3":
                    with pytest.raises(SubjectShreddedError):
                        reader.open_fields(s, **{**RECORD, "subject_id": sid}, sealed=tokens[sid])
                else:
                    got = reader.open_fields(s, **{**RECORD, "subject_id": sid}, sealed=tokens[sid])
                    assert got == {"v": sid}
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1


# -- FieldOpener: the release path's per-page opener must open exactly as open_fields does


@PROP
@given(
    values=st.dictionaries(field_names, json_values, min_size=1, max_size=5),
    only=st.lists(field_names, max_size=6, unique=True),
)
def test_opener_opens_as_open_fields(
    prop_env: PropertyEnv, values: dict[str, Any], only: list[str]
) -> None:
    sealed = seal(prop_env, values)
    names = [*only, *list(values)[:2]]  # some present, maybe some missing, in this order
    with prop_env.sessions.begin() as s:
        expected = prop_env.protector.open_fields(s, **RECORD, sealed=sealed, only=names)
        opener = prop_env.protector.opener(s, dataset_id=RECORD["dataset_id"], only=names)
        opened = opener.open(RECORD["subject_id"], RECORD["record_key"], sealed)
        assert opened == expected
        assert list(opened) == list(expected)  # the same order
        # the same opener, again (the subject's key now remembered)
        assert opener.open(RECORD["subject_id"], RECORD["record_key"], sealed) == expected


def test_opener_refuses_what_open_fields_refuses(
    protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        sealed = protector.seal_fields(s, **RECORD, fields={"a": 1, "b": "x"})
    token = sealed["b"]
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    cases = {
        "another record": ({**sealed}, "rec-2"),
        "tampered": ({**sealed, "b": tampered}, "rec-1"),
        "too short for a nonce and a tag": ({**sealed, "b": "tf1.1.AAAAAAAA"}, "rec-1"),
        "not base64": ({**sealed, "b": "tf1.1.AA!A"}, "rec-1"),
        "not a token": ({**sealed, "b": 42}, "rec-1"),
        "unknown version": ({**sealed, "b": "tf1.9." + token[6:]}, "rec-1"),
    }
    for label, (record, record_key) in cases.items():
        with sessions.begin() as s:
            opener = protector.opener(s, dataset_id=RECORD["dataset_id"], only=["a", "b"])
            with pytest.raises(FieldDecryptError) as opened_error:
                opener.open(RECORD["subject_id"], record_key, record)
            with pytest.raises(FieldDecryptError) as fields_error:
                protector.open_fields(
                    s, **{**RECORD, "record_key": record_key}, sealed=record, only=["a", "b"]
                )
            assert str(opened_error.value) == str(fields_error.value), label


def test_opener_of_a_shredded_subject(
    protector: FieldProtector, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        sealed = protector.seal_fields(s, **RECORD, fields={"a": 1})
    with sessions.begin() as s:
        assert protector.shred_subject(s, RECORD["subject_id"]) is True
    with sessions.begin() as s:
        opener = protector.opener(s, dataset_id=RECORD["dataset_id"], only=["a"])
        for _ in range(2):  # a failed lookup is not remembered as a key
            with pytest.raises(SubjectShreddedError):
                opener.open(RECORD["subject_id"], RECORD["record_key"], sealed)
        # nothing to open: no key needed, as with open_fields
        assert opener.open(RECORD["subject_id"], RECORD["record_key"], {"z": "tf1.1.AAAA"}) == {}
        assert protector.open_fields(s, **RECORD, sealed={"z": "tf1.1.AAAA"}, only=["a"]) == {}
