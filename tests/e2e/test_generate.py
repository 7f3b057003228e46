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
from anchor.records.registry import declare_model
from gpu_core.runner.fingerprint import fingerprint_model
from tests.fixtures.celery import REPO_ROOT, free_port, wait_for
from tests.verifier.chain_env import Chain, open_chain
from tests.verifier.stack import OPERATOR, PROVIDER, VALIDATORS

pytestmark = pytest.mark.slow


@pytest.fixture
def sqlite_chain(sqlite_url: str, tmp_path: Path) -> Iterator[Chain]:
    yield from open_chain(sqlite_url, tmp_path)


@pytest.fixture
def recorder(sqlite_chain: Chain, smollm2_dir: Path) -> Iterator[tuple[Chain, str]]:
    chain = sqlite_chain
    with transaction(chain.recorder.sessions) as s:
        declare_model(s, smollm2_dir.name, fingerprint_model(smollm2_dir), 49_152)
    port = free_port()
    env = chain.env(TOPLOC_AUDIT_LOG_KEY=OPERATOR.key.hex(), TOPLOC_AUDIT_API_PORT=str(port))
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
