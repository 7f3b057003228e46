"""Records: canonical bytes (RFC 8785), recordDigest, schema fuzzing, and the fast EIP-712 digests."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import rfc8785
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchor.errors import InputError
from anchor.receipts import Receipt, ReceiptFile
from anchor.records import Record, canonical_json
from anchor.records.canonical import _encode
from anchor.records.eip712 import RECEIPT_TYPE_STRING, recover_signer
from anchor.records.record import RECORD_FIELDS, RECORD_FIELDS_V1, check_proof_values
from anchor.signing import eip712_digest, record_typed_data, sign_record_digest
from tests.anchor.factory import (
    CHAIN_ID,
    CONTRACT,
    DOMAIN,
    PROVIDER,
    PROVIDER_KEY,
    RECEIPT_KEY,
    entry,
    make_record,
    make_record_v1,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400)
@given(json_values)
def test_canonical_json_is_rfc8785(value) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)
    assert _encode(value).encode() == rfc8785.dumps(value)  # the pure Python fallback (no orjson)


def test_canonical_json_refuses_what_jcs_cannot_hold() -> None:
    for value in ([1, 2**53], {"a": [2**64]}, {"a": "\ud800"}):
        with pytest.raises(ValueError):
            canonical_json(value)
    with pytest.raises(TypeError, match="bytes is not a JSON value"):
        canonical_json({"a": [b"x"]})
    with pytest.raises(TypeError, match="is not a string"):
        canonical_json({1: 2})


def test_worked_example_of_docs_records_md() -> None:
    """The examples in docs/records.md (version 2, and version 1 as logged before): their canonical
    bytes and recordDigests are pinned here."""
    rec = worked_example()
    text = rec.canonical_bytes().decode()
    assert text.startswith('{"decode":{"frequency_penalty":0,"max_new_tokens":4,"min_p":0,')
    assert '"stop_reason":"eos"' in text and '"tokenizer":"cdcd' in text
    assert rec.digest() == hashlib.sha256(rec.canonical_bytes()).digest()
    assert rec.digest().hex() == WORKED_EXAMPLE_DIGEST
    assert Record.from_json(json.loads(text)) == rec  # parse(canonical) round-trips
    old = worked_example_v1()
    text = old.canonical_bytes().decode()
    assert '"sampling":{"max_new_tokens":4,"seed":7,"temperature":0.7,"top_k":0,"top_p":0.9}' in text
    assert old.digest().hex() == WORKED_EXAMPLE_V1_DIGEST
    assert Record.from_json(json.loads(text)) == old and old.decode is None and old.version == 1


def worked_example() -> Record:
    return Record.from_json(
        {
            "version": 2,
            "provider": "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23",
            "model": {"name": "SmolLM2-135M-Instruct", "fingerprint": "AB" * 32, "tokenizer": "CD" * 32},
            "dtype": "bfloat16",
            "toploc": {"topk": 2, "decode_batching_size": 2},
            "prompt_tokens": [1, 9690, 198],
            "output_tokens": [22, 33, 2],
            "decode": {
                "sampler": "toploc-audit/gumbel-max",
                "sampler_version": 1,
                "temperature": 0.7,
                "top_k": 0,
                "top_p": 0.9,
                "min_p": 0,
                "repetition_penalty": 1,
                "presence_penalty": 0,
                "frequency_penalty": 0,
                "seed": 7,
                "max_new_tokens": 4,
                "stop_token_ids": [2],
                "stop": [],
            },
            "stop_reason": "eos",
            "proofs": [base64.b64encode(bytes([0xFF, 0xD9, 0, 1, 0, 2])).decode()] * 3,
            "request_id": "example-2",
            "time": 1767225600,
        }
    )


def worked_example_v1() -> Record:
    return Record.from_json(
        {
            "version": 1,
            "provider": "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23",
            "model": {"name": "SmolLM2-135M-Instruct", "fingerprint": "AB" * 32},
            "dtype": "bfloat16",
            "toploc": {"topk": 2, "decode_batching_size": 2},
            "prompt_tokens": [1, 9690, 198],
            "output_tokens": [22, 33, 44],
            "sampling": {"temperature": 0.7, "top_p": 0.9, "top_k": 0, "seed": 7, "max_new_tokens": 4},
            "proofs": [base64.b64encode(bytes([0xFF, 0xD9, 0, 1, 0, 2])).decode()] * 3,
            "request_id": "example-1",
            "time": 1767225600,
        }
    )


WORKED_EXAMPLE_DIGEST = "c1338697ca1196c1806950aaee18f88893dc2aa7024326c1e6bf1a657c639b54"
WORKED_EXAMPLE_V1_DIGEST = "29709ecb52e00e7e0374874eecac4e9c9a831c035ff3f64dd9ff4bf70fccb6d5"


def test_normalisation_gives_one_digest_per_record() -> None:
    rec = make_record("n-1")
    j = rec.to_json()
    j["provider"] = j["provider"].lower()
    j["model"]["fingerprint"] = j["model"]["fingerprint"].upper()
    assert Record.from_json(j).digest() == rec.digest()
    j["proofs"][0] = j["proofs"][0].rstrip("=") if j["proofs"][0].endswith("=") else j["proofs"][0] + "="
    with pytest.raises(InputError):
        Record.from_json(j)


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s[:-3] + _B64[_B64.index(s[-3]) | 1] + "==", "not canonical base64"),  # unused bit set
        (lambda s: s[:-2], "not valid base64"),  # padding dropped
        (lambda s: s[:4] + "\n" + s[4:], "not valid base64"),
        (lambda s: s.replace("+", "-").replace("/", "_") if "+" in s or "/" in s else s + "-", "base64"),
        (lambda s: "é" + s[1:], "not valid base64"),
    ],
)
def test_proofs_must_be_canonical_base64(change, reason: str) -> None:
    """A proof spelled any other way than standard padded base64 of its bytes is refused (one digest per
    record): the parser decodes strictly, then requires the re-encoding to be the same string."""
    j = make_record("b64-1", topk=7).to_json()  # 16-byte proofs: the last group is "xx==" padded
    assert j["proofs"][1].endswith("==")
    j["proofs"][1] = change(j["proofs"][1])
    with pytest.raises(InputError, match=reason) as err:
        Record.from_json(j)
    assert err.value.field == "record.proofs[1]"


def test_canonical_bytes_of_realistic_records_are_rfc8785() -> None:
    for i in range(20):
        rec = make_record(f"real-{i}", n_prompt=64, n_output=256, topk=128, dbs=32)
        assert rec.canonical_bytes() == rfc8785.dumps(rec.to_json())


record_mutations = st.sampled_from(
    [
        *RECORD_FIELDS,
        "model.name",
        "model.fingerprint",
        "toploc.topk",
        "toploc.decode_batching_size",
        "model.tokenizer",
        "decode.sampler",
        "decode.temperature",
        "decode.top_p",
        "decode.top_k",
        "decode.min_p",
        "decode.repetition_penalty",
        "decode.seed",
        "decode.max_new_tokens",
        "decode.stop_token_ids",
        "decode.stop",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(record_mutations, json_values)
def test_fuzzed_records_are_rejected_with_the_field_or_parse(path: str, value) -> None:
    """Any field replaced by any JSON value: InputError naming that field (or a child), or a valid record."""
    j = make_record("fuzz").to_json()
    target = j
    *parents, last = path.split(".")
    for p in parents:
        target = target[p]
    target[last] = value
    try:
        rec = Record.from_json(j)
    except InputError as exc:
        allowed = ("record." + path, "record.output_tokens", "record.proofs", "record.stop_reason")
        if path.startswith("decode."):
            allowed += ("record.decode.seed",)  # e.g. a temperature of 0 makes the seed wrong
        assert exc.field.startswith(allowed), exc.field
        assert exc.reason
    else:
        assert rec.canonical_bytes() == rfc8785.dumps(rec.to_json())


@settings(max_examples=100)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=12))
def test_arbitrary_objects_never_crash_the_parser(obj) -> None:
    with pytest.raises(InputError):
        Record.from_json(obj)


def test_version_1_records_still_parse_with_their_own_fields() -> None:
    old = make_record_v1("v1")
    j = old.to_json()
    assert set(j) == set(RECORD_FIELDS_V1) and "tokenizer" not in j["model"]
    assert Record.from_json(j) == old and old.decode is None and old.stop_reason is None
    with pytest.raises(InputError) as info:
        Record.from_json({**j, "decode": make_record("v2").to_json()["decode"]})
    assert (info.value.field, info.value.reason) == ("record.decode", "unknown field")
    with pytest.raises(InputError) as info:
        Record.from_json({**j, "version": 3})
    assert info.value.field == "record.version" and "want one of (1, 2)" in info.value.reason


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda j: j["output_tokens"].__setitem__(3, 999), "record.output_tokens[3]", "stop token 999 ended"),
        (lambda j: j.update(stop_reason="length"), "record.output_tokens[39]", "stop reason 'eos', but"),
        (lambda j: j.update(stop_reason="stop"), "record.stop_reason", "no stop strings"),
        (lambda j: j["output_tokens"].__setitem__(39, 5), "record.stop_reason", "end without a stop token"),
        (lambda j: j["decode"].update(max_new_tokens=20), "record.output_tokens[19]", "max_new_tokens ended"),
        (lambda j: j["decode"].update(temperature=0), "record.decode.seed", "greedy decoding uses no seed"),
        (
            lambda j: j["proofs"].__setitem__(1, "AAQA" + j["proofs"][1][4:]),
            "record.proofs[1]",
            "outside [topk 8",
        ),
    ],
)
def test_records_that_no_generation_ends_like_are_refused_at_parse(change, field: str, reason: str) -> None:
    """What needs no model or tokenizer is checked when a record is parsed: the stop reason against
    the stop ids and max_new_tokens, the seed against the temperature, a modulus below topk."""
    j = make_record("stop-1", n_output=40, max_new_tokens=64).to_json()  # ends with the stop token
    change(j)
    with pytest.raises(InputError) as info:
        Record.from_json(j)
    assert info.value.field == field
    assert reason in info.value.reason, info.value.reason


def test_fast_eip712_digests_match_eth_account() -> None:
    digest = make_record("e").digest()
    assert DOMAIN.record_digest(digest) == eip712_digest(digest, CHAIN_ID, CONTRACT)
    sig = sign_record_digest(PROVIDER_KEY.to_bytes(), digest, CHAIN_ID, CONTRACT)
    assert recover_signer(DOMAIN.record_digest(digest), sig) == PROVIDER
    assert entry(make_record("e"))["signature"] == "0x" + sig.hex()

    receipt = Receipt(12, digest, 1_700_000_123, 3600)
    typed = record_typed_data(digest, CHAIN_ID, CONTRACT)
    typed["types"]["Receipt"] = [
        {"name": n, "type": t}
        for t, n in (x.split(" ") for x in RECEIPT_TYPE_STRING[len("Receipt(") : -1].split(","))
    ]
    del typed["types"]["InferenceRecord"]
    typed["primaryType"] = "Receipt"
    typed["message"] = {
        "logIndex": 12,
        "recordDigest": digest,
        "timestamp": 1_700_000_123,
        "maximumMergeDelay": 3600,
    }
    assert receipt.digest(DOMAIN) == bytes(_hash_eip191_message(encode_typed_data(full_message=typed)))
    signed = Account.sign_typed_data(RECEIPT_KEY.to_bytes(), full_message=typed)
    assert receipt.sign(RECEIPT_KEY, DOMAIN) == bytes(signed.signature)


def test_receipt_file_round_trip_and_field_errors() -> None:
    rec = make_record("f")
    receipt = Receipt(0, rec.digest(), 5, 60)
    rf = ReceiptFile(
        CHAIN_ID,
        CONTRACT,
        PROVIDER,
        receipt,
        receipt.sign(RECEIPT_KEY, DOMAIN),
        bytes.fromhex(entry(rec)["signature"][2:]),
        None,
    )
    assert ReceiptFile.loads(rf.dumps()) == rf
    bad = json.loads(rf.dumps())
    bad["receipt"]["logIndex"] = -1
    with pytest.raises(InputError, match=r"^receipt.logIndex: "):
        ReceiptFile.loads(json.dumps(bad))
    with pytest.raises(InputError, match=r"^format: "):
        ReceiptFile.loads("{}")


def test_float32_proofs_carry_two_planes() -> None:
    j = make_record("f32", topk=8).to_json()
    j["dtype"] = "float32"
    with pytest.raises(InputError, match=r"^record.proofs\[0\]: has 18 bytes, want 34 \(topk 8, float32\)"):
        Record.from_json(j)
    j["proofs"] = [base64.b64encode(b"\xff\x00" + bytes(32)).decode()] * len(j["proofs"])
    assert Record.from_json(j).dtype == "float32"


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(
            st.sampled_from([0, 1, 0xFF, 0xD8, 0xD9, 0xFFD8, 0xFFD9, 0xFFFF, 0xD9FF]), min_size=3, max_size=3
        ),
        min_size=1,
        max_size=3,
    )
)
def test_check_proof_values_finds_the_first_coefficient_outside_the_field(coefficients) -> None:
    """The byte scan agrees with the plain rule on values whose bytes straddle 0xFF 0xD9."""
    proofs = [(65000).to_bytes(2, "big") + b"".join(c.to_bytes(2, "big") for c in cs) for cs in coefficients]
    bad = [(i, j, c) for i, cs in enumerate(coefficients) for j, c in enumerate(cs) if c >= 65497]
    if not bad:
        check_proof_values(proofs, 2)
        return
    i, j, c = bad[0]
    with pytest.raises(
        InputError, match=rf"^record\.proofs\[{i}\]: coefficient {j} is {c}, want 0 <= c < 65497$"
    ):
        check_proof_values(proofs, 2)
