"""The public surface is exactly ``connectors.__all__`` (as httpx's test_exported_members)."""

from __future__ import annotations

import connectors


def test_all_is_exported_and_complete() -> None:
    exported = {name for name in dir(connectors) if not name.startswith("_")}
    # Modules of the package that may appear as attributes once imported.
    exported -= {"cli", "annotations"}
    assert exported == set(connectors.__all__)
    assert connectors.__all__ == sorted(connectors.__all__)


def test_exported_members_belong_to_the_package() -> None:
    for name in connectors.__all__:
        assert getattr(connectors, name).__module__ == "connectors", name


def test_exception_tree_is_documented() -> None:
    from connectors import _exceptions

    assert _exceptions.__doc__ is not None
    for name in _exceptions.__all__:
        if name != "FieldError":
            assert name in _exceptions.__doc__, name
