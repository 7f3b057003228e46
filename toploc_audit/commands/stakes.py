"""`toploc-audit stake | unstake | withdraw | balance`: a provider's or validator's stake on chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from anchor.chain.parameters import parse_positive_amount
from anchor.errors import InputError

_ROLE = click.option(
    "--as",
    "role",
    type=click.Choice(["provider", "validator"]),
    default="provider",
    show_default=True,
    help="Whose default key to act with (and, for stake, the role to stake in).",
)
_KEY = click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A hex private key [default: the role's: TOPLOC_AUDIT_PROVIDER_KEY or <home>/provider.key; "
    "TOPLOC_AUDIT_VALIDATOR_KEY or the only key in <home>/validators/].",
)


def _wei(amount: int) -> str:
    from anchor.chain.parameters import ETHER

    return f"{amount / ETHER:g} ETH ({amount} wei)" if amount else "0"


def _sent(action: str, sent: Any) -> None:
    click.echo(f"{action}: tx {sent.tx_hash} in block {sent.block_number}")


@click.command("stake")
@click.argument("amount")
@_ROLE
@_KEY
def stake(amount: str, role: str, key_file: Path | None) -> None:
    """Stake AMOUNT (wei, or e.g. 1.5ether) as a provider or validator. The active stake must reach the
    role's minimum; one role per account.

    \b
    Examples:
      toploc-audit stake 5ether                      # the provider key
      toploc-audit stake 1ether --as validator --key-file v1.key
    """
    from anchor.chain.client import Role
    from toploc_audit.contract_access import contract_client

    wei = parse_positive_amount("amount", amount)
    client = contract_client(role, key_file)
    sent = client.stake(Role.PROVIDER if role == "provider" else Role.VALIDATOR, wei)
    info = client.stake_of(client.account.address)
    _sent(f"staked {_wei(wei)} as {role} from {client.account.address}", sent)
    click.echo(f"active stake now {_wei(info.active)}")


@click.command("unstake")
@click.argument("amount")
@_ROLE
@_KEY
def unstake(amount: str, role: str, key_file: Path | None) -> None:
    """Start unbonding AMOUNT of the active stake (wei, e.g. 0.5ether, or `all`). It stays slashable
    for the unbonding period, then `toploc-audit withdraw` takes it. What stays active must be 0 or at
    least the role's minimum.

    \b
    Examples:
      toploc-audit unstake all
      toploc-audit unstake 0.5ether --as validator --key-file v1.key
    """
    from toploc_audit.contract_access import contract_client

    client = contract_client(role, key_file)
    active = client.stake_of(client.account.address).active
    if amount.strip().lower() == "all":
        if active == 0:
            raise InputError("amount", f"{client.account.address} has no active stake")
        wei = active
    else:
        wei = parse_positive_amount("amount", amount)
    sent = client.request_unstake(wei)
    ends = sent.event("UnstakeRequested")["unbondingEnds"]
    _sent(f"unbonding {_wei(wei)} of {client.account.address}", sent)
    click.echo(f"withdrawable from chain time {ends}; active stake now {_wei(active - wei)}")


@click.command("withdraw")
@_ROLE
@_KEY
def withdraw(role: str, key_file: Path | None) -> None:
    """Take what can be taken: matured unbonding stake (not while a dispute involving the account is
    open), then every credit (rewards, returned bonds, withdrawn stake), sent to the account.

    \b
    Example:
      toploc-audit withdraw --as validator --key-file v1.key
    """
    from toploc_audit.contract_access import contract_client

    client = contract_client(role, key_file)
    address = client.account.address
    info = client.stake_of(address)
    now = client.chain_time()
    if info.unbonding:
        if now < info.unbonding_ends:
            click.echo(f"{_wei(info.unbonding)} still unbonding until chain time {info.unbonding_ends}")
        elif info.open_disputes:
            click.echo(f"{_wei(info.unbonding)} unbonded but held by {info.open_disputes} open dispute(s)")
        else:
            _sent(f"stake {_wei(info.unbonding)} became a credit", client.withdraw_stake())
    credit = client.credits(address)
    if credit == 0:
        click.echo(f"no credit to withdraw for {address}")
        return
    _sent(f"sent {_wei(credit)} to {address}", client.withdraw())


@click.command("balance")
@click.argument("address", required=False)
@_ROLE
@_KEY
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def balance(address: str | None, role: str, key_file: Path | None, as_json: bool) -> None:
    """Show the stake of ADDRESS [default: the role's key's account]: role, active, unbonding and when
    it ends, open disputes, credits and the wallet's ether.

    \b
    Examples:
      toploc-audit balance
      toploc-audit balance 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json
    """
    from eth_utils import is_address, to_checksum_address

    from toploc_audit.contract_access import contract_client

    if address is not None and not is_address(address):
        raise InputError("address", f"{address!r} is not a 20-byte hex address")
    client = contract_client(role if address is None else None, key_file)
    who = to_checksum_address(address) if address is not None else client.account.address
    info = client.stake_of(who)
    row = {
        "address": who,
        "role": info.role.name.lower(),
        "active": info.active,
        "unbonding": info.unbonding,
        "unbondingEnds": info.unbonding_ends,
        "openDisputes": info.open_disputes,
        "credits": client.credits(who),
        "wallet": int(client.w3.eth.get_balance(who)),
    }
    if as_json:
        click.echo(json.dumps(row))
        return
    click.echo(f"{who} ({row['role']})")
    click.echo(f"  active stake   {_wei(info.active)}")
    ends = f", withdrawable from chain time {info.unbonding_ends}" if info.unbonding else ""
    click.echo(f"  unbonding      {_wei(info.unbonding)}{ends}")
    click.echo(f"  open disputes  {info.open_disputes}")
    click.echo(f"  credits        {_wei(row['credits'])}")
    click.echo(f"  wallet         {_wei(row['wallet'])}")
