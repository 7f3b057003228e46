"""The README's story as a new user would run it, through the command line only, up to a dispute, its
appeal and the payouts: `chain up`, `stake` for the provider and four validators, `provider
declare-model --on-chain`, `serve`, `generate --record` with SmolLM2, `anchor`, `dispute file`, four
`worker` processes and `watch`, `dispute show`, `dispute appeal`, `balance`, `withdraw`.

The record is honest, so the challenger loses: the first round (one validator) finds it honest, the
challenger appeals with twice the bond, the appeal round (the three other validators, none of the first)
finds it honest too, and the contract pays exactly what docs/contracts.md says: the provider half of
both bonds, the four validators the other half, the challenger nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchor.chain.anvil import dev_account, free_port
from anchor.chain.parameters import ETHER
from anchor.keyfiles import write_key_file
from tests.fixtures.celery import REPO_ROOT, wait_for

pytestmark = pytest.mark.slow

PROVIDER, CHALLENGER = dev_account(2), dev_account(3)
VALIDATORS = tuple(dev_account(i) for i in (4, 5, 6, 7))
SETTINGS = (
    "committeeSize=1",
    "quorum=1",
    "appealRounds=1",  # rounds of 1, then 3 validators
    "drawDelay=1",
    "commitPeriod=600",
    "revealPeriod=600",
    "appealPeriod=600",
)


class Cli:
    """`toploc-audit` subprocesses in one home (a clean TOPLOC_AUDIT_* environment, as a new shell)."""

    def __init__(self, home: Path, models: Path) -> None:
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOPLOC_AUDIT_")}
        self.env = {**env, "TOPLOC_AUDIT_HOME": str(home), "TOPLOC_AUDIT_MODELS": str(models)}
        self.env["TOPLOC_AUDIT_WATCH_SECONDS"] = "0.5"
        # One prefill per record (the record's own dtype): this test is about the command line; the
        # reference mode's detection is tested in tests/gpu_core and tests/e2e/test_disputes.py.
        self.env["TOPLOC_AUDIT_VALIDATION_MODE"] = "claimed"
        self.background: list[subprocess.Popen[bytes]] = []

    def __call__(self, *args: str, key: Path | None = None) -> str:
        extra = [] if key is None else ["--key-file", str(key)]
        done = subprocess.run(
            [sys.executable, "-m", "toploc_audit", *args, *extra],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"toploc-audit {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, *args: str) -> None:
        log = (self.home / f"{name}.log").open("wb")
        self.background.append(
            subprocess.Popen(
                [sys.executable, "-m", "toploc_audit", *args],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def stop(self) -> None:
        for process in self.background:
            process.terminate()
        for process in self.background:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()

    def balance(self, address: str) -> dict[str, int | str]:
        return json.loads(self("balance", address, "--json"))  # type: ignore[no-any-return]


@pytest.fixture
def cli(tmp_path: Path, smollm2_dir: Path) -> Iterator[Cli]:
    home = tmp_path / "state"
    run = Cli(home, smollm2_dir.parent)
    run.env["TOPLOC_AUDIT_API_PORT"] = str(free_port())
    sets = [a for s in SETTINGS for a in ("--set", s)]
    run("chain", "up", "--detach", "--port", str(free_port()), *sets)
    try:
        yield run
    finally:
        run.stop()
        run("chain", "down")


def _key(home: Path, name: str, key: bytes) -> Path:
    path = home / name
    write_key_file(path, key.hex())
    return path


def _phase(cli: Cli) -> str:
    line = cli("dispute", "show", "1").splitlines()[0]
    return line.split("phase ")[1].split(",")[0]


def test_a_dispute_and_its_appeal_through_the_command_line(cli: Cli, smollm2_dir: Path) -> None:
    home = cli.home
    cli("db", "upgrade")
    _key(home, "provider.key", PROVIDER.key)
    _key(home, "challenger.key", CHALLENGER.key)
    keys = [_key(home, f"validators/{v.address}.key", v.key) for v in VALIDATORS]
    added = cli("provider", "add", PROVIDER.address, "--api-key")  # serve requires keys by default
    cli.env["TOPLOC_AUDIT_API_KEY"] = added.split("Bearer <key>'): ")[1].strip()
    assert "active stake now 5 ETH" in cli("stake", "5ether")
    for key in keys:
        assert "as validator" in cli("stake", "1ether", "--as", "validator", key=key)
    cli("provider", "declare-model", smollm2_dir.name, "--folder", str(smollm2_dir), "--on-chain")

    cli.start("serve", "serve")
    port = cli.env["TOPLOC_AUDIT_API_PORT"]
    wait_for(lambda: _serving(port), 120, "the recorder API")
    prompt = ("--prompt", "Name a colour.", "--max-new-tokens", "32", "--temperature", "0.7", "--seed", "3")
    cli("generate", "--model", smollm2_dir.name, *prompt, "--record")
    cli("anchor", "--once", "--every-entries", "1", "--confirmations", "1")

    before = {a.address: cli.balance(a.address) for a in (PROVIDER, CHALLENGER, *VALIDATORS)}
    filed = cli("dispute", "file", "0")
    assert "dispute 1 opened against entry 0" in filed
    for i, key in enumerate(keys):
        cli.start(f"worker-{i}", "worker", "--key-file", str(key), "--pool", "solo")
    cli.start("watch", "watch")

    # Round 0: one validator, drawn by the workers, validates, commits and reveals: honest.
    wait_for(lambda: _phase(cli) == "appeal", 600, "the first round to end")
    shown = cli("dispute", "show", "1")
    assert "round 0:" in shown and "1 revealed (0 fraud, 1 honest)" in shown, shown

    appealed = cli("dispute", "appeal", "1")  # the challenger's key: it lost the round
    assert f"appealed with {2 * ETHER // 10} wei" in appealed and "a committee of 3" in appealed

    # Round 1: the three others; the last round, so the workers resolve it once all revealed.
    wait_for(lambda: _phase(cli) == "resolved", 900, "the appeal round to end and resolve")
    shown = cli("dispute", "show", "1")
    assert "outcome honest" in shown and "3 revealed (0 fraud, 3 honest)" in shown, shown

    bond = ETHER // 10
    forfeited = bond + 2 * bond  # the challenger's two bonds
    provider_share = forfeited // 2
    share = (forfeited - provider_share) // 4
    after = {a.address: cli.balance(a.address) for a in (PROVIDER, CHALLENGER, *VALIDATORS)}
    assert (
        int(after[PROVIDER.address]["credits"]) - int(before[PROVIDER.address]["credits"]) == provider_share
    )
    assert after[CHALLENGER.address]["credits"] == before[CHALLENGER.address]["credits"] == 0
    for v in VALIDATORS:
        assert int(after[v.address]["credits"]) == share
        assert after[v.address]["active"] == ETHER  # nobody was penalised
    out = cli("withdraw")  # the provider takes its share
    assert f"sent {provider_share / ETHER:g} ETH" in out, out
    assert cli.balance(PROVIDER.address)["credits"] == 0


def _serving(port: str) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/log", timeout=2).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.5)
        return False
