"""A deployed ToplocAudit on a fresh Anvil, a recorder database and the env for CLI subprocesses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eth_keys import keys

from anchor.anchoring import AuditContract
from anchor.chain.anvil import AnvilNode, dev_account, start_anvil
from anchor.chain.deployment import Deployment, deploy_toploc_audit
from anchor.chain.parameters import Parameters
from anchor.db import make_engine, session_factory
from anchor.records.eip712 import Domain
from anchor.records.ingest import Recorder, Submission
from anchor.settings import child_env
from tests.anchor.conftest import MAX_MERGE_DELAY, seed_registry
from tests.anchor.factory import entry, make_record
from tests.fixtures.chain import RECEIPT_SIGNER

REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATOR = dev_account(1)


@dataclass
class ChainEnv:
    node: AnvilNode
    deployment: Deployment
    database_url: str
    home: Path
    recorder: Recorder
    contract: AuditContract
    count: int = 0

    @property
    def domain(self) -> Domain:
        return self.recorder.domain

    def env(self, **extra: str) -> dict[str, str]:
        env = child_env(
            TOPLOC_AUDIT_HOME=str(self.home),
            TOPLOC_AUDIT_DATABASE_URL=self.database_url,
            TOPLOC_AUDIT_DEPLOYMENT=str(self.home / "deployment.json"),
            TOPLOC_AUDIT_LOG_KEY=OPERATOR.key.hex(),
            TOPLOC_AUDIT_RECEIPT_KEY=RECEIPT_SIGNER.key.hex(),
            TOPLOC_AUDIT_MAX_MERGE_DELAY=str(MAX_MERGE_DELAY),
        )
        env.update(extra)
        return env

    def ingest(self, n: int) -> list[int]:
        """Log n new records through the recorder library; returns their log indexes."""
        subs = []
        for _ in range(n):
            self.count += 1
            body = entry(make_record(f"req-{self.count}"), domain=self.domain)
            subs.append(Submission.from_json(body, self.domain))
        return [a.receipt.log_index for a in self.recorder.submit(subs)]

    def cli(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "toploc_audit", *args],
            cwd=REPO_ROOT,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def cli_mining(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run a CLI command while mining a block every 0.1 s, so confirmations arrive (deadline 300 s)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "toploc_audit", *args],
            cwd=REPO_ROOT,
            env=self.env(**extra_env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3000):
            try:
                out, err = proc.communicate(timeout=0.1)
                return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                self.node.mine(1)
        proc.kill()
        raise AssertionError(f"{args} did not finish within its deadline")


def chain_env(database_url: str, home: Path, block_time: float | None = None) -> Iterator[ChainEnv]:
    """`block_time`: Anvil also mines on that schedule (as `chain up` runs it); None: on transactions only."""
    node = start_anvil(block_time=block_time)
    try:
        w3 = node.web3()
        deployment = deploy_toploc_audit(
            w3,
            dev_account(0),
            OPERATOR.address,
            Parameters(),
            node.url,
            receipt_signer=RECEIPT_SIGNER.address,
            receipt_key=RECEIPT_SIGNER.key,
        )
        deployment.save(home / "deployment.json")
        seed_registry(database_url)
        engine = make_engine(database_url)
        domain = Domain.of(deployment.chain_id, deployment.address)
        recorder = Recorder(
            session_factory(engine), domain, keys.PrivateKey(RECEIPT_SIGNER.key), MAX_MERGE_DELAY
        )
        contract = AuditContract(w3, deployment.address, OPERATOR)
        yield ChainEnv(node, deployment, database_url, home, recorder, contract)
        engine.dispose()
    finally:
        node.stop()
