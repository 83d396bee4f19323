"""RFC 9162 Merkle tree: published test vectors, an independent reference, and property tests."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    range_decomposition,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# Test vectors copied from transparency-dev/merkle, proof/verify_test.go (Apache-2.0): the RFC 6962
# reference leaves, the roots of the trees of their first 1..8 leaves, and inclusion and
# consistency proofs over them (leaf numbers there are 1-based; converted to 0-based indices here).
LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
INCLUSION = [  # (0-based leaf index, tree size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 1, []),
]  # fmt: skip
CONSISTENCY = [  # (size1, size2, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def reference_mth(leaves: list[bytes]) -> bytes:
    """MTH exactly as written in RFC 9162 section 2.1.1 (recursive), over raw leaf data."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:])).digest()


def test_empty_tree() -> None:
    assert root_hash([]) == EMPTY_ROOT == MerkleTree().root() == CompactRange().root()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_vectors(size: int) -> None:
    assert root_hash(HASHES[:size]) == ROOTS[size - 1]
    assert MerkleTree(HASHES).root(size) == ROOTS[size - 1]
    frontier = CompactRange()
    frontier.extend(HASHES[:size])
    assert frontier.root() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof_hex"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    assert inclusion_proof(HASHES, index, size) == proof
    assert MerkleTree(HASHES).inclusion_proof(index, size) == proof
    root = ROOTS[size - 1]
    assert verify_inclusion(HASHES[index], index, size, proof, root)
    # Corruptions in the style of the source's corruptInclusionProof.
    assert not verify_inclusion(HASHES[index], index + 1, size, proof, root)
    if index:
        assert not verify_inclusion(HASHES[index], index - 1, size, proof, root)
    assert not verify_inclusion(HASHES[index], index, size * 2, proof, root)
    assert not verify_inclusion(leaf_hash(b"WrongLeaf"), index, size, proof, root)
    assert not verify_inclusion(HASHES[index], index, size, proof, EMPTY_ROOT)
    assert not verify_inclusion(HASHES[index], index, size, [*proof, root], root)
    assert not verify_inclusion(HASHES[index], index, size, [root, *proof], root)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        assert not verify_inclusion(HASHES[index], index, size, bad, root)
    if proof:
        assert not verify_inclusion(HASHES[index], index, size, proof[:-1], root)


@pytest.mark.parametrize(("size1", "size2", "proof_hex"), CONSISTENCY)
def test_consistency_vectors(size1: int, size2: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    assert consistency_proof(HASHES, size1, size2) == proof
    assert MerkleTree(HASHES).consistency_proof(size1, size2) == proof
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    assert verify_consistency(size1, size2, root1, root2, proof)
    if not proof:
        return
    assert not verify_consistency(size1 - 1, size2, root1, root2, proof)
    assert not verify_consistency(size1 + 1, size2, root1, root2, proof)
    assert not verify_consistency(size1, size2 * 2, root1, root2, proof)
    assert not verify_consistency(size1, size2, root2, root1, proof)
    assert not verify_consistency(size1, size2, root1, root2, [])
    assert not verify_consistency(size1, size2, root1, root2, [*proof, root1])
    assert not verify_consistency(size1, size2, root1, root2, [proof[0], *proof])
    assert not verify_consistency(size1, size2, root1, root2, proof[:-1])
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        assert not verify_consistency(size1, size2, root1, root2, bad)


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 5, EMPTY_ROOT, ROOTS[4], [], True),
        (1, 1, ROOTS[0], ROOTS[0], [], True),
        (1, 1, ROOTS[0], ROOTS[1], [], False),
        (1, 0, ROOTS[0], EMPTY_ROOT, [], False),
        (1, 2, ROOTS[0], ROOTS[1], [], False),
        (1, 1, ROOTS[0], ROOTS[0], [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    assert verify_consistency(size1, size2, root1, root2, proof) is ok


def test_proof_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        inclusion_proof(HASHES, 8, 8)
    with pytest.raises(ValueError):
        inclusion_proof(HASHES, 0, 9)
    with pytest.raises(ValueError):
        consistency_proof(HASHES, 5, 4)
    with pytest.raises(ValueError):
        MerkleTree(HASHES).inclusion_proof(0, 9)
    assert not verify_inclusion(HASHES[0], 0, 0, [], HASHES[0])


leaf_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_inclusion_property(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [leaf_hash(x) for x in leaves]
    size = data.draw(st.integers(1, len(hashes)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    tree = MerkleTree(hashes)
    root = reference_mth(leaves[:size])
    assert root_hash(hashes[:size]) == root == tree.root(size)
    proof = tree.inclusion_proof(index, size)
    assert proof == inclusion_proof(hashes, index, size)
    assert verify_inclusion(hashes[index], index, size, proof, root)
    # A tampered leaf, a tampered proof element or a wrong index never verifies.
    tampered = leaf_hash(leaves[index] + b"!")
    assert not verify_inclusion(tampered, index, size, proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        bad = list(proof)
        flipped = bytearray(bad[i])
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad[i] = bytes(flipped)
        assert not verify_inclusion(hashes[index], index, size, bad, root)
        other = data.draw(st.integers(0, size - 1), label="other")
        if hashes[other] != hashes[index]:
            assert not verify_inclusion(hashes[other], index, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_consistency_property(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [leaf_hash(x) for x in leaves]
    new = data.draw(st.integers(1, len(hashes)), label="new")
    old = data.draw(st.integers(1, new), label="old")
    tree = MerkleTree(hashes)
    proof = tree.consistency_proof(old, new)
    assert proof == consistency_proof(hashes, old, new)
    old_root, new_root = reference_mth(leaves[:old]), reference_mth(leaves[:new])
    assert verify_consistency(old, new, old_root, new_root, proof)
    if old < new:
        # A rewritten history (any earlier leaf changed) is not consistent with the old root.
        j = data.draw(st.integers(0, old - 1), label="rewritten")
        forged = list(leaves[:new])
        forged[j] = forged[j] + b"!"
        forged_hashes = [leaf_hash(x) for x in forged]
        forged_proof = consistency_proof(forged_hashes, old, new)
        assert not verify_consistency(old, new, old_root, root_hash(forged_hashes), forged_proof)
        if proof:
            bad = list(proof)
            bad[-1] = bytes([bad[-1][0] ^ 1]) + bad[-1][1:]
            assert not verify_consistency(old, new, old_root, new_root, bad)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300))
def test_compact_ranges_compose(a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(end + 5)]
    tree = MerkleTree(hashes)
    left = tree.compact_range(start)
    assert left.root() == root_hash(hashes[:start])
    restored = CompactRange.from_bytes(start, left.to_bytes())
    for height, first in range_decomposition(start, end):
        restored.append_subtree(height, tree.subtree_hash(first, first + (1 << height)))
    assert restored.size == end and restored.root() == root_hash(hashes[:end])
