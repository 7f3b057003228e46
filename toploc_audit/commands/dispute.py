"""`toploc-audit dispute`: challenge a log entry on chain, follow a dispute, appeal it, move it along."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from anchor.errors import InputError
from anchor.settings import Settings
from toploc_audit.remote import recorder_option


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
@recorder_option
def file_cmd(record: str, bond: str | None, key_file: Path | None, recorder_url: str | None) -> None:
    """Dispute RECORD (log index or 0x recordDigest): build its inclusion proof from the database (or,
    with --recorder, from the recorder's tiles, with the record checked against its digest and its
    provider's signature), check it against the checkpoint on chain, check the dispute window, and send
    openDispute with the bond from the challenger's key. Prints the dispute id and the transaction; the
    committee is drawn from a later block (validators' workers send the draw, or `toploc-audit dispute
    advance`).

    \b
    Examples:
      toploc-audit dispute file 12
      toploc-audit dispute file 12 --recorder http://127.0.0.1:8470 --key-file challenger.key
    """
    from anchor.chain.parameters import parse_positive_amount
    from verifier.disputes import file_dispute, plan_dispute, plan_entry_dispute

    amount = None if bond is None else parse_positive_amount("bond", bond)
    client = _client(key_file)
    if recorder_url is None:
        from anchor.db import open_database

        sessions = open_database(Settings.from_env().database_url)
        with sessions() as s:
            plan = plan_dispute(s, client, record, amount)
    else:
        from anchor.remote_checks import entry_from_trail
        from anchor.transparency.tile_proofs import TileTree
        from toploc_audit.remote import open_remote

        remote = open_remote(recorder_url)
        entry = entry_from_trail(remote.recorder.record(record), remote.domain, record)

        def proof_at(size: int) -> list[bytes]:  # from immutable tiles; plan_entry_dispute checks it
            return TileTree(size, remote.recorder.tile).inclusion_proof(entry.log_index)

        plan = plan_entry_dispute(entry, client, proof_at, amount)
    filed = file_dispute(client, plan)
    click.echo(
        f"dispute {filed.dispute_id} opened against entry {plan.leaf_index} (provider {plan.provider})"
    )
    click.echo(f"  tx {filed.tx_hash} in block {filed.block_number}, bond {plan.bond} wei")
    click.echo(f"  committee drawn from block {filed.draw_block} on")


@dispute.command("show")
@click.argument("dispute_id", type=click.IntRange(min=1))
def show_cmd(dispute_id: int) -> None:
    """Show DISPUTE_ID as the chain has it, and what this deployment's validators did (reports,
    abstentions)."""
    from sqlalchemy import select

    from anchor.db import open_database
    from verifier.models import Validation

    client = _client(None, need_key=False)
    _require_dispute(client, dispute_id)
    d = client.dispute(dispute_id)
    phase = client.phase(dispute_id)
    click.echo(
        f"dispute {dispute_id}: entry {d.leaf_index} of {d.provider}, challenger {d.challenger}, "
        f"outcome {_name(d.outcome)}, phase {_name(phase)}, {d.rounds} round(s)"
    )
    for index in range(d.rounds):
        r = client.round(dispute_id, index)
        by = "the challenger" if index == 0 else f"appeal by {r.appellant}"
        click.echo(f"  round {index}: bond {r.bond} wei ({by}), committee of {r.size}, quorum {r.quorum}")
        if not r.drawn:
            click.echo(f"    not drawn yet: drawable from block {r.draw_block}")
            continue
        click.echo(
            f"    {r.commits} committed, {r.abstentions} abstained, {r.reveals} revealed "
            f"({r.fraud_votes} fraud, {r.honest_votes} honest); commits by chain time {r.commit_deadline}, "
            f"reveals by {r.reveal_deadline}"
        )
        for member in r.committee:
            click.echo(f"    {member}: {_name(client.ballot_of(dispute_id, member).state)}")
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


def _name(value: Any) -> str:
    return str(value.name).lower().replace("_", " ")


def _require_dispute(client: Any, dispute_id: int) -> None:
    if dispute_id > client.dispute_count():
        raise InputError(
            "dispute_id", f"there is no dispute {dispute_id} (the contract has {client.dispute_count()})"
        )


def _key_file(help_text: str) -> Any:
    return click.option(
        "--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=help_text
    )


@dispute.command("advance")
@click.argument("dispute_id", type=click.IntRange(min=1))
@_key_file("Key that pays the gas [default: the challenger's].")
def advance_cmd(dispute_id: int, key_file: Path | None) -> None:
    """Draw DISPUTE_ID's committee or resolve it, whichever the chain says is due now (validators' workers
    do it on their own; this is for anyone who does not want to wait). Example:
    `toploc-audit dispute advance 1`."""
    from verifier.resolution import advance_dispute

    client = _client(key_file)
    _require_dispute(client, dispute_id)
    result = advance_dispute(client, dispute_id)
    if result.action == "draw":
        drawn = client.current_round(dispute_id)
        click.echo(
            f"dispute {dispute_id}: committee drawn (tx {result.tx_hash}): {', '.join(drawn.committee)}"
        )
    elif result.action == "resolve":
        click.echo(f"dispute {dispute_id} resolved: {_name(result.outcome)} (tx {result.tx_hash})")
    elif result.phase.name == "RESOLVED":
        click.echo(f"dispute {dispute_id} already resolved: {_name(result.outcome)}")
    else:
        raise InputError(
            "dispute_id", f"dispute {dispute_id} is in its {_name(result.phase)} phase: nothing to do yet"
        )


@dispute.command("appeal")
@click.argument("dispute_id", type=click.IntRange(min=1))
@_key_file(
    "The appellant's hex private key: the provider after a fraud result, the challenger after an "
    "honest one [default: TOPLOC_AUDIT_CHALLENGER_KEY or <home>/challenger.key]."
)
def appeal_cmd(dispute_id: int, key_file: Path | None) -> None:
    """Appeal DISPUTE_ID's last round, sending the next round's bond (bond x 2^round): a larger committee,
    none of whom sat before, is drawn. Only the side that lost the round may, within the appeal period.
    Example: `toploc-audit dispute appeal 1 --key-file provider.key`."""
    client = _client(key_file)
    _require_dispute(client, dispute_id)
    phase = client.phase(dispute_id)
    if phase.name != "APPEAL":
        raise InputError(
            "dispute_id", f"dispute {dispute_id} is in its {_name(phase)} phase, not its appeal phase"
        )
    d = client.dispute(dispute_id)
    bond = client.parameters().appeal_bond(d.rounds)
    sent = client.appeal(dispute_id)
    appealed = sent.event("DisputeAppealed")
    size = client.parameters().round_size(d.rounds)
    click.echo(f"dispute {dispute_id}: appealed with {bond} wei (tx {sent.tx_hash})")
    round_, draw_block = appealed["round"], appealed["drawBlock"]
    click.echo(f"  round {round_}: a committee of {size}, drawn from block {draw_block} on")
