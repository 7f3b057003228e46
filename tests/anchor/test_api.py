"""The HTTP API on both databases: receipts, idempotency, every bad-input class, reads and pagination."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient

from anchor.api import AppConfig, create_app
from anchor.db import session_factory, transaction
from anchor.db.migrate import upgrade
from anchor.errors import InputError
from anchor.keyfiles import write_key_file
from anchor.leaf import leaf_hash
from anchor.log import checkpoints
from anchor.merkle import reference as ref
from anchor.merkle import sha256_hasher, verify_inclusion
from anchor.receipts import Receipt
from anchor.records import Record
from anchor.records.eip712 import SECP256K1_N
from anchor.settings import Settings
from anchor.transparency.checkpoint import log_note_signer, open_checkpoint
from anchor.transparency.note import VerifierKey
from anchor.transparency.tiles import decode_bundle, next_level
from tests.anchor.conftest import KEYLESS, MAX_MERGE_DELAY, field_reason, seed_registry
from tests.anchor.factory import DOMAIN, PROVIDER, RECEIPT_KEY, entry, make_record, make_record_v1, other_key


def _log_size(client) -> int:
    return client.get("/v1/log").json()["size"]


def test_post_returns_a_receipt_signed_by_the_receipt_key_and_is_idempotent(client) -> None:
    rec = make_record("req-1")
    r = client.post("/v1/records", json=entry(rec))
    assert r.status_code == 201, r.text
    body = r.json()
    receipt = Receipt.from_json(body["receipt"])
    assert receipt.log_index == 0
    assert receipt.record_digest == rec.digest()
    assert receipt.max_merge_delay == MAX_MERGE_DELAY
    assert body["created"] is True
    signer = receipt.signer(bytes.fromhex(body["signature"][2:]), DOMAIN)
    assert signer == RECEIPT_KEY.public_key.to_checksum_address()

    again = client.post("/v1/records", json=entry(rec))
    assert again.status_code == 200
    assert again.json()["receipt"] == body["receipt"] and again.json()["created"] is False
    assert _log_size(client) == 1


def test_batch_is_one_transaction_in_order_and_matches_the_reference_tree(client) -> None:
    records = [make_record(f"b-{i}") for i in range(7)]
    r = client.post("/v1/records:batch", json={"entries": [entry(x) for x in records]})
    assert r.status_code == 201, r.text
    assert [x["receipt"]["logIndex"] for x in r.json()["receipts"]] == list(range(7))
    leaves = [leaf_hash(PROVIDER, x.digest()) for x in records]
    log = client.get("/v1/log").json()
    assert log["size"] == 7 and log["root"] == "0x" + ref.root(sha256_hasher, leaves).hex()
    p = client.get("/v1/log/inclusion", params={"index": 3, "size": 7}).json()
    verify_inclusion(
        sha256_hasher,
        3,
        7,
        leaves[3],
        [bytes.fromhex(h[2:]) for h in p["proof"]],
        ref.root(sha256_hasher, leaves),
    )
    # A replayed batch plus one new entry: old receipts come back, only the new one is appended.
    r2 = client.post(
        "/v1/records:batch", json={"entries": [entry(x) for x in [*records[:2], make_record("b-new")]]}
    )
    assert r2.status_code == 201
    assert [x["receipt"]["logIndex"] for x in r2.json()["receipts"]] == [0, 1, 7]
    assert _log_size(client) == 8


def _mutate(body: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def _high_s(body: dict[str, Any]) -> dict[str, Any]:
    """The malleable twin (s -> n - s, v flipped) of the body's signature: it recovers the same signer,
    and the contract's ECDSA refuses it (test_dispute_attacks.py)."""
    sig = bytes.fromhex(body["signature"][2:])
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    return _mutate(body, ["signature"], "0x" + twin.hex())


def _resign(rec_json: dict[str, Any], key=None) -> dict[str, Any]:
    """Re-sign a record JSON that still parses (so only the intended field is wrong)."""
    return entry(Record.from_json(rec_json), key) if key else entry(Record.from_json(rec_json))


BAD: list[tuple[str, Any, int, str, str]] = [
    # (case, how to break the entry, status, field, reason fragment)
    (
        "token out of vocabulary",
        lambda e: _resign(_mutate(e["record"], ["output_tokens", 5], 1000)),
        422,
        "record.output_tokens[5]",
        "outside the vocabulary",
    ),
    (
        "negative token",
        lambda e: _mutate(e, ["record", "prompt_tokens", 0], -1),
        422,
        "record.prompt_tokens[0]",
        "negative",
    ),
    (
        "proof count",
        lambda e: _mutate(e, ["record", "proofs"], e["record"]["proofs"][:-1]),
        422,
        "record.proofs",
        "want 4",
    ),
    (
        "proof length",
        lambda e: _mutate(e, ["record", "proofs", 0], e["record"]["proofs"][1][:-4]),
        422,
        "record.proofs[0]",
        "want 18",
    ),
    (
        "proof not base64",
        lambda e: _mutate(e, ["record", "proofs", 1], "!!"),
        422,
        "record.proofs[1]",
        "base64",
    ),
    ("topk", lambda e: _mutate(e, ["record", "toploc", "topk"], 0), 422, "record.toploc.topk", "outside"),
    (
        "decode batching size",
        lambda e: _mutate(e, ["record", "toploc", "decode_batching_size"], "32"),
        422,
        "record.toploc.decode_batching_size",
        "integer",
    ),
    ("dtype", lambda e: _mutate(e, ["record", "dtype"], "int8"), 422, "record.dtype", "not one of"),
    ("version", lambda e: _mutate(e, ["record", "version"], 3), 422, "record.version", "unsupported"),
    (
        "version 1 (binds no decode spec)",
        lambda e: entry(make_record_v1("v1-0")),
        422,
        "record.version",
        "no longer accepted",
    ),
    (
        "modulus below topk (a poison proof)",
        lambda e: _mutate(e, ["record", "proofs", 1], "AAQA" + e["record"]["proofs"][1][4:]),
        422,
        "record.proofs[1]",
        "outside [topk 8",
    ),
    (
        "topk above the hidden size",
        lambda e: entry(make_record("k-300", topk=300)),
        422,
        "record.toploc.topk",
        "exceeds the hidden size of tiny-llama (256)",
    ),
    (
        "beyond the model's positions",
        lambda e: entry(make_record("long-0", max_new_tokens=5000)),
        422,
        "record.decode.max_new_tokens",
        "exceeds the model's 4096 positions of tiny-llama",
    ),
    (
        "stop id outside the vocabulary",
        lambda e: _resign(_mutate(e["record"], ["decode", "stop_token_ids"], [999, 1000])),
        422,
        "record.decode.stop_token_ids[1]",
        "outside the vocabulary",
    ),
    (
        "top-k beyond the vocabulary",
        lambda e: _resign(_mutate(e["record"], ["decode", "top_k"], 1001)),
        422,
        "record.decode.top_k",
        "exceeds the vocabulary",
    ),
    (
        "the engine sampler (not replayable)",
        lambda e: _resign(
            _mutate(_mutate(e["record"], ["decode", "sampler"], "engine"), ["decode", "seed"], None)
        ),
        422,
        "record.decode.sampler",
        "cannot be replayed by a validator",
    ),
    (
        "another tokenizer",
        lambda e: _resign(_mutate(e["record"], ["model", "tokenizer"], "ab" * 32)),
        422,
        "record.model.tokenizer",
        "not the tokenizer tiny-llama was declared with",
    ),
    (
        "a truncated output (stop reason eos without the stop token)",
        lambda e: _mutate(e, ["record", "output_tokens", 39], 5),
        422,
        "record.stop_reason",
        "end without a stop token",
    ),
    ("unknown field", lambda e: _mutate(e, ["record", "extra"], 1), 422, "record.extra", "unknown field"),
    (
        "missing field",
        lambda e: {
            "record": {k: v for k, v in e["record"].items() if k != "time"},
            "signature": e["signature"],
        },
        422,
        "record.time",
        "missing",
    ),
    (
        "signature by another key",
        lambda e: entry(Record.from_json(e["record"]), other_key("mallory")),
        422,
        "signature",
        "want the record's provider",
    ),
    ("signature malformed", lambda e: _mutate(e, ["signature"], "0x1234"), 422, "signature", "65"),
    ("signature high-s (the malleable twin)", _high_s, 422, "signature", "high-s"),
    (
        "signature for another record",
        lambda e: _mutate(e, ["record", "time"], 5),
        422,
        "signature",
        "signed by",
    ),
    (
        "model not declared",
        lambda e: _resign(_mutate(e["record"], ["model", "name"], "other")),
        422,
        "record.model",
        "not declared",
    ),
    (
        "provider not registered",
        lambda e: entry(
            Record.from_json(
                _mutate(e["record"], ["provider"], other_key("stranger").public_key.to_checksum_address())
            ),
            other_key("stranger"),
        ),
        403,
        "record.provider",
        "not a registered provider",
    ),
    (
        "temperature",
        lambda e: _mutate(e, ["record", "decode", "temperature"], -0.5),
        422,
        "record.decode.temperature",
        "outside",
    ),
    (
        "too many output tokens",
        lambda e: _mutate(e, ["record", "decode", "max_new_tokens"], 10),
        422,
        "record.output_tokens[9]",
        "max_new_tokens ended the generation after 10 tokens",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_every_bad_input_class_is_a_4xx_naming_the_field_and_changes_nothing(client, case) -> None:
    _, breaker, status, field, reason = case
    good = entry(make_record("good-0", n_output=40, dbs=16, topk=8))
    r = client.post("/v1/records", json=breaker(good))
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field
    assert reason in err["reason"]
    assert _log_size(client) == 0
    # In a batch, the same fault names the entry, and the good entries before it are not written either.
    r = client.post("/v1/records:batch", json={"entries": [entry(make_record("ok-1")), breaker(good)]})
    assert r.status_code == status
    assert r.json()["field"] == f"entries[1].{field}"
    assert _log_size(client) == 0


def test_request_id_reuse_is_a_conflict_and_bad_json_a_400(client) -> None:
    assert client.post("/v1/records", json=entry(make_record("dup"))).status_code == 201
    other = make_record("dup", rng=random.Random(99))
    r = client.post("/v1/records", json=entry(other))
    assert r.status_code == 409
    assert r.json()["field"] == "record.request_id" and "log index 0" in r.json()["reason"]
    r = client.post(
        "/v1/records:batch",
        json={"entries": [entry(make_record("x")), entry(make_record("x", rng=random.Random(1)))]},
    )
    assert r.status_code == 409 and r.json()["field"] == "entries[1].record.request_id"
    r = client.post("/v1/records", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    r = client.post("/v1/records:batch", json={"entries": []})
    assert r.status_code == 422 and r.json()["field"] == "entries"
    assert _log_size(client) == 1


def test_a_batch_reusing_a_logged_request_id_is_a_conflict_naming_the_entry(client) -> None:
    """On PostgreSQL replays are looked up by recordDigest, so this conflict is found by the unique
    constraint at the insert and worded afterwards: the same field and reason, nothing written."""
    assert client.post("/v1/records", json=entry(make_record("dup"))).status_code == 201
    size = _log_size(client)
    other = make_record("dup", rng=random.Random(99))
    r = client.post("/v1/records:batch", json={"entries": [entry(make_record("fresh")), entry(other)]})
    assert r.status_code == 409
    assert r.json()["field"] == "entries[1].record.request_id" and "log index 0" in r.json()["reason"]
    assert _log_size(client) == size
    # The logged record itself is still answered as a replay within a batch.
    batch = {"entries": [entry(make_record("dup")), entry(make_record("y"))]}
    r = client.post("/v1/records:batch", json=batch)
    assert r.status_code == 201 and [a["created"] for a in r.json()["receipts"]] == [False, True]


def test_record_size_limits_are_settings(database_url: str) -> None:
    from fastapi.testclient import TestClient

    from anchor.api import AppConfig, create_app
    from anchor.records.ingest import RecordPolicy

    seed_registry(database_url)
    policy = RecordPolicy(max_tokens=50, max_bytes=1200)
    app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, policy, access=KEYLESS))
    with TestClient(app) as c:
        r = c.post("/v1/records", json=entry(make_record("t-1", n_prompt=20, n_output=40)))
        assert r.status_code == 422 and field_reason(r) == {
            "field": "record.output_tokens",
            "reason": "prompt + output are 60 tokens, at most 50",
        }
        r = c.post("/v1/records", json=entry(make_record("t-2", n_prompt=10, n_output=30, topk=64)))
        assert r.status_code == 422 and r.json()["field"] == "record"
        assert "1316 canonical bytes, at most 1200" in r.json()["reason"]
        assert (
            c.post("/v1/records", json=entry(make_record("t-3", n_prompt=10, n_output=30))).status_code == 201
        )
    app.state.engine.dispose()


def test_engine_sampled_records_need_the_policy(database_url: str) -> None:
    from fastapi.testclient import TestClient

    from anchor.api import AppConfig, create_app
    from anchor.records.ingest import RecordPolicy

    seed_registry(database_url)
    body = entry(make_record("e-1"))
    body["record"]["decode"].update(sampler="engine", seed=None)
    engine = _resign(body["record"])
    app = create_app(
        AppConfig(
            database_url,
            DOMAIN,
            RECEIPT_KEY,
            MAX_MERGE_DELAY,
            RecordPolicy(allow_engine=True),
            access=KEYLESS,
        )
    )
    with TestClient(app) as c:
        assert c.post("/v1/records", json=engine).status_code == 201
    app.state.engine.dispose()


def test_a_providers_api_key_is_asked_even_where_keys_are_not_required(database_url: str) -> None:
    seed_registry(database_url, api_key="secret-key")
    app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, access=KEYLESS))
    with TestClient(app) as c:
        body = entry(make_record("k1"))
        r = c.post("/v1/records", json=body)
        assert r.status_code == 401 and r.json()["field"] == "authorization"
        assert "requires its API key" in r.json()["reason"]
        r = c.post("/v1/records", json=body, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["reason"] == "the API key given is not a key of this log"
        r = c.post("/v1/records", json=body, headers={"Authorization": "Bearer secret-key"})
        assert r.status_code == 201
    app.state.engine.dispose()


def test_reads_are_public_with_filters_and_pagination(client) -> None:
    records = [make_record(f"r-{i}") for i in range(5)]
    client.post("/v1/records:batch", json={"entries": [entry(x) for x in records]})
    d = client.get("/v1/records/2").json()
    assert d["logIndex"] == 2 and d["record"] == records[2].to_json() and d["status"] == "pending"
    assert d["inclusion"] is None and d["anchor"] is None and d["disputes"] == []
    assert client.get(f"/v1/records/0x{records[4].digest().hex()}").json()["logIndex"] == 4
    assert client.get("/v1/records/99").status_code == 404
    r = client.get("/v1/records/nope")
    assert r.status_code == 422 and r.json()["field"] == "record"

    page1 = client.get("/v1/records", params={"limit": 2}).json()
    assert [x["logIndex"] for x in page1["items"]] == [0, 1] and page1["next"] == 1
    page2 = client.get("/v1/records", params={"limit": 2, "after": page1["next"]}).json()
    assert [x["logIndex"] for x in page2["items"]] == [2, 3]
    last = client.get("/v1/records", params={"limit": 2, "after": 3}).json()
    assert [x["logIndex"] for x in last["items"]] == [4] and last["next"] is None
    by_provider = client.get("/v1/records", params={"provider": PROVIDER.lower()}).json()["items"]
    assert len(by_provider) == 5
    other = to_checksum_address("0x" + "12" * 20)
    assert client.get("/v1/records", params={"provider": other}).json()["items"] == []
    assert (
        len(client.get("/v1/records", params={"model": "tiny-llama", "status": "pending"}).json()["items"])
        == 5
    )
    assert client.get("/v1/records", params={"status": "anchored"}).json()["items"] == []
    assert client.get("/v1/records", params={"status": "bogus"}).status_code == 422
    assert client.get("/v1/records", params={"since": 2_000_000_000}).json()["items"] == []
    assert client.get("/v1/records/1/receipt").json()["inclusion"] is None
    assert "/v1/records:batch" in client.get("/openapi.json").json()["paths"]


def test_evidence_reports_are_published_and_served_byte_for_byte(client) -> None:
    report = b'{"abstained":"model not held","disputeId":1,"format":"toploc-audit-validation/2"}'
    r = client.post("/v1/evidence", content=report)
    assert r.status_code == 201, r.text
    digest = "0x" + hashlib.sha256(report).hexdigest()
    assert r.json() == {"evidenceHash": digest}
    again = client.post("/v1/evidence", content=report)  # the same bytes: one row, the same answer
    assert again.status_code == 201 and again.json() == {"evidenceHash": digest}
    got = client.get(f"/v1/evidence/{digest}")
    assert got.status_code == 200 and got.content == report
    assert got.headers["content-type"].startswith("application/json")

    missing = client.get("/v1/evidence/0x" + "00" * 32)
    assert missing.status_code == 404 and missing.json()["field"] == "evidenceHash"
    for bad in ("0x1234", "0x" + "zz" * 32, "nothex"):
        r = client.get(f"/v1/evidence/{bad}")
        assert r.status_code == 422 and r.json()["field"] == "evidenceHash", bad
    for body in (b"not json", b"[1, 2]", b'"a string"', b"\xff\xfe"):
        r = client.post("/v1/evidence", content=body)
        assert r.status_code == 422 and r.json()["field"] == "report", (body, r.text)
    r = client.post("/v1/evidence", content=b'{"x":"' + b"a" * (1 << 20) + b'"}')
    assert r.status_code == 422 and "more than" in r.json()["reason"]


def test_checkpoint_is_a_signed_note_of_the_latest_checkpoint(client) -> None:
    log = client.get("/v1/log").json()
    key = VerifierKey.parse(log["checkpointKey"])
    assert log["origin"] == f"toploc-audit/{DOMAIN.chain_id}/{DOMAIN.contract.lower()}" == key.name
    empty = client.get("/checkpoint")
    assert empty.status_code == 200 and empty.headers["content-type"].startswith("text/plain")
    first = open_checkpoint(empty.text, key, log["origin"])
    assert (first.size, first.root) == (0, hashlib.sha256(b"").digest())

    records = [make_record(f"cp-{i}") for i in range(3)]
    assert client.post("/v1/records:batch", json={"entries": [entry(x) for x in records]}).status_code == 201
    with transaction(session_factory(client.app.state.engine)) as s:
        row = checkpoints.create(s, now=1)
        assert row is not None
    assert client.post("/v1/records", json=entry(make_record("cp-after"))).status_code == 201
    got = open_checkpoint(client.get("/checkpoint").text, key, log["origin"])
    leaves = [leaf_hash(PROVIDER, x.digest()) for x in records]
    assert (got.size, got.root) == (3, ref.root(sha256_hasher, leaves))  # the checkpoint, not the log head
    assert client.get("/v1/log").json()["checkpointKey"] == log["checkpointKey"]  # stable across calls
    # The note key derives from the receipt key (the recorder holds no other secret).
    assert key.encode() == log_note_signer(log["origin"], RECEIPT_KEY.to_bytes()).verifier.encode()


def test_the_recorder_loads_the_receipt_key_file_and_never_the_log_key(tmp_path: Path) -> None:
    """Settings: <home>/receipt.key (0600) signs; no log key is configured, and none is needed. A
    receipt key file others may read stops the recorder, naming the file and the fix."""
    (tmp_path / "deployment.json").write_text(
        json.dumps({"chainId": DOMAIN.chain_id, "addresses": {"ToplocAudit": DOMAIN.contract}})
    )
    path = tmp_path / "receipt.key"
    write_key_file(path, RECEIPT_KEY.to_hex())
    env = {"TOPLOC_AUDIT_HOME": str(tmp_path), "TOPLOC_AUDIT_STAKE_CHECK": "false"}
    config = AppConfig.from_settings(Settings.from_env(env))
    assert config.receipt_key == RECEIPT_KEY
    assert not (tmp_path / "log.key").exists()
    path.chmod(0o640)
    with pytest.raises(InputError) as e:
        AppConfig.from_settings(Settings.from_env(env))
    assert e.value.field == str(path) and e.value.reason.endswith(f"run `chmod 600 {path}`")
    path.unlink()
    with pytest.raises(InputError) as e:
        AppConfig.from_settings(Settings.from_env(env))
    assert (e.value.field, e.value.reason) == (
        "TOPLOC_AUDIT_RECEIPT_KEY",
        f"not set, and {path} does not exist",
    )


def test_tiles_rebuild_the_tree_and_name_what_is_missing(client) -> None:
    records = [make_record(f"t-{i}") for i in range(300)]
    for start in range(0, 300, 100):
        batch = {"entries": [entry(x) for x in records[start : start + 100]]}
        assert client.post("/v1/records:batch", json=batch).status_code == 201
    leaves = [leaf_hash(PROVIDER, x.digest()) for x in records]

    full = client.get("/tile/0/000")
    assert full.status_code == 200 and "immutable" in full.headers["cache-control"]
    part = client.get("/tile/0/001.p/44")
    tile_hashes = [full.content[i : i + 32] for i in range(0, 256 * 32, 32)]
    tile_hashes += [part.content[i : i + 32] for i in range(0, 44 * 32, 32)]
    assert tile_hashes == leaves  # level 0: the leaf hashes, in order
    level1 = client.get("/tile/1/000.p/1").content
    assert level1 == ref.root(sha256_hasher, leaves[:256]) == next_level(sha256_hasher, tile_hashes)[0]
    bundle = decode_bundle(client.get("/tile/entries/001.p/44").content)
    assert [sha256_hasher.hash_leaf(e) for e in bundle] == leaves[256:]  # clients rehash entries
    assert client.get("/tile/0/001.p/10").content == part.content[: 10 * 32]  # any width up to the tree's

    for path, status, field in [
        ("/tile/0/001", 404, "tile"),  # not full yet
        ("/tile/0/001.p/45", 404, "tile"),
        ("/tile/2/000.p/1", 404, "tile"),
        ("/tile/entries/002.p/1", 404, "tile"),
        ("/tile/0/1", 422, "index"),
        ("/tile/0/001.p/256", 422, "width"),
        ("/tile/x/000", 422, "level"),
    ]:
        r = client.get(path)
        assert (r.status_code, r.json()["field"]) == (status, field), path


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/v1/records/%C2%B2", 422, "record"),  # a Unicode digit: not a log index
        ("/v1/records/99999999999999999999999", 404, "record"),
        ("/v1/records/99999999999999999999999/receipt", 404, "record"),
        ("/v1/records/" + "9" * 5000, 404, "record"),  # past int()'s 4300-digit limit: no ValueError
        ("/v1/log/inclusion?index=0&size=" + "9" * 5000, 422, "size"),
        ("/v1/log/inclusion?index=0&size=99999999999999999999", 422, "size"),
        ("/v1/log/inclusion?index=-1&size=1", 422, "index"),
        ("/v1/log/inclusion?index=x&size=1", 422, "index"),
        ("/v1/log/consistency?size1=1&size2=99999999999999999999", 422, "size2"),
        ("/v1/records?since=99999999999999999999999", 422, "since"),
        ("/v1/records?until=-5", 422, "until"),
        ("/v1/records?after=99999999999999999999999", 422, "after"),
    ],
)
def test_out_of_range_integers_are_4xx_naming_the_field(client, path: str, status: int, field: str) -> None:
    r = client.get(path)
    assert (r.status_code, r.json()["field"]) == (status, field), r.text


def test_an_oversized_body_is_refused_before_it_is_read(client, monkeypatch: pytest.MonkeyPatch) -> None:
    import anchor.api.app as api

    monkeypatch.setattr(api, "MAX_BODY", 10_000)
    body = json.dumps({"entries": [entry(make_record(f"big-{i}")) for i in range(20)]}).encode()
    assert len(body) > 10_000
    declared = client.post("/v1/records:batch", content=body, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["field"] == "body"

    def chunks():  # no Content-Length: counted while streamed
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    headers = {"content-type": "application/json"}
    streamed = client.post("/v1/records:batch", content=chunks(), headers=headers)
    assert streamed.status_code == 413 and "more than the limit" in streamed.json()["reason"]
    assert _log_size(client) == 0


def test_serve_refuses_a_port_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from anchor.errors import InputError
    from anchor.settings import Settings
    from toploc_audit.commands.serve import serve

    result = CliRunner().invoke(serve, ["--port", "99999"])
    assert result.exit_code == 2 and "99999 is not in the range 1<=x<=65535" in result.output
    monkeypatch.setenv("TOPLOC_AUDIT_API_PORT", "70000")
    with pytest.raises(InputError) as e:
        Settings.from_env()
    assert e.value.field == "TOPLOC_AUDIT_API_PORT"


def test_the_checkpoint_verifies_with_openssl_from_the_published_key(client, tmp_path) -> None:
    """Another implementation (the openssl binary, not pycryptodome) checks the served note with the
    key as /v1/log publishes it, the vkey decoded by hand."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is not installed"
    assert client.post("/v1/records", json=entry(make_record("ossl"))).status_code == 201
    with transaction(session_factory(client.app.state.engine)) as s:
        checkpoints.create(s, now=1)
    name, key_id, material = client.get("/v1/log").json()["checkpointKey"].split("+", 2)
    raw = base64.b64decode(material)
    assert raw[0] == 1 and hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_id
    note = client.get("/checkpoint").text
    text, block = note.rsplit("\n\n", 1)
    blob = base64.b64decode(block.removeprefix(f"— {name} ").strip())
    assert blob[:4].hex() == key_id
    (tmp_path / "pub.der").write_bytes(bytes.fromhex("302a300506032b6570032100") + raw[1:])  # SPKI Ed25519
    (tmp_path / "sig").write_bytes(blob[4:])

    def openssl_verifies(message: bytes) -> bool:
        (tmp_path / "msg").write_bytes(message)
        args = ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", str(tmp_path / "pub.der")]
        files = ["-rawin", "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig")]
        return subprocess.run([openssl, *args, *files], capture_output=True).returncode == 0

    assert openssl_verifies((text + "\n").encode())
    assert text.split("\n")[1] == "1"
    assert not openssl_verifies((text.replace("\n1\n", "\n2\n") + "\n").encode())


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok" and ready.json()["size"] == 0


def test_readiness_is_a_503_naming_the_database_when_it_is_gone(tmp_path) -> None:
    db = tmp_path / "gone.sqlite3"
    upgrade(f"sqlite:///{db}")
    app = create_app(AppConfig(f"sqlite:///{db}", DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, access=KEYLESS))
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        app.state.engine.dispose()
        db.unlink()  # the next connection opens an empty file: no log table
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["field"] == "database", r.text
        assert c.get("/healthz").status_code == 200
        for r in (c.get("/v1/log"), c.post("/v1/records", json=entry(make_record("gone")))):
            assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
            assert r.json()["field"] == "database", r.text  # a 503 to retry, not a 500
    app.state.engine.dispose()
