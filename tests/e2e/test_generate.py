"""`toploc-audit generate --record`: a provider's one command, from a prompt to a logged record, against
the real recorder API (`toploc-audit serve`) with SmolLM2; bad input is refused naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from anchor.db import transaction
from anchor.db.models import Record as RecordRow
from anchor.records import Record
from anchor.records.registry import declare_model, limits_from_folder
from gpu_core.runner.fingerprint import fingerprint_model
from tests.fixtures.celery import REPO_ROOT, free_port, wait_for
from tests.fixtures.chain import RECEIPT_SIGNER
from tests.verifier.chain_env import Chain, open_chain
from tests.verifier.stack import PROVIDER, VALIDATORS

pytestmark = pytest.mark.slow


@pytest.fixture
def sqlite_chain(sqlite_url: str, tmp_path: Path) -> Iterator[Chain]:
    yield from open_chain(sqlite_url, tmp_path)


@pytest.fixture
def recorder(sqlite_chain: Chain, smollm2_dir: Path) -> Iterator[tuple[Chain, str]]:
    chain = sqlite_chain
    with transaction(chain.recorder.sessions) as s:
        declare_model(s, smollm2_dir.name, fingerprint_model(smollm2_dir), limits_from_folder(smollm2_dir))
    port = free_port()
    # The chain fixture registers its provider without an API key (tests/e2e/test_appeal.py uses one).
    env = chain.env(
        TOPLOC_AUDIT_RECEIPT_KEY=RECEIPT_SIGNER.key.hex(),
        TOPLOC_AUDIT_API_PORT=str(port),
        TOPLOC_AUDIT_REQUIRE_API_KEY="false",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "toploc_audit", "serve"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/v1/log", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 120, "the recorder API")
        yield chain, url
    finally:
        server.terminate()
        server.wait(20)


def generate(
    chain: Chain, url: str, *args: str, key: str = PROVIDER.key.hex()
) -> subprocess.CompletedProcess[str]:
    env = chain.env(TOPLOC_AUDIT_PROVIDER_KEY=key, TOPLOC_AUDIT_RECORDER_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "toploc_audit", "generate", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_generate_record_logs_a_signed_record_with_proofs(
    recorder: tuple[Chain, str], smollm2_dir: Path, tmp_path: Path
) -> None:
    chain, url = recorder
    entry = tmp_path / "entry.json"
    done = generate(
        chain, url, "--model", str(smollm2_dir), "--prompt", "Say hello.", "--max-new-tokens", "6",
        "--decode-batching-size", "4", "--request-id", "gen-1", "--record", "-o", str(entry),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "record logged at index 0: recordDigest 0x" in done.stdout
    assert "TOPLOC proofs" in done.stderr

    body = json.loads(entry.read_text())
    record = Record.from_json(body["record"])
    assert record.provider == PROVIDER.address and record.request_id == "gen-1"
    assert record.model.fingerprint == fingerprint_model(smollm2_dir) and record.dtype == "bfloat16"
    assert len(record.proofs) == 1 + -(-len(record.output_tokens) // 4)
    with chain.recorder.sessions() as s:
        stored = s.scalars(select(RecordRow)).one()
    assert stored.record_digest == record.digest() and stored.request_id == "gen-1"

    # The provider's signature is checked apart from the computation, against the deployment's domain.
    checked = json.loads(
        _cli(chain.env(), "validate", str(entry), "--model", str(smollm2_dir), "--json").stdout
    )
    assert checked["accepted"] is True and checked["signature"]["status"] == "valid"
    forged = dict(body, signature="0x" + "11" * 64 + "1b")
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    refused = _cli(
        chain.env(), "validate", str(tmp_path / "forged.json"), "--model", str(smollm2_dir), "--json"
    )
    assert refused.returncode == 0  # the computation still stands; the signature is reported apart
    assert json.loads(refused.stdout)["signature"]["status"] == "invalid"

    # Bad input: named field, non-zero exit, nothing logged.
    missing = generate(chain, url, "--model", "no-such-model", "--prompt", "x")
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        .splitlines()[-1]
        .startswith("error: model: 'no-such-model' is neither a folder")
    )
    stranger = generate(
        chain, url, "--model", str(smollm2_dir), "--prompt", "x", "--max-new-tokens", "2", "--record",
        key=VALIDATORS[0].key.hex(),
    )  # fmt: skip
    assert stranger.returncode == 1
    assert "error: record.provider: the recorder refused it:" in stranger.stderr
    assert "is not a registered provider" in stranger.stderr
    with chain.recorder.sessions() as s:
        assert len(s.scalars(select(RecordRow)).all()) == 1


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toploc_audit", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_generate_to_a_file_and_validate_it_offline(smollm2_dir: Path, tmp_path: Path) -> None:
    """`generate -o` needs no recorder and no chain (the entry is unsigned without a deployment);
    `validate FILE` judges it against the local model: exit 0 accepted, 3 fraud, 1 bad input."""
    from anchor.settings import child_env

    env = child_env(TOPLOC_AUDIT_HOME=str(tmp_path / "home"), TOPLOC_AUDIT_MODELS=str(smollm2_dir.parent))
    entry = tmp_path / "entry.json"
    done = _cli(
        env, "generate", "--model", smollm2_dir.name, "--prompt", "Name a colour.", "--max-new-tokens", "12",
        "--temperature", "0.8", "--top-p", "0.95", "--request-id", "offline-1", "-o", str(entry),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(unsigned: no deployment or provider key known)" in done.stderr
    body = json.loads(entry.read_text())
    assert body["signature"] is None and body["record"]["version"] == 2
    record = Record.from_json(body["record"])
    assert (
        record.decode is not None
        and record.decode.seed is not None
        and record.stop_reason in ("eos", "length")
    )

    ok = _cli(env, "validate", str(entry))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "signature: absent" in ok.stdout and ok.stdout.strip().endswith("accepted")
    as_json = json.loads(_cli(env, "validate", str(entry), "--json", "--mode", "claimed").stdout)
    assert as_json["accepted"] is True and as_json["reasons"] == []
    assert as_json["report"]["tokenCheck"] == "replay" and as_json["report"]["mode"] == "claimed"

    tampered = json.loads(entry.read_text())
    tampered["record"]["output_tokens"][1] = (tampered["record"]["output_tokens"][1] + 5) % 49152
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    fraud = _cli(env, "validate", str(tmp_path / "tampered.json"), "--json")
    assert fraud.returncode == 3, fraud.stderr
    verdict = json.loads(fraud.stdout)
    assert verdict["accepted"] is False
    assert any(r.startswith("sampler at output position 1: ") for r in verdict["reasons"]), verdict["reasons"]

    (tmp_path / "bad.json").write_text("{not json")
    bad = _cli(env, "validate", str(tmp_path / "bad.json"))
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: file: ")
    nothing = _cli(child_env(TOPLOC_AUDIT_HOME=str(tmp_path / "empty")), "validate", str(entry))
    assert nothing.returncode == 1 and "error: model: no folder in" in nothing.stderr
