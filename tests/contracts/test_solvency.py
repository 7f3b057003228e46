"""Solvency under random sequences of operations (hypothesis stateful test on the real contract).

After every step: balance == totalStaked + totalUnbonding + totalBonds + totalCredits, and the bonds
are those of the open disputes. At the end of each run, each total equals the sum over the accounts
that make it up; then every dispute is resolved, everyone unstakes and withdraws, and the contract
must be left with exactly zero wei. Operations the contract refuses must fail with an expected error
and change nothing.

Rules are few and composite (a whole committee votes in one step, cashing out is one step) and each
run starts from random stakes and an anchored record, so most runs reach disputes and resolutions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from anchor.chain.client import Outcome, Role, ToplocAuditClient
from anchor.chain.errors import ContractRevert
from anchor.chain.parameters import ETHER
from tests.contracts.scenario import Record, SignedLog, open_dispute
from tests.fixtures.chain import AuditChain

EVIDENCE = b"\x33" * 32
# Hypothesis favours the first element of sampled_from: put the common case first.
AMOUNTS = st.sampled_from([ETHER, 2 * ETHER, ETHER // 2, 3 * ETHER // 2])
BALLOT = st.sampled_from([True, False, None])  # fraud, honest, abstain


class Solvency(RuleBasedStateMachine):
    audit: AuditChain  # set by the test

    def __init__(self) -> None:
        super().__init__()
        audit = self.audit
        self.snapshot = audit.node.snapshot()
        a = audit.accounts
        self.providers = a[2:4]
        self.validators = a[10:16]
        self.challengers = a[20:22]
        self.people: list[LocalAccount] = [*self.providers, *self.validators, *self.challengers]
        self.view = audit.client()
        self.log = SignedLog(audit)
        self.records: list[Record] = []
        self.disputes: list[int] = []
        self.open: dict[int, int] = {}  # open dispute id -> its leaf index
        self.settled: set[int] = set()  # leaves with a decided dispute: a hint, the chain decides

    def client(self, account: LocalAccount) -> ToplocAuditClient:
        return self.audit.client(account)

    def expect(self, label: str, action: Callable[[], Any], allowed: set[str]) -> bool:
        """Runs `action`; a refusal must be one of `allowed` and change nothing. True if it went through."""
        before = self.view.totals()
        try:
            action()
            event(f"{label}: done")  # --hypothesis-show-statistics shows what the runs covered
            return True
        except ContractRevert as exc:
            assert exc.name in allowed, f"unexpected {exc}"
            assert self.view.totals() == before
            event(f"{label}: {exc.name}")
            return False

    @initialize(validators=st.integers(3, 6), provider_stake=AMOUNTS, validator_stake=AMOUNTS)
    def start(self, validators: int, provider_stake: int, validator_stake: int) -> None:
        self.client(self.providers[0]).stake(Role.PROVIDER, max(provider_stake, ETHER))
        for v in self.validators[:validators]:
            self.client(v).stake(Role.VALIDATOR, validator_stake)
        self.log_and_anchor(0, 2)

    # -- stakes and money ---------------------------------------------------------------------------

    @rule(who=st.integers(0, 7), amount=AMOUNTS)
    def stake(self, who: int, amount: int) -> None:
        """Providers (the first two) and validators add stake; a provider below 1 ETH is refused."""
        account = self.people[who]
        role = Role.PROVIDER if account in self.providers else Role.VALIDATOR
        self.expect(
            f"stake {role.name}",
            lambda: self.client(account).stake(role, amount),
            {"StakeRegistryBelowMinimum"},
        )

    @rule(who=st.integers(0, 7), quarters=st.integers(1, 5))
    def unstake(self, who: int, quarters: int) -> None:
        """Unstakes a quarter to all of the active stake (5 quarters: more than there is)."""
        account = self.people[who]
        active = self.view.stake_of(account.address).active
        amount = max(1, active * quarters // 4)
        self.expect(
            "unstake",
            lambda: self.client(account).request_unstake(amount),
            {"StakeRegistryInsufficientStake", "StakeRegistryRemainderBelowMinimum"},
        )

    @rule(who=st.integers(0, 9))
    def cash_out(self, who: int) -> None:
        """Withdraws matured stake if there is some, then the whole credit, checking the ETH received."""
        account = self.people[who]
        if self.view.stake_of(account.address).unbonding:
            self.expect(
                "withdraw stake",
                lambda: self.client(account).withdraw_stake(),
                {"StakeRegistryStillUnbonding", "StakeRegistryOpenDisputes"},
            )
        credit = self.view.credits(account.address)
        if credit == 0:
            assert not self.expect(
                "withdraw", lambda: self.client(account).withdraw(), {"PullPaymentsNothingToWithdraw"}
            )
            return
        before = self.audit.balance(account.address)
        sent = self.client(account).withdraw()
        assert self.audit.balance(account.address) == before + credit - sent.gas_cost
        event("withdraw: paid")

    @rule(seconds=st.sampled_from([30, 120, 300, 600, 2_100]))
    def advance(self, seconds: int) -> None:
        self.audit.advance(seconds)

    # -- the log and disputes -----------------------------------------------------------------------

    @rule(who=st.integers(0, 1), filler=st.integers(0, 4))
    def log_and_anchor(self, who: int, filler: int) -> None:
        self.log.append_filler(filler)
        self.records.append(self.log.append(self.providers[who]))
        self.log.anchor()

    @precondition(lambda self: self.records)
    @rule(data=st.data(), who=st.integers(0, 1), ballots=st.lists(BALLOT, min_size=3, max_size=3))
    def dispute(self, data: st.DataObject, who: int, ballots: list[bool | None]) -> None:
        """Disputes a record, usually one that is neither disputed nor decided (else it is refused),
        and has its committee vote at once (some members may abstain)."""
        idle = [r for r in self.records if r.index not in self.open.values() and r.index not in self.settled]
        record = data.draw(st.sampled_from(idle or self.records))
        challenger = self.challengers[who]

        def go() -> None:
            dispute_id, _ = open_dispute(self.audit, self.log, record, challenger)
            self.disputes.append(dispute_id)
            self.open[dispute_id] = record.index

        opened = self.expect(
            "open dispute",
            go,
            {
                "DisputeGameWindowClosed",
                "DisputeGameEntryDisputed",
                "DisputeGameEntrySettled",
                "DisputeGameProviderNotStaked",
                "DisputeGameNotEnoughValidators",
            },
        )
        if opened:
            self._votes(self.disputes[-1], ballots)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), ballots=st.lists(BALLOT, min_size=3, max_size=3))
    def votes(self, data: st.DataObject, ballots: list[bool | None]) -> None:
        """Members of an open dispute vote (again, or late)."""
        self._votes(data.draw(st.sampled_from(sorted(self.open))), ballots)

    def _votes(self, dispute_id: int, ballots: list[bool | None]) -> None:
        """Each committee member votes fraud, honest, or not at all."""
        for member, fraud in zip(self.view.dispute(dispute_id).committee, ballots, strict=False):
            if fraud is None:
                continue
            account = next(v for v in self.validators if v.address == member)
            self.expect(
                "vote",
                lambda account=account, fraud=fraud: self.client(account).submit_verdict(
                    dispute_id, fraud, EVIDENCE
                ),
                {"DisputeGameVotingClosed", "DisputeGameAlreadyVoted"},
            )

    @precondition(lambda self: self.disputes)
    @rule(data=st.data(), wait=st.sampled_from([True, False]))
    def resolve(self, data: st.DataObject, wait: bool) -> None:
        """Resolves a dispute, after its deadline when `wait` (refused while it is still running)."""
        dispute_id = data.draw(st.sampled_from(sorted(self.open) or self.disputes))
        if wait:
            self.audit.advance(max(1, self.view.dispute(dispute_id).deadline - self.audit.now() + 1))
        if self.expect(
            "resolve",
            lambda: self.client(self.challengers[0]).resolve(dispute_id),
            {"DisputeGameNotResolvable", "DisputeGameNotOpen"},
        ):
            leaf = self.open.pop(dispute_id)
            outcome = self.view.dispute(dispute_id).outcome
            if outcome != Outcome.NO_QUORUM:
                self.settled.add(leaf)
            event(f"resolved as {outcome.name}")

    # -- the invariant ------------------------------------------------------------------------------

    @invariant()
    def solvent(self) -> None:
        totals = self.view.totals()
        assert totals.balance == totals.staked + totals.unbonding + totals.bonds + totals.credits
        open_bonds = sum(d.bond for d in map(self.view.dispute, self.disputes) if d.outcome == Outcome.OPEN)
        assert totals.bonds == open_bonds

    def teardown(self) -> None:
        try:
            self._totals_add_up()
            self._everyone_leaves()
        finally:
            self.audit.node.revert(self.snapshot)

    def _totals_add_up(self) -> None:
        totals = self.view.totals()
        stakes = [self.view.stake_of(p.address) for p in self.people]
        assert totals.staked == sum(s.active for s in stakes)
        assert totals.unbonding == sum(s.unbonding for s in stakes)
        assert totals.credits == sum(self.view.credits(p.address) for p in self.people)

    def _everyone_leaves(self) -> None:
        """After all disputes end, every wei can be withdrawn."""
        self.audit.advance(self.audit.parameters.votingPeriod + 1)
        for dispute_id in self.disputes:
            if self.view.dispute(dispute_id).outcome == Outcome.OPEN:
                self.client(self.challengers[0]).resolve(dispute_id)
        for person in self.people:
            active = self.view.stake_of(person.address).active
            if active:
                self.client(person).request_unstake(active)
        self.audit.advance(self.audit.parameters.unbondingPeriod + 1)
        for person in self.people:
            if self.view.stake_of(person.address).unbonding:
                self.client(person).withdraw_stake()
            if self.view.credits(person.address):
                self.client(person).withdraw()
        totals = self.view.totals()
        assert (totals.balance, totals.staked, totals.unbonding, totals.bonds, totals.credits) == (
            0,
            0,
            0,
            0,
            0,
        )


def test_solvency_under_random_operations(audit: AuditChain) -> None:
    Solvency.audit = audit
    run_state_machine_as_test(
        Solvency,
        settings=settings(
            max_examples=8,
            stateful_step_count=25,
            deadline=None,
            derandomize=True,  # the same runs every time: a bounded, reproducible cost in make test
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
