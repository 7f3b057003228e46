"""Ingest over HTTP -> anchor on Anvil -> trail -> receipt file -> verify-receipt, on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_keys import keys
from fastapi.testclient import TestClient

from anchor.api import AppConfig, create_app
from anchor.receipts import Receipt
from tests.anchor.chain_env import OPERATOR, RECEIPT_SIGNER, ChainEnv, chain_env
from tests.anchor.conftest import KEYLESS, MAX_MERGE_DELAY
from tests.anchor.factory import entry, make_record, other_key

ANCHOR = ("anchor", "--once", "--every-entries", "1", "--confirmations", "2", "--poll", "0.05")


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[ChainEnv]:
    yield from chain_env(database_url, tmp_path)


@pytest.mark.slow
def test_ingest_anchor_trail_and_verify_receipt(env: ChainEnv, tmp_path: Path) -> None:
    config = AppConfig(
        env.database_url, env.domain, keys.PrivateKey(RECEIPT_SIGNER.key), MAX_MERGE_DELAY, access=KEYLESS
    )
    app = create_app(config)
    with TestClient(app) as client:
        bodies = [entry(make_record(f"e2e-{i}"), domain=env.domain) for i in range(3)]
        r = client.post("/v1/records:batch", json={"entries": bodies})
        assert r.status_code == 201, r.text

        anchored = env.cli_mining(*ANCHOR)
        assert anchored.returncode == 0, anchored.stderr
        assert "anchored as #1" in anchored.stderr

        d = client.get("/v1/records/1").json()
        assert d["status"] == "anchored"
        assert (
            d["anchor"]["chainId"] == env.deployment.chain_id
            and d["anchor"]["contract"] == env.deployment.address
        )
        assert d["inclusion"]["checkpointId"] == 1 and d["inclusion"]["treeSize"] == 3

    text = env.cli("trail", "1")
    assert text.returncode == 0, text.stderr
    assert "logged at index 1" in text.stdout and "anchored in checkpoint 1 (size 3)" in text.stdout
    assert "status: anchored" in text.stdout
    # The factory's records: sampled at 0.7 with top-k 50 and top-p 0.95, ended by the stop token.
    assert "decoding: toploc-audit/gumbel-max at temperature 0.7, seed " in text.stdout
    assert ", top_k 50, top_p 0.95; max 64 tokens; stopped by eos" in text.stdout
    as_json = json.loads(env.cli("trail", "1", "--json").stdout)
    assert as_json["inclusion"] == d["inclusion"] and as_json["anchor"] == d["anchor"]

    file = tmp_path / "receipt.json"
    assert env.cli("receipt", "1", "-o", str(file)).returncode == 0
    no_db = {"TOPLOC_AUDIT_DATABASE_URL": "sqlite:////nonexistent/none.sqlite3"}
    ok = env.cli("verify-receipt", str(file), "--rpc", env.node.url, **no_db)
    assert ok.returncode == 0, ok.stderr
    assert "receipt verified" in ok.stdout and "within the merge delay" in ok.stdout

    def tampered(change) -> str:  # type: ignore[no-untyped-def]
        data = json.loads(file.read_text())
        change(data)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(data))
        out = env.cli("verify-receipt", str(bad), "--rpc", env.node.url, **no_db)
        assert out.returncode == 1, out.stdout
        return out.stderr

    def flip_proof(d: dict) -> None:
        d["inclusion"]["proof"][0] = "0x" + "00" * 32

    assert "inclusion proof leads to root" in tampered(flip_proof)

    def fake_root(d: dict) -> None:  # a self-consistent proof for a root the chain never saw
        flip_proof(d)
        from anchor.receipts import ReceiptFile

        rf = ReceiptFile.loads(json.dumps(d))
        from anchor.merkle import root_from_inclusion_proof, sha256_hasher

        root = root_from_inclusion_proof(sha256_hasher, 1, 3, rf.leaf_hash(), rf.inclusion.proof)
        d["inclusion"]["root"] = "0x" + root.hex()

    assert "checkpoint note (checkpointNote): the note is size 3 root" in tampered(fake_root)  # the bundle

    def fake_root_in_a_format_1_file(d: dict) -> None:  # no note to catch it: the chain does
        fake_root(d)
        for name in ("record", "checkpointNote", "checkpointKey", "anchor"):
            del d[name]
        d["format"] = "toploc-audit-receipt/1"

    assert "on chain is size 3 root" in tampered(fake_root_in_a_format_1_file)

    def signed_by(key: keys.PrivateKey) -> Callable[[dict], None]:
        def change(d: dict) -> None:
            receipt = Receipt.from_json(d["receipt"])
            d["receiptSignature"] = "0x" + receipt.sign(key, env.domain).hex()

        return change

    wrong_signer = f"but the contract's receiptSigner is {RECEIPT_SIGNER.address}"
    assert wrong_signer in tampered(signed_by(other_key("rogue log")))
    # The operator's transaction key does not speak for the log either: only the receiptSigner does.
    assert f"receipt signed by {OPERATOR.address}, {wrong_signer}" in tampered(
        signed_by(keys.PrivateKey(OPERATOR.key))
    )


@pytest.mark.slow
def test_verify_receipt_flags_an_entry_anchored_after_the_merge_delay(env: ChainEnv, tmp_path: Path) -> None:
    env.ingest(1)
    env.node.increase_time(MAX_MERGE_DELAY + 1000)  # the chain's clock passes the promised deadline
    assert env.cli_mining(*ANCHOR).returncode == 0
    file = tmp_path / "late.json"
    assert env.cli("receipt", "0", "-o", str(file)).returncode == 0
    out = env.cli("verify-receipt", str(file), "--rpc", env.node.url)
    assert out.returncode == 1
    assert "after the promised" in out.stderr and "evidence against the log" in out.stderr
    assert "LATE" in env.cli("trail", "0").stdout
