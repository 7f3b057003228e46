"""`toploc-audit validate FILE`: judge a record file (what `generate -o` writes) against a local model,
offline: TOPLOC, the sampler replay and the stop reason, exactly as a validator votes. The provider's
signature is checked apart from the computation (it needs the deployment's EIP-712 domain).

Exit status: 0 accepted, 3 fraud, 1 bad input (the file, the model, the options).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from anchor.errors import InputError
from anchor.records import Record
from anchor.settings import Settings

FRAUD_EXIT = 3


def read_entry(path: Path) -> tuple[Record, str | None]:
    """The record of a file holding an entry {"record": ..., "signature": ...} or a bare record, and
    the signature (None when absent)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("file", f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError("file", f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and "record" in data:
        signature = data.get("signature")
        if signature is not None and not isinstance(signature, str):
            raise InputError("signature", "must be a 0x-prefixed hex string or null")
        return Record.from_json(data["record"]), signature
    return Record.from_json(data), None


def signature_status(record: Record, signature: str | None, settings: Settings) -> dict[str, Any]:
    """The provider signature's check: valid, invalid (why), absent, or unchecked (no deployment)."""
    from eth_utils import to_checksum_address

    from anchor.errors import VerificationError
    from anchor.records.eip712 import recover_address

    if signature is None:
        return {"status": "absent"}
    if not settings.deployment_file.is_file():
        return {"status": "unchecked", "reason": f"no deployment file {settings.deployment_file}"}
    from anchor.api.config import load_domain

    domain = load_domain(settings)
    try:
        signer = recover_address(
            domain.record_digest(record.digest()), bytes.fromhex(signature.removeprefix("0x"))
        )
    except (ValueError, VerificationError) as exc:
        return {"status": "invalid", "reason": str(exc)}
    if signer != bytes.fromhex(record.provider[2:]):
        return {
            "status": "invalid",
            "reason": f"signed by {to_checksum_address(signer)}, not {record.provider}",
        }
    return {
        "status": "valid",
        "signer": record.provider,
        "chainId": domain.chain_id,
        "contract": domain.contract,
    }


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model_ref",
    help="A model folder or name [default: the store's folder of the record's fingerprint].",
)
@click.option(
    "--mode",
    type=click.Choice(["reference", "claimed"]),
    default="reference",
    show_default=True,
    help="reference: float32 plus the claimed dtype (finer checks); claimed: the record's dtype only "
    "(2 bytes per parameter).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the verdict as JSON (accepted, reasons, report)."
)
def validate(file: Path, model_ref: str | None, mode: str, as_json: bool) -> None:
    """Judge the record in FILE against a local model, offline, as a validator would.

    Exit status 0 when accepted, 3 when the record is fraud (each reason names the check: a TOPLOC
    chunk, the sampler at an output position, the stop reason), 1 on bad input.

    \b
    Examples:
      toploc-audit generate --model SmolLM2-135M-Instruct --prompt "Hi" -o hi.json
      toploc-audit validate hi.json
      toploc-audit validate hi.json --json --mode claimed
    """
    from gpu_core.runner.fingerprint import fingerprint_model
    from gpu_core.runner.loading import load_model
    from gpu_core.runner.validate import ERROR, validate_batch
    from toploc_audit.commands.generate import _quiet_transformers, find_model
    from verifier.model_store import ModelStore
    from verifier.validation import tokenizer_problem, validation_item
    from verifier.verdicts import evidence_json

    _quiet_transformers()
    settings = Settings.from_env()
    record, signature = read_entry(file)
    store = ModelStore(settings.models_dir)
    if model_ref is not None:
        folder = find_model(settings, model_ref)
    else:
        found = store.find(record.model.fingerprint)
        if found is None:
            raise InputError(
                "model",
                f"no folder in {settings.models_dir} has the record's fingerprint {record.model.fingerprint}",
            )
        folder = found
    fingerprint = fingerprint_model(folder)
    if fingerprint != record.model.fingerprint:
        raise InputError(
            "model", f"{folder} is model {fingerprint}, the record names {record.model.fingerprint}"
        )
    tokenizer, tokenizer_fingerprint = store.tokenizer(folder)
    problem = tokenizer_problem(record, tokenizer_fingerprint)
    if problem is not None:
        raise InputError("model", f"could not check the record: {problem}")
    loaded = load_model(folder, "float32" if mode == "reference" else record.dtype)
    [report] = validate_batch(loaded, [validation_item(record)], tokenizer=tokenizer)
    signature_check = signature_status(record, signature, settings)
    if report.status == ERROR:
        raise InputError("model", f"could not check the record: {report.error}")
    assert report.verdict is not None
    evidence = evidence_json(fingerprint, record, report)
    if as_json:
        out = {
            "accepted": report.accepted,
            "reasons": list(report.verdict.reasons),
            "signature": signature_check,
            "recordDigest": "0x" + record.digest().hex(),
            "report": evidence,
        }
        click.echo(json.dumps(out, indent=2))
    else:
        verdict = report.verdict
        click.echo(
            f"record {file}: version {record.version}, {record.model.name}, {record.dtype}, "
            f"{len(record.prompt_tokens)} prompt + {len(record.output_tokens)} output tokens"
        )
        click.echo(
            f"signature: {signature_check['status']}"
            + (f" ({signature_check['reason']})" if "reason" in signature_check else "")
        )
        click.echo(
            f"checks ({report.mode} mode): TOPLOC over {len(report.chunks)} chunks, "
            f"tokens: {evidence['tokenCheck']}"
        )
        if report.tokens is not None and report.tokens.max_gap is not None:
            click.echo(
                f"  largest gap behind the sampler's choice {report.tokens.max_gap:.3g} logits "
                f"(tolerance {report.tokens.limit:.3g}); the validator's own choice differs at "
                f"{report.tokens.mismatches} of {report.tokens.positions} positions"
            )
        if verdict.decode_ratio is not None:
            click.echo(
                f"  TOPLOC ratios: prefill {verdict.prefill_ratio:.2f} (<= {verdict.prefill_limit:.2f}), "
                f"decode {verdict.decode_ratio:.2f} (<= {verdict.decode_limit:.2f})"
            )
        if report.accepted:
            click.echo("accepted")
        else:
            click.echo("FRAUD:")
            for reason in verdict.reasons:
                click.echo(f"  - {reason}")
    if not report.accepted:
        raise SystemExit(FRAUD_EXIT)
