"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, proofs and their verification.

Pure functions over leaf hashes (``leaf_hash(data) = SHA-256(0x00 || data)``), plus two structures
that avoid recomputing everything for large logs:

- :class:`CompactRange`: the roots of the perfect subtrees of a tree of size ``n`` (one per set bit
  of ``n``, O(log n) hashes). Appending a leaf costs O(1) amortised; the root costs O(log n).
  The log stores one with every signed head, and the offline verifier streams an export through one.
- :class:`MerkleTree`: every perfect subtree hash, level by level (about 2n hashes in contiguous
  byte arrays); after an O(n) build, inclusion and consistency proofs for any size cost
  O(log² n) hashes at worst.

Proof formats follow RFC 9162 section 2.1: ``PATH(m, D[n])`` for inclusion and ``PROOF(m, D[n])``
for consistency, hashes ordered from the leaves up. Verification follows the algorithms of
sections 2.1.3.2 and 2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MerkleTree",
    "consistency_proof",
    "consistency_proof_with",
    "inclusion_proof",
    "inclusion_proof_with",
    "leaf_hash",
    "node_hash",
    "range_decomposition",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH(D[n])`` over already-hashed leaves, computed level by level in O(n)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [
            _sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# --- proof generation, generic over a subtree-hash function ``mth(a, b) = MTH(D[a:b])``


def _path(index: int, start: int, end: int, mth: Callable[[int, int], bytes]) -> list[bytes]:
    top_down: list[bytes] = []
    m = index - start
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            top_down.append(mth(start + k, end))
            end = start + k
        else:
            top_down.append(mth(start, start + k))
            start += k
            m -= k
    top_down.reverse()
    return top_down


def _subproof(m: int, end: int, mth: Callable[[int, int], bytes]) -> list[bytes]:
    top_down: list[bytes] = []
    start = 0
    complete = True
    while True:
        n = end - start
        if m == n:
            if not complete:
                top_down.append(mth(start, end))
            break
        k = _split(n)
        if m <= k:
            top_down.append(mth(start + k, end))
            end = start + k
        else:
            top_down.append(mth(start, start + k))
            start += k
            m -= k
            complete = False
    top_down.reverse()
    return top_down


def _check_inclusion_args(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")


def _check_consistency_args(old_size: int, new_size: int) -> None:
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")


def inclusion_proof(
    leaf_hashes: Sequence[bytes], index: int, size: int | None = None
) -> list[bytes]:
    """``PATH(index, D[size])``: the audit path of leaf ``index`` in the tree of the first ``size``
    leaves (default: all). O(size) hashes; use :class:`MerkleTree` for many proofs."""
    size = len(leaf_hashes) if size is None else size
    if size > len(leaf_hashes):
        raise ValueError(f"tree size {size} exceeds the {len(leaf_hashes)} leaves given")
    _check_inclusion_args(index, size)
    return _path(index, 0, size, lambda a, b: root_hash(leaf_hashes[a:b]))


def consistency_proof(
    leaf_hashes: Sequence[bytes], old_size: int, new_size: int | None = None
) -> list[bytes]:
    """``PROOF(old_size, D[new_size])``; empty when ``old_size`` is 0 or equals ``new_size``."""
    new_size = len(leaf_hashes) if new_size is None else new_size
    if new_size > len(leaf_hashes):
        raise ValueError(f"tree size {new_size} exceeds the {len(leaf_hashes)} leaves given")
    _check_consistency_args(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []
    return _subproof(old_size, new_size, lambda a, b: root_hash(leaf_hashes[a:b]))


def inclusion_proof_with(mth: Callable[[int, int], bytes], index: int, size: int) -> list[bytes]:
    """``PATH(index, D[size])`` from any subtree-hash function ``mth(a, b) = MTH(D[a:b])``
    (for example one that reads stored subtree roots)."""
    _check_inclusion_args(index, size)
    return _path(index, 0, size, mth)


def consistency_proof_with(
    mth: Callable[[int, int], bytes], old_size: int, new_size: int
) -> list[bytes]:
    """``PROOF(old_size, D[new_size])`` from any subtree-hash function."""
    _check_consistency_args(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []
    return _subproof(old_size, new_size, mth)


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2)


def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root that ``proof`` leads to from ``leaf`` at ``index``, or None if it cannot be one."""
    if not 0 <= index < size or len(leaf) != HASH_SIZE:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True if ``proof`` shows ``leaf`` is leaf ``index`` of the tree (``size``, ``root``)."""
    return root_from_inclusion_proof(leaf, index, size, proof) == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True if ``proof`` shows that the tree (``new_size``, ``new_root``) extends
    (``old_size``, ``old_root``)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# --- incremental structures


def range_decomposition(start: int, end: int) -> list[tuple[int, int]]:
    """The aligned perfect subtrees covering leaves ``[start, end)``, left to right, as
    ``(height, first_leaf)``. Appending their hashes to a :class:`CompactRange` of size ``start``
    yields one of size ``end``."""
    if not 0 <= start <= end:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    out: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        height = (pos & -pos).bit_length() - 1 if pos else (end - pos).bit_length() - 1
        while pos + (1 << height) > end:
            height -= 1
        out.append((height, pos))
        pos += 1 << height
    return out


class CompactRange:
    """The perfect-subtree roots of the tree of the first ``size`` leaves, largest first."""

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(nodes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} has {size.bit_count()} nodes")
        if any(len(n) != HASH_SIZE for n in nodes):
            raise ValueError("compact range nodes must be 32-byte hashes")
        self._size = size
        self._nodes = list(nodes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> CompactRange:
        nodes = [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        return cls(size, nodes)

    def to_bytes(self) -> bytes:
        return b"".join(self._nodes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def nodes(self) -> list[bytes]:
        return list(self._nodes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        nodes = self._nodes
        s = self._size
        h = leaf
        while s & 1:
            h = _sha256(b"\x01" + nodes.pop() + h).digest()
            s >>= 1
        nodes.append(h)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def append_subtree(self, height: int, subtree_root: bytes) -> None:
        """Append the root of a perfect subtree of ``2**height`` leaves; the current size must be
        a multiple of ``2**height``."""
        if self._size % (1 << height):
            raise ValueError(f"size {self._size} is not aligned to a subtree of height {height}")
        s = self._size >> height
        h = subtree_root
        while s & 1:
            h = node_hash(self._nodes.pop(), h)
            s >>= 1
        self._nodes.append(h)
        self._size += 1 << height

    def root(self) -> bytes:
        if not self._nodes:
            return EMPTY_ROOT
        h = self._nodes[-1]
        for left in reversed(self._nodes[:-1]):
            h = node_hash(left, h)
        return h

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._nodes)


class MerkleTree:
    """Every perfect subtree hash of an append-only tree, for fast proofs at any size."""

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hashes are 32 bytes")
        levels = self._levels
        levels[0] += leaf
        i = len(levels[0]) // HASH_SIZE - 1
        k = 0
        while i & 1:
            level = levels[k]
            parent = _sha256(b"\x01" + level[(i - 1) * HASH_SIZE : (i + 1) * HASH_SIZE]).digest()
            k += 1
            if len(levels) == k:
                levels.append(bytearray())
            levels[k] += parent
            i >>= 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise IndexError(index)
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def subtree_hash(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])``."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"invalid leaf range [{start}, {end}) for size {self.size}")
        return self._mth(start, end)

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            height = n.bit_length() - 1
            j = start >> height
            return bytes(self._levels[height][j * HASH_SIZE : (j + 1) * HASH_SIZE])
        k = _split(n)
        return node_hash(self._mth(start, start + k), self._mth(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return self.subtree_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if size > self.size:
            raise ValueError(f"tree size {size} exceeds the {self.size} leaves held")
        _check_inclusion_args(index, size)
        return _path(index, 0, size, self._mth)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else new_size
        if new_size > self.size:
            raise ValueError(f"tree size {new_size} exceeds the {self.size} leaves held")
        _check_consistency_args(old_size, new_size)
        if old_size == 0 or old_size == new_size:
            return []
        return _subproof(old_size, new_size, self._mth)

    def compact_range(self, size: int | None = None) -> CompactRange:
        """The compact range of the first ``size`` leaves."""
        size = self.size if size is None else size
        return CompactRange(
            size, [self._mth(first, first + (1 << h)) for h, first in range_decomposition(0, size)]
        )
