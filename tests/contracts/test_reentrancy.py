"""withdraw() against a contract that re-enters it from its receive hook.

The attacker is contracts/test/ReentrantWithdrawer.sol.
"""

from __future__ import annotations

import pytest

from anchor.chain.artifacts import load_artifact
from anchor.chain.deployment import deploy_contract
from anchor.chain.errors import ContractRevert
from anchor.chain.parameters import ETHER
from anchor.chain.revert import RevertDecoder
from anchor.chain.transactions import send_transaction
from tests.fixtures.chain import AuditChain

STAKE = ETHER


class Attacker:
    """The deployed attacker, driven by one of the dev accounts."""

    def __init__(self, audit: AuditChain, swallow: bool) -> None:
        self.audit = audit
        self.owner = audit.accounts[20]
        artifact = load_artifact("ReentrantWithdrawer")
        sent = deploy_contract(audit.w3, self.owner, artifact, (audit.deployment.address, swallow))
        assert sent.contract_address is not None
        self.address = sent.contract_address
        self.contract = audit.w3.eth.contract(address=self.address, abi=artifact.abi)
        # Reverts surfacing through the attacker are ToplocAudit's errors.
        self.decoder = RevertDecoder(artifact.abi, load_artifact("ToplocAudit").abi)

    def call(self, function: str, *args: object, value: int = 0) -> None:
        data = self.contract.encode_abi(function, args=list(args))
        send_transaction(
            self.audit.w3, self.owner, {"to": self.address, "data": data, "value": value}, self.decoder
        )

    def get(self, function: str) -> object:
        return getattr(self.contract.functions, function)().call()


def _credited_attacker(audit: AuditChain, swallow: bool) -> Attacker:
    """An attacker whose stake has matured into a 1 ETH credit."""
    attacker = Attacker(audit, swallow)
    attacker.call("stakeAsValidator", value=STAKE)
    attacker.call("requestUnstake", STAKE)
    audit.advance(audit.parameters.unbondingPeriod + 1)
    attacker.call("withdrawStake")
    assert audit.client().credits(attacker.address) == STAKE
    return attacker


def test_reentrant_withdraw_fails_the_whole_withdrawal(audit: AuditChain) -> None:
    attacker = _credited_attacker(audit, swallow=False)
    before = audit.client().totals()
    with pytest.raises(ContractRevert) as err:
        attacker.call("attack")
    # The re-entry hit the guard, the attacker's receive reverted, so the transfer failed.
    assert err.value.name == "PullPaymentsTransferFailed"
    assert err.value.values == {"account": attacker.address, "amount": STAKE}
    assert audit.client().credits(attacker.address) == STAKE
    assert audit.client().totals() == before
    assert audit.balance(attacker.address) == 0


def test_reentrant_withdraw_pays_once(audit: AuditChain) -> None:
    attacker = _credited_attacker(audit, swallow=True)
    before = audit.client().totals()
    attacker.call("attack")
    assert attacker.get("reentries") == 1
    assert attacker.get("reentrySucceeded") is False
    assert audit.balance(attacker.address) == STAKE
    assert audit.client().credits(attacker.address) == 0
    after = audit.client().totals()
    assert after.balance == before.balance - STAKE and after.credits == before.credits - STAKE
    assert after.solvent
    with pytest.raises(ContractRevert) as err:
        attacker.call("attack")
    assert err.value.name == "PullPaymentsNothingToWithdraw"
