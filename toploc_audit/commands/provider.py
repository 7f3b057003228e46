"""`toploc-audit provider`: who may write to the log, and which models records may name."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from anchor.db import open_database, transaction
from anchor.db.models import Model, Provider
from anchor.errors import InputError
from anchor.records.registry import (
    deactivate_provider,
    declare_model,
    new_api_key,
    register_provider,
    vocab_size_from_folder,
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
    help="A local HF checkpoint: vocab_size from config.json, fingerprint computed.",
)
@click.option("--fingerprint", help="The model's fingerprint (64 hex digits), if no --folder.")
@click.option("--vocab-size", type=int, help="The vocabulary size, if no --folder.")
def declare(name: str, folder: Path | None, fingerprint: str | None, vocab_size: int | None) -> None:
    """Declare model NAME so records may name it; token ids are checked against its vocabulary."""
    if folder is not None:
        vocab_size = vocab_size if vocab_size is not None else vocab_size_from_folder(folder)
        if fingerprint is None:
            from gpu_core.runner.fingerprint import fingerprint_model  # the runner's definition

            fingerprint = fingerprint_model(folder)
    if fingerprint is None:
        raise InputError("fingerprint", "give --fingerprint or --folder")
    if vocab_size is None:
        raise InputError("vocab_size", "give --vocab-size or --folder")
    with transaction(_sessions()) as s:
        m = declare_model(s, name, fingerprint, vocab_size)
        click.echo(f"model {m.name} {m.fingerprint} (vocabulary {m.vocab_size}) declared")


@provider.command("models")
def models() -> None:
    """List declared models."""
    with _sessions()() as s:
        for m in s.scalars(select(Model).order_by(Model.id)):
            click.echo(f"{m.name}  {m.fingerprint}  vocab {m.vocab_size}")
