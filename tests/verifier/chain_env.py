"""A deployed ToplocAudit on its own Anvil with staked participants and a recorder database, for tests
that act on the chain directly (the watcher, dispute filing, votes): no workers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eth_keys import keys
from sqlalchemy import func, select

from anchor.anchoring import Anchorer, AuditContract, LoopConfig
from anchor.chain.anvil import AnvilNode, start_anvil
from anchor.chain.client import Role, ToplocAuditClient
from anchor.chain.deployment import Deployment, deploy_toploc_audit
from anchor.db import make_engine, session_factory, transaction
from anchor.db.models import ChainEvent
from anchor.records.eip712 import Domain
from anchor.records.ingest import Recorder, Submission
from anchor.records.registry import declare_model, register_provider
from anchor.settings import Settings, child_env
from tests.anchor.factory import LIMITS, MODEL, make_record
from tests.fixtures.celery import REPO_ROOT
from tests.fixtures.chain import RECEIPT_SIGNER
from tests.verifier.stack import CHALLENGER, DEPLOYER, OPERATOR, PARAMETERS, PROVIDER, VALIDATORS
from toploc_audit.commands.generate import signed_entry
from verifier.celery_app import make_app
from verifier.disputes import file_dispute, plan_dispute
from verifier.runtime import Runtime
from verifier.watcher import Synced

EVIDENCE = bytes.fromhex("ab" * 32)
SALT = bytes.fromhex("5a" * 32)


@dataclass
class Chain:
    node: AnvilNode
    deployment: Deployment
    database_url: str
    home: Path
    recorder: Recorder

    def client(self, account=None) -> ToplocAuditClient:  # type: ignore[no-untyped-def]
        return ToplocAuditClient(self.node.web3(), self.deployment.address, account)

    def env(self, **extra: str) -> dict[str, str]:
        env = child_env(
            TOPLOC_AUDIT_HOME=str(self.home),
            TOPLOC_AUDIT_DATABASE_URL=self.database_url,
            TOPLOC_AUDIT_BROKER_URL=f"sqla+sqlite:///{self.home / 'broker.sqlite3'}",
            TOPLOC_AUDIT_VALIDATORS=",".join(v.address for v in VALIDATORS),
            TOPLOC_AUDIT_WATCH_CONFIRMATIONS="2",
            TOPLOC_AUDIT_MAX_MERGE_DELAY=str(PARAMETERS.maxMergeDelay),  # what the deployment covers
        )
        env.update(extra)
        return env

    def watch_process(self, crash_at: str) -> subprocess.CompletedProcess[str]:
        """`toploc-audit watch --once` in a subprocess that SIGKILLs itself at `crash_at`."""
        return subprocess.run(
            [sys.executable, "-m", "toploc_audit", "watch", "--once"],
            cwd=REPO_ROOT,
            env=self.env(TOPLOC_AUDIT_WATCH_CRASH_AT=crash_at),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def watch(self) -> Synced:
        """One pass in this process: what `watch --once` runs (a fresh runtime, as a restart has)."""
        settings = Settings.from_env(self.env())
        return Runtime.from_settings(settings).watch_pass(make_app(settings))

    def log_only(self, request_id: str) -> int:
        """Log a record (random token ids and proofs of the right shapes) signed by the provider."""
        domain = Domain.of(self.deployment.chain_id, self.deployment.address)
        body = signed_entry(make_record(request_id, provider=PROVIDER.address), PROVIDER.key, domain)
        (accepted,) = self.recorder.submit([Submission.from_json(body, domain)])
        return accepted.receipt.log_index

    def anchor(self) -> None:
        contract = AuditContract(self.node.web3(), self.deployment.address, OPERATOR)
        Anchorer(self.recorder.sessions, contract, LoopConfig(1, 0, 1, poll_seconds=0.02)).run(once=True)

    def log_and_anchor(self, request_id: str) -> int:
        index = self.log_only(request_id)
        self.anchor()
        return index

    def dispute(self, index: int) -> tuple[int, tuple[str, ...]]:
        """Disputes entry `index` and draws its committee (the challenger sends both)."""
        client = self.client(CHALLENGER)
        with self.recorder.sessions() as s:
            plan = plan_dispute(s, client, str(index))
        filed = file_dispute(client, plan)
        drawn = client.draw(filed.dispute_id).event("CommitteeDrawn")
        return filed.dispute_id, tuple(drawn["committee"])

    def votes(self, dispute_id: int, ballots: dict[str, bool]) -> None:
        """Members (by address) commit then reveal `fraud`; the others stay silent (chain time moves past
        the commit deadline when someone is missing)."""
        accounts = {v.address: v for v in VALIDATORS}
        for member, fraud in ballots.items():
            mine = self.client(accounts[member])
            commitment = mine.vote_commitment(dispute_id, member, fraud, EVIDENCE, SALT)
            mine.commit_vote(dispute_id, commitment)
        current = self.client().current_round(dispute_id)
        if current.commits < current.size:
            self.node.increase_time(current.commit_deadline - self.node.timestamp() + 1)
        for member, fraud in ballots.items():
            self.client(accounts[member]).reveal_vote(dispute_id, fraud, EVIDENCE, SALT)

    def chain_logs(self) -> set[tuple[bytes, int]]:
        w3 = self.node.web3()
        logs = w3.eth.get_logs(
            {
                "address": self.deployment.address,
                "fromBlock": self.deployment.deployment_block,
                "toBlock": "latest",
            }
        )
        return {(bytes(log["transactionHash"]), int(log["logIndex"])) for log in logs}

    def stored(self) -> set[tuple[bytes, int]]:
        with self.recorder.sessions() as s:
            rows = s.execute(
                select(ChainEvent.tx_hash, ChainEvent.log_index).where(ChainEvent.removed.is_(False))
            )
            return {(bytes(t), int(i)) for t, i in rows}

    def count(self, table: type) -> int:
        with self.recorder.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)


def open_chain(database_url: str, tmp_path: Path) -> Iterator[Chain]:
    """The chain and database for one test; Anvil stopped at the end."""
    node = start_anvil(accounts=8)
    try:
        w3 = node.web3()
        deployment = deploy_toploc_audit(
            w3, DEPLOYER, OPERATOR.address, PARAMETERS, node.url, receipt_signer=RECEIPT_SIGNER.address
        )
        deployment.save(tmp_path / "deployment.json")
        client = ToplocAuditClient(w3, deployment.address)
        client.as_account(PROVIDER).stake(Role.PROVIDER, 5 * PARAMETERS.slashAmount)
        for validator in VALIDATORS:
            client.as_account(validator).stake(Role.VALIDATOR, PARAMETERS.minValidatorStake)
        engine = make_engine(database_url)
        sessions = session_factory(engine)
        with transaction(sessions) as s:
            register_provider(s, PROVIDER.address)
            declare_model(s, MODEL.name, MODEL.fingerprint, LIMITS)
        domain = Domain.of(deployment.chain_id, deployment.address)
        recorder = Recorder(sessions, domain, keys.PrivateKey(RECEIPT_SIGNER.key), 3600)
        yield Chain(node, deployment, database_url, tmp_path, recorder)
        engine.dispose()
    finally:
        node.stop()
