"""Runs Anvil (npm `@foundry-rs/anvil-linux-amd64`, pinned in package-lock.json) as a child process.

`anvil_node()` starts one on 127.0.0.1 on a free port, waits until it answers JSON-RPC and always
stops it. The node's dev accounts come from the standard test mnemonic, so their keys are known here
(never use them on a real chain).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchor.chain.errors import ChainError
from anchor.chain.solc import REPO_ROOT

ANVIL_BINARY = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337
START_TIMEOUT_S = 30.0


def anvil_binary() -> Path:
    """The pinned Anvil binary; raises ChainError if `make setup` (npm ci) has not installed it."""
    if not os.access(ANVIL_BINARY, os.X_OK):
        raise ChainError(f"Anvil is not installed at {ANVIL_BINARY}: run `make setup` (npm ci)")
    return ANVIL_BINARY


@cache
def dev_account(index: int) -> LocalAccount:
    """Dev account `index` of Anvil's default mnemonic (m/44'/60'/0'/0/index), funded at start."""
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def dev_accounts(count: int) -> list[LocalAccount]:
    return [dev_account(i) for i in range(count)]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it before Anvil)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 10.0) -> Any:
    """One JSON-RPC call without web3 (cheap, for health checks and anvil_/evm_ methods)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise ChainError(f"{method} failed: {reply['error'].get('message', reply['error'])}")
    return reply["result"]


@dataclass
class AnvilNode:
    """A running Anvil; `stop()` ends it (idempotent)."""

    process: subprocess.Popen[bytes]
    port: int
    accounts: int
    log_path: Path | None = None
    _own_log: bool = field(default=False, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _web3: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return rpc_call(self.url, method, params)

    def web3(self) -> Any:
        """A Web3 on this node (one per node, made on first use)."""
        if self._web3 is None:
            from anchor.chain.connection import connect

            self._web3 = connect(self.url)
        return self._web3

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def increase_time(self, seconds: int) -> None:
        """Moves the chain clock forward and mines a block stamped with the new time."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")

    def timestamp(self) -> int:
        return int(self.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def snapshot(self) -> str:
        """Saves the chain state; `revert(id)` returns to it (once: Anvil deletes it on revert)."""
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        if not self.rpc("evm_revert", [snapshot_id]):
            raise ChainError(f"evm_revert to {snapshot_id} failed")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT first, so Anvil writes its --state file; SIGKILL if it does not exit in time."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def _wait_until_answers(process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise ChainError(f"Anvil exited with status {process.returncode} before answering: {log.strip()}")
        try:
            rpc_call(url, "eth_chainId", timeout=1.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise ChainError(f"Anvil did not answer at {url} within {timeout:.0f} s") from None
            time.sleep(0.05)  # polling a starting process, not waiting for a test condition


def start_anvil(
    *,
    port: int | None = None,
    accounts: int = 10,
    balance_ether: int = 10_000,
    state_file: Path | None = None,
    log_path: Path | None = None,
    detach: bool = False,
    block_time: float | None = None,
    extra_args: tuple[str, ...] = (),
) -> AnvilNode:
    """Starts Anvil on 127.0.0.1 and returns once it answers JSON-RPC.

    `port` None picks a free one (and retries if another process takes it first); `state_file` loads
    the chain from it if present and writes it on exit (and every 30 s), so a restarted node keeps its
    blocks; `log_path` receives Anvil's output (default: a temporary file, shown if Anvil fails to
    start); `detach` puts it in its own session so it outlives this process. `block_time` (seconds)
    also mines a block that often when no transaction comes (`--block-time` with `--mixed-mining`:
    transactions are still mined at once, so nothing waits for the interval); None mines on
    transactions only, as tests want. The caller must `stop()` it, or use `anvil_node()`.
    """
    binary = anvil_binary()
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        chosen = port if port is not None else free_port()
        # Anvil binds with SO_REUSEPORT: it would share a port with another Anvil instead of failing.
        if _port_in_use(chosen):
            if attempt + 1 == attempts:
                raise ChainError(f"port {chosen} on 127.0.0.1 is in use: Address already in use")
            continue
        args = [
            str(binary),
            "--host", "127.0.0.1",
            "--port", str(chosen),
            "--accounts", str(accounts),
            "--balance", str(balance_ether),
            "--mnemonic", DEV_MNEMONIC,
            "--chain-id", str(DEV_CHAIN_ID),
            *extra_args,
        ]  # fmt: skip
        if state_file is not None:
            args += ["--state", str(state_file), "--state-interval", "30"]
        if block_time is not None:
            # --block-time alone turns automine off: every transaction would wait for the next tick.
            args += ["--block-time", f"{block_time:g}", "--mixed-mining"]
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="anvil-", suffix=".log")
            os.close(fd)
            args.append("--silent")  # nobody reads it unless Anvil fails to start; errors still show
        log = log_path or Path(name)
        with open(log, "ab") as out:
            process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=detach
            )
        node = AnvilNode(
            process=process, port=chosen, accounts=accounts, log_path=log, _own_log=log_path is None
        )
        try:
            _wait_until_answers(process, node.url, log, START_TIMEOUT_S)
            return node
        except ChainError:
            node.stop()
            if attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")


@contextmanager
def anvil_node(**kwargs: Any) -> Iterator[AnvilNode]:
    """`start_anvil(**kwargs)` as a context manager that always stops the node."""
    node = start_anvil(**kwargs)
    try:
        yield node
    finally:
        node.stop()
