"""The local development chain of `toploc-audit chain up`: Anvil with its state in the state folder.

Files under <home>/anvil/: `state.json` (Anvil's --state: loaded at start, written on exit and every
30 s, so a restarted chain keeps its blocks and the deployment), `anvil.pid` (a detached node) and
`anvil.log`. The deployment is reused when the restarted chain still has the contract.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from anchor.chain.anvil import dev_account
from anchor.chain.deployment import Deployment, deploy_toploc_audit
from anchor.chain.errors import ChainError
from anchor.chain.parameters import Parameters
from anchor.errors import InputError
from anchor.keyfiles import configured_key, load_account, new_key_file, write_key_file
from anchor.settings import Settings

DEPLOYER_INDEX = 0
OPERATOR_INDEX = 1


@dataclass(frozen=True)
class LocalChainFiles:
    folder: Path

    @classmethod
    def of(cls, settings: Settings) -> LocalChainFiles:
        return cls(settings.home / "anvil")

    @property
    def state(self) -> Path:
        return self.folder / "state.json"

    @property
    def pid(self) -> Path:
        return self.folder / "anvil.pid"

    @property
    def log(self) -> Path:
        return self.folder / "anvil.log"

    @property
    def url(self) -> Path:
        """The URL of the detached node, next to its pid."""
        return self.folder / "anvil.url"


def running_pid(files: LocalChainFiles) -> int | None:
    """The pid of the detached Anvil if it still runs; a stale pid file is removed."""
    try:
        pid = int(files.pid.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ValueError, ProcessLookupError):
        files.pid.unlink(missing_ok=True)
        return None
    if b"anvil" not in cmdline:  # the pid was reused by another program
        files.pid.unlink(missing_ok=True)
        return None
    return pid


def stop_detached(files: LocalChainFiles, timeout_s: float = 15.0) -> int | None:
    """Stops the detached Anvil (SIGINT, so it writes its state; SIGKILL after `timeout_s`).

    Returns its pid, or None if none was running.
    """
    pid = running_pid(files)
    if pid is None:
        return None
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)  # polling another process's exit, with a deadline
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    files.pid.unlink(missing_ok=True)
    files.url.unlink(missing_ok=True)
    return pid


def _reap(pid: int) -> None:
    """Collects the exit status if the node is our child (otherwise it would linger as a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def log_key_account(settings: Settings) -> LocalAccount | None:
    """The log key (TOPLOC_AUDIT_LOG_KEY, else <home>/log.key) if one is configured."""
    found = configured_key(settings.log_key, "TOPLOC_AUDIT_LOG_KEY", settings.log_key_file)
    return None if found is None else load_account(*found)


def receipt_key_account(settings: Settings) -> LocalAccount | None:
    """The receipt key (TOPLOC_AUDIT_RECEIPT_KEY, else <home>/receipt.key) if one is configured."""
    found = configured_key(settings.receipt_key, "TOPLOC_AUDIT_RECEIPT_KEY", settings.receipt_key_file)
    return None if found is None else load_account(*found)


def dev_operator(settings: Settings) -> tuple[str, bool]:
    """The operator for a dev chain: the log key's address, else Anvil dev account 1, whose (public,
    well-known) key is then written to <home>/log.key so the anchor loop sends with it (it needs
    funds, which dev account 1 has).

    Returns (address, whether the key file was written).
    """
    configured = log_key_account(settings)
    if configured is not None:
        return configured.address, False
    account = dev_account(OPERATOR_INDEX)
    write_key_file(settings.log_key_file, account.key.hex())
    return account.address, True


def ensure_receipt_signer(settings: Settings) -> tuple[str, bool]:
    """The receipt signer: the receipt key's address, else that of a fresh random key written to
    <home>/receipt.key (mode 0600). It signs but never sends, so it needs no funds, and a fresh key
    (not a well-known dev one) can serve beyond a dev chain.

    Returns (address, whether the key file was written).
    """
    configured = receipt_key_account(settings)
    if configured is not None:
        return configured.address, False
    return load_account(new_key_file(settings.receipt_key_file), str(settings.receipt_key_file)).address, True


def reusable_deployment(w3: Web3, settings: Settings, rpc_url: str) -> Deployment | None:
    """The saved deployment if this chain still has it (same chain id and code at its address)."""
    if not settings.deployment_file.is_file():
        return None
    try:
        deployment = Deployment.load(settings.deployment_file)
        deployment.check_on_chain(w3)
    except (InputError, ChainError):
        return None
    if deployment.rpc_url != rpc_url:  # restarted on another port
        deployment = replace(deployment, rpc_url=rpc_url)
        deployment.save(settings.deployment_file)
    return deployment


def deploy_dev(
    w3: Web3,
    settings: Settings,
    rpc_url: str,
    operator: str,
    receipt_signer: str,
    parameters: Parameters,
) -> Deployment:
    """Deploys from Anvil dev account 0 and saves the deployment file."""
    account = receipt_key_account(settings)
    receipt_key = account.key if account is not None and account.address == receipt_signer else None
    deployment = deploy_toploc_audit(
        w3,
        dev_account(DEPLOYER_INDEX),
        operator,
        parameters,
        rpc_url,
        receipt_signer=receipt_signer,
        receipt_key=receipt_key,
    )
    deployment.save(settings.deployment_file)
    return deployment
