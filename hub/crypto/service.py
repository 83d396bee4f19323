"""Field protection at rest and on the way out.

* **Envelope encryption** (:meth:`FieldProtector.seal_fields`, :meth:`FieldProtector.open_fields`):
  each data subject has one random 32-byte data key, stored wrapped under the keyring's current
  KEK in ``subject_keys``. Each field value becomes a token::

      tf1.<key version>.<base64url(nonce[12] || AES-256-GCM ciphertext || tag[16])>

  whose associated data binds the dataset, the record key, the field name and the key version, so a
  token moved to another field, record or dataset, truncated, altered or relabelled fails with
  :class:`FieldDecryptError`; it never decrypts to wrong data. The key version in the token is the
  data-key generation (always ``1`` today, reserved for per-subject re-keying); KEK rotation does
  not touch tokens, only the wrapped keys (:meth:`FieldProtector.rewrap`).
* **Crypto-shredding** (:meth:`FieldProtector.shred_subject`): the wrapped key is replaced by NULL,
  so every token of the subject is unreadable everywhere, for good.
* **Blind indexes**, **pseudonyms** and **deterministic AES-SIV** use keys derived from the
  keyring's per-purpose root secrets (HKDF), never the data keys.

Data keys are cached in memory (LRU, bounded, with a TTL) as ready-made ``AESGCM`` objects; the
plaintext bytes are never kept, logged or returned. A subject shredded on another replica stays
readable on this one until its cache entry expires (``cache_ttl``, default 5 minutes).

Sessions: the protector never commits. Keys it creates live in the caller's transaction; they are
shared through the cache only once read back, committed, by a later transaction, so a rolled-back
transaction or savepoint cannot leave a key in memory that the database does not hold. Racing
first seals of one subject end with one key: on PostgreSQL the loser waits and uses the winner's;
on SQLite (WAL, deferred BEGIN) the loser may get "database is locked" and should retry.
"""

from __future__ import annotations

import binascii
import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.hmac import HMAC
from sqlalchemy import ARRAY, String, Table, any_, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, SessionTransaction

from hub.crypto._codec import (
    _B64_DEC,
    _B64_LAST,
    _B64_PAD,
    b64u_decode_strict,
    b64u_encode,
    canonical_json,
    decode_value,
    encode_value,
)
from hub.crypto.errors import FieldDecryptError, KeyNotFoundError, SubjectShreddedError
from hub.crypto.keyring import Keyring, WrappedKey
from hub.crypto.models import SubjectKey
from hub.crypto.normalize import normalize_identifier
from hub.store.base import utcnow

__all__ = ["KEY_COLUMNS", "FieldOpener", "FieldProtector", "RewrapProgress"]

log = logging.getLogger("hub.crypto")

TOKEN_PREFIX = "tf1"
DETERMINISTIC_PREFIX = "td1"
DATA_KEY_VERSION = 1
_TOKEN_HEAD = f"{TOKEN_PREFIX}.{DATA_KEY_VERSION}."
_HEAD_LEN = len(_TOKEN_HEAD)
_HEAD_BYTES = _TOKEN_HEAD.encode("ascii")
_dumps = orjson.dumps  # plain str values: the common case, no checks needed
_NONCE = 12
_CREATED_INFO_KEY = "hub.crypto.created_keys"
# PostgreSQL advisory lock: key creators hold it shared, KEK retirement exclusive (see retire).
_KEK_LOCK_ID = 0x746F6C6C_6B656B  # "tollkek"

_subject_keys: Table = SubjectKey.__table__  # type: ignore[assignment]
#: A subject's key row as :meth:`FieldProtector.refresh_from` reads it.
KEY_COLUMNS = (
    _subject_keys.c.subject_id,
    _subject_keys.c.kek_version,
    _subject_keys.c.wrapped_key,
    _subject_keys.c.shredded_at,
)
# Built once (the release path runs it on every pull): keys and shredded marks of a page. On
# PostgreSQL the subjects are one array parameter, not an IN list of one parameter each: the
# statement's text is then the same for every page, so psycopg prepares it once per connection
# (no parse and plan per page), and the generic plan probes the primary key where a page's
# custom plan of a hundred-odd values scanned the whole table.
_REFRESH_KEYS = select(*KEY_COLUMNS).where(
    _subject_keys.c.subject_id.in_(
        bindparam("ids", expanding=True, type_=_subject_keys.c.subject_id.type)
    )
)
_PG_REFRESH_KEYS = select(*KEY_COLUMNS).where(
    _subject_keys.c.subject_id == any_(bindparam("ids", type_=ARRAY(String())))
)


@dataclass(frozen=True, slots=True)
class RewrapProgress:
    """Outcome of one :meth:`FieldProtector.rewrap` batch (or of a whole ``rewrap_all`` run)."""

    rewrapped: int
    remaining: int
    current_version: int

    @property
    def done(self) -> bool:
        return self.remaining == 0


class _Entry:
    """A cached data key: the AEAD object (``None`` once shredded) and its expiry."""

    __slots__ = ("aead", "expires")

    def __init__(self, aead: AESGCM | None, expires: float) -> None:
        self.aead = aead
        self.expires = expires

    def __repr__(self) -> str:
        return "<data key: shredded>" if self.aead is None else "<data key: hidden>"


class _KeyCache:
    """A thread-safe LRU of data keys with a bound and a time-to-live."""

    def __init__(self, max_entries: int, ttl: float, clock: Callable[[], float]) -> None:
        if max_entries < 1 or ttl <= 0:
            raise ValueError("cache bound and TTL must be positive")
        self._max = max_entries
        self._ttl = ttl
        self._clock = clock
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, subject_id: str) -> _Entry | None:
        # Lock-free: each OrderedDict call is atomic under the GIL; only put's evict loop locks.
        items = self._items
        entry = items.get(subject_id)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            items.pop(subject_id, None)
            return None
        try:
            items.move_to_end(subject_id)
        except KeyError:  # evicted meanwhile: still a valid key for this call
            pass
        return entry

    def put(self, subject_id: str, aead: AESGCM | None) -> _Entry:
        entry = _Entry(aead, self._clock() + self._ttl)
        with self._lock:
            self._items[subject_id] = entry
            self._items.move_to_end(subject_id)
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return entry

    def drop(self, subject_id: str) -> None:
        with self._lock:
            self._items.pop(subject_id, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, subject_id: object) -> bool:
        return subject_id in self._items

    def __repr__(self) -> str:
        return f"<data key cache: {len(self._items)}/{self._max} entries, ttl {self._ttl}s>"


_U32 = struct.Struct(">I").pack


def _lp(data: bytes) -> bytes:
    return _U32(len(data)) + data


_AAD_HEAD = b"tollhouse/field/v1\x00"
_dataset_parts: dict[tuple[str, int], bytes] = {}


def _dataset_part(dataset_id: str, version: int) -> bytes:
    part = _dataset_parts.get((dataset_id, version))
    if part is None:
        if len(_dataset_parts) > 4096:
            _dataset_parts.clear()
        part = _AAD_HEAD + version.to_bytes(4, "big") + _lp(dataset_id.encode("utf-8"))
        _dataset_parts[(dataset_id, version)] = part
    return part


def _aad_prefix(dataset_id: str, record_key: str, version: int) -> bytes:
    """AAD = head | version | len+dataset | len+record key | field name (appended per field)."""
    key = record_key.encode("utf-8")
    return _dataset_part(dataset_id, version) + _U32(len(key)) + key


_name_parts: dict[str, bytes] = {}


def _name_bytes(name: str) -> bytes:
    part = _name_parts.get(name)
    if part is None:
        if len(_name_parts) > 4096:
            _name_parts.clear()
        part = _name_parts[name] = name.encode("utf-8")
    return part


def _open_tokens(
    aead: AESGCM,
    prefix: bytes,
    sealed: Mapping[str, str],
    names: list[str],
    name_parts: list[bytes],
) -> dict[str, Any]:
    """Decrypt the named tokens of one record (the hot path of every pull; kept flat).

    ``name_parts[i]`` is ``names[i]`` in UTF-8 (the AAD's last part); a name the record lacks
    is skipped. The values are decoded with one ``orjson.loads`` of the record's plaintexts
    joined as a JSON array: every plaintext passed its GCM tag, so it is the single JSON value
    ``seal_fields`` wrote (never a NUL byte, which marks the rare stdlib-encoded value, decoded
    one by one).
    """
    decrypt = aead.decrypt
    a2b = binascii.a2b_base64
    plains: list[bytes] = []
    append = plains.append
    name = ""
    token: Any = None
    try:
        for name, part in zip(names, name_parts, strict=True):
            token = sealed[name]
            raw = token.encode("ascii")
            if raw[:_HEAD_LEN] != _HEAD_BYTES:
                raise ValueError
            rem = (len(raw) - _HEAD_LEN) & 3
            if rem:
                if raw[-1] not in _B64_LAST[rem]:
                    raise ValueError  # stray bits: not the one canonical spelling
                data = a2b(raw[_HEAD_LEN:].translate(_B64_DEC) + _B64_PAD[rem], strict_mode=True)
            else:
                data = a2b(raw[_HEAD_LEN:].translate(_B64_DEC), strict_mode=True)
            # Shorter than nonce + tag cannot pass: AESGCM refuses a nonce under 8 bytes
            # (ValueError) and a ciphertext under its 16-byte tag (InvalidTag).
            append(decrypt(data[:_NONCE], data[_NONCE:], prefix + part))
    except KeyError:  # the record lacks a field: open those it has
        present = [i for i, n in enumerate(names) if n in sealed]
        return _open_tokens(
            aead, prefix, sealed, [names[i] for i in present], [name_parts[i] for i in present]
        )
    except (ValueError, InvalidTag, AttributeError, TypeError):
        raise _decrypt_error(name, token) from None
    joined = b",".join(plains)
    if b"\x00" not in joined:
        try:
            values = orjson.loads(b"[" + joined + b"]")
        except orjson.JSONDecodeError:
            values = None
        if values is not None and len(values) == len(names):
            return dict(zip(names, values, strict=True))
    out: dict[str, Any] = {}
    for name, plain in zip(names, plains, strict=True):
        try:
            out[name] = decode_value(plain)
        except ValueError:
            raise _decrypt_error(name, sealed[name]) from None
    return out


class FieldOpener:
    """Opens the same fields of many records of one dataset in one transaction (a page of the
    release path): what :meth:`FieldProtector.open_fields` does per record, with the names'
    AAD parts computed once and each subject's data key looked up once.

    Made by :meth:`FieldProtector.opener`; use it only within the transaction it was made in
    (the keys it remembers are those this transaction may use; erasures are seen by
    :meth:`FieldProtector.refresh` at the start of each page).
    """

    __slots__ = ("_data_key", "_head", "_keys", "_names", "_parts")

    def __init__(
        self, data_key: Callable[[str], AESGCM], dataset_id: str, names: Collection[str]
    ) -> None:
        self._data_key = data_key
        self._head = _dataset_part(dataset_id, DATA_KEY_VERSION)
        self._names = list(names)
        self._parts = [_name_bytes(n) for n in self._names]
        self._keys: dict[str, AESGCM] = {}

    def open(self, subject_id: str, record_key: str, sealed: Mapping[str, str]) -> dict[str, Any]:
        """As ``open_fields(session, subject_id=..., dataset_id=..., record_key=...,
        sealed=..., only=names)``, with the same errors."""
        aead = self._keys.get(subject_id)
        if aead is None:
            if not any(n in sealed for n in self._names):
                return {}  # nothing to open: no key needed (as open_fields)
            aead = self._keys[subject_id] = self._data_key(subject_id)
        key = record_key.encode("utf-8")
        return _open_tokens(
            aead, self._head + _U32(len(key)) + key, sealed, self._names, self._parts
        )


def _innermost(session: Session) -> SessionTransaction:
    tx = session.get_nested_transaction() or session.get_transaction()
    if tx is None:  # only called after a statement ran, so a transaction exists
        raise RuntimeError("no transaction in progress")
    return tx


def _decrypt_error(name: str, token: object) -> FieldDecryptError:
    """Name what is wrong with a token (without echoing it)."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX + "."):
        return FieldDecryptError("not a sealed field token", field=name)
    if not token.startswith(_TOKEN_HEAD):
        return FieldDecryptError("unknown key version in sealed field", field=name)
    return FieldDecryptError(field=name)


class FieldProtector:
    """Seals and opens personal fields; blind indexes, pseudonyms; key lifecycle (see module doc).

    One instance per process, shared by threads. ``keyring`` provides the KEKs and root secrets.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keyring = keyring
        self._cache = _KeyCache(cache_size, cache_ttl, clock)
        self._macs: OrderedDict[tuple[str, str], HMAC] = OrderedDict()
        self._sivs: OrderedDict[str, AESSIV] = OrderedDict()
        self._derived_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FieldProtector(keyring={self._keyring!r}, cache={self._cache!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a FieldProtector holds keys and cannot be pickled")

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    # -- sealing ----------------------------------------------------------------------------

    def seal_fields(
        self,
        session: Session,
        *,
        subject_id: str,
        dataset_id: str,
        record_key: str,
        fields: Mapping[str, Any],
    ) -> dict[str, str]:
        """Encrypt each value (any JSON value) to a token; creates the subject's key if missing.

        Raises ``SubjectShreddedError`` for an erased subject, ``FieldEncodeError`` for non-JSON.
        """
        if not fields:
            return {}
        aead = self._data_key(session, subject_id, create=True)
        prefix = _aad_prefix(dataset_id, record_key, DATA_KEY_VERSION)
        nonces = os.urandom(_NONCE * len(fields))  # one syscall for the record
        encrypt = aead.encrypt
        out: dict[str, str] = {}
        at = 0
        for name, value in fields.items():
            nonce = nonces[at : at + _NONCE]
            at += _NONCE
            if type(value) is str:
                try:
                    plain = _dumps(value)
                except TypeError:  # lone surrogates: let encode_value raise FieldEncodeError
                    plain = encode_value(value)
            else:
                plain = encode_value(value)
            sealed = encrypt(nonce, plain, prefix + name.encode("utf-8"))
            out[name] = _TOKEN_HEAD + b64u_encode(nonce + sealed)
        return out

    def open_fields(
        self,
        session: Session,
        *,
        subject_id: str,
        dataset_id: str,
        record_key: str,
        sealed: Mapping[str, str],
        only: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Decrypt tokens (all, or the names in ``only``) back to their values.

        ``FieldDecryptError`` on any tampering or mismatch, ``SubjectShreddedError`` for an erased
        subject, ``KeyNotFoundError`` if the subject never had a key.
        """
        names = list(sealed) if only is None else [n for n in only if n in sealed]
        if not names:
            return {}
        aead = self._data_key(session, subject_id, create=False)
        prefix = _aad_prefix(dataset_id, record_key, DATA_KEY_VERSION)
        return _open_tokens(aead, prefix, sealed, names, [_name_bytes(n) for n in names])

    def opener(self, session: Session, *, dataset_id: str, only: Collection[str]) -> FieldOpener:
        """A :class:`FieldOpener` of the fields ``only`` of records of ``dataset_id``, for
        this session's current transaction."""

        def data_key(subject_id: str) -> AESGCM:
            return self._data_key(session, subject_id, create=False)

        return FieldOpener(data_key, dataset_id, only)

    # -- data keys --------------------------------------------------------------------------

    def preload(self, session: Session, subject_ids: Collection[str]) -> None:
        """Fetch the data keys of a page of subjects in one query (1,000 ids per query)."""
        created = self._created_here(session)
        missing = sorted(
            {s for s in subject_ids if s not in created and self._cache.get(s) is None}
        )
        for start in range(0, len(missing), 1000):
            chunk = missing[start : start + 1000]
            rows = session.execute(
                select(
                    _subject_keys.c.subject_id,
                    _subject_keys.c.kek_version,
                    _subject_keys.c.wrapped_key,
                ).where(_subject_keys.c.subject_id.in_(chunk))
            )
            for subject_id, kek_version, wrapped in rows:
                self._cache.put(subject_id, self._unwrap(subject_id, kek_version, wrapped))

    def refresh(self, session: Session, subject_ids: Collection[str]) -> frozenset[str]:
        """:meth:`forget_shredded` and :meth:`preload` in one query (per 1,000 subjects), for
        the release path's page of subjects: drops the cached keys of subjects shredded now
        (another process may have erased them), caches the others' keys; returns the shredded.
        """
        ids = sorted(set(subject_ids))
        shredded: set[str] = set()
        statement = (
            _PG_REFRESH_KEYS if session.get_bind().dialect.name == "postgresql" else _REFRESH_KEYS
        )
        for start in range(0, len(ids), 1000):
            rows = session.execute(statement, {"ids": ids[start : start + 1000]})
            shredded |= self.refresh_from(session, rows)
        return frozenset(shredded)

    def refresh_from(
        self,
        session: Session,
        rows: Iterable[Sequence[Any]],
    ) -> frozenset[str]:
        """:meth:`refresh` from rows of :data:`KEY_COLUMNS` the caller read in its own statement
        (in this session's transaction), e.g. joined to the records it is about to open. A row
        whose ``subject_id`` is ``None`` (an outer join that found no key) is skipped."""
        created = self._created_here(session)
        shredded: set[str] = set()
        for subject_id, kek_version, wrapped, shredded_at in rows:
            if subject_id is None:
                continue
            if shredded_at is not None:
                shredded.add(subject_id)
                self._cache.drop(subject_id)
            if subject_id in created or self._cache.get(subject_id) is not None:
                continue
            self._cache.put(subject_id, self._unwrap(subject_id, kek_version, wrapped))
        return frozenset(shredded)

    def forget_shredded(self, session: Session, subject_ids: Collection[str]) -> frozenset[str]:
        """Which of these subjects are shredded now, dropping their cached keys.

        Another process (the CLI, another replica) may have erased a subject whose key this
        process still caches; the release path calls this once per page so that an erasure
        takes effect at once everywhere, not when the cache entry expires.
        """
        shredded: set[str] = set()
        ids = sorted(set(subject_ids))
        for start in range(0, len(ids), 1000):
            shredded.update(
                session.scalars(
                    select(_subject_keys.c.subject_id).where(
                        _subject_keys.c.subject_id.in_(ids[start : start + 1000]),
                        _subject_keys.c.shredded_at.is_not(None),
                    )
                )
            )
        for subject_id in shredded:
            self._cache.drop(subject_id)
        return frozenset(shredded)

    def _data_key(self, session: Session, subject_id: str, *, create: bool) -> AESGCM:
        entry = self._cache.get(subject_id)
        if entry is not None:
            if entry.aead is None:
                raise SubjectShreddedError(subject_id)
            return entry.aead
        created = self._created_here(session)
        mine = created.get(subject_id)
        if mine is not None and mine[0].is_active:  # created in this transaction, still open
            if mine[1] is None:
                raise SubjectShreddedError(subject_id)
            return mine[1]
        row = session.execute(
            select(_subject_keys.c.kek_version, _subject_keys.c.wrapped_key).where(
                _subject_keys.c.subject_id == subject_id
            )
        ).first()
        if row is None:
            if not create:
                raise KeyNotFoundError(f"data subject {subject_id!r} has no data key")
            return self._create(session, subject_id)
        aead = self._unwrap(subject_id, row[0], row[1])
        if mine is None:  # a committed row: safe to share with other transactions
            self._cache.put(subject_id, aead)
        else:  # our savepoint ended (released or rolled back): the row is what counts
            created[subject_id] = (_innermost(session), aead)
        if aead is None:
            raise SubjectShreddedError(subject_id)
        return aead

    def _unwrap(self, subject_id: str, kek_version: int, wrapped: bytes | None) -> AESGCM | None:
        if wrapped is None:
            return None  # shredded
        return AESGCM(self._keyring.unwrap_data_key(subject_id, WrappedKey(kek_version, wrapped)))

    def _create(self, session: Session, subject_id: str) -> AESGCM:
        """Insert a new wrapped key; if a concurrent transaction won, use theirs."""
        if len(subject_id) > 64 or not subject_id:
            raise ValueError("subject ids are 1..64 characters")
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _KEK_LOCK_ID})
        key = AESGCM.generate_key(bit_length=256)
        wrapped = self._keyring.wrap_data_key(subject_id, key)
        values = {
            "subject_id": subject_id,
            "kek_version": wrapped.kek_version,
            "wrapped_key": wrapped.blob,
            "created_at": utcnow(),
        }
        inserted: bool
        if dialect in ("postgresql", "sqlite"):
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            stmt = (
                insert(_subject_keys)
                .values(values)
                .on_conflict_do_nothing()
                .returning(_subject_keys.c.subject_id)
            )
            inserted = session.execute(stmt).first() is not None
        else:  # generic: a savepoint around a plain insert
            from sqlalchemy.exc import IntegrityError

            try:
                with session.begin_nested():
                    session.execute(_subject_keys.insert().values(values))
                inserted = True
            except IntegrityError:
                inserted = False
        if inserted:
            aead = AESGCM(key)
            self._created_here(session)[subject_id] = (_innermost(session), aead)
            return aead
        # lost the race: a concurrent transaction committed its key first (PostgreSQL waits for
        # it in ON CONFLICT), so the row is committed and may be cached
        row = session.execute(
            select(_subject_keys.c.kek_version, _subject_keys.c.wrapped_key).where(
                _subject_keys.c.subject_id == subject_id
            )
        ).first()
        if row is None:
            raise KeyNotFoundError(f"data key of subject {subject_id!r} vanished while created")
        winner = self._unwrap(subject_id, row[0], row[1])
        self._cache.put(subject_id, winner)
        if winner is None:
            raise SubjectShreddedError(subject_id)
        return winner

    @staticmethod
    def _created_here(session: Session) -> dict[str, tuple[SessionTransaction, AESGCM | None]]:
        """Keys this session created (or re-read after a savepoint) in its current transaction.

        They stay out of the shared cache: the transaction may still roll back. Forgotten when
        the root transaction ends; the next transaction reads the committed row.
        """
        root = session.get_transaction()
        slot = session.info.get(_CREATED_INFO_KEY)
        if slot is not None and root is not None and slot[0] is root:
            created: dict[str, tuple[SessionTransaction, AESGCM | None]] = slot[1]
            return created
        fresh: dict[str, tuple[SessionTransaction, AESGCM | None]] = {}
        session.info[_CREATED_INFO_KEY] = (root, fresh)
        return fresh

    # -- erasure ----------------------------------------------------------------------------

    def shred_subject(self, session: Session, subject_id: str) -> bool:
        """Destroy the subject's data key (crypto-shredding); ``False`` if already shredded.

        A subject without a key gets a tombstone, so nothing is ever sealed for them again.
        The caller records the erasure in the audit log; this logs the event without secrets.
        """
        now = utcnow()
        result = session.execute(
            update(_subject_keys)
            .where(_subject_keys.c.subject_id == subject_id, _subject_keys.c.shredded_at.is_(None))
            .values(wrapped_key=None, shredded_at=now)
            .returning(_subject_keys.c.subject_id)
        )
        changed = result.first() is not None
        if not changed:
            exists = session.execute(
                select(_subject_keys.c.subject_id).where(_subject_keys.c.subject_id == subject_id)
            ).first()
            if exists is None:
                session.execute(
                    _subject_keys.insert().values(
                        subject_id=subject_id,
                        kek_version=0,
                        wrapped_key=None,
                        created_at=now,
                        shredded_at=now,
                    )
                )
                changed = True
        self._cache.drop(subject_id)
        self._created_here(session).pop(subject_id, None)
        if changed:
            log.info("data key shredded", extra={"subject_id": subject_id})
        return changed

    # -- KEK rotation -----------------------------------------------------------------------

    def rotate_kek(self) -> int:
        """Add a KEK version and make it current; then run :meth:`rewrap` until done."""
        version = self._keyring.rotate_kek()
        log.info("KEK rotated", extra={"kek_version": version})
        return version

    def rewrap(self, session: Session, *, batch_size: int = 500) -> RewrapProgress:
        """Re-wrap one batch of data keys under the current KEK; the caller commits.

        Resumable (it picks whatever is still on an older version) and safe beside readers and
        other rewrappers: on PostgreSQL the batch is locked ``FOR UPDATE SKIP LOCKED``; each update
        is conditional on the row being unchanged.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        current = self._keyring.current_version()
        stale = (_subject_keys.c.kek_version != current) & _subject_keys.c.shredded_at.is_(None)
        rows = session.execute(
            select(
                _subject_keys.c.subject_id, _subject_keys.c.kek_version, _subject_keys.c.wrapped_key
            )
            .where(stale)
            .order_by(_subject_keys.c.subject_id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        params: list[dict[str, Any]] = []
        for subject_id, old_version, blob in rows:
            key = self._keyring.unwrap_data_key(subject_id, WrappedKey(old_version, blob))
            new = self._keyring.wrap_data_key(subject_id, key)
            params.append(
                {"sid": subject_id, "old": old_version, "new": new.kek_version, "blob": new.blob}
            )
        done = 0
        if params:
            result = session.execute(
                update(_subject_keys)
                .where(
                    _subject_keys.c.subject_id == bindparam("sid"),
                    _subject_keys.c.kek_version == bindparam("old"),
                    _subject_keys.c.shredded_at.is_(None),
                )
                .values(kek_version=bindparam("new"), wrapped_key=bindparam("blob")),
                params,
            )
            count = getattr(result, "rowcount", -1)
            done = count if count >= 0 else len(params)
        remaining = session.execute(select(func.count()).select_from(_subject_keys).where(stale))
        left = int(remaining.scalar_one())  # counted after the update, in this transaction
        return RewrapProgress(rewrapped=done, remaining=left, current_version=current)

    def rewrap_all(
        self,
        session_factory: Callable[[], Session],
        *,
        batch_size: int = 500,
        on_progress: Callable[[RewrapProgress], None] | None = None,
    ) -> RewrapProgress:
        """Run :meth:`rewrap` batch by batch, one committed transaction each (for the CLI).

        Stops when done, or when a batch made no progress (rows locked elsewhere): run it again.
        """
        total = 0
        while True:
            with session_factory() as session, session.begin():
                progress = self.rewrap(session, batch_size=batch_size)
            total += progress.rewrapped
            if on_progress is not None:
                on_progress(progress)
            if progress.done or progress.rewrapped == 0:
                return RewrapProgress(total, progress.remaining, progress.current_version)

    def retire_unused_versions(self, session: Session) -> list[int]:
        """Retire (destroy) every non-current KEK version no live data key is wrapped under.

        On PostgreSQL this first waits for in-flight key creations (advisory lock), so a key
        wrapped under an old version just before a rotation is counted. On SQLite (one writer at
        a time, the embedded single-host setup) run it after ``rewrap_all``, not during a
        publish that started before the rotation.
        """
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _KEK_LOCK_ID})
        current = self._keyring.current_version()
        used = set(
            session.scalars(
                select(_subject_keys.c.kek_version)
                .where(_subject_keys.c.shredded_at.is_(None))
                .distinct()
            )
        )
        retired: list[int] = []
        for version in self._keyring.versions():
            if version != current and version not in used:
                self._keyring.retire_kek(version)
                retired.append(version)
        if retired:
            log.info("KEK versions retired", extra={"kek_versions": retired})
        return retired

    # -- keyed hashes -----------------------------------------------------------------------

    def _mac(self, purpose: Literal["blind_index", "pseudonym"], label: str) -> HMAC:
        """A fresh copy of the keyed HMAC for (purpose, label); keys derived once, cached."""
        cache_key = (purpose, label)
        with self._derived_lock:
            base = self._macs.get(cache_key)
            if base is not None:
                self._macs.move_to_end(cache_key)
                return base.copy()
        key = self._keyring.derive_key(purpose, label.encode("utf-8"))
        base = HMAC(key, hashes.SHA256())
        with self._derived_lock:
            self._macs[cache_key] = base
            while len(self._macs) > 4096:
                self._macs.popitem(last=False)
            return base.copy()

    def blind_index(
        self,
        kind: str,
        value: str,
        *,
        scope: str = "",
        encoding: Literal["b64url", "hex"] = "b64url",
    ) -> str:
        """Keyed HMAC-SHA256 of the normalised identifier (kinds: vin, id_number, plate, mobile,
        email). ``scope`` (e.g. ``"<dataset>/<field>"``) gives separate, unlinkable indexes;
        the default ``""`` is the hub-wide index used to find a subject. 43 chars (b64url) or 64
        (hex). ``NormalizationError`` for an unknown kind or malformed value.
        """
        normalised = normalize_identifier(kind, value)
        mac = self._mac("blind_index", f"{kind}\x00{scope}")
        mac.update(normalised.encode("utf-8"))
        digest = mac.finalize()
        return digest.hex() if encoding == "hex" else b64u_encode(digest)

    def content_digest(self, dataset_id: str, content: str | bytes) -> str:
        """Keyed HMAC-SHA256 of a record's canonical content, per dataset (43 chars, base64url).

        Lets the publish path detect unchanged records without storing a plain (guessable) hash
        of personal data. Keyed from the blind-index root under its own HKDF label.
        """
        mac = self._mac("blind_index", f"content-digest\x00{dataset_id}")
        mac.update(content.encode("utf-8") if isinstance(content, str) else content)
        return b64u_encode(mac.finalize())

    def pseudonym(self, recipient_id: str, subject_id: str) -> str:
        """``psn_`` + 22 chars: stable for one recipient, unlinkable across recipients."""
        mac = self._mac("pseudonym", f"recipient\x00{recipient_id}")
        mac.update(b"subject\x00" + subject_id.encode("utf-8"))
        return "psn_" + b64u_encode(mac.finalize())[:22]

    def pseudonymize_value(self, recipient_id: str, field: str, value: Any) -> str:
        """``psv_`` + 22 chars for a field value (any JSON value), keyed per recipient and field."""
        mac = self._mac("pseudonym", f"recipient\x00{recipient_id}")
        mac.update(b"value\x00" + _lp(field.encode("utf-8")) + canonical_json(value))
        return "psv_" + b64u_encode(mac.finalize())[:22]

    # -- deterministic encryption -----------------------------------------------------------

    def _siv(self, scope: str) -> AESSIV:
        with self._derived_lock:
            siv = self._sivs.get(scope)
            if siv is not None:
                return siv
        siv = AESSIV(self._keyring.derive_key("deterministic", scope.encode("utf-8"), length=64))
        with self._derived_lock:
            self._sivs[scope] = siv
            while len(self._sivs) > 1024:
                self._sivs.popitem(last=False)
        return siv

    def seal_deterministic(self, value: Any, *, scope: str) -> str:
        """AES-SIV: equal values in one ``scope`` give equal tokens (joinable inside the hub).

        Keyed per scope from the keyring's ``deterministic`` root, not per subject: such tokens
        are NOT erased by crypto-shredding. Use for join keys, not as a subject's only copy.
        """
        data = self._siv(scope).encrypt(encode_value(value), [b"tollhouse/siv/v1", scope.encode()])
        return f"{DETERMINISTIC_PREFIX}.{b64u_encode(data)}"

    def open_deterministic(self, token: str, *, scope: str) -> Any:
        """Inverse of :meth:`seal_deterministic`; ``FieldDecryptError`` on any mismatch."""
        head = DETERMINISTIC_PREFIX + "."
        if not isinstance(token, str) or not token.startswith(head):
            raise FieldDecryptError("not a deterministic token")
        try:
            raw = b64u_decode_strict(token[len(head) :])
            plain = self._siv(scope).decrypt(raw, [b"tollhouse/siv/v1", scope.encode()])
        except (ValueError, InvalidTag):
            raise FieldDecryptError("deterministic token failed to decrypt") from None
        return decode_value(plain)
