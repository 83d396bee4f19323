"""Reading ``policies/`` as an OPA-style bundle, its revision, and ``bundle.tar.gz``.

Layout (the OPA bundle format): every ``*.rego`` file is a policy module; every ``data.json``
is a data document mounted at its directory path (``taxonomy/purposes/data.json`` becomes
``data.taxonomy.purposes``). Files ending in ``_test.rego`` are the Rego unit tests: loaded
only to validate, never into a serving engine, and left out of the revision and the bundle.

The revision is the sha256 of the decision-relevant files (relative path and bytes, in path
order), so it is stable across machines and changes whenever a policy or a data document does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.policy.errors import PolicyLoadError

DATA_FILE_NAME = "data.json"
TEST_SUFFIX = "_test.rego"
# The revision marker is data too: data.tollhouse_bundle.revision, read by OpaPolicyEngine.
REVISION_ROOT = "tollhouse_bundle"
BUNDLE_ROOTS = ("tollhouse", "taxonomy", REVISION_ROOT)


@dataclass(frozen=True)
class PolicyModule:
    """One Rego source file, by its path relative to the policies directory."""

    path: str
    text: str


@dataclass(frozen=True)
class PolicyBundle:
    """Everything an engine needs: modules, merged data, tests, and the revision."""

    modules: tuple[PolicyModule, ...]
    data: Mapping[str, Any]
    data_documents: tuple[tuple[str, bytes], ...]
    tests: tuple[PolicyModule, ...] = field(default=())
    revision: str = ""

    def data_json(self) -> str:
        """The merged data document as JSON text."""
        return json.dumps(self.data, sort_keys=True, separators=(",", ":"))


def load_bundle(policies_dir: Path) -> PolicyBundle:
    """Read every policy module, test module and data document under ``policies_dir``."""
    root = Path(policies_dir)
    if not root.is_dir():
        raise PolicyLoadError(f"policies directory not found: {root}")
    modules: list[PolicyModule] = []
    tests: list[PolicyModule] = []
    documents: list[tuple[str, bytes]] = []
    data: dict[str, Any] = {}
    digest = hashlib.sha256()
    try:
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            if path.suffix == ".rego":
                module = PolicyModule(relative, path.read_text(encoding="utf-8"))
                if path.name.endswith(TEST_SUFFIX):
                    tests.append(module)
                    continue
                modules.append(module)
                raw = module.text.encode("utf-8")
            elif path.name == DATA_FILE_NAME:
                raw = path.read_bytes()
                _mount(data, path.parent.relative_to(root).parts, json.loads(raw), relative)
                documents.append((relative, raw))
            else:
                continue
            digest.update(relative.encode("utf-8") + b"\0" + raw + b"\0")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PolicyLoadError(f"cannot read policies: {error}") from error
    if not modules:
        raise PolicyLoadError(f"no Rego policies under {root}")
    return PolicyBundle(
        modules=tuple(modules),
        data=data,
        data_documents=tuple(documents),
        tests=tuple(tests),
        revision=digest.hexdigest(),
    )


def _mount(data: dict[str, Any], parts: tuple[str, ...], value: Any, source: str) -> None:
    if not parts:
        if not isinstance(value, dict):
            raise PolicyLoadError(f"{source}: a root data document must be an object")
        for key, item in value.items():
            _mount(data, (key,), item, source)
        return
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise PolicyLoadError(f"{source}: data path conflicts at {part!r}")
        node = child
    if parts[-1] in node:
        raise PolicyLoadError(f"{source}: data path {'/'.join(parts)} defined twice")
    node[parts[-1]] = value


def build_bundle(policies_dir: Path, out_path: Path) -> str:
    """Write ``out_path`` (``bundle.tar.gz``) for OPA; returns the revision in its manifest.

    The archive holds ``/.manifest`` (revision and roots), the policy modules, the data
    documents and ``/tollhouse_bundle/data.json`` (the revision, as data); tests stay out.
    Entries carry fixed metadata, so the same policies build the same bytes.
    """
    bundle = load_bundle(policies_dir)
    manifest = {"revision": bundle.revision, "roots": list(BUNDLE_ROOTS)}
    entries: list[tuple[str, bytes]] = [(".manifest", json.dumps(manifest).encode("utf-8"))]
    entries += [(module.path, module.text.encode("utf-8")) for module in bundle.modules]
    entries += list(bundle.data_documents)
    revision_document = json.dumps({"revision": bundle.revision}).encode("utf-8")
    entries.append((f"{REVISION_ROOT}/{DATA_FILE_NAME}", revision_document))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, payload in entries:
            info = tarfile.TarInfo(name=f"/{name}")
            info.size = len(payload)
            info.mtime = 0
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(payload))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return bundle.revision
