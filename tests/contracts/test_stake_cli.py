"""`toploc-audit stake | unstake | withdraw | balance` and `provider declare-model --on-chain` on a real
Anvil started by `chain up --detach`: a provider and a validator reach the contract without Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from anchor.chain.anvil import dev_account, free_port, rpc_call
from anchor.chain.deployment import Deployment
from anchor.chain.errors import ContractRevert
from anchor.chain.parameters import ETHER
from anchor.errors import InputError
from anchor.keyfiles import write_key_file
from tests.contracts.test_chain_cli import _invoke
from toploc_audit.cli import cli

PROVIDER, VALIDATOR = dev_account(5), dev_account(6)


def _ok(result: Result) -> str:
    assert result.exit_code == 0 and result.exception is None, (result.output, result.exception)
    return result.output


def _reverted(result: Result, name: str) -> dict[str, object]:
    assert isinstance(result.exception, ContractRevert), (result.output, result.exception)
    assert result.exception.name == name
    return result.exception.values


def _balance(home: Path, *args: str) -> dict[str, object]:
    return json.loads(_ok(_invoke(home, "balance", "--json", *args)))  # type: ignore[no-any-return]


@pytest.fixture
def home(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "state"
    _ok(_invoke(home, "chain", "up", "--detach", "--port", str(free_port())))
    write_key_file(home / "provider.key", PROVIDER.key.hex())
    write_key_file(home / "validators" / f"{VALIDATOR.address}.key", VALIDATOR.key.hex())
    try:
        yield home
    finally:
        _invoke(home, "chain", "down")


def test_a_provider_and_a_validator_stake_unstake_and_withdraw(home: Path) -> None:
    minimum = Deployment.load(home / "deployment.json").parameters.minProviderStake
    assert _reverted(_invoke(home, "stake", "0.5ether"), "StakeRegistryBelowMinimum") == {
        "active": ETHER // 2,
        "minimum": minimum,
    }
    assert "active stake now 2 ETH" in _ok(_invoke(home, "stake", "2ether"))
    assert "as validator" in _ok(_invoke(home, "stake", "1ether", "--as", "validator"))
    mine = _balance(home)
    assert (mine["address"], mine["role"], mine["active"], mine["unbonding"]) == (
        PROVIDER.address,
        "provider",
        2 * ETHER,
        0,
    )
    text = _ok(_invoke(home, "balance", VALIDATOR.address))
    assert f"{VALIDATOR.address} (validator)" in text and "active stake   1 ETH" in text

    # Leaving less than the minimum staked is refused; all of it may go.
    assert _reverted(_invoke(home, "unstake", "1.5ether"), "StakeRegistryRemainderBelowMinimum") == {
        "remaining": ETHER // 2,
        "minimum": minimum,
    }
    assert "active stake now 0" in _ok(_invoke(home, "unstake", "all"))
    after = _balance(home)
    assert (after["active"], after["unbonding"]) == (0, 2 * ETHER)
    assert "still unbonding until chain time" in _ok(_invoke(home, "withdraw"))
    assert _balance(home)["unbonding"] == 2 * ETHER  # nothing moved

    url = Deployment.load(home / "deployment.json").rpc_url
    rpc_call(url, "evm_increaseTime", [Deployment.load(home / "deployment.json").parameters.unbondingPeriod])
    rpc_call(url, "evm_mine")
    wallet = int(after["wallet"])  # type: ignore[call-overload]
    out = _ok(_invoke(home, "withdraw"))
    assert "stake 2 ETH" in out and f"sent 2 ETH ({2 * ETHER} wei) to {PROVIDER.address}" in out
    final = _balance(home)
    assert (final["role"], final["unbonding"], final["credits"]) == ("none", 0, 0)
    assert 0 < wallet + 2 * ETHER - int(final["wallet"]) < ETHER // 100  # only gas was spent  # type: ignore[call-overload]
    assert "no credit to withdraw" in _ok(_invoke(home, "withdraw"))

    refused = _invoke(home, "unstake", "all")
    assert isinstance(refused.exception, InputError) and refused.exception.field == "amount"


def test_bad_input_names_the_field_and_sends_nothing(home: Path) -> None:
    for args, field in (
        (["stake", "lots"], "amount"),
        (["stake", "0"], "amount"),
        (["unstake", "some"], "amount"),
        (["balance", "0x1234"], "address"),
    ):
        result = _invoke(home, *args)
        assert isinstance(result.exception, InputError) and result.exception.field == field, (args, result)
    write_key_file(home / "validators" / "0xother.key", PROVIDER.key.hex())
    result = _invoke(home, "stake", "1ether", "--as", "validator")
    assert isinstance(result.exception, InputError) and "2 key files" in result.exception.reason
    assert _balance(home)["role"] == "none"
    key = home / "provider.key"
    key.chmod(0o644)  # readable by others: refused as ssh refuses it, the file and the fix named
    result = _invoke(home, "stake", "1ether")
    assert isinstance(result.exception, InputError) and result.exception.field == str(key), result
    assert result.exception.reason == (
        "permissions 0644 are too open: a private key must be accessible by its owner only; "
        f"run `chmod 600 {key}`"
    )


def test_declare_model_on_chain(home: Path) -> None:
    _ok(_invoke(home, "db", "upgrade"))
    _ok(_invoke(home, "stake", "1ether"))
    fingerprint = "ab" * 32
    out = _ok(
        _invoke(
            home, "provider", "declare-model", "m1", "--fingerprint", fingerprint, "--vocab-size", "100",
            "--hidden-size", "64", "--max-positions", "128", "--on-chain",
        )
    )  # fmt: skip
    assert f"declared on chain by {PROVIDER.address}" in out
    from anchor.chain.client import ToplocAuditClient
    from anchor.chain.connection import connect

    deployment = Deployment.load(home / "deployment.json")
    client = ToplocAuditClient(connect(deployment.rpc_url), deployment.address)
    name, declared_at = client.model(PROVIDER.address, bytes.fromhex(fingerprint))
    assert name == "m1" and declared_at > 0


def test_every_stake_command_has_help_with_examples() -> None:
    for command in ("stake", "unstake", "withdraw", "balance"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output and "Example" in result.output, command
