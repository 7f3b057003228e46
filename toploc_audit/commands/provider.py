"""`toploc-audit provider`: who may write to the log, and which models records may name."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from anchor.db import open_database, transaction
from anchor.db.models import Model, Provider
from anchor.errors import InputError
from anchor.records.record import ModelLimits
from anchor.records.registry import (
    deactivate_provider,
    declare_model,
    limits_from_folder,
    new_api_key,
    register_provider,
)
from anchor.settings import Settings


def _sessions():  # type: ignore[no-untyped-def]
    return open_database(Settings.from_env().database_url)


@click.group()
def provider() -> None:
    """Register providers (who may write) and declare models (what records may name)."""


@provider.command("add")
@click.argument("address")
@click.option("--name", default="", help="A label for the provider.")
@click.option("--api-key/--no-api-key", default=False, help="Also require an API key (printed once).")
def add(address: str, name: str, api_key: bool) -> None:
    """Allow ADDRESS (the provider's signing address) to write records."""
    key = new_api_key() if api_key else None
    with transaction(_sessions()) as s:
        p = register_provider(s, address, name, key)
        click.echo(f"provider {p.address} registered")
    if key:
        click.echo(f"API key (shown once; send it as 'Authorization: Bearer <key>'): {key}")


@provider.command("remove")
@click.argument("address")
def remove(address: str) -> None:
    """Stop ADDRESS from writing (its records stay in the log)."""
    with transaction(_sessions()) as s:
        deactivate_provider(s, address)
    click.echo(f"provider {address} deactivated")


@provider.command("list")
def list_providers() -> None:
    """List registered providers."""
    with _sessions()() as s:
        for p in s.scalars(select(Provider).order_by(Provider.id)):
            flags = ("active" if p.active else "inactive") + (", api key" if p.api_key_hash else "")
            click.echo(f"{p.address}  {p.name or '-'}  ({flags})")


@provider.command("declare-model")
@click.argument("name")
@click.option(
    "--folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A local HF checkpoint: fingerprints computed, limits read from config.json.",
)
@click.option("--fingerprint", help="The model's fingerprint (64 hex digits), if no --folder.")
@click.option("--vocab-size", type=click.IntRange(1), help="The vocabulary size, if no --folder.")
@click.option("--hidden-size", type=click.IntRange(1), help="The hidden size, if no --folder.")
@click.option("--max-positions", type=click.IntRange(1), help="The context length, if no --folder.")
@click.option("--tokenizer", help="The tokenizer fingerprint (64 hex digits), if no --folder and it has one.")
@click.option(
    "--on-chain",
    is_flag=True,
    help="Also declare it on chain from the provider's key (disputes need the chain's declaration).",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --on-chain: the provider's hex key "
    "[default: TOPLOC_AUDIT_PROVIDER_KEY or <home>/provider.key].",
)
def declare(
    name: str,
    folder: Path | None,
    fingerprint: str | None,
    vocab_size: int | None,
    hidden_size: int | None,
    max_positions: int | None,
    tokenizer: str | None,
    on_chain: bool,
    key_file: Path | None,
) -> None:
    """Declare model NAME so records may name it. Records are checked against its vocabulary, hidden
    size (TOPLOC topk), context length and tokenizer, so none a validator would refuse is logged.

    \b
    Examples:
      toploc-audit provider declare-model SmolLM2-135M-Instruct \\
          --folder .toploc-audit/models/SmolLM2-135M-Instruct
      toploc-audit provider declare-model my-model --fingerprint ABC... --vocab-size 32000 \\
          --hidden-size 4096 --max-positions 8192 --on-chain
    """
    if folder is not None:
        limits = limits_from_folder(folder)
        if fingerprint is None:
            from gpu_core.runner.fingerprint import fingerprint_model  # the runner's definition

            fingerprint = fingerprint_model(folder)
    else:
        for field, value in (
            ("fingerprint", fingerprint),
            ("vocab_size", vocab_size),
            ("hidden_size", hidden_size),
            ("max_positions", max_positions),
        ):
            if value is None:
                raise InputError(field, f"give --{field.replace('_', '-')} or --folder")
        assert vocab_size is not None and hidden_size is not None and max_positions is not None
        limits = ModelLimits(vocab_size, hidden_size, max_positions, tokenizer)
    assert fingerprint is not None
    client = None
    if on_chain:  # the key and the deployment are checked before anything is written
        from toploc_audit.contract_access import contract_client

        client = contract_client("provider", key_file)
    with transaction(_sessions()) as s:
        m = declare_model(s, name, fingerprint, limits)
        declared = m.fingerprint  # normalised
        click.echo(
            f"model {m.name} {m.fingerprint} declared (vocabulary {m.vocab_size}, hidden {m.hidden_size}, "
            f"{m.max_positions} positions, tokenizer {m.tokenizer_fingerprint or 'none'})"
        )
    if client is not None:
        sent = client.declare_model(name, bytes.fromhex(declared))
        click.echo(
            f"declared on chain by {client.account.address}: tx {sent.tx_hash} in block {sent.block_number}"
        )


@provider.command("models")
def models() -> None:
    """List declared models."""
    with _sessions()() as s:
        for m in s.scalars(select(Model).order_by(Model.id)):
            click.echo(
                f"{m.name}  {m.fingerprint}  vocab {m.vocab_size}  hidden {m.hidden_size or '?'}  "
                f"positions {m.max_positions or '?'}  tokenizer {m.tokenizer_fingerprint or '-'}"
            )
