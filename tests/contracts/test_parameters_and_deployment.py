"""Deployment parameters are checked twice (Python first, the constructor as a backstop) and the
deployment file round-trips."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
from eth_utils import keccak

from anchor.chain import solc
from anchor.chain.artifacts import load_artifact
from anchor.chain.client import ToplocAuditClient
from anchor.chain.deployment import Deployment, deploy_contract, deploy_toploc_audit
from anchor.chain.errors import ChainError, ContractRevert
from anchor.chain.parameters import ETHER, Parameters
from anchor.errors import InputError
from tests.fixtures.chain import RECEIPT_SIGNER, TEST_PARAMETERS, AuditChain

UNBONDING = (
    "must exceed maxMergeDelay + disputeWindow"
    " + (appealRounds + 1) * (commitPeriod + revealPeriod + appealPeriod)"
)
QUORUM = "must be a strict majority of committeeSize, at most committeeSize"
LAST_ROUND = "the last round's committee must be at most 63"
PENALTIES = "must exceed validatorPenalty and absencePenalty (one penalty never evicts)"
BOND_BITS = "bond * 2^appealRounds must fit in 127 bits"

# (field, bad value, reason the contract gives, other fields changed with it): one row per rule of
# AuditParameters.validate, in its order. TEST_PARAMETERS' exposure is maxMergeDelay 300 +
# disputeWindow 1,000 + 2 rounds * (100 + 100 + 100) = 1,900 s, under its unbondingPeriod of 2,000.
BAD: list[tuple[str, int, str, dict[str, int]]] = [
    ("bond", 0, "must be above zero", {}),
    ("disputeWindow", 0, "must be above zero", {}),
    ("commitPeriod", 0, "must be above zero", {}),
    ("revealPeriod", 0, "must be above zero", {}),
    ("appealPeriod", 0, "must be above zero", {}),
    ("unbondingPeriod", 1_900, UNBONDING, {}),  # equal to the exposure is not enough
    # Only the first round's exposure (300 + 1,000 + 300): an appealed dispute could outlast it.
    ("unbondingPeriod", 1_600, UNBONDING, {}),
    # Above disputeWindow + both rounds, but an entry logged just before an unstake request may be
    # anchored maxMergeDelay later: its dispute could outlast the unbonding.
    ("unbondingPeriod", 1_800, UNBONDING, {}),
    # Every round counts: one more appeal round, or a longer period in each, exceeds 2,000.
    ("unbondingPeriod", 2_000, UNBONDING, {"appealRounds": 2}),
    ("unbondingPeriod", 2_000, UNBONDING, {"revealPeriod": 151}),
    ("drawDelay", 0, "must be at least 1 block", {}),
    ("committeeSize", 0, "must be above zero", {}),
    ("quorum", 1, QUORUM, {}),
    ("quorum", 4, QUORUM, {}),
    ("quorum", 2, QUORUM, {"committeeSize": 4}),  # half of an even committee is no majority
    # Round r seats (committeeSize + 1) * 2^r - 1: with committees of 3, round 5 would seat 127.
    ("appealRounds", 5, LAST_ROUND, {"unbondingPeriod": 10_000}),
    # More than 5 appeals is refused before the size is computed (no shift overflow, no panic).
    ("appealRounds", 255, LAST_ROUND, {"unbondingPeriod": 100_000}),
    ("appealRounds", 1, LAST_ROUND, {"committeeSize": 32, "quorum": 17}),  # round 1 would seat 65
    ("appealRounds", 0, LAST_ROUND, {"committeeSize": 64, "quorum": 33}),  # no appeal, but 64 seats
    ("minProviderStake", 0, "must be above zero", {}),
    ("slashAmount", 0, "must be above zero", {}),
    ("absencePenalty", 0, "must be above zero", {}),
    ("abstentionPenalty", ETHER // 50, "must be below absencePenalty", {}),  # equal to it
    ("abstentionPenalty", ETHER, "must be below absencePenalty", {}),
    ("minValidatorStake", 0, PENALTIES, {}),
    ("minValidatorStake", ETHER // 50, PENALTIES, {}),  # equal to absencePenalty
    ("minValidatorStake", ETHER // 2, PENALTIES, {"validatorPenalty": ETHER // 2}),
    ("challengerRewardBps", 10_001, "must be at most 10000", {}),
    ("providerShareBps", 10_001, "must be at most 10000", {}),
    # Round bonds are kept in uint128 and the last appeal locks bond * 2^appealRounds.
    ("bond", 2**126, BOND_BITS, {}),  # 2^126 * 2^1 is 128 bits
    ("bond", 2**127, BOND_BITS, {"appealRounds": 0}),
    ("bond", 2**200, BOND_BITS, {}),  # Python refuses it as wider than 128 bits
]


def _row_id(name: str, value: int, also: dict[str, int]) -> str:
    return ",".join(f"{n}={v}" for n, v in {name: value, **also}.items())


@pytest.mark.parametrize(
    ("name", "value", "reason", "also"), BAD, ids=[_row_id(n, v, a) for n, v, _, a in BAD]
)
def test_bad_parameters_are_refused_by_python_and_by_the_contract(
    audit: AuditChain, name: str, value: int, reason: str, also: dict[str, int]
) -> None:
    raw = TEST_PARAMETERS.to_json() | also | {name: value}
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
            (audit.operator.address, RECEIPT_SIGNER.address, tuple(raw[n] for n in order)),
        )
    assert revert.value.name == "AuditParametersInvalid"
    assert revert.value.values == {"parameter": name, "reason": reason}


def test_every_rule_has_a_bad_row() -> None:
    """Each reason the contract can give, for each field, is in BAD (read from the source)."""
    source = (solc.CONTRACTS_DIR / "src" / "AuditParameters.sol").read_text()
    rules = set(re.findall(r'AuditParametersInvalid\(\s*"(\w+)",\s*"([^"]+)"\s*\)', source))
    assert rules == {(name, reason) for name, _, reason, _ in BAD}


def test_zero_operator_or_receipt_signer_is_refused(audit: AuditChain) -> None:
    zero, someone = "0x" + "00" * 20, audit.accounts[1].address
    for args, error in (
        ((zero, someone), "CheckpointLogZeroOperator"),
        ((someone, zero), "CheckpointLogZeroReceiptSigner"),
    ):
        with pytest.raises(ContractRevert) as err:
            deploy_contract(
                audit.w3, audit.accounts[0], load_artifact("ToplocAudit"), (*args, TEST_PARAMETERS.to_abi())
            )
        assert err.value.name == error
    for operator, receipt_signer, field in (
        ("0x1234", someone, "operator"),
        (someone, "0x12", "receipt-signer"),
    ):
        with pytest.raises(InputError) as bad:
            deploy_toploc_audit(
                audit.w3,
                audit.accounts[0],
                operator,
                TEST_PARAMETERS,
                audit.node.url,
                receipt_signer=receipt_signer,
            )
        assert bad.value.field == field


def test_the_contract_publishes_its_receipt_signer_apart_from_the_operator(audit: AuditChain) -> None:
    client = ToplocAuditClient(audit.w3, audit.deployment.address)
    assert client.receipt_signer() == RECEIPT_SIGNER.address == audit.deployment.receipt_signer
    assert client.operator() == audit.deployment.operator != RECEIPT_SIGNER.address


def test_overrides_and_amounts() -> None:
    p = Parameters().with_overrides(
        [
            "bond=0.25ether",
            "commitPeriod=7200",
            "drawDelay=4",
            "abstentionPenalty=1gwei",
            "validatorPenalty=5gwei",
        ]
    )
    assert (p.bond, p.commitPeriod, p.drawDelay) == (ETHER // 4, 7200, 4)
    assert (p.abstentionPenalty, p.validatorPenalty) == (10**9, 5 * 10**9)
    assert p.exposure == 3600 + 24 * 3600 + 3 * (7200 + 1800 + 3600)  # appealRounds 2: three rounds
    with pytest.raises(InputError) as err:
        Parameters().with_overrides(["bonds=1"])
    assert err.value.field == "bonds" and "is not a parameter" in err.value.reason
    with pytest.raises(InputError) as err:  # the single voting period before rounds
        Parameters().with_overrides(["votingPeriod=600"])
    assert err.value.field == "votingPeriod" and "is not a parameter" in err.value.reason
    with pytest.raises(InputError) as err:
        Parameters().with_overrides(["abstentionPenalty=0.02ether"])  # the default absencePenalty
    assert err.value.field == "abstentionPenalty"
    with pytest.raises(InputError) as err:  # 3600 + 86400 + 3 * (1800 + 1800 + 53000) > 3 days
        Parameters().with_overrides(["appealPeriod=53000"])
    assert err.value.field == "unbondingPeriod"
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
    # A version 1 file (before receiptSigner) names a contract this code cannot use: refused, named.
    old = {k: v for k, v in audit.deployment.to_json().items() if k != "receiptSigner"} | {"version": 1}
    path.write_text(json.dumps(old))
    with pytest.raises(InputError) as err:
        Deployment.load(path)
    assert (err.value.field, err.value.reason) == ("version", "deployment file version 1, want 2")
    path.write_text(json.dumps(audit.deployment.to_json() | {"receiptSigner": "0x12"}))
    with pytest.raises(InputError) as err:
        Deployment.load(path)
    assert err.value.field == "receiptSigner"
    moved = Deployment.from_json(
        audit.deployment.to_json() | {"addresses": {"ToplocAudit": audit.operator.address}}
    )
    with pytest.raises(ChainError) as chain_err:
        moved.check_on_chain(audit.w3)
    assert "no ToplocAudit" in str(chain_err.value)


def test_parameters_read_back(audit: AuditChain) -> None:
    assert audit.client().parameters() == TEST_PARAMETERS
    assert audit.client().operator() == audit.operator.address
