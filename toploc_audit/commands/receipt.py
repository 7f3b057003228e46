"""`toploc-audit receipt`: write the receipt file of a record (what `verify-receipt` checks)."""

from __future__ import annotations

from pathlib import Path

import click

from anchor.api.config import load_domain
from anchor.db import open_database
from anchor.settings import Settings
from anchor.trail import find, receipt_file


@click.command()
@click.argument("record")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the file here (default: print it).",
)
def receipt(record: str, output: Path | None) -> None:
    """Write RECORD's receipt file (RECORD: log index or 0x recordDigest), with an inclusion proof against
    the latest anchored checkpoint. Anyone can then run `toploc-audit verify-receipt FILE --rpc URL`."""
    settings = Settings.from_env()
    sessions = open_database(settings.database_url)
    with sessions() as s:
        rf = receipt_file(s, find(s, record), load_domain(settings))
    if output is None:
        click.echo(rf.dumps(), nl=False)
    else:
        output.write_text(rf.dumps())
        click.echo(f"wrote {output}" + ("" if rf.inclusion else " (not anchored yet: no inclusion proof)"))


@click.command("verify-receipt")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rpc", "rpc_url", required=True, help="JSON-RPC URL of the chain the receipt names.")
def verify_receipt(file: Path, rpc_url: str) -> None:
    """Check receipt FILE with the chain alone (no database): the log's signature against the
    contract's receiptSigner, the provider's signature, the inclusion proof against the root stored on
    chain, and that the entry was anchored within the promised maximum merge delay. Exits 1 with the
    reason on any mismatch."""
    from anchor.receipts import ReceiptError, ReceiptFile, fetch_chain_view, verify_receipt

    rf = ReceiptFile.loads(file.read_text())
    view = fetch_chain_view(rf, rpc_url)  # fetch first, check second
    try:
        passed = verify_receipt(rf, view)
    except ReceiptError as exc:
        for line in exc.passed:
            click.echo(f"ok  {line}")
        raise
    for line in passed:
        click.echo(f"ok  {line}")
    click.echo("receipt verified")
