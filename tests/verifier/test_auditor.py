"""`toploc-audit audit` on a real Anvil and SQLite with the tiny Llama: entries picked from a block hash
mined after anchoring, validated with the local model, and a dispute filed for each that fails."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from anchor.db import transaction
from anchor.records import Record
from anchor.records.eip712 import Domain
from anchor.records.ingest import Submission
from anchor.records.registry import declare_model, limits_from_folder
from gpu_core.runner.loading import load_model
from tests.verifier.chain_env import Chain
from tests.verifier.stack import CHALLENGER, PROVIDER, make_record
from toploc_audit.cli import cli
from toploc_audit.commands.generate import signed_entry
from verifier.auditor import selected


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path) -> Any:
    return load_model(tiny_llama_dir, "bfloat16")


def _log(chain: Chain, records: list[Record]) -> None:
    domain = Domain.of(chain.deployment.chain_id, chain.deployment.address)
    subs = [Submission.from_json(signed_entry(r, PROVIDER.key, domain), domain) for r in records]
    chain.recorder.submit(subs)


def _audit(chain: Chain, models: Path, *args: str) -> Result:
    env = chain.env(TOPLOC_AUDIT_MODELS=str(models), TOPLOC_AUDIT_CHALLENGER_KEY=CHALLENGER.key.hex())
    return CliRunner().invoke(cli, ["audit", "--once", *args], env=env, catch_exceptions=True)


def test_the_auditor_disputes_the_entries_that_fail(sqlite_chain: Chain, tiny: Any, tmp_path: Path) -> None:
    chain = sqlite_chain
    with transaction(chain.recorder.sessions) as s:
        declare_model(s, tiny.folder.name, tiny.fingerprint, limits_from_folder(tiny.folder))
    models = tmp_path / "models"
    models.mkdir()
    (models / tiny.folder.name).symlink_to(tiny.folder, target_is_directory=True)
    honest = [make_record(tiny, f"a-{i}", [5 + i, 50, 500], 16, 8) for i in range(3)]
    changed = list(honest[0].output_tokens)
    changed[4] = (changed[4] + 1) % 1024  # tokens the model did not choose, the provider's own proofs
    cheat = replace(honest[0], output_tokens=tuple(changed), request_id="a-cheat")
    _log(chain, [*honest[:2], cheat, honest[2]])  # the cheat is entry 2
    chain.anchor()
    waiting = _audit(chain, models, "--rate", "1")
    assert "checkpoint 1: waiting for its seed block (2 after the anchoring one)" in waiting.output
    assert chain.client().dispute_count() == 0
    for _ in range(2):
        chain.node.rpc("evm_mine")

    # Rate 0 checks nothing; the cursor still moves past the checkpoint.
    quiet = _audit(chain, models, "--rate", "0")
    assert quiet.exit_code == 0, (quiet.output, quiet.exception)
    assert "checkpoint 1 (entries 0-3, seed block" in quiet.output and "0 selected, 0 failed" in quiet.output
    assert chain.client().dispute_count() == 0
    (chain.home / "auditor.json").unlink()

    result = _audit(chain, models, "--rate", "1")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "4 selected, 1 failed" in result.output
    # The changed token is found where it is (which TOPLOC chunk also fails depends on the CPU's bf16).
    assert "entry 2: dispute 1 filed: " in result.output, result.output
    assert "sampler at output position 4: " in result.output, result.output
    assert "sampler at output position 4: token" in result.output
    client = chain.client()
    assert client.dispute_count() == 1 and client.dispute(1).leaf_index == 2
    assert json.loads((chain.home / "auditor.json").read_text()) == {"checkpoint": 1}
    again = _audit(chain, models, "--rate", "1")  # nothing new to audit: no second dispute
    assert again.exit_code == 0 and client.dispute_count() == 1

    # Audited again (a crash before the cursor was saved): the refusal is reported, the audit goes on.
    (chain.home / "auditor.json").unlink()
    redo = _audit(chain, models, "--rate", "1")
    assert redo.exit_code == 0, (redo.output, redo.exception)
    assert "entry 2: not disputed (record: entry 2 is already disputed (dispute 1))" in redo.output
    (chain.home / "auditor.json").unlink()
    broke = _audit(chain, models, "--rate", "1", "--max-open", "0")
    assert "entry 2: not disputed (bond budget)" in broke.output and client.dispute_count() == 1

    bad = _audit(chain, models, "--rate", "1.5")
    assert bad.exception is not None and getattr(bad.exception, "field", None) == "rate"


def test_selection_follows_the_rate_and_the_seed() -> None:
    seed_a, seed_b = b"\x01" * 32, b"\x02" * 32
    picks = [selected(seed_a, i, 0.25) for i in range(4000)]
    assert 900 < sum(picks) < 1100  # 1000 expected; a binomial sd of 27
    assert picks != [selected(seed_b, i, 0.25) for i in range(4000)]  # another block, other entries
    assert not any(selected(seed_a, i, 0.0) for i in range(1000))
    assert all(selected(seed_a, i, 1.0) for i in range(1000))
