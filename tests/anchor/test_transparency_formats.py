"""C2SP formats (signed-note, tlog-checkpoint, tlog-tiles) against published examples: the signed note
of golang.org/x/mod/sumdb/note's documentation (reproduced byte for byte, so Go verifiers and witnesses
accept our notes), the tile path example of c2sp.org/tlog-tiles, and the RFC 9162 reference tree."""

from __future__ import annotations

import base64
import hashlib

import pytest

from anchor.errors import InputError, VerificationError
from anchor.merkle import reference
from anchor.merkle.hasher import sha256_hasher
from anchor.transparency.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from anchor.transparency.note import NoteSigner, VerifierKey, open_note, split_note
from anchor.transparency.tiles import (
    TileRef,
    decode_bundle,
    encode_bundle,
    encode_index,
    next_level,
    parse_tile_path,
    tile_extent,
)

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def _go_signer() -> NoteSigner:
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])  # the type byte 0x01, then the seed
    assert raw[0] == 0x01
    return NoteSigner("PeterNeumann", raw[1:])


def test_the_go_example_note_is_reproduced_and_opened() -> None:
    signer = _go_signer()
    assert signer.verifier.encode() == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE
    assert VerifierKey.parse(GO_VKEY) == signer.verifier
    assert open_note(GO_NOTE, VerifierKey.parse(GO_VKEY)) == GO_TEXT


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (GO_NOTE.replace("cryptography", "cryptographY"), "does not verify"),
        (GO_NOTE.replace("— PeterNeumann", "— PeterNeuman"), "no signature by PeterNeumann"),
        (GO_TEXT, "no signature block"),
        (GO_NOTE.replace("— ", "- "), "starts with '— '"),
        (GO_NOTE.replace("x08go", "x08g!"), "not base64"),
        (GO_NOTE + GO_NOTE.split("\n\n")[1] * 100, "more than 100 signature lines"),
    ],
)
def test_a_changed_note_is_refused_naming_why(note: str, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        open_note(note, VerifierKey.parse(GO_VKEY))


def test_another_key_of_the_same_name_does_not_open_the_note() -> None:
    other = NoteSigner("PeterNeumann", hashlib.sha256(b"another seed").digest())
    with pytest.raises(VerificationError, match="no signature by PeterNeumann"):
        open_note(GO_NOTE, other.verifier)
    cosigned = GO_NOTE + other.sign(GO_TEXT).split("\n\n")[1]  # two signatures: each key finds its own
    assert split_note(cosigned)[1][1].name == "PeterNeumann"
    assert open_note(cosigned, other.verifier) == GO_TEXT
    assert open_note(cosigned, VerifierKey.parse(GO_VKEY)) == GO_TEXT


@pytest.mark.parametrize(
    ("vkey", "field"),
    [
        (GO_VKEY.replace("c74f20a3", "c74f20a4"), "does not match"),
        (GO_VKEY.replace("+ARpc", "+AhRpc"), "bad encoding|only Ed25519"),
        ("PeterNeumann+c74f20a3", "expected"),
        (GO_VKEY.replace("+ARpc", "+AxRp"), "only Ed25519|bad encoding"),
    ],
)
def test_bad_verifier_keys_are_refused(vkey: str, field: str) -> None:
    with pytest.raises(InputError, match=field):
        VerifierKey.parse(vkey)


def test_a_note_text_must_end_with_a_newline() -> None:
    with pytest.raises(InputError, match="text"):
        _go_signer().sign("no newline")


def test_checkpoints_round_trip_and_are_parsed_strictly() -> None:
    root = reference.root(sha256_hasher, [sha256_hasher.hash_leaf(b"a"), sha256_hasher.hash_leaf(b"b")])
    checkpoint = Checkpoint("example.com/log", 2, root, ("extension",))
    assert checkpoint.body() == f"example.com/log\n2\n{base64.b64encode(root).decode()}\nextension\n"
    assert parse_checkpoint(checkpoint.body()) == checkpoint
    signer = _go_signer()
    assert open_checkpoint(checkpoint.sign(signer), signer.verifier, "example.com/log") == checkpoint
    with pytest.raises(VerificationError, match="origin: expected"):
        open_checkpoint(checkpoint.sign(signer), signer.verifier, "example.com/other")
    b64 = base64.b64encode(root).decode()
    for body, field in [
        (f"o\n02\n{b64}\n", "size"),
        (f"o\n-1\n{b64}\n", "size"),
        (f"o\n2\n{b64}", "ends with a newline"),
        (f"o\n2\n{base64.b64encode(root[:31]).decode()}\n", "root: 32 bytes"),
        (f"o\n2\n{b64[:-1]}\n", "root"),
        ("o\n2\n", "required"),
        (f"\n2\n{b64}\n", "origin"),
    ]:
        with pytest.raises(VerificationError, match=field):
            parse_checkpoint(body)


def test_tile_paths_follow_the_spec_example_and_have_one_spelling() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert TileRef(0, 1234067).path() == "tile/0/x001/x234/067"
    assert TileRef(None, 1234067, 8).path() == "tile/entries/x001/x234/067.p/8"
    refs = [TileRef(0, 0), TileRef(1, 999), TileRef(2, 1000, 255), TileRef(None, 10**9, 1), TileRef(63, 5)]
    for ref in refs:
        assert parse_tile_path(ref.path()) == ref
    for bad, field in [
        ("tile/0/x000/067", "index"),
        ("tile/0/67", "index"),
        ("tile/0/001/067", "index"),
        ("tile/00/067", "level"),
        ("tile/64/067", "level"),
        ("tile/0/067.p/0", "width"),
        ("tile/0/067.p/256", "width"),
        ("tile/0/067.p/08", "width"),
        ("tiles/0/067", "path"),
        ("tile/" + "9" * 5000 + "/000", "level"),  # no int() of 5000 digits (a ValueError, a 500)
        ("tile/0/" + "x001/" * 1500 + "000", "path"),
    ]:
        with pytest.raises(InputError) as e:
            parse_tile_path(bad)
        assert e.value.field == field, bad


def test_tile_extents_and_levels_match_the_reference_tree() -> None:
    leaves = [sha256_hasher.hash_leaf(i.to_bytes(4, "big")) for i in range(256 * 3 + 7)]
    size = len(leaves)
    assert tile_extent(size, TileRef(0, 0)) == 256
    assert tile_extent(size, TileRef(0, 3)) == 7  # tile/0/003.p/7
    assert tile_extent(size, TileRef(0, 4)) == 0
    assert tile_extent(size, TileRef(1, 0)) == 3  # three complete 256-leaf subtrees
    assert tile_extent(size, TileRef(None, 3)) == 7
    level1 = next_level(sha256_hasher, leaves)
    assert level1 == [reference.root(sha256_hasher, leaves[i * 256 : (i + 1) * 256]) for i in range(3)]


def test_entry_bundles_round_trip_and_truncation_is_named() -> None:
    entries = [b"", b"x", bytes(range(256)) * 3]
    bundle = encode_bundle(entries)
    assert bundle[:2] == b"\x00\x00" and bundle[2:5] == b"\x00\x01x"
    assert decode_bundle(bundle) == entries
    with pytest.raises(InputError, match="entry 2 runs past the end"):
        decode_bundle(bundle[:-1])
    with pytest.raises(InputError, match="truncated length"):
        decode_bundle(bundle + b"\x00")
    with pytest.raises(InputError) as e:
        encode_bundle([b"ok", bytes(70_000)])
    assert e.value.field == "entries[1]"
