"""A staked game on the session's ToplocAudit: a provider, twelve validators and an anchored signed log."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from anchor.chain.client import Role
from anchor.chain.parameters import ETHER
from tests.contracts.scenario import Record, SignedLog, stake
from tests.fixtures.chain import AuditChain

PROVIDER_STAKE = 2 * ETHER
VALIDATOR_STAKE = ETHER


@dataclass
class Game:
    audit: AuditChain
    log: SignedLog
    provider: LocalAccount
    challenger: LocalAccount
    outsider: LocalAccount
    validators: list[LocalAccount]
    records: list[Record]

    def validator(self, address: str) -> LocalAccount:
        return next(v for v in self.validators if v.address == address)


@pytest.fixture
def game(audit: AuditChain) -> Game:
    """Provider (account 2) with 2 ETH staked, validators (accounts 10-21: enough for a first round of 3
    and an appeal round of 7) with 1 ETH each, and a log of 13 entries in two checkpoints: records of
    the provider at 3 and 5 (checkpoint 1, size 8) and 10 (checkpoint 2, size 13)."""
    a = audit.accounts
    provider, challenger, outsider = a[2], a[4], a[6]
    validators = a[10:22]
    stake(audit, provider, Role.PROVIDER, PROVIDER_STAKE)
    for v in validators:
        stake(audit, v, Role.VALIDATOR, VALIDATOR_STAKE)
    log = SignedLog(audit)
    log.append_filler(3)
    records = [log.append(provider)]
    log.append_filler(1)
    records.append(log.append(provider))
    log.append_filler(2)
    log.anchor()
    log.append_filler(2)
    records.append(log.append(provider))
    log.append_filler(2)
    log.anchor()
    return Game(audit, log, provider, challenger, outsider, validators, records)
