"""A third party with only a recorder's URL, the chain and the published deployment file: `trail`,
`receipt`, `verify-receipt` and `dispute file` work with `--recorder URL` and no database, and every
lie the recorder's database can tell (a changed record, a forged receipt, a changed tree node, a hidden
dispute) is caught against the chain. The proof bundle `receipt -o` writes checks with no service."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from sqlalchemy import text

from anchor.chain.anvil import dev_account, free_port
from anchor.chain.client import Role, ToplocAuditClient
from anchor.chain.parameters import ETHER
from anchor.db import make_engine
from anchor.receipts import Receipt
from tests.anchor.chain_env import REPO_ROOT, ChainEnv, chain_env
from tests.anchor.factory import PROVIDER, PROVIDER_KEY, other_key

ANCHOR = ("anchor", "--once", "--every-entries", "1", "--confirmations", "2", "--poll", "0.05")
NO_DB = {"TOPLOC_AUDIT_DATABASE_URL": "sqlite:////nonexistent/none.sqlite3"}
CHALLENGER = dev_account(7)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[ChainEnv, str]]:
    """Entries 0-3 logged and anchored (size 4), a real `serve` on them."""
    for env in chain_env(database_url, tmp_path):
        w3 = env.node.web3()  # the provider stakes, so that its entries can be disputed
        w3.provider.make_request("anvil_setBalance", [PROVIDER, hex(10 * ETHER)])  # type: ignore[arg-type]
        client = ToplocAuditClient(w3, env.deployment.address)
        client.as_account(Account.from_key(PROVIDER_KEY.to_bytes())).stake(Role.PROVIDER, 2 * ETHER)
        for i in (2, 3, 4):  # a committee to draw
            client.as_account(dev_account(i)).stake(Role.VALIDATOR, ETHER)
        env.ingest(4)
        anchored = env.cli_mining(*ANCHOR)
        assert anchored.returncode == 0, anchored.stderr
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "toploc_audit", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env.env(TOPLOC_AUDIT_STAKE_CHECK="false"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                if proc.poll() is not None:  # exited at start-up: say so now, not after the wait
                    raise AssertionError(f"serve exited with {proc.returncode} before answering")
                try:
                    if httpx.get(url + "/v1/log").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise AssertionError("serve did not start")
            yield env, url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _sql(env: ChainEnv, statement: str, **params: object) -> None:
    engine = make_engine(env.database_url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


@pytest.mark.slow
def test_a_third_party_reads_checks_and_disputes_over_http(
    served: tuple[ChainEnv, str], tmp_path: Path
) -> None:
    env, url = served

    def remote(*args: str) -> subprocess.CompletedProcess[str]:
        return env.cli(*args, "--recorder", url, **NO_DB)

    out = remote("trail", "2")
    assert out.returncode == 0, out.stderr
    assert "logged at index 2" in out.stdout and "anchored in checkpoint 1 (size 4)" in out.stdout
    assert "ok  checkpoint 1 on chain holds that root; the contract verifies the inclusion" in out.stdout
    assert "ok  record 2: valid, hashes to its recordDigest, signed by its provider" in out.stdout

    bundle = tmp_path / "bundle.json"
    out = remote("receipt", "2", "-o", str(bundle))
    assert out.returncode == 0, out.stderr
    data = json.loads(bundle.read_text())
    assert data["format"] == "toploc-audit-receipt/2" and data["checkpointNote"].split("\n")[1] == "4"
    assert data["anchor"]["rawTransaction"].startswith("0x02")

    # No service at all: offline, then pinned to the deployment file, then against the chain.
    unpinned = {**NO_DB, "TOPLOC_AUDIT_DEPLOYMENT": str(tmp_path / "none.json")}
    offline = env.cli("verify-receipt", str(bundle), **unpinned, TOPLOC_AUDIT_RPC_URL="http://127.0.0.1:1")
    assert offline.returncode == 0, offline.stderr
    assert (
        "receipt verified offline, UNPINNED" in offline.stdout
        and "(the file's word: unpinned)" in offline.stdout
    )
    deployment = str(env.home / "deployment.json")
    published = json.loads(Path(deployment).read_text())["checkpointKey"]
    assert published == httpx.get(url + "/v1/log").json()["checkpointKey"] == data["checkpointKey"]
    pinned = env.cli("verify-receipt", str(bundle), "--deployment", deployment, **NO_DB)
    assert pinned.returncode == 0, pinned.stderr
    assert "signed by the receipt signer" in pinned.stdout and "by the operator" in pinned.stdout
    full = env.cli("verify-receipt", str(bundle), "--rpc", env.node.url, **NO_DB)
    assert full.returncode == 0, full.stderr
    assert "anchor transaction 0x" in full.stdout and "mined in block" in full.stdout

    filed = env.cli(
        "dispute", "file", "1", "--recorder", url, **NO_DB, TOPLOC_AUDIT_CHALLENGER_KEY=CHALLENGER.key.hex()
    )
    assert filed.returncode == 0, filed.stderr
    assert "opened against entry 1" in filed.stdout
    # The recorder's database has not synced the dispute (no watcher here): a reader is told.
    hidden = remote("trail", "1")
    assert hidden.returncode == 1 and "leaves out dispute 1" in hidden.stderr, hidden.stderr


@pytest.mark.slow
def test_every_lie_of_the_recorders_database_is_caught(served: tuple[ChainEnv, str]) -> None:
    env, url = served

    def remote(*args: str) -> subprocess.CompletedProcess[str]:
        return env.cli(*args, "--recorder", url, **NO_DB, TOPLOC_AUDIT_CHALLENGER_KEY=CHALLENGER.key.hex())

    # A receipt the operator never signed (another key): caught at the receipt's signer.
    rogue = Receipt.from_json(json.loads(remote("trail", "0", "--json").stdout)["receipt"])
    forged = rogue.sign(other_key("rogue log"), env.domain)
    _sql(env, "UPDATE records SET receipt_signature = :s WHERE log_index = 0", s=forged)
    out = remote("trail", "0")
    assert out.returncode == 1 and "receipt signature (receiptSignature)" in out.stderr, out.stderr

    # A changed record (another request id, same digest claimed): caught before any signature.
    row = json.loads(remote("trail", "1", "--json").stdout)["record"]
    row["request_id"] = "edited"
    edited = json.dumps(row, separators=(",", ":"), sort_keys=True).encode()
    _sql(env, "UPDATE records SET canonical = :c WHERE log_index = 1", c=edited)
    for args in (("trail", "1"), ("receipt", "1"), ("dispute", "file", "1")):
        out = remote(*args)
        assert out.returncode == 1 and "record" in out.stderr and "hashes to 0x" in out.stderr, (
            args,
            out.stderr,
        )

    # An anchoring time the chain does not have (the trail prints it): caught against the chain.
    _sql(env, "UPDATE checkpoints SET anchored_at = anchored_at - 7200")
    out = remote("trail", "3")
    assert out.returncode == 1 and "firstCheckpoint" in out.stderr, out.stderr
    _sql(env, "UPDATE checkpoints SET anchored_at = anchored_at + 7200")

    # A changed tree node: proofs from the database and from tiles both miss the on-chain root.
    _sql(env, "UPDATE log_entries SET nodes = :n WHERE idx = 3", n=b"\x00" * 32)
    out = remote("trail", "2")
    assert out.returncode == 1 and "inclusion" in out.stderr, out.stderr
    out = remote("dispute", "file", "2")
    assert out.returncode == 1 and "does not match checkpoint 1" in out.stderr, out.stderr


@pytest.mark.slow
def test_a_tampered_bundle_fails_offline_at_its_own_step(
    served: tuple[ChainEnv, str], tmp_path: Path
) -> None:
    env, _ = served
    good = tmp_path / "good.json"
    assert env.cli("receipt", "3", "-o", str(good)).returncode == 0  # the operator's path, from the database
    deployment = str(env.home / "deployment.json")

    def fails(change, *extra: str) -> str:  # type: ignore[no-untyped-def]
        data = json.loads(good.read_text())
        change(data)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(data))
        out = env.cli("verify-receipt", str(bad), *extra, **NO_DB)
        assert out.returncode == 1, out.stdout
        return out.stderr

    def record(d: dict) -> None:
        d["record"]["request_id"] = "other"

    def note_size(d: dict) -> None:
        lines = d["checkpointNote"].split("\n")
        lines[1] = "5"
        d["checkpointNote"] = "\n".join(lines)

    def raw_tx(d: dict) -> None:
        raw = d["anchor"]["rawTransaction"]
        d["anchor"]["rawTransaction"] = raw[:-2] + ("00" if raw[-2:] != "00" else "01")

    def note_key(d: dict) -> None:  # a note signed by a key the log never published, with that key
        from anchor.transparency.checkpoint import Checkpoint, log_note_signer, log_origin

        signer = log_note_signer(log_origin(d["chainId"], d["contract"]), b"\x07" * 32)
        size, root = d["inclusion"]["treeSize"], bytes.fromhex(d["inclusion"]["root"][2:])
        d["checkpointNote"] = Checkpoint(signer.name, size, root).sign(signer)
        d["checkpointKey"] = signer.verifier.encode()

    assert "entry (record)" in fails(record)
    assert "checkpoint note (checkpointNote)" in fails(note_size)
    assert "anchor transaction (anchor.txHash)" in fails(raw_tx)
    self_consistent = tmp_path / "self.json"
    data = json.loads(good.read_text())
    note_key(data)
    self_consistent.write_text(json.dumps(data))
    unpinned = {**NO_DB, "TOPLOC_AUDIT_DEPLOYMENT": str(tmp_path / "none.json")}
    out = env.cli("verify-receipt", str(self_consistent), **unpinned)  # unpinned: it agrees with itself
    assert out.returncode == 0 and "UNPINNED" in out.stdout, out.stderr
    assert "checkpoint note (checkpointNote)" in fails(note_key)  # the home deployment file pins the key
    assert "checkpoint note (checkpointNote)" in fails(note_key, "--deployment", deployment)
