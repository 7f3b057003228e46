"""The payoff table of docs/contracts.md, row by row, with exact balances on the real contract.

TEST_PARAMETERS: bond B = 0.1 ETH (an appeal to round 1 locks 2B), slash S = 1 ETH, challenger reward
50% of S, provider share 50% of a forfeited challenger bond, penalties: wrong vote W = 0.01, absence
A = 0.02, abstention Ab = 0.005 ETH; committees of 3 (quorum 2) then 7 (quorum 5).

Each row plays a dispute through the CLI-free client (draw, commit, reveal, appeal, resolve), everyone
withdraws, and every participant's payoff (ether received less ether paid, gas added back, plus the
change of its stake) must be exactly the row's; wei nobody earned must be in the reserve.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from anchor.chain.client import Outcome, Phase
from anchor.chain.parameters import ETHER
from anchor.chain.transactions import Sent
from tests.contracts.conftest import Game
from tests.contracts.scenario import draw, finish, open_dispute, play_round

B = ETHER // 10
S = ETHER
W = ETHER // 100
A = ETHER // 50
AB = ETHER // 200
REWARD = S // 2


@dataclass(frozen=True)
class Row:
    """One row: the seats' actions per round (round 0: 3 seats, round 1: 7), who appeals after each
    round but the last, and the expected payoffs by role: "provider", "challenger", "rR.K" (seat K of
    round R), "reserve"."""

    name: str
    rounds: list[list[str]]
    payoffs: dict[str, int]
    outcome: Outcome
    appellants: tuple[str, ...] = ()


def seats(prefix: str, count: int, value: int) -> dict[str, int]:
    return {f"{prefix}.{k}": value for k in range(count)}


ROWS = [
    Row(
        "fraud-unanimous",
        [["fraud"] * 3],
        {
            "provider": -S,
            "challenger": REWARD,
            **seats("r0", 3, (S - REWARD) // 3),
            "reserve": (S - REWARD) % 3,
        },
        Outcome.FRAUD,
    ),
    Row(
        "fraud-with-a-dissenter",
        [["fraud", "fraud", "honest"]],
        {
            "provider": -S,
            "challenger": REWARD,
            "r0.0": (S - REWARD + W) // 2,
            "r0.1": (S - REWARD + W) // 2,
            "r0.2": -W,
            "reserve": 0,
        },
        Outcome.FRAUD,
    ),
    Row(
        "honest-with-an-absent-member",
        [["honest", "honest", "absent"]],
        {
            "provider": B // 2,
            "challenger": -B,
            "r0.0": (B // 2 + A) // 2,
            "r0.1": (B // 2 + A) // 2,
            "r0.2": -A,
            "reserve": 0,
        },
        Outcome.HONEST,
    ),
    Row(
        "commit-without-reveal-is-absence",
        [["fraud", "fraud", "commit-only"]],
        {
            "provider": -S,
            "challenger": REWARD,
            "r0.0": (S - REWARD + A) // 2,
            "r0.1": (S - REWARD + A) // 2,
            "r0.2": -A,
            "reserve": 0,
        },
        Outcome.FRAUD,
    ),
    Row(
        "no-quorum-penalties-go-to-voters",
        [["fraud", "honest", "abstain"]],
        {"provider": 0, "challenger": 0, "r0.0": AB // 2, "r0.1": AB // 2, "r0.2": -AB, "reserve": 0},
        Outcome.NO_QUORUM,
    ),
    Row(
        "nobody-can-vote-abstentions-to-the-reserve",
        [["abstain"] * 3],
        {"provider": 0, "challenger": 0, **seats("r0", 3, -AB), "reserve": 3 * AB},
        Outcome.NO_QUORUM,
    ),
    Row(
        "silence-to-the-reserve-not-the-challenger",
        [["absent"] * 3],
        {"provider": 0, "challenger": 0, **seats("r0", 3, -A), "reserve": 3 * A},
        Outcome.NO_QUORUM,
    ),
    Row(
        "provider-appeals-and-loses",
        [["fraud"] * 3, ["fraud"] * 5 + ["honest"] * 2],
        {
            "provider": -S - 2 * B,
            "challenger": REWARD,
            **seats("r0", 3, (S - REWARD + 2 * B + 2 * W) // 8),
            **seats("r1", 5, (S - REWARD + 2 * B + 2 * W) // 8),
            "r1.5": -W,
            "r1.6": -W,
            "reserve": (S - REWARD + 2 * B + 2 * W) % 8,
        },
        Outcome.FRAUD,
        ("provider",),
    ),
    Row(
        "provider-appeals-and-wins",
        [["fraud", "fraud", "honest"], ["honest"] * 5 + ["fraud"] * 2],
        {
            "provider": B // 2,
            "challenger": -B,
            "r0.0": -W,
            "r0.1": -W,
            "r0.2": (B // 2 + 4 * W) // 6,
            **seats("r1", 5, (B // 2 + 4 * W) // 6),
            "r1.5": -W,
            "r1.6": -W,
            "reserve": (B // 2 + 4 * W) % 6,
        },
        Outcome.HONEST,
        ("provider",),
    ),
    Row(
        "appeal-without-quorum-leaves-the-first-round-standing",
        [["fraud"] * 3, ["absent"] * 7],
        {
            "provider": -S - 2 * B,
            "challenger": REWARD,
            **seats("r0", 3, (S - REWARD + 2 * B + 7 * A) // 3),
            **seats("r1", 7, -A),
            "reserve": (S - REWARD + 2 * B + 7 * A) % 3,
        },
        Outcome.FRAUD,
        ("provider",),
    ),
    Row(
        "challenger-appeals-and-wins",
        [["honest", "honest", "fraud"], ["fraud"] * 5 + ["honest"] * 2],
        {
            "provider": -S,
            "challenger": REWARD,
            "r0.0": -W,
            "r0.1": -W,
            "r0.2": (S - REWARD + 4 * W) // 6,
            **seats("r1", 5, (S - REWARD + 4 * W) // 6),
            "r1.5": -W,
            "r1.6": -W,
            "reserve": (S - REWARD + 4 * W) % 6,
        },
        Outcome.FRAUD,
        ("challenger",),
    ),
]


class Ledger:
    """Ether balances and stakes of the participants, and the gas each spent."""

    def __init__(self, game: Game) -> None:
        self.game = game
        client = game.audit.client()
        self.people = [game.provider, game.challenger, game.outsider, *game.validators]
        self.ether = {a.address: game.audit.balance(a.address) for a in self.people}
        self.stake = {a.address: self._stake(a.address) for a in self.people}
        self.reserve = client.totals().reserve
        self.gas: dict[str, int] = defaultdict(int)

    def _stake(self, address: str) -> int:
        s = self.game.audit.client().stake_of(address)
        return s.active + s.unbonding

    def paid(self, account: LocalAccount | str, sent: Sent) -> Sent:
        address = account if isinstance(account, str) else account.address
        self.gas[address] += sent.gas_cost
        return sent

    def payoff(self, address: str) -> int:
        ether = self.game.audit.balance(address) - self.ether[address] + self.gas[address]
        return ether + self._stake(address) - self.stake[address]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_payoff_row(game: Game, row: Row) -> None:
    audit, client = game.audit, game.audit.client()
    ledger = Ledger(game)
    dispute_id, sent = open_dispute(audit, game.log, game.records[0], game.challenger)
    ledger.paid(game.challenger, sent)
    roles: dict[str, str] = {"provider": game.provider.address, "challenger": game.challenger.address}
    by_address = {v.address: v for v in game.validators}
    for index, actions in enumerate(row.rounds):
        committee, sent = draw(audit, dispute_id, game.outsider)  # anyone may draw
        ledger.paid(game.outsider, sent)
        assert len(committee) == len(actions) == audit.parameters.round_size(index)
        for k, member in enumerate(committee):
            roles[f"r{index}.{k}"] = member
        members = {m: by_address[m] for m in committee}
        played = play_round(audit, dispute_id, members, dict(zip(committee, actions, strict=True)))
        for member, txs in played.items():
            for tx in txs:
                ledger.paid(member, tx)
        if index < len(row.rounds) - 1:
            assert client.phase(dispute_id) == Phase.APPEAL
            appellant = game.provider if row.appellants[index] == "provider" else game.challenger
            ledger.paid(appellant, audit.client(appellant).appeal(dispute_id))
    resolved = ledger.paid(game.outsider, finish(audit, dispute_id, game.outsider)).event("DisputeResolved")
    assert resolved["outcome"] == row.outcome

    for person in ledger.people:
        if client.credits(person.address):
            ledger.paid(person, audit.client(person).withdraw())
    totals = client.totals()
    assert totals.solvent and totals.bonds == 0 and totals.credits == 0
    got = {role: ledger.payoff(address) for role, address in roles.items()}
    got["reserve"] = totals.reserve - ledger.reserve
    assert got == row.payoffs
    assert ledger.payoff(game.outsider.address) == 0  # drawing and resolving cost only gas
    for v in game.validators:
        assert client.stake_of(v.address).open_disputes == 0
    assert client.stake_of(game.provider.address).open_disputes == 0
