"""`toploc-audit chain` with a throwaway state folder: CliRunner in process, a subprocess for signals."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner, Result
from eth_account import Account

from anchor.chain.anvil import AnvilNode, dev_account, free_port
from anchor.chain.client import ToplocAuditClient
from anchor.chain.connection import connect
from anchor.chain.deployment import Deployment
from anchor.errors import InputError
from anchor.keyfiles import read_key_file, write_key_file
from anchor.settings import child_env
from toploc_audit.cli import cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    return child_env(TOPLOC_AUDIT_HOME=str(home))


def _invoke(home: Path, *args: str) -> Result:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TOPLOC_AUDIT_")}
    return CliRunner().invoke(cli, list(args), env={**unset, "TOPLOC_AUDIT_HOME": str(home)})


def _refused(result: Result, field: str, words: str) -> None:
    """The command stopped with InputError(field, ...) (the entry point prints it as `error: ...`)."""
    assert isinstance(result.exception, InputError), result.output
    assert result.exception.field == field and words in result.exception.reason


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for path in (
        ["contracts"],
        ["contracts", "build"],
        ["chain"],
        ["chain", "up"],
        ["chain", "down"],
        ["chain", "deploy"],
        ["chain", "info"],
    ):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage:" in result.output and len(result.output.splitlines()) > 4, path


def test_detached_up_info_down_and_reuse(tmp_path: Path) -> None:
    home = tmp_path / "state"
    port = free_port()
    try:
        up = _invoke(home, "chain", "up", "--detach", "--port", str(port), "--set", "commitPeriod=600")
        assert up.exit_code == 0, up.output
        assert "deployed ToplocAudit at" in up.output
        deployment = Deployment.load(home / "deployment.json")
        assert deployment.rpc_url == f"http://127.0.0.1:{port}"
        assert deployment.parameters.commitPeriod == 600
        assert deployment.operator == dev_account(1).address
        key = (home / "log.key").read_text().strip().removeprefix("0x")
        assert key == dev_account(1).key.hex().removeprefix("0x")
        # The receipt key is a fresh one of its own, published by the contract; both files owner-only.
        receipt_key = Account.from_key(bytes.fromhex(read_key_file(home / "receipt.key")))
        assert deployment.receipt_signer == receipt_key.address != deployment.operator
        assert f"wrote a new receipt key to {home / 'receipt.key'} ({receipt_key.address})" in up.output
        client = ToplocAuditClient(connect(deployment.rpc_url), deployment.address)
        assert (client.operator(), client.receipt_signer()) == (deployment.operator, receipt_key.address)
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.glob("*.key")} == {
            "log.key": 0o600,
            "receipt.key": 0o600,
        }
        assert "Anvil mines a block every 2 s and on each transaction" in up.output
        info = _invoke(home, "chain", "info")
        assert info.exit_code == 0, info.output
        assert deployment.address in info.output and "checkpoints     0" in info.output
        assert f"receipt signer  {receipt_key.address}" in info.output
        _refused(
            _invoke(home, "chain", "up", "--detach", "--port", str(port)),
            "chain",
            "a local chain already runs",
        )
        down = _invoke(home, "chain", "down")
        assert down.exit_code == 0 and down.output.startswith("stopped Anvil")
        assert not (home / "anvil" / "anvil.pid").exists()
        assert (home / "anvil" / "state.json").is_file()
        # Restarted from its saved state, the chain still holds the contract: no new deployment.
        up = _invoke(home, "chain", "up", "--detach", "--port", str(port))
        assert up.exit_code == 0, up.output
        assert f"reusing ToplocAudit at {deployment.address}" in up.output
        assert Deployment.load(home / "deployment.json") == deployment
    finally:
        _invoke(home, "chain", "down")
    assert _invoke(home, "chain", "down").output.strip() == "no local chain is running"


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_foreground_up_stops_on_sigint(tmp_path: Path) -> None:
    """Started as a shell starts a background job (SIGINT inherited ignored, as in CI), Ctrl-C still
    stops it and Anvil still saves its state."""
    home = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "toploc_audit", "chain", "up", "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:  # readline blocks: a thread lets the test keep its deadline
        for line in stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not seen or not seen[-1].startswith("press Ctrl-C to stop"):
            assert proc.poll() is None or not lines.empty(), proc.stderr.read() if proc.stderr else ""
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"not ready within 120 s: {seen}"
            try:
                seen.append(lines.get(timeout=min(remaining, 1.0)))
            except queue.Empty:
                continue
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        reader.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert seen[0].startswith("deployed ToplocAudit at") and "".join(rest).strip().endswith("stopped")
    assert (home / "deployment.json").is_file()
    assert (home / "anvil" / "state.json").is_file()


def test_deploy_to_a_node(tmp_path: Path, anvil: AnvilNode) -> None:
    home = tmp_path / "state"
    key_file = tmp_path / "deployer.key"
    deployer = dev_account(30)
    write_key_file(key_file, deployer.key.hex())
    operator = dev_account(31).address
    w3 = anvil.web3()
    nonce = w3.eth.get_transaction_count(deployer.address)
    deploy = ("chain", "deploy", "--rpc", anvil.url, "--key-file", str(key_file))

    _refused(_invoke(home, *deploy, "--operator", operator, "--set", "quorum=1"), "quorum", "strict majority")
    _refused(_invoke(home, *deploy), "operator", "not given")
    wrong_key = tmp_path / "bad.key"
    write_key_file(wrong_key, "not a key")
    bad_key = _invoke(
        home, "chain", "deploy", "--rpc", anvil.url, "--key-file", str(wrong_key), "--operator", operator
    )
    _refused(bad_key, "key-file", "does not hold")
    _refused(_invoke(home, *deploy, "--operator", "0x12"), "operator", "is not an address")
    _refused(
        _invoke(home, *deploy, "--operator", operator, "--receipt-signer", "0x12"),
        "receipt-signer",
        "is not an address",
    )
    key_file.chmod(0o644)  # as ssh does: a key others may read is refused, and the fix is named
    _refused(_invoke(home, *deploy, "--operator", operator), str(key_file), f"run `chmod 600 {key_file}`")
    key_file.chmod(0o600)
    assert w3.eth.get_transaction_count(deployer.address) == nonce  # nothing was sent
    assert not (home / "deployment.json").exists()

    ok = _invoke(home, *deploy, "--operator", operator, "--set", "bond=0.2ether")
    assert ok.exit_code == 0, ok.output
    deployment = Deployment.load(home / "deployment.json")
    assert (deployment.operator, deployment.deployer) == (operator, deployer.address)
    # No receipt key was configured: a fresh one was written (0600) and the contract publishes it.
    receipt_key = Account.from_key(bytes.fromhex(read_key_file(home / "receipt.key")))
    assert deployment.receipt_signer == receipt_key.address
    assert ToplocAuditClient(w3, deployment.address).receipt_signer() == receipt_key.address
    assert deployment.parameters.bond == 2 * 10**17
    deployment.check_on_chain(w3)

    saved = (home / "deployment.json").read_text()
    _refused(_invoke(home, *deploy, "--operator", operator), "deployment", "pass --force to replace it")
    assert (home / "deployment.json").read_text() == saved
    forced = _invoke(home, *deploy, "--operator", operator, "--force")
    assert forced.exit_code == 0, forced.output
    assert (
        json.loads((home / "deployment.json").read_text())["addresses"]["ToplocAudit"] != deployment.address
    )


def test_errors_print_one_line_and_exit_1(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "toploc_audit", "chain", "info"],
        cwd=REPO_ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert (
        done.stderr.startswith("error: deployment: no deployment file at")
        and len(done.stderr.splitlines()) == 1
    )
