"""Disputes from opening to withdrawal: fraud, honest, no quorum and expired, with exact balances.

TEST_PARAMETERS: bond 0.1 ETH, slash 1 ETH, validator penalty 0.01 ETH, challenger reward 50% of
the slash, provider share 50% of a forfeited bond, committee 3, quorum 2, voting period 500 s.
Every amount below is derived by hand from those numbers; wei remainders of the integer splits go to
the challenger (fraud, no quorum) or the provider (honest).
"""

from __future__ import annotations

from collections import defaultdict

from eth_account.signers.local import LocalAccount

from anchor.chain.client import Ballot, Outcome
from anchor.chain.parameters import ETHER
from anchor.chain.transactions import Sent
from tests.contracts.conftest import PROVIDER_STAKE, VALIDATOR_STAKE, Game
from tests.contracts.scenario import expected_committee, open_dispute

BOND = ETHER // 10
SLASH = ETHER
PENALTY = ETHER // 100
EVIDENCE = b"\x11" * 32


class Ledger:
    """ETH balances of the participants, and what each spent on gas since the start."""

    def __init__(self, game: Game) -> None:
        self.game = game
        self.start = {a.address: game.audit.balance(a.address) for a in self._people()}
        self.gas: dict[str, int] = defaultdict(int)

    def _people(self) -> list[LocalAccount]:
        g = self.game
        return [g.provider, g.challenger, g.outsider, *g.validators]

    def paid(self, account: LocalAccount, sent: Sent) -> Sent:
        self.gas[account.address] += sent.gas_cost
        return sent

    def change(self, account: LocalAccount) -> int:
        """Balance change, gas added back: what the contract paid (or took) net."""
        return (
            self.game.audit.balance(account.address) - self.start[account.address] + self.gas[account.address]
        )


def _open(game: Game, ledger: Ledger, record_index: int = 0) -> tuple[int, list[LocalAccount]]:
    record = game.records[record_index]
    dispute_id, sent = open_dispute(game.audit, game.log, record, game.challenger)
    ledger.paid(game.challenger, sent)
    opened = sent.event("DisputeOpened")
    validators = game.audit.client().validators()
    want = expected_committee(game.audit, sent, validators, game.provider.address, game.challenger.address)
    assert list(opened["committee"]) == want
    assert opened["leafIndex"] == record.index and opened["provider"] == game.provider.address
    assert opened["bond"] == BOND and opened["recordDigest"] == record.digest
    return dispute_id, [game.validator(a) for a in want]


def _vote(game: Game, ledger: Ledger, dispute_id: int, member: LocalAccount, fraud: bool) -> None:
    sent = game.audit.client(member).submit_verdict(dispute_id, fraud, EVIDENCE)
    ledger.paid(member, sent)
    assert sent.event("VerdictSubmitted") == {
        "disputeId": dispute_id,
        "validator": member.address,
        "fraud": fraud,
        "evidenceHash": EVIDENCE,
    }


def _withdraw_all(game: Game, ledger: Ledger, accounts: list[LocalAccount]) -> None:
    client = game.audit.client()
    for account in accounts:
        if client.credits(account.address):
            ledger.paid(account, game.audit.client(account).withdraw())
            assert client.credits(account.address) == 0


def _assert_settled(game: Game, dispute_id: int) -> None:
    client = game.audit.client()
    totals = client.totals()
    assert totals.solvent
    assert totals.bonds == 0
    assert client.stake_of(game.provider.address).open_disputes == 0
    for v in game.validators:
        assert client.stake_of(v.address).open_disputes == 0
    assert client.dispute(dispute_id).outcome != Outcome.OPEN


def test_fraud_all_vote_fraud(game: Game) -> None:
    ledger = Ledger(game)
    dispute_id, committee = _open(game, ledger)
    client = game.audit.client()
    assert client.totals().bonds == BOND
    assert client.stake_of(game.provider.address).open_disputes == 1
    for member in committee:
        assert client.ballot_of(dispute_id, member.address) == Ballot.PENDING
        _vote(game, ledger, dispute_id, member, True)
    sent = ledger.paid(game.outsider, game.audit.client(game.outsider).resolve(dispute_id))  # anyone may
    resolved = sent.event("DisputeResolved")
    assert (
        resolved["outcome"] == Outcome.FRAUD and resolved["slashed"] == SLASH and resolved["penalties"] == 0
    )

    share, rest = divmod(SLASH // 2, 3)
    assert client.credits(game.challenger.address) == BOND + SLASH // 2 + rest
    for member in committee:
        assert client.credits(member.address) == share
    provider_stake = client.stake_of(game.provider.address)
    assert provider_stake.active == PROVIDER_STAKE - SLASH and provider_stake.unbonding == 0
    _assert_settled(game, dispute_id)

    _withdraw_all(game, ledger, [game.challenger, *committee])
    assert ledger.change(game.challenger) == SLASH // 2 + rest  # the bond came back
    for member in committee:
        assert ledger.change(member) == share
    assert ledger.change(game.provider) == 0  # its loss is stake, still inside the contract
    assert ledger.change(game.outsider) == 0
    assert client.totals().credits == 0
    assert client.totals().balance == PROVIDER_STAKE - SLASH + 5 * VALIDATOR_STAKE


def test_fraud_with_a_dissenting_member(game: Game) -> None:
    ledger = Ledger(game)
    dispute_id, committee = _open(game, ledger)
    _vote(game, ledger, dispute_id, committee[0], True)
    _vote(game, ledger, dispute_id, committee[1], False)
    _vote(game, ledger, dispute_id, committee[2], True)
    resolved = game.audit.client(game.outsider).resolve(dispute_id).event("DisputeResolved")
    assert (resolved["outcome"], resolved["fraudVotes"], resolved["honestVotes"]) == (Outcome.FRAUD, 2, 1)
    assert resolved["penalties"] == PENALTY

    client = game.audit.client()
    pool = SLASH // 2 + PENALTY
    share, rest = divmod(pool, 2)
    assert client.credits(game.challenger.address) == BOND + SLASH // 2 + rest
    assert client.credits(committee[0].address) == share == client.credits(committee[2].address)
    assert client.credits(committee[1].address) == 0
    assert client.stake_of(committee[1].address).active == VALIDATOR_STAKE - PENALTY
    _assert_settled(game, dispute_id)
    _withdraw_all(game, ledger, [game.challenger, committee[0], committee[2]])
    assert ledger.change(committee[0]) == share
    assert ledger.change(committee[1]) == 0


def test_honest_after_the_deadline_with_an_absent_member(game: Game) -> None:
    ledger = Ledger(game)
    dispute_id, committee = _open(game, ledger)
    _vote(game, ledger, dispute_id, committee[0], False)
    _vote(game, ledger, dispute_id, committee[2], False)
    game.audit.advance(game.audit.parameters.votingPeriod + 1)
    resolved = game.audit.client(game.outsider).resolve(dispute_id).event("DisputeResolved")
    assert (resolved["outcome"], resolved["slashed"], resolved["penalties"]) == (Outcome.HONEST, 0, PENALTY)

    client = game.audit.client()
    provider_share = BOND // 2
    share, rest = divmod(BOND - provider_share + PENALTY, 2)
    assert client.credits(game.provider.address) == provider_share + rest
    assert client.credits(committee[0].address) == share == client.credits(committee[2].address)
    assert client.credits(committee[1].address) == 0
    assert client.credits(game.challenger.address) == 0
    assert client.stake_of(committee[1].address).active == VALIDATOR_STAKE - PENALTY
    assert client.stake_of(game.provider.address).active == PROVIDER_STAKE
    _assert_settled(game, dispute_id)
    _withdraw_all(game, ledger, [game.provider, committee[0], committee[2]])
    assert ledger.change(game.challenger) == -BOND
    assert ledger.change(game.provider) == provider_share + rest
    assert ledger.change(committee[2]) == share


def test_no_quorum_refunds_the_bond(game: Game) -> None:
    ledger = Ledger(game)
    dispute_id, committee = _open(game, ledger)
    _vote(game, ledger, dispute_id, committee[0], True)
    _vote(game, ledger, dispute_id, committee[1], False)
    game.audit.advance(game.audit.parameters.votingPeriod + 1)
    resolved = game.audit.client(game.outsider).resolve(dispute_id).event("DisputeResolved")
    assert (resolved["outcome"], resolved["fraudVotes"], resolved["honestVotes"]) == (Outcome.NO_QUORUM, 1, 1)

    client = game.audit.client()
    share, rest = divmod(PENALTY, 2)  # the absent member's penalty goes to those who voted
    assert client.credits(game.challenger.address) == BOND + rest
    assert client.credits(committee[0].address) == share == client.credits(committee[1].address)
    assert client.stake_of(committee[2].address).active == VALIDATOR_STAKE - PENALTY
    assert client.stake_of(game.provider.address).active == PROVIDER_STAKE
    _assert_settled(game, dispute_id)
    _withdraw_all(game, ledger, [game.challenger, committee[0], committee[1]])
    assert ledger.change(game.challenger) == rest
    # After no quorum the entry may be disputed again.
    again, _ = _open(game, ledger)
    assert again == dispute_id + 1


def test_expired_without_votes(game: Game) -> None:
    ledger = Ledger(game)
    dispute_id, committee = _open(game, ledger)
    game.audit.advance(game.audit.parameters.votingPeriod + 1)
    resolved = game.audit.client(game.outsider).resolve(dispute_id).event("DisputeResolved")
    assert (resolved["outcome"], resolved["penalties"]) == (Outcome.NO_QUORUM, 3 * PENALTY)

    client = game.audit.client()
    assert client.credits(game.challenger.address) == BOND + 3 * PENALTY
    for member in committee:
        assert client.stake_of(member.address).active == VALIDATOR_STAKE - PENALTY
        assert client.credits(member.address) == 0
    _assert_settled(game, dispute_id)
    _withdraw_all(game, ledger, [game.challenger])
    assert ledger.change(game.challenger) == 3 * PENALTY
    assert client.totals().balance == PROVIDER_STAKE + 5 * VALIDATOR_STAKE - 3 * PENALTY
