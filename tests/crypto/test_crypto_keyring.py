from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest

from hub.crypto import KeyNotFoundError, Keyring, KeyringError, LocalKeyring, WrappedKey
from hub.crypto.keyring import ROOT_PURPOSES


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_creates_private_files(data_dir: Path) -> None:
    ring = LocalKeyring(data_dir)
    keys = data_dir / "keys"
    assert mode(keys) == 0o700
    names = sorted(p.name for p in keys.iterdir() if not p.name.startswith("."))
    assert names == sorted(["kek.json", *(f"{p}.secret" for p in ROOT_PURPOSES)])
    for path in keys.iterdir():
        assert mode(path) == 0o600, path
    assert ring.current_version() == 1
    assert ring.versions() == [1]
    assert isinstance(ring, Keyring)


def test_keys_persist_across_restarts(data_dir: Path) -> None:
    first = LocalKeyring(data_dir)
    key = os.urandom(32)
    wrapped = first.wrap_data_key("subj-1", key)
    derived = first.derive_key("blind_index", b"vin")
    second = LocalKeyring(data_dir)
    assert second.unwrap_data_key("subj-1", wrapped) == key
    assert second.derive_key("blind_index", b"vin") == derived


def test_derived_keys_differ_per_purpose_and_info(keyring: LocalKeyring) -> None:
    keys = {keyring.derive_key(p, b"x") for p in ROOT_PURPOSES}
    keys.add(keyring.derive_key("blind_index", b"y"))
    assert len(keys) == 4
    assert len(keyring.derive_key("deterministic", b"x", length=64)) == 64


def test_wrap_binds_subject_and_version(keyring: LocalKeyring) -> None:
    key = os.urandom(32)
    wrapped = keyring.wrap_data_key("alice", key)
    with pytest.raises(KeyringError):
        keyring.unwrap_data_key("bob", wrapped)
    keyring.rotate_kek()
    with pytest.raises(KeyringError):
        keyring.unwrap_data_key("alice", WrappedKey(2, wrapped.blob))
    with pytest.raises(KeyringError):
        keyring.unwrap_data_key("alice", WrappedKey(1, wrapped.blob[:-1]))
    with pytest.raises(KeyNotFoundError):
        keyring.unwrap_data_key("alice", WrappedKey(7, wrapped.blob))
    assert keyring.unwrap_data_key("alice", wrapped) == key


def test_rotate_and_retire(data_dir: Path) -> None:
    ring = LocalKeyring(data_dir)
    other_process = LocalKeyring(data_dir)
    old = ring.wrap_data_key("s", os.urandom(32))
    assert ring.rotate_kek() == 2
    assert ring.current_version() == 2
    assert other_process.current_version() == 2  # re-reads the changed file
    assert other_process.wrap_data_key("s", os.urandom(32)).kek_version == 2
    with pytest.raises(KeyringError):
        ring.retire_kek(2)
    ring.retire_kek(1)
    ring.retire_kek(1)  # idempotent
    with pytest.raises(KeyNotFoundError):
        ring.retire_kek(9)
    assert LocalKeyring(data_dir).versions() == [2]
    with pytest.raises(KeyNotFoundError):
        other_process.unwrap_data_key("s", old)
    assert ring.rotate_kek() == 3  # numbers are never reused


def test_refuses_group_readable_files(data_dir: Path) -> None:
    LocalKeyring(data_dir)
    os.chmod(data_dir / "keys" / "pseudonym.secret", 0o644)
    with pytest.raises(KeyringError, match="group/others"):
        LocalKeyring(data_dir)


def test_refuses_incomplete_keyring(data_dir: Path) -> None:
    LocalKeyring(data_dir)
    (data_dir / "keys" / "blind_index.secret").unlink()
    with pytest.raises(KeyringError, match="incomplete"):
        LocalKeyring(data_dir)


def test_refuses_corrupt_kek_file(data_dir: Path) -> None:
    LocalKeyring(data_dir)
    path = data_dir / "keys" / "kek.json"
    path.write_text('{"format": 1, "current": 1, "versions": [{"version": 1, "key": "!!"}]}')
    with pytest.raises(KeyringError, match="corrupt"):
        LocalKeyring(data_dir)


def test_no_secret_in_repr_or_pickle(keyring: LocalKeyring, data_dir: Path) -> None:
    text = repr(keyring)
    for path in (data_dir / "keys").iterdir():
        if path.name.startswith("."):
            continue
        for token in path.read_text().split('"'):
            if len(token) >= 40:  # base64 of 32 bytes
                assert token not in text
    with pytest.raises(TypeError):
        pickle.dumps(keyring)
    assert "blob" not in repr(keyring.wrap_data_key("s", os.urandom(32))).replace("blob=<", "")
