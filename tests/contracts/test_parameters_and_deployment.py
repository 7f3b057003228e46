"""Deployment parameters are checked twice (Python first, the constructor as a backstop) and the
deployment file round-trips."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from eth_utils import keccak

from anchor.chain.artifacts import load_artifact
from anchor.chain.deployment import Deployment, deploy_contract, deploy_toploc_audit
from anchor.chain.errors import ChainError, ContractRevert
from anchor.chain.parameters import ETHER, Parameters
from anchor.errors import InputError
from tests.fixtures.chain import TEST_PARAMETERS, AuditChain

# (field, bad value, reason the contract gives)
BAD = [
    ("bond", 0, "must be above zero"),
    ("disputeWindow", 0, "must be above zero"),
    ("votingPeriod", 0, "must be above zero"),
    ("unbondingPeriod", 1_500, "must exceed maxMergeDelay + disputeWindow + votingPeriod"),
    # Above disputeWindow + votingPeriod, but an entry logged just before an unstake request may be
    # anchored maxMergeDelay later: its dispute could outlast the unbonding.
    ("unbondingPeriod", 1_700, "must exceed maxMergeDelay + disputeWindow + votingPeriod"),
    ("committeeSize", 0, "must be 1 to 31"),
    ("committeeSize", 32, "must be 1 to 31"),
    ("quorum", 1, "must be a strict majority of committeeSize, at most committeeSize"),
    ("quorum", 4, "must be a strict majority of committeeSize, at most committeeSize"),
    ("minProviderStake", 0, "must be above zero"),
    ("minValidatorStake", 0, "must be above zero"),
    ("slashAmount", 0, "must be above zero"),
    ("validatorPenalty", ETHER, "must not exceed minValidatorStake"),
    ("challengerRewardBps", 10_001, "must be at most 10000"),
    ("providerShareBps", 10_001, "must be at most 10000"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_bad_parameters_are_refused_by_python_and_by_the_contract(
    audit: AuditChain, name: str, value: int, reason: str
) -> None:
    raw = TEST_PARAMETERS.to_json() | {name: value}
    with pytest.raises(InputError) as err:
        Parameters(**raw)
    assert err.value.field == name
    order = [f.name for f in fields(Parameters)]
    deployer = audit.accounts[0]
    with pytest.raises(ContractRevert) as revert:
        deploy_contract(
            audit.w3,
            deployer,
            load_artifact("ToplocAudit"),
            (audit.operator.address, tuple(raw[n] for n in order)),
        )
    assert revert.value.name == "AuditParametersInvalid"
    assert revert.value.values == {"parameter": name, "reason": reason}


def test_zero_operator_is_refused(audit: AuditChain) -> None:
    with pytest.raises(ContractRevert) as err:
        deploy_contract(
            audit.w3,
            audit.accounts[0],
            load_artifact("ToplocAudit"),
            ("0x" + "00" * 20, TEST_PARAMETERS.to_abi()),
        )
    assert err.value.name == "CheckpointLogZeroOperator"
    with pytest.raises(InputError) as bad:
        deploy_toploc_audit(audit.w3, audit.accounts[0], "0x1234", TEST_PARAMETERS, audit.node.url)
    assert bad.value.field == "operator"


def test_overrides_and_amounts() -> None:
    p = Parameters().with_overrides(["bond=0.25ether", "votingPeriod=7200", "validatorPenalty=5gwei"])
    assert (p.bond, p.votingPeriod, p.validatorPenalty) == (ETHER // 4, 7200, 5 * 10**9)
    with pytest.raises(InputError) as err:
        Parameters().with_overrides(["bonds=1"])
    assert err.value.field == "bonds" and "is not a parameter" in err.value.reason
    with pytest.raises(InputError) as err:
        Parameters().with_overrides(["bond=lots"])
    assert err.value.field == "bond" and "not a number" in err.value.reason
    with pytest.raises(InputError) as err:
        Parameters().with_overrides(["bond=0.5wei"])
    assert err.value.field == "bond" and "whole number of wei" in err.value.reason
    with pytest.raises(InputError) as err:
        Parameters().with_overrides(["quorum"])
    assert err.value.field == "set"
    with pytest.raises(InputError) as err:
        Parameters().with_overrides(["quorum=1"])
    assert err.value.field == "quorum"


def test_deployment_file_round_trip(audit: AuditChain, tmp_path: Path) -> None:
    d = audit.deployment
    path = tmp_path / "state" / "deployment.json"
    d.save(path)
    assert Deployment.load(path) == d
    data = json.loads(path.read_text())
    assert data["addresses"] == {"ToplocAudit": d.address} and data["chainId"] == 31337
    assert data["parameters"] == TEST_PARAMETERS.to_json()
    assert data["codeHash"] == "0x" + keccak(bytes(audit.w3.eth.get_code(d.address))).hex()
    assert data["deploymentBlock"] == audit.client().deployment_block()
    d.check_on_chain(audit.w3)
    assert not list(path.parent.glob("*.tmp"))


def test_deployment_file_errors(audit: AuditChain, tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    with pytest.raises(InputError) as err:
        Deployment.load(path)
    assert err.value.field == "deployment" and "chain up" in err.value.reason
    path.write_text("{not json")
    with pytest.raises(InputError) as err:
        Deployment.load(path)
    assert "is not JSON" in err.value.reason
    data = audit.deployment.to_json()
    del data["deploymentBlock"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        Deployment.load(path)
    assert (err.value.field, err.value.reason) == ("deploymentBlock", "missing from the deployment file")
    data = audit.deployment.to_json() | {"operator": "nobody"}
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        Deployment.load(path)
    assert err.value.field == "operator"
    moved = Deployment.from_json(
        audit.deployment.to_json() | {"addresses": {"ToplocAudit": audit.operator.address}}
    )
    with pytest.raises(ChainError) as chain_err:
        moved.check_on_chain(audit.w3)
    assert "no ToplocAudit" in str(chain_err.value)


def test_parameters_read_back(audit: AuditChain) -> None:
    assert audit.client().parameters() == TEST_PARAMETERS
    assert audit.client().operator() == audit.operator.address
