"""`toploc-audit chain`: run a local Anvil with ToplocAudit deployed, or deploy to any node."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

SET_HELP = "Override a deployment parameter, e.g. --set bond=0.5ether --set commitPeriod=600 (repeatable)."


@click.group()
def chain() -> None:
    """Run a local chain (Anvil) with the contract deployed, or deploy the contract to any node.

    The deployment (chain id, RPC URL, address, deployment block, parameters) is written to
    TOPLOC_AUDIT_DEPLOYMENT (default <home>/deployment.json), where the other commands find it.
    """


def _parameters(overrides: tuple[str, ...]) -> Any:
    """The defaults, maxMergeDelay from TOPLOC_AUDIT_MAX_MERGE_DELAY (what this log's receipts promise:
    the recorder refuses to start against a deployment that covers less), then `--set` overrides."""
    from anchor.chain.parameters import Parameters
    from anchor.settings import Settings

    merge_delay = f"maxMergeDelay={Settings.from_env().max_merge_delay}"
    return Parameters().with_overrides([merge_delay, *overrides])  # one validation: later ones win


@chain.command()
@click.option(
    "--port", default=8545, show_default=True, type=click.IntRange(1, 65535), help="Port on 127.0.0.1."
)
@click.option(
    "--detach", is_flag=True, help="Leave Anvil running in the background; stop it with `chain down`."
)
@click.option("--fresh", is_flag=True, help="Discard the saved chain state and deploy anew.")
@click.option(
    "--block-time",
    type=click.FloatRange(min=0),
    help="Seconds between blocks mined without transactions; 0: only on transactions "
    "[default: TOPLOC_AUDIT_CHAIN_BLOCK_TIME or 2].",
)
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
def up(port: int, detach: bool, fresh: bool, block_time: float | None, overrides: tuple[str, ...]) -> None:
    """Start Anvil on 127.0.0.1 and deploy ToplocAudit (or reuse the deployment the saved chain
    still holds). The chain state lives in <home>/anvil/, so a restart keeps every block.

    Anvil mines each transaction at once and, besides, a block every --block-time seconds, so the
    anchor loop's confirmations (and draw delays) arrive on an idle chain.

    The deployer is Anvil dev account 0. The operator is the log key's address (TOPLOC_AUDIT_LOG_KEY
    or <home>/log.key); without one, dev account 1, whose well-known key is written to
    <home>/log.key. The receipt signer is the receipt key's address (TOPLOC_AUDIT_RECEIPT_KEY or
    <home>/receipt.key); without one, a fresh random key is written to <home>/receipt.key. Key files
    are written with mode 0600. Runs until Ctrl-C unless --detach.
    """
    from rich.console import Console

    from anchor.chain.anvil import start_anvil
    from anchor.chain.local import (
        LocalChainFiles,
        deploy_dev,
        dev_operator,
        ensure_receipt_signer,
        reusable_deployment,
        running_pid,
    )
    from anchor.errors import InputError
    from anchor.settings import Settings

    settings = Settings.from_env()
    parameters = _parameters(overrides)
    files = LocalChainFiles.of(settings)
    pid = running_pid(files)
    if pid is not None:
        url = files.url.read_text().strip() if files.url.is_file() else "?"
        raise InputError(
            "chain", f"a local chain already runs (pid {pid}, {url}): `toploc-audit chain down` first"
        )
    files.folder.mkdir(parents=True, exist_ok=True)
    if fresh:
        files.state.unlink(missing_ok=True)
    console = Console(stderr=True)
    interval = settings.chain_block_time if block_time is None else block_time
    with console.status(f"starting Anvil on 127.0.0.1:{port}..."):
        node = start_anvil(
            port=port, state_file=files.state, log_path=files.log, detach=detach, block_time=interval or None
        )
    # In the foreground, SIGTERM stops as cleanly as Ctrl-C (Anvil writes its state). SIGINT gets the
    # handler too: a process started in the background by a shell inherits SIGINT ignored, and would
    # otherwise never stop on the Ctrl-C it is told to wait for.
    caught = () if detach else (signal.SIGTERM, signal.SIGINT)
    previous = [(signum, signal.signal(signum, _interrupt)) for signum in caught]
    deployment = None
    detached = False
    try:
        w3 = node.web3()
        deployment = None if fresh else reusable_deployment(w3, settings, node.url)
        operator, wrote_key = dev_operator(settings)
        receipt_signer, wrote_receipt_key = ensure_receipt_signer(settings)
        if deployment is None:
            with console.status("deploying ToplocAudit..."):
                deployment = deploy_dev(w3, settings, node.url, operator, receipt_signer, parameters)
            click.echo(f"deployed ToplocAudit at {deployment.address} (block {deployment.deployment_block})")
        else:
            click.echo(f"reusing ToplocAudit at {deployment.address} (block {deployment.deployment_block})")
            if overrides:
                click.echo("note: --set applies to a new deployment only; use --fresh to redeploy", err=True)
        if wrote_key:
            click.echo(f"wrote Anvil dev account 1's well-known key to {settings.log_key_file} (dev only)")
        if wrote_receipt_key:
            click.echo(f"wrote a new receipt key to {settings.receipt_key_file} ({receipt_signer})")
        if deployment.operator != operator:
            click.echo(
                f"warning: the deployment's operator is {deployment.operator}, the log key's {operator}",
                err=True,
            )
        if deployment.receipt_signer != receipt_signer:
            click.echo(
                f"warning: the deployment's receipt signer is {deployment.receipt_signer}, "
                f"the receipt key's {receipt_signer}",
                err=True,
            )
        mining = (
            f"a block every {interval:g} s and on each transaction" if interval else "on transactions only"
        )
        click.echo(f"Anvil mines {mining}")
        click.echo(
            f"chain {deployment.chain_id} at {node.url}; deployment written to {settings.deployment_file}"
        )
        if detach:
            files.pid.write_text(f"{node.pid}\n")
            files.url.write_text(f"{node.url}\n")
            detached = True
            click.echo(
                f"Anvil runs in the background (pid {node.pid}); stop it with `toploc-audit chain down`"
            )
            return
        click.echo("press Ctrl-C to stop (the chain state is saved on exit)")
        node.process.wait()
        click.echo(f"Anvil exited with status {node.process.returncode}; see {files.log}", err=True)
        raise SystemExit(1)
    except KeyboardInterrupt:
        if deployment is None:  # interrupted before the chain was ready: report it as aborted
            raise
    finally:
        if not detached:
            with console.status("stopping Anvil and saving its state..."):
                node.stop()
        for signum, handler in previous:
            signal.signal(signum, handler)
    click.echo("stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@chain.command()
def down() -> None:
    """Stop the local chain started with `chain up --detach` (its state is saved)."""
    from anchor.chain.local import LocalChainFiles, stop_detached
    from anchor.settings import Settings

    pid = stop_detached(LocalChainFiles.of(Settings.from_env()))
    click.echo("no local chain is running" if pid is None else f"stopped Anvil (pid {pid})")


@chain.command()
@click.option("--rpc", "rpc_url", required=True, help="JSON-RPC URL of the node to deploy to.")
@click.option(
    "--key-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the deployer's hex private key (it pays for the deployment).",
)
@click.option("--operator", help="The log operator's address. Default: the log key's address.")
@click.option(
    "--receipt-signer",
    help="The address receipts are signed by. Default: the receipt key's address (TOPLOC_AUDIT_RECEIPT_KEY "
    "or <home>/receipt.key; a fresh key is written there if neither exists).",
)
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--force", is_flag=True, help="Replace an existing deployment file.")
def deploy(
    rpc_url: str,
    key_file: Path,
    operator: str | None,
    receipt_signer: str | None,
    overrides: tuple[str, ...],
    force: bool,
) -> None:
    """Deploy ToplocAudit to the node at --rpc and write the deployment file.

    Parameters default to the values in docs/contracts.md; every one is checked before anything is
    sent. An existing deployment file is kept unless --force. The deployer's --key-file must be
    readable by its owner only (chmod 600), like every key file.
    """
    from eth_account import Account
    from rich.console import Console

    from anchor.chain.connection import connect
    from anchor.chain.deployment import deploy_toploc_audit
    from anchor.chain.local import ensure_receipt_signer, log_key_account, receipt_key_account
    from anchor.errors import InputError
    from anchor.keyfiles import read_key_file
    from anchor.settings import Settings

    settings = Settings.from_env()
    parameters = _parameters(overrides)
    if settings.deployment_file.exists() and not force:
        raise InputError("deployment", f"{settings.deployment_file} exists: pass --force to replace it")
    text = read_key_file(key_file)
    try:
        deployer = Account.from_key(bytes.fromhex(text.removeprefix("0x")))
    except ValueError:
        raise InputError("key-file", f"{key_file} does not hold a 32-byte hex private key") from None
    account = log_key_account(settings)
    if operator is None:
        if account is None:
            raise InputError("operator", "not given, and no log key (TOPLOC_AUDIT_LOG_KEY or <home>/log.key)")
        operator = account.address
    if receipt_signer is None:
        receipt_signer, wrote = ensure_receipt_signer(settings)
        if wrote:
            click.echo(f"wrote a new receipt key to {settings.receipt_key_file} ({receipt_signer})")
    receipt = receipt_key_account(settings)
    receipt_key = (
        receipt.key if receipt is not None and receipt.address.lower() == receipt_signer.lower() else None
    )
    w3 = connect(rpc_url)
    with Console(stderr=True).status(f"deploying ToplocAudit from {deployer.address}..."):
        deployment = deploy_toploc_audit(
            w3,
            deployer,
            operator,
            parameters,
            rpc_url,
            receipt_signer=receipt_signer,
            receipt_key=receipt_key,
        )
    deployment.save(settings.deployment_file)
    click.echo(f"deployed ToplocAudit at {deployment.address} on chain {deployment.chain_id}")
    click.echo(f"block {deployment.deployment_block}, transaction {deployment.transaction_hash}")
    click.echo(f"deployment written to {settings.deployment_file}")


@chain.command()
@click.option("--rpc", "rpc_url", help="JSON-RPC URL (default TOPLOC_AUDIT_RPC_URL or the deployment's).")
def info(rpc_url: str | None) -> None:
    """Show the deployment and the contract's live state: checkpoints, stakes, disputes, balance."""
    from anchor.chain.client import ToplocAuditClient
    from anchor.chain.connection import connect
    from anchor.chain.deployment import Deployment
    from anchor.settings import Settings

    settings = Settings.from_env()
    deployment = Deployment.load(settings.deployment_file)
    url = rpc_url or settings.rpc_url or deployment.rpc_url
    w3 = connect(url)
    deployment.check_on_chain(w3)
    client = ToplocAuditClient(w3, deployment.address)
    checkpoint_id, size, root, timestamp = client.latest_checkpoint()
    totals = client.totals()
    p = deployment.parameters
    rows = [
        ("contract", f"ToplocAudit {deployment.address} on chain {deployment.chain_id} ({url})"),
        ("deployed", f"block {deployment.deployment_block}, transaction {deployment.transaction_hash}"),
        ("operator", deployment.operator),
        ("receipt signer", deployment.receipt_signer),
        ("head", f"block {w3.eth.block_number}"),
        ("checkpoints", f"{checkpoint_id} (latest: size {size}, root 0x{root.hex()}, time {timestamp})"),
        ("validators", f"{len(client.validators())} eligible"),
        ("disputes", str(client.dispute_count())),
        (
            "balance",
            f"{totals.balance} wei = staked {totals.staked} + unbonding {totals.unbonding} "
            f"+ bonds {totals.bonds} + credits {totals.credits} + reserve {totals.reserve}"
            + ("" if totals.solvent else "  (MISMATCH)"),
        ),
        ("parameters", ", ".join(f"{k}={v}" for k, v in p.to_json().items())),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")
