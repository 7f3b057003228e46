"""The whole verifier stack for a test, with real parts only: its own Anvil (behind a TCP proxy that a
test can cut, an RPC outage), a deployed ToplocAudit with staked provider and validators, a migrated
database, a recorder, the anchor loop, real worker processes (one per validator key) and the watcher
process (`toploc-audit watch`).

Providers' records come from real generations (gpu_core) signed with the provider key; disputes are
filed through verifier.disputes, as `toploc-audit dispute file` does.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_keys import keys
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from anchor.anchoring import Anchorer, AuditContract, LoopConfig
from anchor.chain.anvil import AnvilNode, dev_account, start_anvil
from anchor.chain.client import Role, ToplocAuditClient
from anchor.chain.deployment import Deployment, deploy_toploc_audit
from anchor.chain.parameters import ETHER
from anchor.db import make_engine, session_factory, transaction
from anchor.db.models import Dispute
from anchor.keyfiles import write_key_file
from anchor.records import Record
from anchor.records.eip712 import Domain
from anchor.records.ingest import Recorder, Submission
from anchor.records.registry import declare_model, limits_from_folder, register_provider
from anchor.settings import child_env
from tests.fixtures.celery import REPO_ROOT, WorkerProcess, free_port, start_worker, wait_for
from tests.fixtures.chain import RECEIPT_SIGNER, TEST_PARAMETERS
from toploc_audit.commands.generate import signed_entry
from verifier.disputes import Filed, file_dispute, plan_dispute

DEPLOYER, OPERATOR, PROVIDER, CHALLENGER = (dev_account(i) for i in range(4))
VALIDATORS = tuple(dev_account(i) for i in (4, 5, 6))
PROVIDER_STAKE = 5 * ETHER
VALIDATOR_STAKE = ETHER

# Short periods (tests reach every deadline by advancing chain time) and no appeals: three validators
# are every committee, and a dispute is resolvable once its one round is over. Appeals are played on
# the contract (tests/contracts) and through the command line (tests/e2e/test_appeal.py).
# Commit and reveal periods are long enough (in wall-clock seconds: Anvil's clock) for a worker to be
# killed and its task redelivered before the commit phase closes.
PARAMETERS = replace(
    TEST_PARAMETERS, appealRounds=0, commitPeriod=600, revealPeriod=600, unbondingPeriod=4_000
)


class RpcProxy:
    """A TCP forwarder in front of the node: `stop()` is an RPC outage (listener and live connections
    closed), `start()` ends it on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._connections:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._connections = []


@dataclass
class Stack:
    home: Path
    node: AnvilNode
    proxy: RpcProxy
    deployment: Deployment
    database_url: str
    broker_url: str
    queue_prefix: str
    sessions: sessionmaker[Session]
    recorder: Recorder
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    watcher: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    requests: int = 0

    # -- environment ----------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of the stack's subprocesses (TOPLOC_AUDIT_* only from here)."""
        env = child_env(
            TOPLOC_AUDIT_HOME=str(self.home),
            TOPLOC_AUDIT_DATABASE_URL=self.database_url,
            TOPLOC_AUDIT_BROKER_URL=self.broker_url,
            TOPLOC_AUDIT_DEPLOYMENT=str(self.home / "deployment.json"),
            TOPLOC_AUDIT_RPC_URL=self.proxy.url,
            TOPLOC_AUDIT_QUEUE_PREFIX=self.queue_prefix,
            TOPLOC_AUDIT_VALIDATORS=",".join(v.address for v in VALIDATORS),
            TOPLOC_AUDIT_WATCH_SECONDS="0.3",
            TOPLOC_AUDIT_WATCH_CONFIRMATIONS="2",
            TOPLOC_AUDIT_REQUEUE_SECONDS="8",
            TOPLOC_AUDIT_RETRY_SECONDS="1",
            TOPLOC_AUDIT_VALIDATE_RETRIES="1",
            TOPLOC_AUDIT_BROKER_POLL="0.05",
            TOPLOC_AUDIT_VALIDATE_HOLD_DIR=str(self.hold_dir),
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    @property
    def hold_dir(self) -> Path:
        return self.home / "hold"

    def models_dir(self, validator: LocalAccount) -> Path:
        return self.home / f"models-{validator.address.lower()}"

    def give_models(self, validator: LocalAccount, folders: list[Path]) -> None:
        """Put `folders` (symlinked, not copied) in the validator's own model store."""
        store = self.models_dir(validator)
        store.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            link = store / folder.name
            if not link.exists():
                link.symlink_to(folder.resolve(), target_is_directory=True)

    # -- processes ------------------------------------------------------------------------------

    def start_worker(self, validator: LocalAccount, pool: str = "prefork") -> WorkerProcess:
        key_file = self.home / "validators" / f"{validator.address}.key"
        write_key_file(key_file, validator.key.hex(), replace=True)  # a restarted worker writes it again
        env = self.env(TOPLOC_AUDIT_MODELS=str(self.models_dir(validator)))
        name = f"validator-{VALIDATORS.index(validator)}"
        worker = start_worker(env, key_file, self.home / f"{name}.log", name, pool)
        self.workers[validator.address] = worker
        return worker

    def start_workers(self, pool: str = "prefork") -> None:
        started = [self.start_worker(v, pool) for v in VALIDATORS]
        for worker in started:
            worker.wait_ready()

    def start_watcher(self) -> None:
        log = open(self.home / "watch.log", "ab")  # noqa: SIM115 (kept open for the process's life)
        self.watcher = subprocess.Popen(
            [sys.executable, "-m", "toploc_audit", "watch"],
            cwd=REPO_ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        """Stop every process (all asked at once, then waited for), the proxy and the node."""
        if self.watcher is not None and self.watcher.poll() is None:
            self.watcher.terminate()
        for worker in self.workers.values():
            worker.terminate()
        if self.watcher is not None:
            try:
                self.watcher.wait(10)
            except subprocess.TimeoutExpired:
                self.watcher.kill()
                self.watcher.wait()
        for worker in self.workers.values():
            worker.stop()
        self.proxy.stop()
        self.node.stop()

    # -- chain ----------------------------------------------------------------------------------

    def client(self, account: LocalAccount | None = None) -> ToplocAuditClient:
        """The contract through the node itself (not the proxy: the test acts while the proxy is down)."""
        return ToplocAuditClient(self.node.web3(), self.deployment.address, account)

    def advance(self, seconds: int) -> None:
        self.node.increase_time(seconds)

    # -- the provider, the log, the challenger -----------------------------------------------------

    def log_record(self, record: Record) -> int:
        """Sign `record` as the provider and append it through the recorder; its log index."""
        domain = Domain.of(self.deployment.chain_id, self.deployment.address)
        body = signed_entry(record, PROVIDER.key, domain)
        (accepted,) = self.recorder.submit([Submission.from_json(body, domain)])
        return accepted.receipt.log_index

    def anchor(self) -> None:
        """Checkpoint and anchor everything logged so far (the anchor loop, one confirmation)."""
        contract = AuditContract(self.node.web3(), self.deployment.address, OPERATOR)
        Anchorer(self.sessions, contract, LoopConfig(1, 0, 1, poll_seconds=0.02)).run(once=True)

    def dispute(self, log_index: int) -> Filed:
        client = self.client(CHALLENGER)
        with self.sessions() as s:
            plan = plan_dispute(s, client, str(log_index))
        return file_dispute(client, plan)

    def outcome(self, dispute_id: int) -> int:
        """The dispute's outcome as the database has it (synced by the watcher), 0 while open."""
        with self.sessions() as s:
            d = s.scalars(select(Dispute).where(Dispute.dispute_id == dispute_id)).first()
            return 0 if d is None else d.outcome

    def wait_resolved(self, dispute_id: int, timeout: float = 240.0) -> int:
        outcome = wait_for(lambda: self.outcome(dispute_id), timeout, f"dispute {dispute_id} to be resolved")
        return int(outcome)  # type: ignore[call-overload]

    def logs(self) -> str:
        """Every process log, for failure messages."""
        parts = []
        for path in sorted(self.home.glob("*.log")):
            parts.append(f"==== {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


def build_stack(home: Path, database_url: str, broker_url: str, queue_prefix: str, model: Any) -> Stack:
    """Everything but the processes: chain, deployment, stakes, database, provider and `model` declared
    (`model`: a gpu_core LoadedModel). The caller starts workers and the watcher, and stops the stack."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "hold").mkdir(exist_ok=True)
    node = start_anvil(accounts=8)
    proxy = RpcProxy(node.port)
    try:
        proxy.start()
        w3 = node.web3()
        deployment = deploy_toploc_audit(
            w3, DEPLOYER, OPERATOR.address, PARAMETERS, node.url, receipt_signer=RECEIPT_SIGNER.address
        )
        deployment.save(home / "deployment.json")
        client = ToplocAuditClient(w3, deployment.address)
        client.as_account(PROVIDER).stake(Role.PROVIDER, PROVIDER_STAKE)
        for validator in VALIDATORS:
            client.as_account(validator).stake(Role.VALIDATOR, VALIDATOR_STAKE)
        engine = make_engine(database_url)
        sessions = session_factory(engine)
        with transaction(sessions) as s:
            register_provider(s, PROVIDER.address, "test provider")
        domain = Domain.of(deployment.chain_id, deployment.address)
        recorder = Recorder(sessions, domain, keys.PrivateKey(RECEIPT_SIGNER.key), 3600)
        stack = Stack(
            home, node, proxy, deployment, database_url, broker_url, queue_prefix, sessions, recorder
        )
        declare(stack, model)
        return stack
    except BaseException:
        proxy.stop()
        node.stop()
        raise


def declare(stack: Stack, model: Any) -> None:
    """Declare a gpu_core LoadedModel in the recorder (its folder name, fingerprint, vocabulary)."""
    with transaction(stack.sessions) as s:
        declare_model(s, model.folder.name, model.fingerprint, limits_from_folder(model.folder))


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """The stack's processes stopped at the end, whatever happens; their logs shown on failure."""
    try:
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def make_record(
    loaded: Any, request_id: str, prompt: list[int], max_new_tokens: int = 24, decode_batching_size: int = 8
) -> Record:
    """A provider's record of a real greedy generation with `loaded`, ignoring end-of-sequence so the
    output has max_new_tokens tokens. A cheat's LoadedModel (gpu_core.runner.tampering) keeps the honest
    fingerprint and claimed dtype, so its record names the honest model as a cheat's would."""
    from gpu_core.runner.decoding import DecodeSpec
    from gpu_core.runner.fingerprint import fingerprint_tokenizer
    from gpu_core.runner.generate import generate_with_proofs

    generation = generate_with_proofs(
        loaded,
        prompt,
        DecodeSpec(max_new_tokens=max_new_tokens, stop_token_ids=()),
        topk=128,
        decode_batching_size=decode_batching_size,
    )
    tokenizer = fingerprint_tokenizer(loaded.folder)
    return Record.from_generation(generation, PROVIDER.address, loaded.folder.name, tokenizer, request_id)
