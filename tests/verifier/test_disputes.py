"""`toploc-audit dispute file|show|advance|appeal` on a real Anvil and a SQLite recorder database: the
inclusion proof is built from the database and accepted on chain; every bad input is refused with an
error naming the field, before anything is sent."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner, Result

from anchor.chain.client import Ballot
from anchor.errors import InputError
from tests.fixtures.celery import REPO_ROOT
from tests.verifier.chain_env import Chain
from tests.verifier.stack import CHALLENGER, PARAMETERS, PROVIDER, VALIDATORS
from toploc_audit.cli import cli

pytestmark = pytest.mark.slow


def run(chain: Chain, *args: str, key: Any = CHALLENGER) -> Result:
    env = chain.env()
    if key is not None:
        env["TOPLOC_AUDIT_CHALLENGER_KEY"] = key.key.hex()
    return CliRunner().invoke(cli, ["dispute", *args], env=env, catch_exceptions=True)


def refused(result: Result, field: str, reason: str) -> None:
    assert isinstance(result.exception, InputError), result.output
    assert result.exception.field == field
    assert reason in result.exception.reason, result.exception.reason


def test_file_opens_the_dispute_with_the_databases_inclusion_proof(sqlite_chain: Chain) -> None:
    chain = sqlite_chain
    chain.log_and_anchor("d-0")
    index = chain.log_and_anchor("d-1")  # a two-entry tree: the proof is not empty
    result = run(chain, "file", str(index))
    assert result.exit_code == 0, result.output
    client = chain.client()
    assert client.dispute_count() == 1
    d = client.dispute(1)
    assert (d.leaf_index, d.provider, d.challenger, client.round(1, 0).bond) == (
        index,
        PROVIDER.address,
        CHALLENGER.address,
        PARAMETERS.bond,
    )
    assert f"dispute 1 opened against entry {index} (provider {PROVIDER.address})" in result.output
    assert f"bond {PARAMETERS.bond} wei" in result.output and "committee drawn from block" in result.output

    # The same entry again: refused before sending (the contract would refuse too).
    refused(run(chain, "file", str(index)), "record", f"entry {index} is already disputed (dispute 1)")

    drawn = run(chain, "advance", "1")  # anyone may draw once the draw block is reached
    assert drawn.exit_code == 0 and "dispute 1: committee drawn (tx 0x" in drawn.output, drawn.output
    refused(run(chain, "advance", "1"), "dispute_id", "is in its commit phase: nothing to do yet")
    chain.votes(1, {v.address: False for v in VALIDATORS[:2]})  # a quorum; the third stays silent
    shown = run(chain, "show", "1", key=None)
    assert shown.exit_code == 0, shown.output
    assert f"{VALIDATORS[0].address}: honest" in shown.output and "outcome open" in shown.output
    assert f"{VALIDATORS[2].address}: pending" in shown.output
    resolved = run(chain, "advance", "1")  # every commitment opened: nothing left to wait for
    assert resolved.exit_code == 0 and "dispute 1 resolved: honest (tx 0x" in resolved.output
    assert chain.client().ballot_of(1, VALIDATORS[0].address).state == Ballot.HONEST
    again = run(chain, "advance", "1")
    assert again.exit_code == 0 and "dispute 1 already resolved: honest" in again.output
    refused(run(chain, "file", str(index)), "record", f"entry {index} was decided by dispute 1: honest")
    refused(run(chain, "appeal", "1"), "dispute_id", "is in its resolved phase, not its appeal phase")


def test_bad_input_is_refused_and_nothing_is_sent(sqlite_chain: Chain) -> None:
    chain = sqlite_chain
    anchored = chain.log_and_anchor("b-0")
    refused(run(chain, "file", "99"), "record", "no record 99 in this log")
    refused(
        run(chain, "file", "0xzz"), "record", "neither a log index nor a 0x-prefixed 32-byte recordDigest"
    )
    refused(
        run(chain, "file", str(anchored), "--bond", "1"),
        "bond",
        f"must be exactly the contract's bond, {PARAMETERS.bond} wei",
    )
    refused(run(chain, "file", str(anchored), "--bond", "lots"), "bond", "'lots' is not a number")
    refused(run(chain, "file", str(anchored), key=None), "key-file", "give --key-file")
    refused(run(chain, "file", str(anchored), key=PROVIDER), "challenger", "is the record's provider")
    refused(run(chain, "show", "7", key=None), "dispute_id", "there is no dispute 7")

    # Logged but not anchored yet: no checkpoint covers it.
    domain_entry = chain.log_only("b-1")
    refused(run(chain, "file", str(domain_entry)), "record", f"entry {domain_entry} is not anchored yet")

    # Past the dispute window of its checkpoint (chain time).
    chain.node.increase_time(PARAMETERS.disputeWindow + 1)
    refused(run(chain, "file", str(anchored)), "record", f"the dispute window of entry {anchored} closed")
    assert chain.client().dispute_count() == 0


def test_the_command_line_prints_the_field_and_exits_1(sqlite_chain: Chain) -> None:
    chain = sqlite_chain
    env = chain.env(TOPLOC_AUDIT_CHALLENGER_KEY=CHALLENGER.key.hex())
    done = subprocess.run(
        [sys.executable, "-m", "toploc_audit", "dispute", "file", "5"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "error: record: no record 5 in this log"


def test_every_dispute_command_has_help_with_an_example() -> None:
    for command in ("file", "show", "advance", "appeal"):
        result = CliRunner().invoke(cli, ["dispute", command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, command
        if command in ("advance", "appeal"):
            text = " ".join(result.output.split()).replace("toploc- audit", "toploc-audit")
            assert f"Example: `toploc-audit dispute {command} 1" in text, text
