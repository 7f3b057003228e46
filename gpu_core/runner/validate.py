"""Validation: recompute a record's activations by one prefill over prompt + output tokens, batched across
records of one model, verify them against the stored proofs, and judge the record (verdict.py).

Two prefills of the same batch, both cheap next to generation:
- the reference, in float32 whatever the claimed dtype, rounded to it: an honest provider's values then
  differ from it only by the provider's own rounding, not by the validator's too;
- a copy of the model in the claimed dtype (sdpa attention): proofs of its own activations, verified
  against the reference, say how much error honest computation in that dtype shows on exactly these
  tokens. The record-level rule compares the provider's error with that (a ratio), so it needs no
  per-model numbers.

Batches are right-padded: with causal attention and an attention mask, padding after a sequence cannot
change its rows, and position ids stay 0..n-1 without being passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from gpu_core.errors import ProofFormatError, ProofsInputError
from gpu_core.proofs import (
    VerificationResult,
    build_proofs_batch,
    chunk_count,
    encoding_for,
    thresholds_for,
    verify_proofs_batch,
)
from gpu_core.proofs.chunks import check_parameters
from gpu_core.proofs.format import parse_proofs
from gpu_core.runner.capture import capture_final_norm
from gpu_core.runner.errors import RunnerInputError
from gpu_core.runner.generate import Generation, check_token_ids
from gpu_core.runner.loading import TORCH_DTYPES, LoadedModel
from gpu_core.runner.verdict import RecordVerdict, judge_record

REFERENCE_DTYPE = "float32"
"""The dtype validators load models in (load_model(folder, REFERENCE_DTYPE))."""

EXPECTATION_ATTENTION = "sdpa"
"""The attention kernel of the claimed-dtype copy that measures honest error: the default kernel, fixed
so the validator's own kernel choice (sdpa or eager for the reference) cannot move the expectation."""

DEFAULT_MAX_BATCH_TOKENS = 16384
"""Padded tokens per prefill call: bounds activation memory (batch x longest x hidden floats)."""


@dataclass(frozen=True)
class ValidationItem:
    """One record to validate: its tokens, its proofs and the parameters they were built with."""

    prompt_ids: Sequence[int]
    output_ids: Sequence[int]
    proofs: Sequence[bytes]
    dtype: str = "bfloat16"
    topk: int = 128
    decode_batching_size: int = 32

    @classmethod
    def from_generation(cls, generation: Generation) -> ValidationItem:
        return cls(
            generation.prompt_ids,
            generation.output_ids,
            generation.proofs,
            generation.dtype,
            generation.topk,
            generation.decode_batching_size,
        )


@dataclass(frozen=True)
class ChunkReport:
    """One chunk: token positions [begin, end) of prompt + output, the provider's proof against the
    reference (`result`), what it exceeded, and the validator's own claimed-dtype computation against
    the reference (`expected`, None for float32 records)."""

    index: int
    begin: int
    end: int
    result: VerificationResult
    failures: tuple[str, ...]
    expected: VerificationResult | None

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class RecordReport:
    """Per-chunk results and the record's verdict."""

    chunks: tuple[ChunkReport, ...]
    verdict: RecordVerdict

    @property
    def accepted(self) -> bool:
        return self.verdict.accepted


def validate_batch(
    loaded: LoadedModel,
    items: Sequence[ValidationItem],
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    progress: Callable[[int, int], None] | None = None,
) -> list[RecordReport]:
    """Validate records of one model: one report per item, in order.

    Requires `loaded` in REFERENCE_DTYPE (float32) and well-formed items: non-empty prompt and output
    of token ids in the vocabulary, a supported dtype, valid TOPLOC parameters, and exactly
    1 + ceil(len(output) / decode_batching_size) well-formed proofs. Every item is checked before any
    computation; a bad one raises RunnerInputError (or a gpu_core proof error) naming items[i].
    `progress(records_done, records_total)` is called after each prefill batch.
    """
    if loaded.dtype != REFERENCE_DTYPE:
        raise RunnerInputError(
            "loaded.dtype", f"is {loaded.dtype}; validation computes the reference in {REFERENCE_DTYPE}"
        )
    if isinstance(max_batch_tokens, bool) or not isinstance(max_batch_tokens, int) or max_batch_tokens < 1:
        raise RunnerInputError("max_batch_tokens", f"must be an integer >= 1, got {max_batch_tokens!r}")
    for position, item in enumerate(items):
        _check_item(loaded, item, f"items[{position}]")

    reports: dict[int, RecordReport] = {}
    for batch in _batches(items, max_batch_tokens):
        batch_items = [items[position] for position in batch]
        dtype = batch_items[0].dtype
        reference = _prefill(loaded, batch_items, dtype)
        own = None
        if dtype != REFERENCE_DTYPE:
            own = _prefill(loaded.variant(dtype, EXPECTATION_ATTENTION), batch_items, dtype)
        for (topk, size), slots in _by_parameters(batch_items).items():
            records = [reference[slot] for slot in slots]
            results = verify_proofs_batch(
                records, [list(batch_items[slot].proofs) for slot in slots], size, topk
            )
            expected: list[list[VerificationResult] | None] = [None] * len(slots)
            if own is not None:
                own_proofs = build_proofs_batch([own[slot] for slot in slots], size, topk)
                expected = list(verify_proofs_batch(records, own_proofs, size, topk))
            for slot, got, want in zip(slots, results, expected, strict=True):
                reports[batch[slot]] = _report(batch_items[slot], got, want)
        if progress is not None:
            progress(len(reports), len(items))
    return [reports[position] for position in range(len(items))]


def _by_parameters(items: Sequence[ValidationItem]) -> dict[tuple[int, int], list[int]]:
    """Positions of items grouped by (topk, decode_batching_size): one verify call per group."""
    groups: dict[tuple[int, int], list[int]] = {}
    for position, item in enumerate(items):
        groups.setdefault((item.topk, item.decode_batching_size), []).append(position)
    return groups


def _check_item(loaded: LoadedModel, item: ValidationItem, field: str) -> None:
    prompt = check_token_ids(loaded, item.prompt_ids, f"{field}.prompt_ids")
    output = check_token_ids(loaded, item.output_ids, f"{field}.output_ids")
    if item.dtype not in TORCH_DTYPES:
        raise RunnerInputError(f"{field}.dtype", f"{item.dtype!r} is not one of {', '.join(TORCH_DTYPES)}")
    try:
        check_parameters(item.decode_batching_size, item.topk)
    except ProofsInputError as exc:
        raise RunnerInputError(f"{field}.{exc.field}", exc.reason) from exc
    hidden = loaded.model.config.hidden_size
    if item.topk > hidden:
        raise RunnerInputError(f"{field}.topk", f"{item.topk} exceeds the hidden size {hidden}")
    limit = getattr(loaded.model.config, "max_position_embeddings", None)
    if limit is not None and len(prompt) + len(output) > limit:
        raise RunnerInputError(f"{field}.output_ids", f"prompt + output exceed the model's {limit} positions")
    want = chunk_count(1 + len(output), item.decode_batching_size, skip_prefill=False)
    if len(item.proofs) != want:
        raise RunnerInputError(
            f"{field}.proofs", f"got {len(item.proofs)} proofs, want {want} (one per chunk)"
        )
    try:  # format errors now, before any prefill
        parse_proofs(list(item.proofs), encoding_for(item.dtype).planes * item.topk)
    except ProofFormatError as exc:
        raise RunnerInputError(f"{field}.proofs[{exc.index}]", exc.reason) from exc


def _batches(items: Sequence[ValidationItem], max_batch_tokens: int) -> list[list[int]]:
    """Item positions grouped into prefill calls of one claimed dtype, longest first, each under
    max_batch_tokens padded tokens (a longer item goes alone)."""
    order = sorted(range(len(items)), key=lambda i: (items[i].dtype, -_length(items[i])))
    batches: list[list[int]] = []
    for position in order:
        last = batches[-1] if batches else None
        if (
            last is not None
            and items[last[0]].dtype == items[position].dtype
            and _length(items[last[0]]) * (len(last) + 1) <= max_batch_tokens
        ):
            batches[-1].append(position)
        else:
            batches.append([position])
    return batches


def _length(item: ValidationItem) -> int:
    return len(item.prompt_ids) + len(item.output_ids)


def _prefill(loaded: LoadedModel, items: Sequence[ValidationItem], dtype: str) -> list[list[torch.Tensor]]:
    """Each item's activations in the proofs' layout: [prefill rows, output row 1, ..., output row N],
    rounded to `dtype`."""
    lengths = [_length(item) for item in items]
    longest = max(lengths)
    input_ids = torch.zeros((len(items), longest), dtype=torch.long)
    attention_mask = torch.zeros((len(items), longest), dtype=torch.long)
    for row, item in enumerate(items):
        tokens = [*item.prompt_ids, *item.output_ids]
        input_ids[row, : len(tokens)] = torch.tensor(tokens)
        attention_mask[row, : len(tokens)] = 1
    captured: list[torch.Tensor] = []
    with torch.inference_mode(), capture_final_norm(loaded.model, captured.append):
        loaded.model(
            input_ids.to(loaded.device),
            attention_mask=attention_mask.to(loaded.device),
            use_cache=False,
            logits_to_keep=1,
        )
    hidden = captured[0]
    out = []
    for row, item in enumerate(items):
        rows = hidden[row, : lengths[row]].to(TORCH_DTYPES[dtype])
        prompt = len(item.prompt_ids)
        out.append([rows[:prompt], *rows[prompt:].unbind(0)])
    return out


def _report(
    item: ValidationItem,
    results: Sequence[VerificationResult],
    expected: Sequence[VerificationResult] | None,
) -> RecordReport:
    thresholds = thresholds_for(item.dtype, item.topk)
    prompt, output = len(item.prompt_ids), len(item.output_ids)
    bounds = [(0, prompt)] + [
        (prompt + start, prompt + min(start + item.decode_batching_size, output))
        for start in range(0, output, item.decode_batching_size)
    ]
    chunks = tuple(
        ChunkReport(
            index,
            begin,
            end,
            result,
            tuple(result.failures(thresholds)),
            expected[index] if expected else None,
        )
        for index, ((begin, end), result) in enumerate(zip(bounds, results, strict=True))
    )
    verdict = judge_record(results, expected, item.dtype, item.topk)
    return RecordReport(chunks, verdict)
