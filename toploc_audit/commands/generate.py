"""`toploc-audit generate`: a provider's one command: run inference with TOPLOC proofs, sign the record
(EIP-712) and submit it to the recorder, which answers a signed receipt.

The helpers below (`build_record`, `signed_entry`, `submit_entry`, `find_model`) are what the demo and
the tests use to act as a provider, so they exercise the same path.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import click

from anchor.errors import InputError
from anchor.records import DTYPES, ModelRef, Record, Sampling, ToplocParams
from anchor.records.eip712 import Domain
from anchor.settings import Settings


def find_model(settings: Settings, ref: str) -> Path:
    """A model folder: `ref` itself if it is a folder, else the folder of that name in the model store."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path.resolve()
    candidate = settings.models_dir / ref
    if candidate.is_dir():
        return candidate
    known = (
        sorted(p.name for p in settings.models_dir.iterdir() if p.is_dir())
        if settings.models_dir.is_dir()
        else []
    )
    raise InputError(
        "model",
        f"{ref!r} is neither a folder nor a model in {settings.models_dir}"
        + (f" (it has: {', '.join(known)})" if known else " (it is empty: `toploc-audit model prepare`)"),
    )


def build_record(
    generation: Any,
    provider: str,
    model_name: str,
    request_id: str,
    max_new_tokens: int,
    when: int | None = None,
) -> Record:
    """The record of a gpu_core Generation, as `provider` commits to it."""
    sampling = generation.sampling
    return Record(
        provider=provider,
        model=ModelRef(model_name, generation.fingerprint),
        dtype=generation.dtype,
        toploc=ToplocParams(generation.topk, generation.decode_batching_size),
        prompt_tokens=tuple(generation.prompt_ids),
        output_tokens=tuple(generation.output_ids),
        sampling=Sampling(
            temperature=float(sampling.temperature),
            top_p=float(sampling.top_p),
            top_k=int(sampling.top_k),
            seed=sampling.seed,
            max_new_tokens=max_new_tokens,
        ),
        proofs=tuple(generation.proofs),
        request_id=request_id,
        time=int(time.time()) if when is None else when,
    )


def signed_entry(record: Record, key: bytes, domain: Domain) -> dict[str, Any]:
    """The body of POST /v1/records: the record and the provider's EIP-712 signature over its digest."""
    from eth_keys import keys

    from anchor.records.eip712 import sign_digest

    signature = sign_digest(keys.PrivateKey(key), domain.record_digest(record.digest()))
    return {"record": record.to_json(), "signature": "0x" + signature.hex()}


def recorder_domain(settings: Settings, recorder: str) -> Domain:
    """The EIP-712 domain to sign in: the deployment file's, else the one the recorder announces."""
    import httpx

    if settings.deployment_file.is_file():
        from anchor.api.config import load_domain

        return load_domain(settings)
    try:
        log = httpx.get(f"{recorder}/v1/log", timeout=30).raise_for_status().json()
    except httpx.HTTPError as exc:
        raise InputError("recorder", f"cannot read {recorder}/v1/log: {exc}") from None
    return Domain.of(int(log["chainId"]), str(log["contract"]))


def submit_entry(recorder: str, body: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
    """POST the entry; returns the recorder's answer (receipt, signature). Raises InputError with the
    recorder's own field and reason when it refuses."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.post(f"{recorder}/v1/records", json=body, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise InputError("recorder", f"cannot reach {recorder}: {exc}") from None
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            raise InputError(error.get("field") or "record", f"the recorder refused it: {error['reason']}")
        except (ValueError, KeyError, TypeError):
            raise InputError(
                "record", f"the recorder answered {response.status_code}: {response.text}"
            ) from None
    answer: dict[str, Any] = response.json()
    return answer


def provider_key(settings: Settings) -> bytes:
    """The provider key: TOPLOC_AUDIT_PROVIDER_KEY, else <home>/provider.key."""
    text, source = settings.provider_key, "TOPLOC_AUDIT_PROVIDER_KEY"
    if text is None:
        source = str(settings.provider_key_file)
        if not settings.provider_key_file.is_file():
            raise InputError("TOPLOC_AUDIT_PROVIDER_KEY", f"not set, and {source} does not exist")
        text = settings.provider_key_file.read_text()
    try:
        key = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InputError(source, "is not a 32-byte hex private key")
    return key


@click.command()
@click.option(
    "--model", "model_ref", required=True, help="A model folder, or a model's name in TOPLOC_AUDIT_MODELS."
)
@click.option("--prompt", required=True, help="The prompt text.")
@click.option(
    "--chat/--no-chat", default=True, show_default=True, help="Wrap the prompt in the model's chat template."
)
@click.option("--max-new-tokens", type=click.IntRange(1, 8192), default=32, show_default=True)
@click.option(
    "--temperature", type=click.FloatRange(0, 100), default=0.0, show_default=True, help="0 is greedy."
)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option(
    "--top-k", type=click.IntRange(min=0), default=0, show_default=True, help="0 means no top-k cut."
)
@click.option("--seed", type=click.IntRange(0, 2**53 - 1), help="Sampling seed [default: random, recorded].")
@click.option("--dtype", type=click.Choice(DTYPES), default="bfloat16", show_default=True)
@click.option("--topk", type=click.IntRange(1, 8192), default=128, show_default=True, help="TOPLOC top-k.")
@click.option("--decode-batching-size", type=click.IntRange(1, 65536), default=32, show_default=True)
@click.option("--record", "submit", is_flag=True, help="Sign the record and submit it to the recorder.")
@click.option("--request-id", help="Idempotency key of the record [default: a fresh UUID].")
@click.option("--recorder", help="Recorder URL [default: TOPLOC_AUDIT_RECORDER_URL].")
@click.option("--api-key", envvar="TOPLOC_AUDIT_API_KEY", help="The provider's API key, if it has one.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the entry as JSON."
)
def generate(
    model_ref: str,
    prompt: str,
    chat: bool,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    seed: int | None,
    dtype: str,
    topk: int,
    decode_batching_size: int,
    submit: bool,
    request_id: str | None,
    recorder: str | None,
    api_key: str | None,
    output: Path | None,
) -> None:
    """Generate a reply to PROMPT with MODEL, capturing TOPLOC proofs of every chunk; print the reply.

    With --record, the record (tokens, model fingerprint, dtype, sampling, proofs) is signed with the
    provider key (TOPLOC_AUDIT_PROVIDER_KEY or <home>/provider.key) and submitted to the recorder, and
    the receipt is printed. Nothing is downloaded: MODEL is a local folder.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gpu_core.runner.generate import generate_with_proofs
    from gpu_core.runner.loading import load_model, load_tokenizer
    from gpu_core.runner.sampling import SamplingParams

    _quiet_transformers()
    settings = Settings.from_env()
    folder = find_model(settings, model_ref)
    request_id = request_id or str(uuid.uuid4())
    key = provider_key(settings) if submit or output else None
    recorder = recorder or settings.recorder_url
    domain = recorder_domain(settings, recorder) if submit or output else None
    sampling = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, seed=seed)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(f"loading {folder.name} ({dtype})", total=None)
        tokenizer = load_tokenizer(folder)
        loaded = load_model(folder, dtype)
        if chat and getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
            )
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
        else:
            ids = tokenizer(prompt)["input_ids"]
        progress.update(task, description="generating", total=max_new_tokens, completed=0)
        generation = generate_with_proofs(
            loaded,
            list(ids),
            max_new_tokens,
            sampling,
            topk,
            decode_batching_size,
            progress=lambda done, total: progress.update(task, completed=done),
        )
    click.echo(tokenizer.decode(list(generation.output_ids), skip_special_tokens=True))
    click.echo(
        f"[{len(generation.prompt_ids)} prompt + {len(generation.output_ids)} output tokens, "
        f"{len(generation.proofs)} TOPLOC proofs, model {generation.fingerprint[:16]}...]",
        err=True,
    )
    if key is None or domain is None:
        return
    from eth_keys import keys

    provider = keys.PrivateKey(key).public_key.to_checksum_address()
    record = Record.from_json(
        build_record(generation, provider, folder.name, request_id, max_new_tokens).to_json()
    )  # the recorder's own checks, before anything leaves this machine
    body = signed_entry(record, key, domain)
    if output is not None:
        output.write_text(json.dumps(body, indent=2) + "\n")
        click.echo(f"entry written to {output}", err=True)
    if submit:
        answer = submit_entry(recorder, body, api_key)
        receipt = answer["receipt"]
        state = "logged" if answer.get("created", True) else "already logged (same request id)"
        click.echo(
            f"record {state} at index {receipt['logIndex']}: recordDigest {receipt['recordDigest']}, "
            f"anchoring promised within {receipt['maximumMergeDelay']} s"
        )


def _quiet_transformers() -> None:
    """No per-file loading bars from transformers: this command shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
