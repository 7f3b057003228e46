"""The anchor loop: checkpoint the log every N entries or T seconds, anchor it on chain, wait K blocks.

Crash safety (docs/log.md): every state change is persisted before the action that depends on it, and
every step first looks at what the chain already holds, so a restart at any point resumes:
1. a 'pending' checkpoint row (size, root) is committed before anything is signed;
2. the signed transaction (raw bytes, hash, nonce) is committed as an anchors row ('signed') before it
   is broadcast, so a restart rebroadcasts the same bytes: one nonce, so at most one can ever be mined;
3. after broadcast the row is 'sent'; once the receipt has K confirmations (and its block is still the
   canonical one) the checkpoint becomes 'anchored' and its entries are marked, in one transaction.
If the receipt disappears (a reorg dropped the block), the same transaction is broadcast again; if its
nonce was taken by something else it is marked 'dropped' and the checkpoint is signed anew. The contract
refuses a size that does not grow, so a checkpoint can never be anchored twice. RPC failures are logged
and retried with exponential backoff.

While it waits, the loop logs each new confirmation ("1/3 confirmations") and warns every
`stall_seconds` in which the chain's head does not move: a node that mines only on transactions (plain
Anvil) would otherwise leave it waiting forever without a word.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from anchor.anchoring.chain import AuditContract
from anchor.db.engine import transaction
from anchor.db.models import Anchor, Checkpoint
from anchor.db.models import Record as RecordRow
from anchor.errors import Error
from anchor.log import checkpoints
from anchor.log.store import LogStore

log = logging.getLogger("toploc_audit.anchor")

CRASH_STEPS = ("before-send", "after-send", "after-confirm")
MAX_BACKOFF_S = 30.0


class AnchorError(Error):
    """The log and the chain disagree, or the contract refused an anchor: needs a person."""


@dataclass(frozen=True)
class LoopConfig:
    every_entries: int
    every_seconds: float
    confirmations: int
    crash_at: str | None = None
    poll_seconds: float = 1.0
    stall_seconds: float = 60.0
    """Warn when the head has not moved for this long while an anchor waits (and again as often)."""


class Anchorer:
    """One log, one contract. `step()` does the next single thing; `run()` repeats it."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain: AuditContract,
        config: LoopConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if config.crash_at is not None and config.crash_at not in CRASH_STEPS:
            raise ValueError(f"crash_at must be one of {CRASH_STEPS}")
        self.sessions = sessions
        self.chain = chain
        self.config = config
        self.clock = clock
        self._head: int | None = None
        self._head_since = 0.0  # when the head last moved
        self._stall_reported_at = 0.0
        self._progress: tuple[int, int] | None = None  # (attempt, confirmations) last logged

    def _crash_point(self, step: str) -> None:
        """Test hook: die here without any cleanup, as a power cut would."""
        if self.config.crash_at == step:
            log.warning("crash hook: SIGKILL at %s", step)
            os.kill(os.getpid(), signal.SIGKILL)

    def step(self) -> str:
        """Advance by one action; returns what happened ('idle', 'checkpoint', 'signed', 'sent',
        'waiting', 'rebroadcast', 'dropped', 'anchored')."""
        with transaction(self.sessions) as s:
            cp = checkpoints.pending(s)
            if cp is None:
                cp = self._maybe_checkpoint(s)
                if cp is None:
                    return "idle"
                log.info("checkpoint %d: size %d root %s", cp.id, cp.size, cp.root.hex())
                return "checkpoint"
            attempt = s.scalars(
                select(Anchor)
                .where(Anchor.checkpoint_id == cp.id, Anchor.status.in_(("signed", "sent")))
                .order_by(Anchor.id.desc())
                .limit(1)
            ).first()
            cp_id, cp_size, cp_root = cp.id, cp.size, cp.root
            attempt_id = None if attempt is None else attempt.id
        if attempt_id is None:
            return self._sign(cp_id, cp_size, cp_root)
        return self._advance(cp_id, cp_size, attempt_id)

    def _maybe_checkpoint(self, s: Session) -> Checkpoint | None:
        size = LogStore(s).size()
        last = checkpoints.latest(s)
        covered = 0 if last is None else last.size
        waiting = size - covered
        if waiting <= 0:
            return None
        oldest = s.execute(select(RecordRow.logged_at).where(RecordRow.log_index == covered)).scalar()
        age = self.clock() - (oldest if oldest is not None else self.clock())
        if waiting < self.config.every_entries and age < self.config.every_seconds:
            return None
        return checkpoints.create(s, int(self.clock()))

    def _sign(self, cp_id: int, size: int, root: bytes) -> str:
        onchain = self.chain.latest()
        if onchain is not None and onchain.size >= size:
            # Landed, yet no attempt is on record: adopt the chain's word (e.g. signed elsewhere).
            if onchain.size != size or onchain.root != root:
                raise AnchorError(
                    f"the chain's checkpoint {onchain.id} (size {onchain.size}) is beyond ours ({size})"
                )
            raise AnchorError(f"checkpoint of size {size} is on chain but no transaction of ours is recorded")
        with transaction(self.sessions) as s:
            store = LogStore(s)
            proof: list[bytes] = []
            if onchain is not None:
                ours = store.root(onchain.size)
                if ours != onchain.root:
                    raise AnchorError(
                        f"the chain's checkpoint {onchain.id} (size {onchain.size}) has root "
                        f"{onchain.root.hex()}, the log {ours.hex()}: rewritten log or another chain"
                    )
                proof = store.consistency_proof(onchain.size, size)
            signed = self.chain.sign_anchor(size, root, proof)
            now = int(self.clock())
            s.add(
                Anchor(
                    checkpoint_id=cp_id,
                    chain_id=self.chain.chain_id,
                    contract=self.chain.address,
                    tx_hash=signed.tx_hash,
                    nonce=signed.nonce,
                    raw_tx=signed.raw,
                    status="signed",
                    created_at=now,
                    updated_at=now,
                )
            )
        log.info("checkpoint %d: signed anchor tx 0x%s (nonce %d)", cp_id, signed.tx_hash.hex(), signed.nonce)
        return "signed"

    def _set(self, attempt_id: int, **values: object) -> None:
        with transaction(self.sessions) as s:
            a = s.get(Anchor, attempt_id)
            assert a is not None
            for k, v in values.items():
                setattr(a, k, v)
            a.updated_at = int(self.clock())

    def _advance(self, cp_id: int, cp_size: int, attempt_id: int) -> str:
        with self.sessions() as s:
            a = s.get(Anchor, attempt_id)
            assert a is not None
            status, raw, tx_hash = a.status, a.raw_tx, a.tx_hash
        if status == "signed":
            self._crash_point("before-send")
            outcome = self.chain.broadcast(raw)
            if outcome == "nonce-used" and self.chain.receipt(tx_hash) is None:
                self._set(attempt_id, status="dropped", error="nonce used by another transaction")
                return "dropped"
            self._set(attempt_id, status="sent")
            log.info("checkpoint %d: anchor tx 0x%s broadcast (%s)", cp_id, tx_hash.hex(), outcome)
            self._crash_point("after-send")
            return "sent"
        receipt = self.chain.receipt(tx_hash)
        if receipt is None:
            # Not mined (still pooled) or mined in a block a reorg removed: broadcast the same bytes again.
            outcome = self.chain.broadcast(raw)
            if outcome == "nonce-used" and self.chain.receipt(tx_hash) is None:
                self._set(attempt_id, status="dropped", error="nonce used by another transaction")
                log.warning("checkpoint %d: anchor tx 0x%s dropped; signing anew", cp_id, tx_hash.hex())
                return "dropped"
            if outcome == "sent":
                log.warning(
                    "checkpoint %d: anchor tx 0x%s was not on chain; rebroadcast", cp_id, tx_hash.hex()
                )
                return "rebroadcast"
            self._watch_head(cp_id, self.chain.block_number(), "the anchor tx is not mined yet")
            return "waiting"
        if receipt["status"] != 1:
            self._set(attempt_id, status="failed", error="reverted", block_number=int(receipt["blockNumber"]))
            raise AnchorError(f"anchor tx 0x{tx_hash.hex()} reverted in block {receipt['blockNumber']}")
        block_number = int(receipt["blockNumber"])
        head = self.chain.block_number()
        confirmations = head - block_number + 1
        if confirmations < self.config.confirmations:
            self._set(attempt_id, block_number=block_number, block_hash=bytes(receipt["blockHash"]))
            waiting = f"{confirmations}/{self.config.confirmations} confirmations"
            if self._progress != (attempt_id, confirmations):
                self._progress = (attempt_id, confirmations)
                log.info(
                    "checkpoint %d: anchor of size %d in block %d: %s", cp_id, cp_size, block_number, waiting
                )
            self._watch_head(cp_id, head, waiting)
            return "waiting"
        block = self.chain.block(block_number)
        if bytes(block["hash"]) != bytes(receipt["blockHash"]):
            return "waiting"  # the node is mid-reorg; look again
        chain_id = self.chain.anchored_id(receipt)
        self._crash_point("after-confirm")
        with transaction(self.sessions) as s:
            a = s.get(Anchor, attempt_id)
            cp = s.get(Checkpoint, cp_id)
            assert a is not None and cp is not None
            a.status, a.block_number, a.block_hash = "confirmed", block_number, bytes(receipt["blockHash"])
            a.updated_at = int(self.clock())
            marked = checkpoints.mark_anchored(s, cp, chain_id, int(block["timestamp"]))
        log.info(
            "checkpoint %d anchored as #%d in block %d: %d entries", cp_id, chain_id, block_number, marked
        )
        return "anchored"

    def _watch_head(self, cp_id: int, head: int, waiting: str) -> None:
        """Warns (every stall_seconds) while the head stands still: confirmations need new blocks."""
        now = self.clock()
        if head != self._head:
            self._head, self._head_since, self._stall_reported_at = head, now, now
            return
        if now - self._stall_reported_at >= self.config.stall_seconds:
            self._stall_reported_at = now  # the next warning after another stall_seconds
            log.warning(
                "checkpoint %d: no new block for %.0f s (head %d; %s): is the node mining? Anvil mines "
                "only on transactions unless started with --block-time (`chain up` does)",
                cp_id, now - self._head_since, head, waiting,
            )  # fmt: skip

    def run(self, once: bool = False, on_step: Callable[[str], None] | None = None) -> None:
        """Loop forever (or, with `once`, until nothing is left to do); RPC errors back off and retry."""
        backoff = self.config.poll_seconds
        while True:
            try:
                what = self.step()
                backoff = self.config.poll_seconds
            except (AnchorError, KeyboardInterrupt):
                raise
            except Exception as exc:  # RPC outage, timeout, node restart: log, wait, retry
                log.warning("step failed (%s: %s); retrying in %.1f s", type(exc).__name__, exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            if on_step is not None:
                on_step(what)
            if what == "idle" and once:
                return
            if what in ("idle", "waiting"):
                time.sleep(self.config.poll_seconds)


def unanchored_count(s: Session) -> int:
    return int(s.execute(select(func.count()).where(RecordRow.checkpoint_id.is_(None))).scalar_one())
