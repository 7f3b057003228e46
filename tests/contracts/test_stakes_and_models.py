"""Staking, unbonding, the validator pool and model declarations."""

from __future__ import annotations

import pytest
from web3.exceptions import ContractLogicError, Web3RPCError

from anchor.chain.client import Role
from anchor.chain.errors import ContractRevert
from anchor.chain.parameters import ETHER
from anchor.errors import InputError
from tests.fixtures.chain import AuditChain

FINGERPRINT = bytes.fromhex("ab" * 32)


def test_stake_unbond_withdraw(audit: AuditChain) -> None:
    v = audit.accounts[10]
    client = audit.client(v)
    sent = client.stake(Role.VALIDATOR, ETHER)
    assert sent.event("Staked") == {
        "account": v.address,
        "role": Role.VALIDATOR,
        "amount": ETHER,
        "active": ETHER,
    }
    assert sent.event("ValidatorEligibilityChanged") == {"validator": v.address, "eligible": True}
    assert client.validators() == [v.address]
    client.stake(Role.VALIDATOR, ETHER // 2)
    sent = client.request_unstake(ETHER)
    ends = sent.event("UnstakeRequested")["unbondingEnds"]
    assert ends == audit.w3.eth.get_block(sent.block_number)["timestamp"] + audit.parameters.unbondingPeriod
    info = client.stake_of(v.address)
    assert (info.role, info.active, info.unbonding, info.unbonding_ends) == (
        Role.VALIDATOR,
        ETHER // 2,
        ETHER,
        ends,
    )
    assert client.validators() == [v.address]  # 0.5 ETH is still the minimum
    with pytest.raises(ContractRevert) as err:
        client.withdraw_stake()
    assert err.value.name == "StakeRegistryStillUnbonding"
    audit.advance(ends - audit.now())
    sent = client.withdraw_stake()
    assert sent.event("StakeWithdrawn") == {"account": v.address, "amount": ETHER}
    assert sent.event("Credited") == {"account": v.address, "disputeId": 0, "amount": ETHER}
    before = audit.balance(v.address)
    sent = client.withdraw()
    assert audit.balance(v.address) == before + ETHER - sent.gas_cost
    client.request_unstake(ETHER // 2)
    assert client.validators() == []  # below the minimum: out of the pool
    totals = client.totals()
    assert totals.solvent and (totals.staked, totals.unbonding, totals.credits) == (0, ETHER // 2, 0)


def test_stake_rules(audit: AuditChain) -> None:
    p = audit.client(audit.accounts[11])
    with pytest.raises(ContractRevert) as err:
        p.stake(Role.PROVIDER, ETHER - 1)
    assert err.value.name == "StakeRegistryBelowMinimum"
    assert err.value.values == {"active": ETHER - 1, "minimum": ETHER}
    p.stake(Role.PROVIDER, ETHER)
    with pytest.raises(ContractRevert) as err:
        p.stake(Role.VALIDATOR, ETHER)
    assert err.value.name == "StakeRegistryRoleMismatch"
    assert err.value.values["current"] == Role.PROVIDER and err.value.values["requested"] == Role.VALIDATOR
    with pytest.raises(ContractRevert) as err:
        p.transact("stake", 7, value=ETHER)
    assert err.value.name == "StakeRegistryInvalidRole" and err.value.values == {"role": 7}
    with pytest.raises(ContractRevert) as err:
        p.transact("stake", 1)
    assert err.value.name == "StakeRegistryZeroAmount"
    with pytest.raises(ContractRevert) as err:
        p.request_unstake(ETHER + 1)
    assert err.value.name == "StakeRegistryInsufficientStake"
    with pytest.raises(ContractRevert) as err:
        p.withdraw_stake()
    assert err.value.name == "StakeRegistryNothingUnbonding"
    # The 1-wei escape: unstake all but a remainder below the minimum, withdraw the rest, and a fraud
    # then costs the remainder. What stays active is all of it or at least the minimum.
    for amount, remaining in ((ETHER - 1, 1), (1, ETHER - 1)):
        with pytest.raises(ContractRevert) as err:
            p.request_unstake(amount)
        assert err.value.name == "StakeRegistryRemainderBelowMinimum"
        assert err.value.values == {"remaining": remaining, "minimum": ETHER}
    v = audit.client(audit.accounts[12])
    v.stake(Role.VALIDATOR, ETHER)
    with pytest.raises(ContractRevert) as err:
        v.request_unstake(ETHER // 2 + 1)
    assert err.value.values == {"remaining": ETHER // 2 - 1, "minimum": ETHER // 2}
    v.request_unstake(ETHER // 2)  # the validator minimum stays: allowed
    v.request_unstake(ETHER // 2)  # nothing stays: allowed, and out of the pool
    assert v.validators() == []
    with pytest.raises(InputError) as bad:
        p.stake(Role.NONE, ETHER)
    assert bad.value.field == "role"
    # Once everything is withdrawn, the account may take the other role.
    p.request_unstake(ETHER)
    audit.advance(audit.parameters.unbondingPeriod)
    p.withdraw_stake()
    assert p.stake_of(audit.accounts[11].address).role == Role.NONE
    p.stake(Role.VALIDATOR, ETHER)
    assert p.validators() == [audit.accounts[11].address]


def test_pool_slots_stay_after_removal(audit: AuditChain) -> None:
    vs = audit.accounts[10:14]
    for v in vs:
        audit.client(v).stake(Role.VALIDATOR, ETHER)
    client = audit.client()
    audit.client(vs[1]).request_unstake(ETHER)
    # Slots are kept: leaving sets the weight to 0 and moves nobody (a draw cannot be steered by
    # reordering the pool); coming back takes the old slot.
    assert client.validators() == [vs[0].address, vs[2].address, vs[3].address]
    assert client.pool() == [
        (vs[0].address, ETHER),
        (vs[1].address, 0),
        (vs[2].address, ETHER),
        (vs[3].address, ETHER),
    ]
    assert client.call("eligibleValidatorCount") == 3
    audit.advance(audit.parameters.unbondingPeriod)
    audit.client(vs[1]).withdraw_stake()
    audit.client(vs[1]).stake(Role.VALIDATOR, 2 * ETHER)
    assert [v for v, _ in client.pool()] == [v.address for v in vs] and client.pool()[1][1] == 2 * ETHER


def test_declare_model(audit: AuditChain) -> None:
    provider = audit.accounts[12]
    client = audit.client(provider)
    with pytest.raises(ContractRevert) as err:
        client.declare_model("SmolLM2-135M-Instruct", FINGERPRINT)
    assert err.value.name == "ModelRegistryNotProvider"
    client.stake(Role.PROVIDER, ETHER)
    sent = client.declare_model("SmolLM2-135M-Instruct", FINGERPRINT)
    assert sent.event("ModelDeclared") == {
        "provider": provider.address,
        "fingerprint": FINGERPRINT,
        "name": "SmolLM2-135M-Instruct",
    }
    name, declared_at = client.model(provider.address, FINGERPRINT)
    assert (
        name == "SmolLM2-135M-Instruct"
        and declared_at == audit.w3.eth.get_block(sent.block_number)["timestamp"]
    )
    with pytest.raises(ContractRevert) as err:
        client.declare_model("again", FINGERPRINT)
    assert err.value.name == "ModelRegistryAlreadyDeclared"
    with pytest.raises(ContractRevert) as err:
        client.declare_model("zero", b"\x00" * 32)
    assert err.value.name == "ModelRegistryZeroFingerprint"
    with pytest.raises(ContractRevert) as err:
        client.transact("declareModel", "x" * 129, bytes(31) + b"\x01")
    assert err.value.name == "ModelRegistryInvalidName" and err.value.values == {"length": 129}
    with pytest.raises(InputError) as bad:
        client.declare_model("", FINGERPRINT)
    assert bad.value.field == "name"
    assert client.model(provider.address, bytes(31) + b"\x02") == ("", 0)


def test_plain_ether_is_refused(audit: AuditChain) -> None:
    sender = audit.accounts[13]
    with pytest.raises((ContractLogicError, Web3RPCError)) as err:  # no receive or fallback function
        audit.w3.eth.estimate_gas({"from": sender.address, "to": audit.deployment.address, "value": 1})
    assert "revert" in str(err.value).lower()
    assert audit.client().totals().balance == 0
