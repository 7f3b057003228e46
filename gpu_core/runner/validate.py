"""Validation: recompute a record's activations by one prefill over prompt + output tokens, batched across
records of one model, verify them against the stored proofs, replay the sampler on the same prefill's
logits, and judge the record (verdict.py).

Two modes, chosen by the dtype the validator loaded the model in:

- reference (loaded in float32, REFERENCE_DTYPE): the prefill runs in float32 and is rounded to the
  claimed dtype, so an honest provider's values differ from it only by the provider's own rounding; a
  copy of the model in the claimed dtype (sdpa) measures how much error honest arithmetic in that dtype
  shows on exactly these tokens (`ChunkReport.expected`), the yardstick of the record-level rule.
  Memory: the float32 weights plus the claimed-dtype copy (6 bytes per parameter for bf16 records).
- claimed (loaded in the records' dtype, bfloat16 or float16): one prefill in that dtype is the
  reference, and the record-level rule uses absolute limits calibrated for it (verdict.py). Memory: 2
  bytes per parameter, what fits a 70B model on one GPU; it cannot tell float32 arithmetic passed off
  as bf16 (docs/models.md gives both modes' margins).

The sampler replay (replay.py) takes the logits of the rows that predict each output token: one
lm_head matmul over those rows of the prefill already run.

Every item is checked first. A record that cannot be a real generation (proofs of the wrong count or
format, a modulus below topk, tokens outside the vocabulary, a decode spec the model cannot run, more
tokens than its positions) gets a `malformed` report: fraud, since its provider signed it; the others
are validated regardless. A failure while computing a batch (out of memory, a crash) splits the batch
and retries each half, so it ends in an `error` report ("could not check") of the one record that
fails alone, never in another record's verdict.

Batches are right-padded: with causal attention and an attention mask, padding after a sequence cannot
change its rows, and position ids stay 0..n-1 without being passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional

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
from gpu_core.runner.decoding import STOP_REASONS, DecodeSpec
from gpu_core.runner.errors import RunnerInputError
from gpu_core.runner.generate import Generation, check_spec, check_token_ids
from gpu_core.runner.loading import TORCH_DTYPES, LoadedModel
from gpu_core.runner.replay import TokenReport, replay_tokens
from gpu_core.runner.verdict import RecordVerdict, judge_record, logit_tolerance, malformed_verdict

REFERENCE_DTYPE = "float32"
"""The dtype of the reference mode (load_model(folder, REFERENCE_DTYPE))."""

EXPECTATION_ATTENTION = "sdpa"
"""The attention kernel of the claimed-dtype copy that measures honest error: the default kernel, fixed
so the validator's own kernel choice (sdpa or eager for the reference) cannot move the expectation."""

DEFAULT_MAX_BATCH_TOKENS = 16384
"""Padded tokens per prefill call: bounds activation memory (batch x longest x hidden floats)."""

CHECKED, MALFORMED, ERROR = "checked", "malformed", "error"

_VOCAB_CHUNK = 16384


@dataclass(frozen=True)
class ValidationItem:
    """One record to validate: its tokens, proofs, TOPLOC parameters and, for records that bind their
    decoding (version 2), the decode spec and stop reason (None: tokens are not checked)."""

    prompt_ids: Sequence[int]
    output_ids: Sequence[int]
    proofs: Sequence[bytes]
    dtype: str = "bfloat16"
    topk: int = 128
    decode_batching_size: int = 32
    spec: DecodeSpec | None = None
    stop_reason: str | None = None

    @classmethod
    def from_generation(cls, generation: Generation) -> ValidationItem:
        return cls(
            generation.prompt_ids,
            generation.output_ids,
            generation.proofs,
            generation.dtype,
            generation.topk,
            generation.decode_batching_size,
            generation.spec,
            generation.stop_reason,
        )


@dataclass(frozen=True)
class ChunkReport:
    """One chunk: token positions [begin, end) of prompt + output, the provider's proof against the
    reference (`result`), what it exceeded, and the validator's own claimed-dtype computation against
    the reference (`expected`; None for float32 records and in claimed mode)."""

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
    """One record's outcome. `status`: `checked` (computed), `malformed` (refused before computing:
    fraud) or `error` (this validator could not check it: `verdict` is None, `error` says why)."""

    chunks: tuple[ChunkReport, ...]
    tokens: TokenReport | None
    verdict: RecordVerdict | None
    status: str = CHECKED
    error: str | None = None
    mode: str = "reference"

    @property
    def accepted(self) -> bool:
        return self.verdict is not None and self.verdict.accepted

    @property
    def fraud(self) -> bool:
        return self.verdict is not None and not self.verdict.accepted


def validation_mode(loaded: LoadedModel) -> str:
    """`reference` for a float32 model, `claimed` for a bfloat16 or float16 one (module docstring)."""
    return "reference" if loaded.dtype == REFERENCE_DTYPE else "claimed"


def validate_batch(
    loaded: LoadedModel,
    items: Sequence[ValidationItem],
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    progress: Callable[[int, int], None] | None = None,
    tokenizer: object = None,
) -> list[RecordReport]:
    """Validate records of one model: one report per item, in order (module docstring).

    `tokenizer` is the model's, needed for records with stop strings (without it they get `error`).
    `progress(records_done, records_total)` is called after each prefill batch.
    """
    if isinstance(max_batch_tokens, bool) or not isinstance(max_batch_tokens, int) or max_batch_tokens < 1:
        raise RunnerInputError("max_batch_tokens", f"must be an integer >= 1, got {max_batch_tokens!r}")
    mode = validation_mode(loaded)
    reports: dict[int, RecordReport] = {}
    ready: list[int] = []
    for position, item in enumerate(items):
        try:
            _check_item(loaded, item, "record")
        except (RunnerInputError, ProofsInputError) as exc:
            reports[position] = RecordReport((), None, malformed_verdict(str(exc)), MALFORMED, mode=mode)
            continue
        problem = _cannot_check(loaded, item, tokenizer)
        if problem is not None:
            reports[position] = RecordReport((), None, None, ERROR, problem, mode)
            continue
        ready.append(position)

    for batch in _batches(items, ready, max_batch_tokens):
        for position, report in _isolated(loaded, items, batch, tokenizer, mode):
            reports[position] = report
        if progress is not None:
            progress(len(reports), len(items))
    return [reports[position] for position in range(len(items))]


def _isolated(
    loaded: LoadedModel, items: Sequence[ValidationItem], batch: list[int], tokenizer: object, mode: str
) -> list[tuple[int, RecordReport]]:
    """The batch's reports; a failure splits it in halves until it is one record's own `error` (never
    a verdict: whatever failed, the record is well formed, so the failure is the validator's)."""
    try:
        return list(zip(batch, _validate(loaded, [items[p] for p in batch], tokenizer, mode), strict=True))
    except Exception as exc:  # out of memory (a RuntimeError), a crash: this validator's own trouble
        if len(batch) == 1:
            reason = f"validation failed: {type(exc).__name__}: {exc}"
            return [(batch[0], RecordReport((), None, None, ERROR, reason, mode))]
        middle = len(batch) // 2
        return _isolated(loaded, items, batch[:middle], tokenizer, mode) + _isolated(
            loaded, items, batch[middle:], tokenizer, mode
        )


def _validate(
    loaded: LoadedModel, items: list[ValidationItem], tokenizer: object, mode: str
) -> list[RecordReport]:
    """One prefill batch (one claimed dtype): TOPLOC verification, the expectation, the replay."""
    dtype = items[0].dtype
    hidden = _prefill(loaded, items)
    reference = [_activations(rows, item, dtype) for rows, item in zip(hidden, items, strict=True)]
    own = None
    if mode == "reference" and dtype != REFERENCE_DTYPE:
        try:
            variant = loaded.variant(dtype, EXPECTATION_ATTENTION)
        except ValueError:  # an architecture without sdpa (Gemma 2): its own kernel, the only one it has
            variant = loaded.variant(dtype, loaded.attn_implementation)
        own = [
            _activations(rows, item, dtype)
            for rows, item in zip(_prefill(variant, items), items, strict=True)
        ]
    results: list[list[VerificationResult]] = [[] for _ in items]
    expected: list[list[VerificationResult] | None] = [None] * len(items)
    for (topk, size), slots in _by_parameters(items).items():
        records = [reference[slot] for slot in slots]
        got = verify_proofs_batch(records, [list(items[slot].proofs) for slot in slots], size, topk)
        for slot, value in zip(slots, got, strict=True):
            results[slot] = value
        if own is not None:
            own_proofs = build_proofs_batch([own[slot] for slot in slots], size, topk)
            for slot, value in zip(slots, verify_proofs_batch(records, own_proofs, size, topk), strict=True):
                expected[slot] = value
    head = _lm_head(loaded)
    tolerance = logit_tolerance(dtype, mode)
    reports = []
    for item, rows, got, want in zip(items, hidden, results, expected, strict=True):
        tokens = None
        if item.spec is not None and item.stop_reason is not None:
            prompt = len(item.prompt_ids)
            predicting = rows[prompt - 1 : prompt - 1 + len(item.output_ids)]
            tokens = replay_tokens(
                predicting, head, item.prompt_ids, item.output_ids, item.spec, item.stop_reason, tolerance,
                tokenizer,
            )  # fmt: skip
        reports.append(_report(item, got, want, tokens, mode))
    return reports


def _by_parameters(items: Sequence[ValidationItem]) -> dict[tuple[int, int], list[int]]:
    """Positions of items grouped by (topk, decode_batching_size): one verify call per group."""
    groups: dict[tuple[int, int], list[int]] = {}
    for position, item in enumerate(items):
        groups.setdefault((item.topk, item.decode_batching_size), []).append(position)
    return groups


def _check_item(loaded: LoadedModel, item: ValidationItem, field: str) -> None:
    """RunnerInputError (or a proof error) naming what makes the record malformed."""
    prompt = check_token_ids(loaded, item.prompt_ids, f"{field}.prompt_tokens")
    output = check_token_ids(loaded, item.output_ids, f"{field}.output_tokens")
    if item.dtype not in TORCH_DTYPES:
        raise RunnerInputError(f"{field}.dtype", f"{item.dtype!r} is not one of {', '.join(TORCH_DTYPES)}")
    try:
        check_parameters(item.decode_batching_size, item.topk)
    except ProofsInputError as exc:
        raise RunnerInputError(f"{field}.toploc.{exc.field}", exc.reason) from exc
    hidden = loaded.model.config.hidden_size
    if item.topk > hidden:
        raise RunnerInputError(f"{field}.toploc.topk", f"{item.topk} exceeds the hidden size {hidden}")
    limit = getattr(loaded.model.config, "max_position_embeddings", None)
    if limit is not None and len(prompt) + len(output) > limit:
        raise RunnerInputError(
            f"{field}.output_tokens", f"prompt + output exceed the model's {limit} positions"
        )
    want = chunk_count(1 + len(output), item.decode_batching_size, skip_prefill=False)
    if len(item.proofs) != want:
        raise RunnerInputError(
            f"{field}.proofs", f"got {len(item.proofs)} proofs, want {want} (one per chunk)"
        )
    try:
        moduli, _ = parse_proofs(list(item.proofs), encoding_for(item.dtype).planes * item.topk)
    except ProofFormatError as exc:
        raise RunnerInputError(f"{field}.{exc.field}", exc.reason) from exc
    low = (moduli < item.topk).nonzero()
    if low.numel():
        index = int(low[0])
        raise RunnerInputError(
            f"{field}.proofs[{index}]",
            f"modulus {int(moduli[index])} is below topk {item.topk} (no honest prover makes it)",
        )
    if (item.spec is None) != (item.stop_reason is None):
        raise RunnerInputError(f"{field}.stop_reason", "a decode spec and a stop reason go together")
    if item.spec is not None:
        if item.stop_reason not in STOP_REASONS:
            raise RunnerInputError(
                f"{field}.stop_reason", f"{item.stop_reason!r} is not one of {', '.join(STOP_REASONS)}"
            )
        if not item.spec.is_resolved:
            raise RunnerInputError(f"{field}.decode", "has no stop_token_ids or no seed")
        if len(output) > item.spec.max_new_tokens:
            raise RunnerInputError(
                f"{field}.output_tokens",
                f"{len(output)} tokens exceed decode.max_new_tokens {item.spec.max_new_tokens}",
            )
        check_spec(loaded, item.spec, len(prompt), f"{field}.decode")


def _cannot_check(loaded: LoadedModel, item: ValidationItem, tokenizer: object) -> str | None:
    """Why this validator cannot check a well-formed record (its own limits), or None."""
    if validation_mode(loaded) == "claimed" and item.dtype != loaded.dtype:
        return f"this validator holds {loaded.dtype} weights only; the record claims {item.dtype}"
    if item.spec is not None and item.spec.stop and tokenizer is None:
        return "the record has stop strings and this validator has no tokenizer for the model"
    return None


def _batches(items: Sequence[ValidationItem], ready: Sequence[int], max_batch_tokens: int) -> list[list[int]]:
    """Item positions grouped into prefill calls of one claimed dtype, longest first, each under
    max_batch_tokens padded tokens (a longer item goes alone)."""
    order = sorted(ready, key=lambda i: (items[i].dtype, -_length(items[i])))
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


def _prefill(loaded: LoadedModel, items: Sequence[ValidationItem]) -> list[torch.Tensor]:
    """Each item's final-norm rows over prompt + output ([length, hidden], in the model's dtype)."""
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
    return [hidden[row, : lengths[row]] for row in range(len(items))]


def _activations(rows: torch.Tensor, item: ValidationItem, dtype: str) -> list[torch.Tensor]:
    """The proofs' layout, rounded to `dtype`: [prefill rows, output row 1, ..., output row N]."""
    rounded = rows.to(TORCH_DTYPES[dtype])
    prompt = len(item.prompt_ids)
    return [rounded[:prompt], *rounded[prompt:].unbind(0)]


class _FloatHead:
    """lm_head as float32 logits, weights cast a vocabulary slice at a time (bounded memory), then the
    post-processing some architectures apply after it (what `model(...).logits`, the provider's
    sampler input, holds): Cohere's `logit_scale`, Granite's `logits_scaling`, Gemma 2's
    `final_logit_softcapping`."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, config: object) -> None:
        self.weight = weight
        self.bias = bias
        self.out_features = int(weight.shape[0])
        self.scale = getattr(config, "logit_scale", None)
        self.divisor = getattr(config, "logits_scaling", None)
        self.softcap = getattr(config, "final_logit_softcapping", None)

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            rows = rows.float()
            if self.weight.dtype == torch.float32:
                logits = functional.linear(rows, self.weight, self.bias)
            else:
                parts = []
                for start in range(0, self.out_features, _VOCAB_CHUNK):
                    w = self.weight[start : start + _VOCAB_CHUNK].float()
                    b = None if self.bias is None else self.bias[start : start + _VOCAB_CHUNK].float()
                    parts.append(functional.linear(rows, w, b))
                logits = torch.cat(parts, dim=1)
            if self.scale is not None:
                logits = logits * self.scale
            if self.divisor is not None:
                logits = logits / self.divisor
            if self.softcap is not None:
                logits = torch.tanh(logits / self.softcap) * self.softcap
            return logits


def _lm_head(loaded: LoadedModel) -> _FloatHead:
    head = loaded.model.get_output_embeddings()
    return _FloatHead(head.weight, getattr(head, "bias", None), loaded.model.config)


def _report(
    item: ValidationItem,
    results: Sequence[VerificationResult],
    expected: Sequence[VerificationResult] | None,
    tokens: TokenReport | None,
    mode: str,
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
    verdict = judge_record(results, expected, item.dtype, item.topk, tokens, mode)
    return RecordReport(chunks, tokens, verdict, CHECKED, mode=mode)
