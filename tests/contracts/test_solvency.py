"""Solvency under random sequences of operations (hypothesis stateful test on the real contract).

Each step is one operation: staking (providers and validators, random amounts, some refused), unstake
requests (some refused: more than is active, nothing, a remainder below the minimum), withdrawStake
(refused while unbonding or while a dispute involves the account; with or without waiting the
unbonding out), withdrawal of credits, validators leaving the pool in numbers (so that disputes and
appeals are refused, or an appeal's committee cannot be drawn) and rejoining it, moving time,
anchoring records, opening disputes, draws, commits and abstentions of some members, reveals of some
(others never reveal, or reveal a vote they did not commit), appeals (the losing side with the right
bond; refused ones by the winning side, an outsider, or with a wrong bond) and resolutions. The most
frequent operation, "play", moves one open dispute through its current phase the way its parties
would; the others aim at any dispute at any time, so many of them are refused.

Every operation's result is predicted from a model of the game: success, or the one custom error the
contract must refuse it with. Near a deadline (the next block's time is known only to a few seconds)
any outcome the nearby times allow is accepted. A refused operation must change nothing.

After every step: balance == totalStaked + totalUnbonding + totalBonds + totalCredits + totalReserve,
the reserve never shrinks, totalBonds is the sum of the bonds of every round of the open disputes (and
what the model says they locked), each open dispute's phaseOf is the phase its round's counts and
deadlines give, and its committees are the model's. At the end of each run each total equals the sum
over the accounts, and every account's open-dispute count and every ballot is the model's; then every
open dispute is driven to resolution (drawn if need be, its phases waited out, resolved), everyone
unstakes and withdraws, and the contract must be left holding exactly totalReserve wei, every other
total 0.

Committees are drawn from the chain's prevrandao, which Anvil picks at random, and the chain clock
runs on the wall clock: the same choices do not always replay the same run. A failing run therefore
prints its own journal (every step and transaction) to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from web3 import Web3
from web3.types import RPCEndpoint

from anchor.chain.client import (
    Ballot,
    BallotInfo,
    Outcome,
    Phase,
    Role,
    Round,
    ToplocAuditClient,
    vote_commitment,
)
from anchor.chain.errors import ContractRevert
from anchor.chain.parameters import ETHER, Parameters
from anchor.chain.transactions import Sent
from tests.contracts.scenario import Record, SignedLog, evidence, salt
from tests.fixtures.chain import AuditChain

T = TypeVar("T")
OK = None  # the outcome of an operation that goes through
MARGIN = 5  # seconds: how far the next block's time may be from the pending block's
ZERO = b"\x00" * 32

UNKNOWN = "DisputeGameUnknownDispute"
WRONG_PHASE = "DisputeGameWrongPhase"
NOT_MEMBER = "DisputeGameNotCommitteeMember"
WRONG_BALLOT = "DisputeGameWrongBallot"
ZERO_HASH = "DisputeGameZeroHash"
MISMATCH = "DisputeGameCommitmentMismatch"
NOT_APPELLANT = "DisputeGameNotAppellant"
WRONG_BOND = "DisputeGameWrongBond"
POOL_TOO_SMALL = "DisputeGameNotEnoughValidators"

MOVES_NO_ETHER = {"draw", "commit", "abstain", "reveal"}
# Hypothesis favours the first element of sampled_from (the first runs draw only first elements):
# put the case that moves the game on first.
OPS = ("play",) * 10 + (
    "open",
    "draw",
    "vote",
    "reveal",
    "appeal",
    "resolve",
    "stake",
    "unstake",
    "unstake",
    "withdraw stake",
    "withdraw stake",
    "withdraw",
    "withdraw",
    "advance",
    "anchor",
    "exodus",
    "rejoin",
    "rejoin",
)
PROVIDER_STAKES = st.sampled_from([ETHER, 2 * ETHER, 3 * ETHER // 2])
VALIDATOR_STAKES = (ETHER // 2, ETHER, 2 * ETHER, 3 * ETHER // 4)
STAKES = (ETHER, ETHER // 2, 2 * ETHER, ETHER // 4, 0)
SECONDS = (101, 30, 101, 30, 250, 2_100)
DICE = st.lists(st.integers(0, 255), min_size=12, max_size=12)
# What members and parties do in "play" steps: mostly what moves the game on.
COMMIT_ACTIONS = ("with",) * 6 + ("against", "abstain", "silent")  # "with": the side most take
REVEAL_ACTIONS = ("reveal",) * 5 + ("withhold", "forge")  # "forge": the other vote
WRONG_APPEALS = (None, "winner", "wrong bond", "outsider")  # refused first, then the loser may appeal


@cache
def quick_web3(url: str) -> Web3:
    """A Web3 that asks the node for its chain id once: web3 checks it before every call, and that
    doubles the requests of a test that makes thousands."""
    provider = Web3.HTTPProvider(
        url,
        request_kwargs={"timeout": 30},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)


@cache
def client_for(w3: Web3, address: str, account: LocalAccount | None = None) -> ToplocAuditClient:
    """One client per account for the whole session (making one reads the ABI)."""
    return ToplocAuditClient(w3, address, account)


@dataclass
class Case:
    """The model of one dispute."""

    id: int
    record: Record
    challenger: str
    locked: int  # wei its rounds locked
    rounds: int = 1  # rounds filed (the dispute, its appeals)
    committees: list[list[str]] = field(default_factory=list)  # one per drawn round
    outcome: Outcome = Outcome.OPEN

    @property
    def provider(self) -> str:
        return self.record.provider.address

    def seated(self) -> set[str]:
        return {m for committee in self.committees for m in committee}


def round_result(r: Round) -> Outcome:
    if r.size == 0:
        return Outcome.NO_QUORUM
    if r.fraud_votes >= r.quorum:
        return Outcome.FRAUD
    if r.honest_votes >= r.quorum:
        return Outcome.HONEST
    return Outcome.NO_QUORUM


def phase_at(case: Case, r: Round, t: int, p: Parameters) -> Phase:
    """The phase of `case`, whose current round is `r`, at time `t` (what DisputeGame._phase says)."""
    if case.outcome != Outcome.OPEN:
        return Phase.RESOLVED
    if not r.drawn:
        return Phase.DRAW
    if t <= r.commit_deadline and r.commits + r.abstentions < r.size:
        return Phase.COMMIT
    if t <= r.reveal_deadline and r.reveals < r.commits:
        return Phase.REVEAL
    appealable = round_result(r) != Outcome.NO_QUORUM and case.rounds <= p.appealRounds
    if appealable and t <= r.reveal_deadline + p.appealPeriod:
        return Phase.APPEAL
    return Phase.RESOLVABLE


def shown(outcomes: Collection[str | None]) -> str:
    return " or ".join(sorted(o or "success" for o in outcomes))


class Solvency(RuleBasedStateMachine):
    audit: AuditChain  # set by the test
    reported = False

    def __init__(self) -> None:
        super().__init__()
        audit = self.audit
        self.snapshot = audit.node.snapshot()
        a = audit.accounts
        self.providers = a[2:4]
        self.challengers = a[4:6]
        self.outsider = a[6]  # draws and resolves (anyone may); never stakes
        self.validators = a[10:22]  # enough for a first round of 3 and an appeal round of 7
        self.people: list[LocalAccount] = [*self.providers, *self.challengers, *self.validators]
        self.everyone = [*self.people, self.outsider]
        self.by_address = {p.address: p for p in self.everyone}
        self.w3 = quick_web3(audit.node.url)
        self.view = client_for(self.w3, audit.deployment.address)
        self.p = audit.parameters
        self.log = SignedLog(audit)
        self.records: list[Record] = []
        self.cases: dict[int, Case] = {}
        self.leaves: dict[int, int] = {}  # leaf index -> its latest dispute
        self.ballots: dict[tuple[int, str], tuple[int, Ballot]] = {}  # (dispute, member) -> round, state
        self.votes: dict[tuple[int, str], bool] = {}  # (dispute, member) -> the committed fraud vote
        self.reserve = self.view.totals().reserve
        self.emptied: set[str] = set()  # providers slashed to nothing (they keep their role)
        self.dice: Iterator[int] = iter(())
        self.pool_seen = ""  # what pool_outcome last saw
        self.journal: list[str] = []  # what the run did, printed if it fails
        self.settling = False  # in teardown: no events, they would count for every run

    # -- plumbing -----------------------------------------------------------------------------------

    def client(self, account: LocalAccount) -> ToplocAuditClient:
        return client_for(self.w3, self.view.address, account)

    def note(self, text: str) -> None:
        note(text)
        self.journal.append(text)

    def advance(self, seconds: int) -> None:
        self.note(f"time +{seconds} s")
        self.audit.advance(seconds)

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(address))

    def event(self, text: str) -> None:
        if not self.settling:
            event(text)  # --hypothesis-show-statistics shows what the runs covered

    def now(self) -> int:
        """The time of the block the next transaction is simulated in."""
        return int(self.w3.eth.get_block("pending")["timestamp"])

    def open_ids(self) -> list[int]:
        return [i for i, c in self.cases.items() if c.outcome == Outcome.OPEN]

    def current(self, case: Case) -> Round:
        return self.view.round(case.id, case.rounds - 1)

    def phases(self, dispute_id: int) -> set[Phase]:
        """The phases the next transaction may find `dispute_id` in: one, unless a deadline is near."""
        case = self.cases[dispute_id]
        if case.outcome != Outcome.OPEN:
            return {Phase.RESOLVED}
        r = self.current(case)
        t = self.now()
        times = {t, t + MARGIN}
        if r.drawn:
            for deadline in (r.commit_deadline, r.reveal_deadline, r.reveal_deadline + self.p.appealPeriod):
                if t - 1 <= deadline <= t + MARGIN:
                    times |= {deadline, deadline + 1}
        return {phase_at(case, r, s, self.p) for s in times}

    def outcomes(self, dispute_id: int, predict: Callable[[Phase], str | None]) -> set[str | None]:
        if dispute_id not in self.cases:
            return {UNKNOWN}
        return {predict(phase) for phase in self.phases(dispute_id)}

    def attempt(
        self,
        kind: str,
        detail: str,
        send: Callable[[], Sent],
        outcomes: Collection[str | None],
        watch: Callable[[], Any] = lambda: None,
    ) -> Sent | None:
        """Runs `send`, which must end in one of `outcomes` (OK or an error name); a refusal must change
        nothing that `watch` or the totals show. Returns the transaction if it went through."""
        self.note(f"{kind} {detail}: expecting {shown(outcomes)}")
        before = (self.view.totals(), watch()) if set(outcomes) - {OK} else None
        try:
            sent = send()
        except ContractRevert as exc:
            assert exc.name in outcomes, f"{kind} {detail}: refused with {exc}, expected {shown(outcomes)}"
            assert (self.view.totals(), watch()) == before, f"{kind} {detail}: refused, yet state changed"
            self.event(f"{kind}: {exc.name}")
            return None
        assert OK in outcomes, f"{kind} {detail}: went through, expected {shown(outcomes)}"
        if kind not in MOVES_NO_ETHER and not self.settling:  # else the step's invariant checks it
            totals = self.view.totals()
            assert totals.solvent, f"after {kind} {detail}: {totals}"
        self.event(f"{kind}: done")
        return sent

    def watch_case(self, dispute_id: int, member: str | None = None) -> Callable[[], Any]:
        def watch() -> Any:
            if dispute_id not in self.cases:
                return None
            ballot = self.view.ballot_of(dispute_id, member) if member else None
            return self.view.dispute(dispute_id), self.current(self.cases[dispute_id]), ballot

        return watch

    def watch_account(self, address: str) -> Callable[[], Any]:
        return lambda: (self.view.stake_of(address), self.view.credits(address))

    def pick_dispute(self) -> int:
        """An open dispute, any dispute or one that does not exist."""
        ids = [*self.open_ids(), *self.cases, len(self.cases) + 1]
        return self.roll(ids)

    def eligible(self, address: str) -> bool:
        return bool(self.view.call("isEligibleValidator", address))

    def pool_outcome(self, provider: str, challenger: str, seated: Collection[str], size: int) -> str | None:
        """DisputeGame._requirePool: can the eligible validators, less the parties and the members of
        earlier rounds still eligible, seat `size`?"""
        n = int(self.view.call("eligibleValidatorCount"))
        still = sum(self.eligible(m) for m in seated)
        excluded = self.eligible(provider) + self.eligible(challenger) + still
        self.pool_seen = f"pool: {n} eligible, {excluded} of them excluded"
        return OK if max(n - excluded, 0) >= size else POOL_TOO_SMALL

    # -- the steps ----------------------------------------------------------------------------------

    @initialize(
        provider_stake=PROVIDER_STAKES,
        second_provider=st.booleans(),
        validator_stakes=st.lists(st.sampled_from(VALIDATOR_STAKES), min_size=12, max_size=12),
    )
    def start(self, provider_stake: int, second_provider: bool, validator_stakes: list[int]) -> None:
        """A staked provider (and maybe a second), twelve validators and three anchored records."""
        self.client(self.providers[0]).stake(Role.PROVIDER, provider_stake)
        if second_provider:
            self.client(self.providers[1]).stake(Role.PROVIDER, ETHER)
        for v, amount in zip(self.validators, validator_stakes, strict=True):
            self.client(v).stake(Role.VALIDATOR, amount)
        self.log.append_filler(2)
        for provider in (self.providers[0], self.providers[0], self.providers[1]):
            self.records.append(self.log.append(provider))
        self.log.anchor()

    @rule(op=st.sampled_from(OPS), dice=DICE)
    def step(self, op: str, dice: list[int]) -> None:
        # One rule, not one per operation: hypothesis would switch rules off at random for whole runs
        # (swarm testing), and most runs would never get a dispute to an appeal.
        # Every choice an operation makes comes from `dice`, drawn up front: how many choices an
        # operation makes depends on the chain (committees, phases), and hypothesis wants the same
        # draws whatever the chain did.
        self.dice = iter(dice)
        self.note(f"-- {op} {dice}")
        getattr(self, "op_" + op.replace(" ", "_"))()

    def roll(self, options: Sequence[T]) -> T:
        """One of `options`, by the next die (the first once the dice run out)."""
        return options[next(self.dice, 0) % len(options)]

    # -- play: a dispute moves on -------------------------------------------------------------------

    def op_play(self) -> None:
        open_ids = self.open_ids()
        if not open_ids:
            self.open_fresh()
            return
        case = self.cases[self.roll(open_ids)]
        phases = self.phases(case.id)
        if len(phases) > 1:  # a deadline is near: let it pass
            self.advance(2 * MARGIN)
            return
        phase = phases.pop()
        if phase == Phase.DRAW:
            self.do_draw(case.id, {OK})
        elif phase == Phase.COMMIT:
            self.play_commits(case)
        elif phase == Phase.REVEAL:
            self.play_reveals(case)
        elif phase == Phase.APPEAL:
            self.play_appeal(case)
        else:
            assert phase == Phase.RESOLVABLE, phase
            self.do_resolve(case.id, {OK})

    def open_fresh(self) -> None:
        """Opens a dispute on a record that can be disputed, anchoring one first if none can."""
        challenger = self.roll(self.challengers)
        staked = [p for p in self.providers if self.view.stake_of(p.address).role == Role.PROVIDER]
        deadline = self.now() + MARGIN
        fresh = [
            r
            for r in self.records
            if r.provider in staked
            and r.index not in self.leaves
            and self.log.covering(r.index).timestamp + self.p.disputeWindow > deadline
        ]
        if not fresh:
            if not staked:
                self.do_stake(self.providers[0], Role.PROVIDER, ETHER)
                staked = [self.providers[0]]
            fresh = [self.new_record(staked[0], 0)]
        record = self.roll(fresh)
        self.do_open(record, challenger, self.p.bond)

    def play_commits(self, case: Case) -> None:
        """Members who have not acted commit (most to one side) or abstain; some stay silent."""
        side = self.roll((False, True))
        pending = self.pending(case, Ballot.PENDING)
        for member in pending:
            action = self.roll(COMMIT_ACTIONS)
            if action == "abstain":
                self.do_abstain(case.id, member, evidence(self.by_address[member], case.id, False), {OK})
            elif action != "silent":
                self.do_commit(case.id, member, side == (action == "with"), {OK})
        if self.pending(case, Ballot.PENDING) and self.roll((False, True)):
            self.advance(self.current(case).commit_deadline - self.audit.now() + 1)
            self.event("commit: deadline waited out")

    def play_reveals(self, case: Case) -> None:
        """Members who committed reveal; some withhold, some try to reveal the other vote."""
        for member in self.pending(case, Ballot.COMMITTED):
            action = self.roll(REVEAL_ACTIONS)
            if action == "withhold":
                continue
            fraud = self.votes[(case.id, member)] == (action == "reveal")
            account = self.by_address[member]
            self.do_reveal(
                case.id,
                member,
                fraud,
                evidence(account, case.id, fraud),
                {OK if action == "reveal" else MISMATCH},
            )
        if self.pending(case, Ballot.COMMITTED) and self.roll((False, True)):
            self.advance(self.current(case).reveal_deadline - self.audit.now() + 1)
            self.event("reveal: deadline waited out (a commitment never revealed)")

    def play_appeal(self, case: Case) -> None:
        """The wrong side or the wrong bond may be refused first; then the losing side appeals, or nobody
        does."""
        r = self.current(case)
        loser, winner = (
            (case.provider, case.challenger)
            if round_result(r) == Outcome.FRAUD
            else (case.challenger, case.provider)
        )
        required = self.p.appeal_bond(case.rounds)
        wrong = self.roll(WRONG_APPEALS)
        if wrong == "winner":
            self.do_appeal(case.id, winner, required, {NOT_APPELLANT})
        elif wrong == "outsider":
            self.do_appeal(case.id, self.outsider.address, required, {NOT_APPELLANT})
        elif wrong == "wrong bond":
            self.do_appeal(
                case.id, loser, self.roll((required // 2, required + 1, self.p.bond)), {WRONG_BOND}
            )
        if self.roll(("appeal", "appeal", "appeal", "wait")) == "wait":
            self.advance(r.reveal_deadline + self.p.appealPeriod - self.audit.now() + 1)
            self.event("appeal: window waited out")
        else:
            size = self.p.round_size(case.rounds)
            pool = self.pool_outcome(case.provider, case.challenger, case.seated(), size)
            self.do_appeal(case.id, loser, required, {pool})

    def pending(self, case: Case, state: Ballot) -> list[str]:
        """Members of the current round whose ballot is `state`."""
        if len(case.committees) < case.rounds:
            return []
        return [m for m in case.committees[-1] if self.ballots[(case.id, m)][1] == state]

    # -- disputes, aimed anywhere -------------------------------------------------------------------

    def op_open(self) -> None:
        fresh = [r for r in self.records if r.index not in self.leaves]
        record = self.roll([*fresh, *self.records])
        who = self.roll(("challenger", "validator", "provider itself"))
        challenger = {
            "challenger": self.roll(self.challengers),
            "validator": self.roll(self.validators),
            "provider itself": record.provider,
        }[who]
        bond = self.roll(("right", "one wei short", "double"))
        value = {"right": self.p.bond, "one wei short": self.p.bond - 1, "double": 2 * self.p.bond}[bond]
        self.do_open(record, challenger, value)

    def op_draw(self) -> None:
        dispute_id = self.pick_dispute()
        self.do_draw(
            dispute_id, self.outcomes(dispute_id, lambda ph: OK if ph == Phase.DRAW else WRONG_PHASE)
        )

    def op_vote(self) -> None:
        """Someone (a member or not) commits, abstains, or commits to zero."""
        dispute_id = self.pick_dispute()
        case = self.cases.get(dispute_id)
        members = case.committees[-1] if case and len(case.committees) == case.rounds else []
        member = self.roll([*members, *(v.address for v in self.validators)])
        kind = self.roll(("commit", "abstain", "zero"))
        outcomes = self.outcomes(
            dispute_id, lambda ph: self.member_outcome(dispute_id, member, ph, Phase.COMMIT, Ballot.PENDING)
        )
        if kind == "zero":
            outcomes = {ZERO_HASH if o is OK else o for o in outcomes}
            self.do_commit(dispute_id, member, True, outcomes, commitment=ZERO)
        elif kind == "abstain":
            self.do_abstain(
                dispute_id, member, evidence(self.by_address[member], dispute_id, False), outcomes
            )
        else:
            self.do_commit(dispute_id, member, self.roll((False, True)), outcomes)

    def op_reveal(self) -> None:
        """Someone (a member or not) reveals its vote, the other vote, or with no evidence."""
        dispute_id = self.pick_dispute()
        case = self.cases.get(dispute_id)
        members = case.committees[-1] if case and len(case.committees) == case.rounds else []
        member = self.roll([*members, *(v.address for v in self.validators)])
        kind = self.roll(("true", "forged", "no evidence"))
        committed = self.votes.get((dispute_id, member))
        fraud = self.roll((False, True)) if committed is None else committed
        if kind == "forged":
            fraud = not fraud
        evidence_hash = (
            ZERO if kind == "no evidence" else evidence(self.by_address[member], dispute_id, fraud)
        )

        def predict(phase: Phase) -> str | None:
            outcome = self.member_outcome(dispute_id, member, phase, Phase.REVEAL, Ballot.COMMITTED)
            if outcome is not OK:
                return outcome
            if evidence_hash == ZERO:
                return ZERO_HASH
            return OK if fraud == committed else MISMATCH

        self.do_reveal(dispute_id, member, fraud, evidence_hash, self.outcomes(dispute_id, predict))

    def op_appeal(self) -> None:
        dispute_id = self.pick_dispute()
        who = self.roll(("provider", "challenger", "outsider"))
        bond = self.roll(("right", "half", "one wei more"))
        case = self.cases.get(dispute_id)
        if case is None:
            caller, required, result = self.challengers[0].address, self.p.bond, Outcome.NO_QUORUM
        else:
            caller = {"provider": case.provider, "challenger": case.challenger}.get(
                who, self.outsider.address
            )
            required = self.p.appeal_bond(case.rounds)
            result = round_result(self.current(case))
        value = {"right": required, "half": required // 2, "one wei more": required + 1}[bond]

        def predict(phase: Phase) -> str | None:
            assert case is not None
            if phase != Phase.APPEAL:
                return WRONG_PHASE
            if caller != (case.provider if result == Outcome.FRAUD else case.challenger):
                return NOT_APPELLANT
            if value != required:
                return WRONG_BOND
            size = self.p.round_size(case.rounds)
            return self.pool_outcome(case.provider, case.challenger, case.seated(), size)

        self.do_appeal(dispute_id, caller, value, self.outcomes(dispute_id, predict))

    def op_resolve(self) -> None:
        dispute_id = self.pick_dispute()
        predict: Callable[[Phase], str | None] = lambda ph: OK if ph == Phase.RESOLVABLE else WRONG_PHASE  # noqa: E731
        self.do_resolve(dispute_id, self.outcomes(dispute_id, predict))

    def member_outcome(
        self, dispute_id: int, member: str, phase: Phase, required: Phase, state: Ballot
    ) -> str | None:
        """DisputeGame._member: the phase, then membership of the current round, then the ballot."""
        if phase != required:
            return WRONG_PHASE
        round_, ballot = self.ballots.get((dispute_id, member), (0, Ballot.NOT_MEMBER))
        if ballot == Ballot.NOT_MEMBER or round_ != self.cases[dispute_id].rounds - 1:
            return NOT_MEMBER
        return OK if ballot == state else WRONG_BALLOT

    # -- stakes, money, time and the log ------------------------------------------------------------

    def op_stake(self) -> None:
        account = self.roll(self.people)
        natural = Role.PROVIDER if account in self.providers else Role.VALIDATOR
        other = self.roll((False, True))
        role = Role(3 - natural) if other else natural
        self.do_stake(account, role, self.roll(STAKES))

    def op_unstake(self) -> None:
        staked = [p for p in self.people if self.view.stake_of(p.address).active]
        account = self.roll(staked if staked and self.roll((True, True, False)) else self.people)
        s = self.view.stake_of(account.address)
        kind = self.roll(("all", "half", "all but 1 wei", "more than active", "nothing", "a quarter"))
        amount = {
            "all": s.active,
            "half": s.active // 2,
            "all but 1 wei": max(s.active - 1, 0),
            "more than active": s.active + 1,
            "nothing": 0,
            "a quarter": s.active // 4,
        }[kind]
        minimum = self.p.minProviderStake if s.role == Role.PROVIDER else self.p.minValidatorStake
        remaining = s.active - amount
        if amount == 0:
            want = "StakeRegistryZeroAmount"
        elif amount > s.active:
            want = "StakeRegistryInsufficientStake"
        elif 0 < remaining < minimum:
            want = "StakeRegistryRemainderBelowMinimum"
        else:
            want = OK
        self.attempt(
            "unstake",
            f"{amount} of {account.address} ({s.active} active)",
            lambda: self.client(account).request_unstake(amount),
            {want},
            self.watch_account(account.address),
        )

    def op_withdraw_stake(self) -> None:
        stakes = {p.address: self.view.stake_of(p.address) for p in self.people}
        unbonding = [p for p in self.people if stakes[p.address].unbonding]
        free = [p for p in unbonding if stakes[p.address].open_disputes == 0]
        kind = self.roll(("free", "free", "unbonding", "anyone"))  # free: in no open dispute
        account = self.roll({"free": free, "unbonding": unbonding}.get(kind) or self.people)
        s = self.view.stake_of(account.address)
        if s.unbonding and self.roll(("wait", "now")) == "wait":
            self.advance(max(s.unbonding_ends - self.audit.now() + 1, 1))
        self.do_withdraw_stake(account)

    def op_withdraw(self) -> None:
        owed = [p for p in self.everyone if self.view.credits(p.address)]
        self.do_withdraw(self.roll(owed if owed and self.roll((True, True, False)) else self.everyone))

    def op_exodus(self) -> None:
        """Several validators unstake everything at once: the pool may get too small for a committee."""
        staked = [v for v in self.validators if self.view.stake_of(v.address).active]
        for v in staked[: self.roll((2, 3, 6))]:
            active = self.view.stake_of(v.address).active
            self.attempt(
                "unstake",
                f"all {active} of {v.address}",
                lambda v=v, a=active: self.client(v).request_unstake(a),
                {OK},
            )

    def op_rejoin(self) -> None:
        """Validators with nothing active stake again."""
        for v in self.validators:
            if self.view.stake_of(v.address).active == 0:
                self.do_stake(v, Role.VALIDATOR, self.roll(VALIDATOR_STAKES))

    def op_advance(self) -> None:
        self.advance(self.roll(SECONDS))

    def op_anchor(self) -> None:
        provider = self.roll(self.providers)
        self.new_record(provider, self.roll((0, 1, 2)))

    def new_record(self, provider: LocalAccount, filler: int) -> Record:
        self.log.append_filler(filler)
        record = self.log.append(provider)
        self.log.anchor()
        self.records.append(record)
        return record

    # -- the operations, with their model -----------------------------------------------------------

    def do_open(self, record: Record, challenger: LocalAccount, value: int) -> None:
        checkpoint = self.log.covering(record.index)
        provider = self.view.stake_of(record.provider.address)
        pool = self.pool_outcome(record.provider.address, challenger.address, (), self.p.committeeSize)

        def predict(t: int) -> str | None:  # DisputeGame.openDispute, check by check
            if value != self.p.bond:
                return WRONG_BOND
            if challenger.address == record.provider.address:
                return "DisputeGameSelfDispute"
            if provider.role != Role.PROVIDER or provider.active + provider.unbonding == 0:
                return "DisputeGameProviderNotStaked"
            if t > checkpoint.timestamp + self.p.disputeWindow:
                return "DisputeGameWindowClosed"
            previous = self.leaves.get(record.index)
            if previous is not None:
                outcome = self.cases[previous].outcome
                if outcome == Outcome.OPEN:
                    return "DisputeGameEntryDisputed"
                if outcome != Outcome.NO_QUORUM:
                    return "DisputeGameEntrySettled"
            return pool

        t = self.now()
        sent = self.attempt(
            "open",
            f"entry {record.index} by {challenger.address} with {value} wei",
            lambda: self.client(challenger).open_dispute(
                record.index,
                checkpoint,
                record.provider.address,
                record.digest,
                record.canonical,
                record.signature,
                self.log.proof(record.index, checkpoint),
                bond=value,
            ),
            {predict(t), predict(t + MARGIN)},
        )
        if sent:
            dispute_id = int(sent.event("DisputeOpened")["disputeId"])
            assert dispute_id == len(self.cases) + 1
            self.cases[dispute_id] = Case(dispute_id, record, challenger.address, value)
            self.leaves[record.index] = dispute_id

    def do_draw(self, dispute_id: int, outcomes: Collection[str | None]) -> None:
        sent = self.attempt(
            "draw",
            f"#{dispute_id}",
            lambda: self.client(self.outsider).draw(dispute_id),
            outcomes,
            self.watch_case(dispute_id),
        )
        if sent:
            case = self.cases[dispute_id]
            drawn = sent.event("CommitteeDrawn")
            committee = [str(m) for m in drawn["committee"]]
            assert drawn["round"] == case.rounds - 1
            assert len(committee) in (0, self.p.round_size(case.rounds - 1)), committee
            assert len(set(committee)) == len(committee)
            assert not set(committee) & {case.provider, case.challenger, *case.seated()}
            case.committees.append(committee)
            for member in committee:
                self.ballots[(dispute_id, member)] = (case.rounds - 1, Ballot.PENDING)
            if not committee:
                self.event(f"draw: pool too small for round {case.rounds - 1}, which ends without a quorum")

    def do_commit(
        self,
        dispute_id: int,
        member: str,
        fraud: bool,
        outcomes: Collection[str | None],
        commitment: bytes | None = None,
    ) -> None:
        account = self.by_address[member]
        if commitment is None:
            evidence_hash = evidence(account, dispute_id, fraud)
            commitment = vote_commitment(dispute_id, member, fraud, evidence_hash, salt(account, dispute_id))
        sent = self.attempt(
            "commit",
            f"#{dispute_id} by {member}",
            lambda: self.client(account).commit_vote(dispute_id, commitment),
            outcomes,
            self.watch_case(dispute_id, member),
        )
        if sent:
            self.ballots[(dispute_id, member)] = (self.cases[dispute_id].rounds - 1, Ballot.COMMITTED)
            self.votes[(dispute_id, member)] = fraud

    def do_abstain(
        self, dispute_id: int, member: str, reason: bytes, outcomes: Collection[str | None]
    ) -> None:
        account = self.by_address[member]
        sent = self.attempt(
            "abstain",
            f"#{dispute_id} by {member}",
            lambda: self.client(account).abstain(dispute_id, reason),
            outcomes,
            self.watch_case(dispute_id, member),
        )
        if sent:
            self.ballots[(dispute_id, member)] = (self.cases[dispute_id].rounds - 1, Ballot.ABSTAINED)

    def do_reveal(
        self,
        dispute_id: int,
        member: str,
        fraud: bool,
        evidence_hash: bytes,
        outcomes: Collection[str | None],
    ) -> None:
        account = self.by_address[member]
        sent = self.attempt(
            "reveal",
            f"#{dispute_id} by {member}: fraud={fraud}",
            lambda: self.client(account).reveal_vote(
                dispute_id, fraud, evidence_hash, salt(account, dispute_id)
            ),
            outcomes,
            self.watch_case(dispute_id, member),
        )
        if sent:
            assert self.votes[(dispute_id, member)] == fraud
            state = Ballot.FRAUD if fraud else Ballot.HONEST
            self.ballots[(dispute_id, member)] = (self.cases[dispute_id].rounds - 1, state)

    def do_appeal(self, dispute_id: int, caller: str, value: int, outcomes: Collection[str | None]) -> None:
        account = self.by_address[caller]
        sent = self.attempt(
            "appeal",
            f"#{dispute_id} by {caller} with {value} wei ({self.pool_seen})",
            lambda: self.client(account).transact("appeal", dispute_id, value=value),
            outcomes,
            self.watch_case(dispute_id),
        )
        if sent:
            case = self.cases[dispute_id]
            appealed = sent.event("DisputeAppealed")
            assert (appealed["round"], appealed["bond"]) == (case.rounds, value)
            case.rounds += 1
            case.locked += value
            self.event("appeal: by the provider" if caller == case.provider else "appeal: by the challenger")

    def do_resolve(self, dispute_id: int, outcomes: Collection[str | None]) -> None:
        sent = self.attempt(
            "resolve",
            f"#{dispute_id}",
            lambda: self.client(self.outsider).resolve(dispute_id),
            outcomes,
            self.watch_case(dispute_id),
        )
        if sent:
            case = self.cases[dispute_id]
            results = [round_result(self.view.round(dispute_id, k)) for k in range(case.rounds)]
            decided = [k for k, result in enumerate(results) if result != Outcome.NO_QUORUM]
            want = (results[decided[-1]], decided[-1]) if decided else (Outcome.NO_QUORUM, 0)
            resolved = sent.event("DisputeResolved")
            assert (resolved["outcome"], resolved["decidingRound"]) == want
            case.outcome = want[0]
            self.event(f"resolve: {case.outcome.name} after {case.rounds} round(s)")
            left = self.view.stake_of(case.provider)
            if case.outcome == Outcome.FRAUD and left.active + left.unbonding == 0:
                self.emptied.add(case.provider)
                self.event("resolve: provider slashed to nothing")

    def do_stake(self, account: LocalAccount, role: Role, amount: int) -> None:
        s = self.view.stake_of(account.address)
        minimum = self.p.minProviderStake if role == Role.PROVIDER else self.p.minValidatorStake
        if amount == 0:
            want = "StakeRegistryZeroAmount"
        elif s.role not in (Role.NONE, role):
            want = "StakeRegistryRoleMismatch"
        elif s.active + amount < minimum:
            want = "StakeRegistryBelowMinimum"
        else:
            want = OK
        if self.attempt(
            f"stake {role.name.lower()}",
            f"{amount} by {account.address}",
            lambda: self.client(account).stake(role, amount),
            {want},
            self.watch_account(account.address),
        ):
            self.emptied.discard(account.address)

    def do_withdraw_stake(self, account: LocalAccount) -> None:
        s = self.view.stake_of(account.address)
        credit = self.view.credits(account.address)

        def predict(t: int) -> str | None:
            if s.unbonding == 0:
                return "StakeRegistryNothingUnbonding"
            if t < s.unbonding_ends:
                return "StakeRegistryStillUnbonding"
            return "StakeRegistryOpenDisputes" if s.open_disputes else OK

        t = self.now()
        sent = self.attempt(
            "withdraw stake",
            f"{s.unbonding} of {account.address}",
            lambda: self.client(account).withdraw_stake(),
            {predict(t), predict(t + MARGIN)},
            self.watch_account(account.address),
        )
        if sent:
            assert self.view.credits(account.address) == credit + s.unbonding

    def do_withdraw(self, account: LocalAccount) -> None:
        credit = self.view.credits(account.address)
        before = self.balance(account.address)
        sent = self.attempt(
            "withdraw",
            f"{credit} by {account.address}",
            lambda: self.client(account).withdraw(),
            {OK if credit else "PullPaymentsNothingToWithdraw"},
            self.watch_account(account.address),
        )
        if sent:
            assert self.balance(account.address) == before + credit - sent.gas_cost
            assert self.view.credits(account.address) == 0

    # -- the invariant ------------------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        totals = self.view.totals()
        assert totals.solvent, totals
        assert totals.reserve >= self.reserve, "the reserve shrank"
        self.reserve = totals.reserve
        assert self.view.dispute_count() == len(self.cases)
        t = self.audit.now()
        locked = 0
        for dispute_id in self.open_ids():
            case = self.cases[dispute_id]
            d = self.view.dispute(dispute_id)
            assert (d.outcome, d.rounds) == (case.outcome, case.rounds)
            rounds = [self.view.round(dispute_id, k) for k in range(d.rounds)]
            assert sum(r.bond for r in rounds) == case.locked
            assert [list(r.committee) for r in rounds if r.drawn] == case.committees
            locked += case.locked
            assert self.view.phase(dispute_id) == phase_at(case, rounds[-1], t, self.p)
        assert totals.bonds == locked

    def teardown(self) -> None:
        interrupted = sys.exc_info()[1]  # hypothesis runs teardown in a `finally`
        try:
            if isinstance(interrupted, Exception):  # the run failed: show what it did, check no more
                if not Solvency.reported:  # committees are drawn at random: a run may not replay
                    Solvency.reported = True
                    print("The first failing run:", *self.journal, sep="\n  ", file=sys.stderr)
            elif interrupted is None:  # (else hypothesis gave the run up: it had drawn too much)
                self.settling = True
                self.accounts_add_up()
                self.settle_every_dispute()
                self.books_balance()
                self.everyone_leaves()
        finally:
            self.audit.node.revert(self.snapshot)

    def accounts_add_up(self) -> None:
        """Each total is the sum over the accounts; open-dispute counts and ballots are the model's."""
        totals = self.view.totals()
        stakes = {a.address: self.view.stake_of(a.address) for a in self.everyone}
        assert totals.staked == sum(s.active for s in stakes.values())
        assert totals.unbonding == sum(s.unbonding for s in stakes.values())
        assert totals.credits == sum(self.view.credits(a.address) for a in self.everyone)
        open_cases = [self.cases[i] for i in self.open_ids()]
        assert totals.bonds == sum(c.locked for c in open_cases)
        for address, s in stakes.items():
            involved = sum((c.provider == address) + (address in c.seated()) for c in open_cases)
            assert s.open_disputes == involved, address
        for (dispute_id, member), (round_, state) in self.ballots.items():
            assert self.view.ballot_of(dispute_id, member) == BallotInfo(round_, state)

    def settle_every_dispute(self) -> None:
        """Draws what is left to draw, waits out every phase and resolves every open dispute."""
        for dispute_id in self.open_ids():
            case = self.cases[dispute_id]
            for _ in range(5 * (self.p.appealRounds + 1)):
                phase = self.view.phase(dispute_id)
                r, now = self.current(case), self.audit.now()
                if phase == Phase.DRAW:
                    self.do_draw(dispute_id, {OK})
                elif phase == Phase.COMMIT:
                    self.advance(r.commit_deadline - now + 1)
                elif phase == Phase.REVEAL:
                    self.advance(r.reveal_deadline - now + 1)
                elif phase == Phase.APPEAL:
                    self.advance(r.reveal_deadline + self.p.appealPeriod - now + 1)
                elif phase == Phase.RESOLVABLE:
                    self.do_resolve(dispute_id, {OK})
                else:
                    break
            assert case.outcome != Outcome.OPEN, f"dispute {dispute_id} did not settle"

    def everyone_leaves(self) -> None:
        """With every dispute over, every wei but the reserve can be withdrawn."""
        for person in self.people:
            active = self.view.stake_of(person.address).active
            if active:
                self.attempt(
                    "unstake",
                    "everything",
                    lambda p=person, a=active: self.client(p).request_unstake(a),
                    {OK},
                )
        self.advance(self.p.unbondingPeriod + 1)
        for person in self.people:
            if self.view.stake_of(person.address).unbonding:
                self.do_withdraw_stake(person)
        for person in self.everyone:
            if self.view.credits(person.address):
                self.do_withdraw(person)
        totals = self.view.totals()
        assert (totals.staked, totals.unbonding, totals.bonds, totals.credits) == (0, 0, 0, 0), totals
        assert totals.balance == totals.reserve == self.reserve, totals
        for person in self.people:
            s = self.view.stake_of(person.address)
            assert (s.active, s.unbonding, s.open_disputes) == (0, 0, 0), person.address
            # withdrawStake gives the role up; a provider slashed to nothing has nothing to withdraw
            # and keeps its role (it cannot stake as a validator any more).
            assert s.role == Role.NONE or person.address in self.emptied, person.address


class TestSolvency(Solvency.TestCase):  # type: ignore[misc,valid-type]
    """The machine as a test case, so that --hypothesis-show-statistics shows what the runs covered."""

    settings = settings(
        max_examples=12,
        stateful_step_count=60,
        deadline=None,
        database=None,
        derandomize=True,  # the same choices every time: a bounded cost in make test
        suppress_health_check=[HealthCheck.too_slow],
    )

    @pytest.fixture(autouse=True)
    def _on_chain(self, audit: AuditChain) -> None:
        Solvency.audit = audit
