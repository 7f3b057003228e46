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
    """Check receipt FILE with the chain alone (no database): the log's signature against the contract's
    operator, the provider's signature, the inclusion proof against the root stored on chain, and that the
    entry was anchored within the promised maximum merge delay. Exits 1 with the reason on any mismatch."""
    from anchor.anchoring.chain import AuditContract
    from anchor.errors import VerificationError
    from anchor.receipts import ReceiptFile

    rf = ReceiptFile.loads(file.read_text())
    r = rf.receipt
    signer, root = rf.check_offline()
    click.echo(f"ok  receipt for log index {r.log_index} signed by {signer}")
    click.echo(f"ok  provider {rf.provider} signed recordDigest 0x{r.record_digest.hex()}")
    assert rf.inclusion is not None  # check_offline refuses a file without one
    inc = rf.inclusion
    click.echo(f"ok  inclusion proof leads to root 0x{root.hex()} (tree size {inc.tree_size})")
    chain = AuditContract.connect(rpc_url, rf.contract)
    if chain.chain_id != rf.chain_id:
        raise VerificationError(
            f"the node is on chain {chain.chain_id}, the receipt names chain {rf.chain_id}"
        )
    operator = chain.operator_address()
    if operator != signer:
        raise VerificationError(f"receipt signed by {signer}, but the contract's operator is {operator}")
    click.echo(f"ok  signer is the operator of {rf.contract} on chain {rf.chain_id}")
    count = chain.checkpoint_count()
    if not 1 <= inc.checkpoint_id <= count:
        raise VerificationError(f"checkpoint {inc.checkpoint_id} is not on chain (it has {count})")
    cp = chain.checkpoint(inc.checkpoint_id)
    if cp.size != inc.tree_size or cp.root != root:
        raise VerificationError(
            f"checkpoint {cp.id} on chain is size {cp.size} root 0x{cp.root.hex()}, "
            f"the proof gives size {inc.tree_size} root 0x{root.hex()}"
        )
    if not chain.verify_inclusion(cp.id, r.log_index, rf.leaf_hash(), list(inc.proof)):
        raise VerificationError(
            f"the contract's verifyInclusion rejects the proof against checkpoint {cp.id}"
        )
    click.echo(f"ok  checkpoint {cp.id} on chain holds that root; the contract verifies the inclusion")
    first = chain.first_covering(r.log_index)
    assert first is not None  # checkpoint cp covers it
    deadline = r.timestamp + r.max_merge_delay
    if first.timestamp > deadline:
        raise VerificationError(
            f"entry first anchored in checkpoint {first.id} at {first.timestamp}, after the promised "
            f"{deadline} (receipt time {r.timestamp} + maximum merge delay {r.max_merge_delay}): "
            "evidence against the log"
        )
    click.echo(f"ok  first anchored in checkpoint {first.id} at {first.timestamp}, within the merge delay")
    click.echo("receipt verified")
