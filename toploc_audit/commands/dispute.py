"""`toploc-audit dispute`: challenge a log entry on chain, follow a dispute, resolve it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from anchor.errors import InputError
from anchor.settings import Settings


def _client(key_file: Path | None, need_key: bool = True) -> Any:
    """The contract client acting as the challenger (toploc_audit.contract_access), or reading only."""
    from toploc_audit.contract_access import contract_client

    return contract_client("challenger" if need_key else None, key_file)


@click.group()
def dispute() -> None:
    """Dispute log entries on chain and follow their resolution."""


@dispute.command("file")
@click.argument("record")
@click.option("--bond", help="The bond in wei (or e.g. 0.1ether); must equal the contract's [default: it].")
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The challenger's hex private key [default: TOPLOC_AUDIT_CHALLENGER_KEY or <home>/challenger.key].",
)
def file_cmd(record: str, bond: str | None, key_file: Path | None) -> None:
    """Dispute RECORD (log index or 0x recordDigest): build its inclusion proof from the database, check
    the dispute window, and send openDispute with the bond from the challenger's key. Prints the dispute
    id, the transaction and the committee."""
    from anchor.chain.parameters import parse_positive_amount
    from anchor.db import open_database
    from verifier.disputes import file_dispute, plan_dispute

    amount = None if bond is None else parse_positive_amount("bond", bond)
    client = _client(key_file)
    sessions = open_database(Settings.from_env().database_url)
    with sessions() as s:
        plan = plan_dispute(s, client, record, amount)
    filed = file_dispute(client, plan)
    click.echo(
        f"dispute {filed.dispute_id} opened against entry {plan.leaf_index} (provider {plan.provider})"
    )
    click.echo(f"  tx {filed.tx_hash} in block {filed.block_number}, bond {plan.bond} wei")
    click.echo(f"  committee {', '.join(filed.committee)}; votes due by chain time {filed.deadline}")


@dispute.command("show")
@click.argument("dispute_id", type=click.IntRange(min=1))
def show_cmd(dispute_id: int) -> None:
    """Show DISPUTE_ID as the chain has it, and what this deployment's validators did (reports,
    abstentions)."""
    from sqlalchemy import select

    from anchor.db import open_database
    from verifier.models import Validation

    client = _client(None, need_key=False)
    if dispute_id > client.dispute_count():
        raise InputError(
            "dispute_id", f"there is no dispute {dispute_id} (the contract has {client.dispute_count()})"
        )
    d = client.dispute(dispute_id)
    click.echo(
        f"dispute {dispute_id}: entry {d.leaf_index} of {d.provider}, challenger {d.challenger}, "
        f"bond {d.bond} wei, outcome {d.outcome.name.lower().replace('_', ' ')} "
        f"({d.fraud_votes} fraud, {d.honest_votes} honest votes)"
    )
    for member in d.committee:
        click.echo(f"  {member}: {client.ballot_of(dispute_id, member).name.lower().replace('_', ' ')}")
    sessions = open_database(Settings.from_env().database_url)
    with sessions() as s:
        rows = s.scalars(
            select(Validation).where(Validation.dispute_id == dispute_id).order_by(Validation.id)
        )
        for v in rows:
            verdict = "" if v.fraud is None else (" fraud" if v.fraud else " honest")
            evidence = "" if v.evidence_hash is None else f" evidence 0x{v.evidence_hash.hex()}"
            reason = "" if v.reason is None else f" ({v.reason})"
            click.echo(f"  ours {v.validator}: {v.status}{verdict}{evidence}{reason}")


@dispute.command("resolve")
@click.argument("dispute_id", type=click.IntRange(min=1))
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Key that pays the gas [default: the challenger's].",
)
def resolve_cmd(dispute_id: int, key_file: Path | None) -> None:
    """Resolve DISPUTE_ID now if every member voted or its deadline passed (validators do it on their own;
    this is for anyone who does not want to wait)."""
    from verifier.resolution import resolve_dispute

    client = _client(key_file)
    if dispute_id > client.dispute_count():
        raise InputError(
            "dispute_id", f"there is no dispute {dispute_id} (the contract has {client.dispute_count()})"
        )
    result = resolve_dispute(client, dispute_id)
    if result.tx_hash is None and result.outcome.name == "OPEN":
        raise InputError(
            "dispute_id",
            f"dispute {dispute_id} cannot be resolved yet: votes are missing and its deadline has not passed",
        )
    done = "resolved" if result.tx_hash else "already resolved"
    click.echo(
        f"dispute {dispute_id} {done}: {result.outcome.name.lower().replace('_', ' ')}"
        + (f" (tx {result.tx_hash})" if result.tx_hash else "")
    )
