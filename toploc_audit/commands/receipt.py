"""`toploc-audit receipt` writes a record's proof bundle; `verify-receipt` checks one, offline and
against the chain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from anchor.settings import Settings
from toploc_audit.remote import open_remote, recorder_option

if TYPE_CHECKING:
    from anchor.receipts import Pins, ReceiptFile


def _write(text: str, output: Path | None, anchored: bool) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(output)
    click.echo(f"wrote {output}" + ("" if anchored else " (not anchored yet: no inclusion proof)"))


@click.command()
@click.argument("record")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the file here (default: print it).",
)
@recorder_option
@click.option("--rpc", "rpc_url", metavar="URL", help="With --recorder: the chain to check against.")
def receipt(record: str, output: Path | None, recorder_url: str | None, rpc_url: str | None) -> None:
    """Write RECORD's proof bundle (RECORD: log index or 0x recordDigest): its receipt and entry, and once
    anchored the inclusion proof against the latest anchored checkpoint, that checkpoint as the log's
    signed note and its anchor transaction. `verify-receipt FILE` checks it with no service at all, and
    with --rpc against the chain. From the database (the operator: needs the receipt key, which signs
    the note), or with --recorder over HTTP, checked against the chain before it is written.

    \b
    Examples:
      toploc-audit receipt 12 -o receipt.json
      toploc-audit receipt 12 -o receipt.json --recorder http://127.0.0.1:8470
    """
    from anchor.receipts import ReceiptError, ReceiptFile, check_entry, fetch_chain_view, verify_offline
    from anchor.receipts import verify_receipt as verify_on_chain

    if recorder_url is not None:
        remote = open_remote(recorder_url, rpc_url)
        rf = ReceiptFile.loads(remote.recorder.receipt(record))
        try:
            check_entry(rf)
            if rf.inclusion is not None:  # not anchored yet: nothing on chain to check it against
                verify_offline(rf)
                verify_on_chain(rf, fetch_chain_view(rf, remote.rpc_url))
        except ReceiptError as exc:
            raise click.ClickException(f"the recorder's bundle fails: {exc}") from None
        _write(rf.dumps(), output, rf.inclusion is not None)
        return

    from anchor.api.config import load_domain, load_receipt_key, note_signer_of
    from anchor.db import open_database
    from anchor.trail import find, receipt_file

    settings = Settings.from_env()
    domain = load_domain(settings)
    signer = note_signer_of(domain, load_receipt_key(settings))
    sessions = open_database(settings.database_url)
    with sessions() as s:
        rf = receipt_file(s, find(s, record), domain, signer)
    _write(rf.dumps(), output, rf.inclusion is not None)


@click.command("verify-receipt")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rpc", "rpc_url", metavar="URL", help="Also check against this chain (JSON-RPC URL).")
@click.option(
    "--deployment",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pin the operator, the receipt signer and the checkpoint key to this deployment file (as the "
    "log publishes it) [default: TOPLOC_AUDIT_DEPLOYMENT when it is the file's contract]; unpinned, an "
    "offline check proves only that the file's parts agree.",
)
@recorder_option
def verify_receipt(
    file: Path, rpc_url: str | None, deployment: Path | None, recorder_url: str | None
) -> None:
    """Check receipt FILE. Offline (a proof bundle, `receipt -o` writes one): the entry hashes to the
    receipt's recordDigest, the receipt's and the provider's signatures, the inclusion proof, the
    checkpoint note's signature and the anchor transaction (its hash, its call, its signer). With --rpc,
    against the chain too: the receipt is the contract's receiptSigner's, the chain holds the proof's root,
    the anchor transaction is mined, and the entry was anchored within the maximum merge delay. With
    --recorder, a file saved before its entry was anchored gets its proof from the recorder first.
    Exits 1 naming the step and the field that failed.

    \b
    Examples:
      toploc-audit verify-receipt receipt.json --deployment deployment.json
      toploc-audit verify-receipt receipt.json --rpc http://127.0.0.1:8545
      toploc-audit verify-receipt early.json --recorder http://127.0.0.1:8470 --rpc http://127.0.0.1:8545
    """
    from anchor.errors import InputError
    from anchor.receipts import ReceiptError, ReceiptFile, fetch_chain_view, verify_offline
    from anchor.receipts import verify_receipt as verify_on_chain

    rf = ReceiptFile.loads(file.read_text())
    if recorder_url is not None and rf.inclusion is None:
        fresh = ReceiptFile.loads(
            open_remote(recorder_url, rpc_url).recorder.receipt(str(rf.receipt.log_index))
        )
        same = (fresh.receipt, fresh.receipt_signature, fresh.provider) == (
            rf.receipt,
            rf.receipt_signature,
            rf.provider,
        )
        if not same:
            raise InputError("recorder", f"its receipt of entry {rf.receipt.log_index} is not the file's")
        rf = fresh
    pins = _pins(rf, deployment)
    try:
        passed = []
        if rf.record is not None:  # a proof bundle: everything that needs no service first
            passed = [f"offline: {line}" for line in verify_offline(rf, pins)]
        elif rpc_url is None:
            raise InputError(
                "rpc", "a receipt file without its entry (format 1) is checked against the chain"
            )
        if rpc_url is not None:
            passed += verify_on_chain(rf, fetch_chain_view(rf, rpc_url))  # fetch first, check second
    except ReceiptError as exc:
        for line in [*passed, *exc.passed]:
            click.echo(f"ok  {line}")
        raise
    for line in passed:
        click.echo(f"ok  {line}")
    if rpc_url is None and pins.receipt_signer is None:
        click.echo(
            "receipt verified offline, UNPINNED: its parts agree, but nothing ties its keys to the log "
            "(pin them with --deployment FILE, or check against the chain with --rpc URL)"
        )
    elif rpc_url is None:
        click.echo("receipt verified offline (the chain confirms the anchor and the merge delay: --rpc URL)")
    else:
        click.echo("receipt verified")


def _pins(rf: ReceiptFile, deployment: Path | None) -> Pins:
    """The operator and checkpoint key a deployment file pins, for the file's own contract only:
    --deployment's, else TOPLOC_AUDIT_DEPLOYMENT's when it is for the file's contract."""
    from anchor.chain.deployment import Deployment, read_json
    from anchor.errors import InputError
    from anchor.receipts import Pins

    if deployment is None:
        default = Settings.from_env().deployment_file
        if not default.is_file():
            return Pins()
        try:
            data = read_json(default)
            same = (data.get("chainId"), str(data["addresses"]["ToplocAudit"]).lower()) == (
                rf.chain_id,
                rf.contract.lower(),
            )
        except (InputError, KeyError, TypeError):
            same = False
        if not same:
            return Pins()  # someone else's deployment: it pins nothing here
    else:
        data = read_json(deployment)
    d = Deployment.from_json(data)  # a file for this contract must be whole
    if (d.chain_id, d.address.lower()) != (rf.chain_id, rf.contract.lower()):
        raise InputError(
            "deployment",
            f"pins chain {d.chain_id} contract {d.address}; the file is for {rf.chain_id} {rf.contract}",
        )
    return Pins(d.operator, d.receipt_signer, d.checkpoint_key)
