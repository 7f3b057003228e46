"""`toploc-audit generate`: a provider's one command: run inference with TOPLOC proofs and the
replayable sampler, sign the record (EIP-712) and submit it to the recorder, which answers a signed
receipt; or write it to a file (`-o`), with no recorder or chain needed.

The helpers below (`signed_entry`, `submit_entry`, `find_model`, `prompt_ids`) are what the demo and
the tests use to act as a provider, so they exercise the same path; records are built by
`anchor.records.Record.from_generation`.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click

from anchor.errors import InputError
from anchor.records import DTYPES, Record
from anchor.records.eip712 import Domain
from anchor.settings import Settings
from gpu_core.runner.decoding import ENGINE, GUMBEL_MAX


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


def prompt_ids(tokenizer: Any, text: str, chat: bool = True) -> list[int]:
    """The prompt's token ids: wrapped in the model's chat template when it has one and `chat`."""
    if chat and getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return list(ids)
    return list(tokenizer(text)["input_ids"])


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
            problem = response.json()  # RFC 9457 problem details with the field and the reason
            raise InputError(
                problem.get("field") or "record", f"the recorder refused it: {problem['reason']}"
            )
        except (ValueError, KeyError, TypeError):
            raise InputError(
                "record", f"the recorder answered {response.status_code}: {response.text}"
            ) from None
    answer: dict[str, Any] = response.json()
    return answer


def provider_key(settings: Settings) -> bytes:
    """The provider key: TOPLOC_AUDIT_PROVIDER_KEY, else <home>/provider.key."""
    from anchor.keyfiles import configured_key

    variable, path = "TOPLOC_AUDIT_PROVIDER_KEY", settings.provider_key_file
    found = configured_key(settings.provider_key, variable, path)  # a key file must be mode 0600
    if found is None:
        raise InputError(variable, f"not set, and {path} does not exist")
    text, source = found
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
@click.option("--top-k", type=click.IntRange(min=0), default=0, show_default=True, help="0: no top-k cut.")
@click.option("--min-p", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--repetition-penalty", type=click.FloatRange(0.5, 2.0), default=1.0, show_default=True)
@click.option("--presence-penalty", type=click.FloatRange(-2, 2), default=0.0, show_default=True)
@click.option("--frequency-penalty", type=click.FloatRange(-2, 2), default=0.0, show_default=True)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**53 - 1),
    help="Sampling seed [default: derived from the request id, so fixed before generation].",
)
@click.option("--stop", multiple=True, help="A stop string (repeat for more).")
@click.option("--ignore-eos", is_flag=True, help="Do not stop at the end-of-sequence token.")
@click.option(
    "--sampler",
    type=click.Choice([GUMBEL_MAX, ENGINE]),
    default=GUMBEL_MAX,
    show_default=True,
    help=f"{GUMBEL_MAX}: replayable by validators; {ENGINE}: unseeded (a likelihood test only).",
)
@click.option("--dtype", type=click.Choice(DTYPES), default="bfloat16", show_default=True)
@click.option("--topk", type=click.IntRange(1, 8192), default=128, show_default=True, help="TOPLOC top-k.")
@click.option("--decode-batching-size", type=click.IntRange(1, 65536), default=32, show_default=True)
@click.option("--record", "submit", is_flag=True, help="Sign the record and submit it to the recorder.")
@click.option("--request-id", help="Idempotency key of the record [default: a fresh UUID].")
@click.option("--recorder", help="Recorder URL [default: TOPLOC_AUDIT_RECORDER_URL].")
@click.option("--api-key", envvar="TOPLOC_AUDIT_API_KEY", help="The provider's API key, if it has one.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the entry as JSON (signed when a deployment and the provider key are known).",
)
def generate(
    model_ref: str,
    prompt: str,
    chat: bool,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    min_p: float,
    repetition_penalty: float,
    presence_penalty: float,
    frequency_penalty: float,
    seed: int | None,
    stop: tuple[str, ...],
    ignore_eos: bool,
    sampler: str,
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

    Tokens are chosen by the replayable Gumbel-max sampler (seeded; greedy at temperature 0), so a
    validator can recompute every one. With --record, the record (tokens, model and tokenizer
    fingerprints, dtype, decode spec, stop reason, proofs) is signed with the provider key
    (TOPLOC_AUDIT_PROVIDER_KEY or <home>/provider.key) and submitted to the recorder, and the receipt is
    printed. With -o it is written to a file, no recorder needed: signed if the deployment file and the
    provider key exist, unsigned otherwise. Nothing is downloaded: MODEL is a local folder.

    \b
    Examples:
      toploc-audit generate --model SmolLM2-135M-Instruct --prompt "Hello" -o hello.json
      toploc-audit generate --model SmolLM2-135M-Instruct --prompt "A poem" --temperature 0.8 \\
          --top-p 0.95 --stop "\\n\\n" --record
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gpu_core.runner.decoding import DecodeSpec
    from gpu_core.runner.fingerprint import fingerprint_tokenizer
    from gpu_core.runner.generate import generate_with_proofs
    from gpu_core.runner.loading import load_model, load_tokenizer

    _quiet_transformers()
    settings = Settings.from_env()
    folder = find_model(settings, model_ref)
    request_id = request_id or str(uuid.uuid4())
    spec = DecodeSpec(
        sampler=sampler,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        presence_penalty=presence_penalty,
        frequency_penalty=frequency_penalty,
        seed=seed if sampler == GUMBEL_MAX and temperature > 0 else None,
        max_new_tokens=max_new_tokens,
        stop_token_ids=() if ignore_eos else None,
        stop=stop,
    )
    key = domain = None
    recorder = recorder or settings.recorder_url
    if submit:
        key, domain = provider_key(settings), recorder_domain(settings, recorder)
    elif output is not None and settings.deployment_file.is_file() and _has_provider_key(settings):
        from anchor.api.config import load_domain

        key, domain = provider_key(settings), load_domain(settings)

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
        ids = prompt_ids(tokenizer, prompt, chat)
        progress.update(task, description="generating", total=max_new_tokens + 1, completed=0)
        generation = generate_with_proofs(
            loaded,
            ids,
            spec,
            topk,
            decode_batching_size,
            tokenizer=tokenizer,
            request_id=request_id,
            progress=lambda done, total: progress.update(task, completed=done),
        )
    click.echo(tokenizer.decode(list(generation.output_ids), skip_special_tokens=True))
    click.echo(
        f"[{len(generation.prompt_ids)} prompt + {len(generation.output_ids)} output tokens "
        f"(stop: {generation.stop_reason}), {len(generation.proofs)} TOPLOC proofs, "
        f"model {generation.fingerprint[:16]}...]",
        err=True,
    )
    if not submit and output is None:
        return
    from eth_keys import keys

    provider = (
        keys.PrivateKey(key).public_key.to_checksum_address() if key is not None else _UNSIGNED_PROVIDER
    )
    record = Record.from_generation(
        generation, provider, folder.name, fingerprint_tokenizer(folder), request_id
    )  # the recorder's own checks, before anything leaves this machine
    if key is not None and domain is not None:
        body = signed_entry(record, key, domain)
    else:
        body = {"record": record.to_json(), "signature": None}
    if output is not None:
        output.write_text(json.dumps(body, indent=2) + "\n")
        state = "signed" if body["signature"] else "unsigned: no deployment or provider key known"
        click.echo(f"entry written to {output} ({state})", err=True)
    if submit:
        answer = submit_entry(recorder, body, api_key)
        receipt = answer["receipt"]
        state = "logged" if answer.get("created", True) else "already logged (same request id)"
        click.echo(
            f"record {state} at index {receipt['logIndex']}: recordDigest {receipt['recordDigest']}, "
            f"anchoring promised within {receipt['maximumMergeDelay']} s"
        )


_UNSIGNED_PROVIDER = "0x0000000000000000000000000000000000000000"
"""The provider of an unsigned record (no key known): it can be validated, not logged."""


def _has_provider_key(settings: Settings) -> bool:
    return settings.provider_key is not None or settings.provider_key_file.is_file()


def _quiet_transformers() -> None:
    """No per-file loading bars from transformers: this command shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
