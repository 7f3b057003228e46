"""The anchor loop on a real Anvil: triggers, consistency on chain, reorgs, and crashes at every step."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from anchor.anchoring import CRASH_STEPS, Anchorer, AuditContract, LoopConfig
from anchor.chain.connection import connect
from anchor.db import transaction
from anchor.db.models import Anchor, Checkpoint
from anchor.db.models import Record as RecordRow
from anchor.log.store import LogStore
from anchor.settings import Settings
from anchor.trail import detail, find
from tests.anchor.chain_env import OPERATOR, ChainEnv, chain_env
from tests.fixtures.proxy import TcpProxy


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[ChainEnv]:
    yield from chain_env(database_url, tmp_path)


@pytest.fixture
def pg_env(postgresql_url: str, tmp_path: Path) -> Iterator[ChainEnv]:
    yield from chain_env(postgresql_url, tmp_path)


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


def _steps(a: Anchorer, *want: str) -> None:
    got = [a.step() for _ in want]
    assert got == list(want)


def _unanchored(env: ChainEnv) -> int:
    with env.recorder.sessions() as s:
        return int(s.execute(select(func.count()).where(RecordRow.checkpoint_id.is_(None))).scalar_one())


def test_checkpoints_every_n_entries_or_t_seconds_with_consistency_on_chain(env: ChainEnv) -> None:
    clock = Clock()
    a = Anchorer(env.recorder.sessions, env.contract, LoopConfig(5, 60, 3), clock=clock)
    env.ingest(4)
    clock.now += 10**9  # the records' receipts use the wall clock; the loop's clock is far ahead
    _steps(a, "checkpoint", "signed", "sent", "waiting")
    env.node.mine(1)
    _steps(a, "waiting")
    env.node.mine(1)
    _steps(a, "anchored", "idle")
    cp = env.contract.latest()
    with transaction(env.recorder.sessions) as s:
        assert cp is not None and (cp.id, cp.size, cp.root) == (1, 4, LogStore(s).root(4))
        d = detail(s, find(s, "2"))
        assert (
            d["status"] == "anchored" and d["anchor"]["txHash"] and d["firstCheckpoint"]["checkpointId"] == 1
        )
    assert _unanchored(env) == 0

    # N: four more entries wait and are young: nothing; the fifth triggers a checkpoint.
    a = Anchorer(env.recorder.sessions, env.contract, LoopConfig(5, 10**10, 1), clock=clock)
    env.ingest(4)
    _steps(a, "idle")
    env.ingest(1)
    _steps(a, "checkpoint", "signed", "sent", "anchored", "idle")
    cp = env.contract.latest()
    assert cp is not None and (cp.id, cp.size) == (2, 9)  # the contract checked the consistency proof 4 -> 9
    assert _unanchored(env) == 0
    with env.recorder.sessions() as s:
        assert s.scalars(select(RecordRow.checkpoint_id).where(RecordRow.log_index == 5)).one() == 2


def test_waiting_shows_each_confirmation_and_warns_when_no_block_comes(
    env: ChainEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """On a node that mines only on transactions the loop would wait forever: it says how far it is
    and, every stall_seconds without a new block, warns that the node does not mine."""
    clock = Clock()
    a = Anchorer(env.recorder.sessions, env.contract, LoopConfig(1, 0, 3, stall_seconds=60), clock=clock)
    env.ingest(2)
    caplog.set_level(logging.INFO, logger="toploc_audit.anchor")
    _steps(a, "checkpoint", "signed", "sent", "waiting")
    block = env.contract.receipt(_only_attempt(env).tx_hash)["blockNumber"]
    progress = f"checkpoint 1: anchor of size 2 in block {block}: 1/3 confirmations"
    assert [r.getMessage() for r in caplog.records].count(progress) == 1
    clock.now += 59
    _steps(a, "waiting", "waiting")
    assert [r.getMessage() for r in caplog.records].count(progress) == 1  # said once, not every poll
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    clock.now += 1
    _steps(a, "waiting")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"checkpoint 1: no new block for 60 s (head {block}; 1/3 confirmations): is the node mining? "
        "Anvil mines only on transactions unless started with --block-time (`chain up` does)"
    ]
    clock.now += 30
    _steps(a, "waiting")  # the next warning comes another stall_seconds later
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    env.node.mine(1)
    _steps(a, "waiting")
    assert f"checkpoint 1: anchor of size 2 in block {block}: 2/3 confirmations" in caplog.messages
    env.node.mine(1)
    _steps(a, "anchored", "idle")


def _only_attempt(env: ChainEnv) -> Anchor:
    with env.recorder.sessions() as s:
        return s.scalars(select(Anchor)).one()


@pytest.fixture
def scheduled_env(sqlite_url: str, tmp_path: Path) -> Iterator[ChainEnv]:
    """Anvil mining on `chain up`'s default schedule (TOPLOC_AUDIT_CHAIN_BLOCK_TIME unset)."""
    yield from chain_env(sqlite_url, tmp_path, block_time=Settings.from_env({}).chain_block_time)


def test_on_chain_ups_schedule_the_default_confirmations_come_without_other_transactions(
    scheduled_env: ChainEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """What hung before: `chain up`'s Anvil and the default 3 confirmations, nothing else sent."""
    env = scheduled_env
    confirmations = Settings.from_env({}).anchor_confirmations
    assert confirmations == 3
    env.ingest(2)
    caplog.set_level(logging.INFO, logger="toploc_audit.anchor")
    deadline = time.monotonic() + 120
    seen: list[str] = []

    def on_step(what: str) -> None:
        seen.append(what)
        assert time.monotonic() < deadline, f"no anchor within 120 s: {seen}"

    a = Anchorer(env.recorder.sessions, env.contract, LoopConfig(1, 0, confirmations, poll_seconds=0.1))
    a.run(once=True, on_step=on_step)  # returns once idle: the checkpoint is anchored
    cp = env.contract.latest()
    assert cp is not None and cp.size == 2
    assert _only_attempt(env).status == "confirmed"
    assert "anchored" in seen and seen[-1] == "idle"
    assert any(m.endswith("2/3 confirmations") for m in caplog.messages)


def test_a_reorg_that_drops_the_anchor_is_detected_and_the_checkpoint_resent(env: ChainEnv) -> None:
    a = Anchorer(env.recorder.sessions, env.contract, LoopConfig(1, 0, 3))
    env.ingest(3)
    _steps(a, "checkpoint", "signed")
    snapshot = env.node.snapshot()
    _steps(a, "sent", "waiting")
    assert env.contract.checkpoint_count() == 1
    env.node.revert(snapshot)  # the block holding the anchor transaction is gone
    assert env.contract.checkpoint_count() == 0
    _steps(a, "rebroadcast")
    env.node.mine(2)
    _steps(a, "anchored", "idle")
    assert env.contract.checkpoint_count() == 1
    with env.recorder.sessions() as s:
        rows = s.execute(select(Anchor.status, func.count()).group_by(Anchor.status)).all()
    assert dict(rows) == {"confirmed": 1}
    assert _unanchored(env) == 0


@pytest.mark.slow
def test_killed_at_every_step_the_loop_loses_and_duplicates_nothing(env: ChainEnv) -> None:
    args = ("anchor", "--once", "--every-entries", "1", "--confirmations", "2", "--poll", "0.05")
    for round_, step in enumerate(CRASH_STEPS, start=1):
        env.ingest(2)
        crashed = env.cli_mining(*args, TOPLOC_AUDIT_ANCHOR_CRASH_AT=step)
        assert crashed.returncode == -9, crashed.stderr
        assert f"SIGKILL at {step}" in crashed.stderr
        # Anvil automines: once sent, the transaction is on chain even though the loop died.
        assert env.contract.checkpoint_count() == round_ - (step == "before-send")
        resumed = env.cli_mining(*args)
        assert resumed.returncode == 0, resumed.stderr
        assert env.contract.checkpoint_count() == round_
        onchain = env.contract.checkpoint(round_)
        with env.recorder.sessions() as s:
            cps = s.execute(select(Checkpoint.size, Checkpoint.status, Checkpoint.chain_checkpoint_id)).all()
            assert sorted(cps) == [(2 * i, "anchored", i) for i in range(1, round_ + 1)]
            assert onchain.size == 2 * round_ and onchain.root == LogStore(s).root(2 * round_)
            confirmed = s.execute(select(func.count()).where(Anchor.status == "confirmed")).scalar_one()
            assert confirmed == round_
        assert _unanchored(env) == 0


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_the_loop_rides_out_rpc_outages_and_anchors_exactly_once(
    pg_env: ChainEnv, tcp_proxy: Callable[[str, int], TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    """The node's endpoint goes away twice (before signing; while waiting for confirmations) and comes
    back: the loop logs every failed step, backs off, and the checkpoint lands exactly once."""
    env = pg_env
    proxy = tcp_proxy("127.0.0.1", env.node.port)
    # The production connection (with web3's own request retries), through the proxy.
    contract = AuditContract(connect(proxy.url), env.deployment.address, OPERATOR)
    anchorer = Anchorer(env.recorder.sessions, contract, LoopConfig(1, 0, 2, poll_seconds=0.05))
    env.ingest(3)
    caplog.set_level(logging.WARNING, logger="toploc_audit.anchor")

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("step failed")]

    proxy.stop()  # outage 1: the checkpoint needs only the database; signing needs the node
    steps: list[str] = []
    loop = threading.Thread(target=anchorer.run, kwargs={"once": True, "on_step": steps.append}, daemon=True)
    loop.start()
    _wait_for(lambda: len(failures()) >= 2, "two failed steps in outage 1")
    assert steps == ["checkpoint"]
    assert env.contract.checkpoint_count() == 0  # (read directly from the node, not through the proxy)
    delays = [float(r.args[2]) for r in failures()]  # type: ignore[index]
    assert delays[1] == 2 * delays[0]  # exponential backoff

    proxy.start()
    _wait_for(lambda: "sent" in steps, "the anchor transaction to be sent")
    proxy.stop()  # outage 2: the transaction is mined (automine) but the loop cannot see it
    env.node.mine(2)  # the confirmations are there, on the node itself
    seen = len(failures())
    _wait_for(lambda: len(failures()) >= seen + 2, "two failed steps in outage 2")
    assert "anchored" not in steps
    with env.recorder.sessions() as s:
        assert s.scalars(select(Checkpoint.status)).all() == ["pending"]

    proxy.start()
    loop.join(timeout=120)
    assert not loop.is_alive(), "the loop did not finish after the node came back"
    assert steps[-2:] == ["anchored", "idle"]
    assert steps.count("signed") == 1 and "dropped" not in steps and "rebroadcast" not in steps
    assert env.contract.checkpoint_count() == 1
    onchain = env.contract.checkpoint(1)
    with env.recorder.sessions() as s:
        assert (onchain.size, onchain.root) == (3, LogStore(s).root(3))
        assert s.execute(select(Anchor.status)).scalars().all() == ["confirmed"]
        assert s.execute(select(Checkpoint.status, Checkpoint.chain_checkpoint_id)).all() == [("anchored", 1)]
    assert _unanchored(env) == 0
    assert proxy.connections >= 2  # the loop reconnected after each outage
