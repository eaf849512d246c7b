"""The log's Merkle tree against RFC 9162 and Certificate Transparency's published vectors, and
signed notes against C2SP's format and the Go sumdb/note vectors."""
import base64
import hashlib
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from review.judging import merkle, signed_note
from review.judging.signed_note import NoteError

# certificate-transparency merkle_tree_test: eight leaves and the root of each prefix.
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                        "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
CT_PATHS = {(0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
            (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]}

# golang.org/x/mod/sumdb/note's example: a key, its verifier key and a signed note.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = GO_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
                     "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


# --- RFC 9162 section 2.1, written out as the text says, deliberately naive ----------------

def rfc_mth(d):
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:])).digest()


def rfc_path(m, d):
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return rfc_path(m, d[:k]) + [rfc_mth(d[k:])]
    return rfc_path(m - k, d[k:]) + [rfc_mth(d[:k])]


def rfc_verify(leaf_index, tree_size, entry, path, root):
    if leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, hashlib.sha256(b"\x00" + entry).digest()
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def test_roots_match_certificate_transparency_vectors():
    for n, expected in enumerate(CT_ROOTS):
        assert merkle.Tree.of_entries(CT_LEAVES[:n]).root().hex() == expected
        assert merkle.Tree.of_entries(CT_LEAVES).root(n).hex() == expected


def test_audit_paths_match_published_vectors():
    tree = merkle.Tree.of_entries(CT_LEAVES)
    for (index, size), expected in CT_PATHS.items():
        assert [h.hex() for h in tree.inclusion_proof(index, size)] == expected


def test_every_root_and_path_is_the_rfc_definition_and_verifies_by_its_algorithm():
    entries = [random.Random(n).randbytes(n % 7) for n in range(70)]
    tree = merkle.Tree.of_entries(entries)
    for size in range(1, 70):
        root = rfc_mth(entries[:size])
        assert tree.root(size) == root
        for index in range(size):
            path = tree.inclusion_proof(index, size)
            assert path == rfc_path(index, entries[:size])
            assert rfc_verify(index, size, entries[index], path, root)
            assert merkle.verify_inclusion(index, size, merkle.leaf_hash(entries[index]), path, root)


def test_a_proof_holds_only_for_its_leaf_place_and_tree():
    entries = [f"entry {i}".encode() for i in range(13)]
    tree = merkle.Tree.of_entries(entries)
    root, leaf = tree.root(), merkle.leaf_hash(entries[6])
    path = tree.inclusion_proof(6)
    assert merkle.verify_inclusion(6, 13, leaf, path, root)
    assert not merkle.verify_inclusion(7, 13, leaf, path, root)          # another place
    assert not merkle.verify_inclusion(6, 7, leaf, path, root)           # a tree of another shape
    assert not merkle.verify_inclusion(6, 13, merkle.leaf_hash(b"entry 7"), path, root)
    assert not merkle.verify_inclusion(6, 13, leaf, path[:-1], root)     # a shortened path
    assert not merkle.verify_inclusion(6, 13, leaf, path, tree.root(12))
    assert not merkle.verify_inclusion(13, 13, leaf, path, root)
    # A leaf hash is never a node hash: the 0x00 / 0x01 prefixes keep them apart.
    assert merkle.leaf_hash(merkle.node_hash(b"a" * 32, b"b" * 32)) != merkle.node_hash(b"a" * 32, b"b" * 32)


def test_go_sumdb_note_vector_opens_and_signing_reproduces_it():
    verifier = signed_note.parse_verifier(GO_VERIFIER)
    assert verifier.name == "PeterNeumann" and verifier.id.hex() == "c74f20a3"
    assert signed_note.open_note(GO_NOTE, verifier) == GO_TEXT
    seed = base64.b64decode(GO_SIGNER.split("+", 4)[4])[1:]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    assert signed_note.verifier_of(key, "PeterNeumann").text() == GO_VERIFIER
    assert signed_note.sign(GO_TEXT, key, "PeterNeumann") == GO_NOTE      # Ed25519 is deterministic
    with pytest.raises(NoteError, match="does not verify"):
        signed_note.open_note(GO_NOTE.replace("cryptography", "cryptographY"), verifier)


@pytest.mark.parametrize("bad", [
    "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",    # wrong key id
    "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",    # upper-case id
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",   # a space in the name
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",    # not an Ed25519 key
    "PeterNeumann+c74f20a3+!!!!", "PeterNeumann+c74f20a3", "", "ssh-ed25519 AAAAC3Nza",
])
def test_a_verifier_key_in_the_wrong_form_is_refused_in_one_line(bad):
    with pytest.raises(NoteError) as refused:
        signed_note.parse_verifier(bad)
    assert "\n" not in str(refused.value)


def test_a_note_signed_by_another_key_or_unsigned_is_refused():
    mine, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    note = signed_note.sign("example.org/log\n3\n" + base64.b64encode(bytes(32)).decode() + "\n",
                            theirs, "example.org/log")
    with pytest.raises(NoteError, match="not signed by key example.org/log"):
        signed_note.open_note(note, signed_note.verifier_of(mine, "example.org/log"))
    with pytest.raises(NoteError, match="not signed by key other.org"):
        signed_note.open_note(note, signed_note.verifier_of(theirs, "other.org"))
    with pytest.raises(NoteError, match="no blank line"):
        signed_note.open_note("example.org/log\n3\nAAAA\n", signed_note.verifier_of(mine, "x"))


def test_checkpoint_text_is_origin_size_and_root_one_per_line():
    point = signed_note.Checkpoint("example.org/log", 40, hashlib.sha256(b"x").digest())
    assert point.text() == f"example.org/log\n40\n{base64.b64encode(point.root).decode()}\n"
    assert signed_note.parse_checkpoint(point.text()) == point
    for bad in ("example.org/log\n-1\nAAAA\n", "example.org/log\n4\nAAAA\n", "just text\n"):
        with pytest.raises(NoteError, match="not a checkpoint"):
            signed_note.parse_checkpoint(bad)
