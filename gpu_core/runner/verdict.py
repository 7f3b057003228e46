"""The record-level rule: one verdict per record from its chunks' verification results.

Inputs per chunk: `result`, the provider's proof against the float32 reference, and `expected`, the
validator's own computation in the claimed dtype against the same reference (validate.py): how much
error honest arithmetic in that dtype leaves on exactly these tokens. Pooled over a set of chunks, the
mantissa error is the mean absolute mantissa difference over every exponent-matched top-k value.

A record is fraud if any of these holds (docs/models.md gives the measurements behind the numbers):

1. a chunk exceeds the paper's per-chunk thresholds (gpu_core.proofs.thresholds_for): any chunk over
   them is fraud, as DESIGN.md says;
2. the prefill chunk's error, or the decode chunks' pooled error, is more than `ratio_limit` times the
   expected one: a deviation spread thinly over the record (int8-rounded weights, a slightly different
   model, a changed token) is caught even when no single chunk crosses the paper's thresholds. The
   limit is 1 + tolerance * sqrt(128 / values compared): a ratio over few values (a short output, a
   small k) is noisier than one over many, so it gets more room, and a long record a tight limit. The
   two parts are judged apart because their honest errors differ (the prefill chunk's top-k mixes every
   prompt row), so pooling them together let a prompt change far from the output hide in the decode
   chunks' average;
3. the pooled error of all chunks is below POOLED_RATIO_MIN times the expected one: the proofs match
   float32 arithmetic too well for honest computation in the claimed dtype (a finer precision was used).

Rules 2 and 3 need `expected`, so they apply to bfloat16 and float16 records; float32 records, whose
reference is their own precision, are judged by rule 1 alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gpu_core.proofs import VerificationResult, judge, thresholds_for
from gpu_core.proofs.thresholds import NO_MANTISSA

PREFILL_TOLERANCE = 0.5
"""Rule 2, prefill chunk: limit 1.5 at k = 128. Measured on this CPU (docs/models.md): honest records
0.77-1.31, tampered prompts (when the change reaches the prefill top-k) 1.67 and up; int8 weights 1.82,
1% weight noise 1.75."""

DECODE_TOLERANCE = 0.35
"""Rule 2, decode chunks: limit 1.35 for one chunk at k = 128, 1.25 for two, 1.12 for eight. Measured:
honest records 0.81-1.09 (1.32 for a 3-token output at k = 64, limit 1.49), tampered ones 1.32 and up
over eight chunks (a changed middle prompt token of SmolLM2 before 256 output tokens the closest), 1.45
and up over two, 2.07 and up over one."""

REFERENCE_VALUES = 128
"""The number of compared values (one chunk at the paper's k) at which a limit is 1 + tolerance."""

POOLED_RATIO_MIN = 0.3
"""Rule 3: smallest accepted ratio over all chunks; below it the provider computed in a finer precision
than claimed. Measured: honest records 0.82 and up, float32 arithmetic passed off as bf16 0.00-0.01."""

EXPECTED_FLOOR = 0.25
"""Expected pooled errors below this (mantissa units) count as this, so a near-zero expectation never
turns ordinary noise into a huge ratio."""


@dataclass(frozen=True)
class RecordVerdict:
    """A record's outcome. `reasons` is empty iff accepted; each reason names the rule that fired.
    Ratios are pooled / max(expected, EXPECTED_FLOOR): `ratio` over all chunks, `prefill_ratio` of the
    prefill chunk, `decode_ratio` of the decode chunks, each part with its limit; None when rules 2 and
    3 do not apply."""

    accepted: bool
    reasons: tuple[str, ...]
    failed_chunks: tuple[int, ...]
    pooled_mant_err_mean: float
    expected_mant_err_mean: float | None
    ratio: float | None
    prefill_ratio: float | None = None
    decode_ratio: float | None = None
    prefill_limit: float | None = None
    decode_limit: float | None = None

    @property
    def fraud(self) -> bool:
        return not self.accepted


def pooled_mant_err_mean(results: Sequence[VerificationResult], topk: int) -> float:
    """Mean mantissa error over all exponent-matched values of all chunks (NO_MANTISSA if none)."""
    total = 0.0
    matched = 0
    for result in results:
        n = topk - result.exp_mismatches
        if n > 0:
            total += result.mant_err_mean * n
            matched += n
    return total / matched if matched else NO_MANTISSA


def _ratio(pooled: float, baseline: float) -> float | None:
    """A pooled error over the expected one (floored); None when no expected mantissa matched."""
    return None if baseline >= NO_MANTISSA else pooled / max(baseline, EXPECTED_FLOOR)


def _part_ratio(
    results: Sequence[VerificationResult], expected: Sequence[VerificationResult], topk: int
) -> float | None:
    return _ratio(pooled_mant_err_mean(results, topk), pooled_mant_err_mean(expected, topk))


def ratio_limit(tolerance: float, chunks: int, topk: int) -> float:
    """Rule 2's limit for a part of `chunks` chunks at `topk`: 1 + tolerance * sqrt(128 / values)."""
    return 1 + tolerance * math.sqrt(REFERENCE_VALUES / (chunks * topk))


def judge_record(
    results: Sequence[VerificationResult],
    expected: Sequence[VerificationResult] | None,
    dtype: str,
    topk: int,
) -> RecordVerdict:
    """Apply the rules of the module docstring to one record; chunk 0 is the prefill chunk.

    Requires at least one result, `expected` None or of the same length, `dtype` among "bfloat16",
    "float16", "float32".
    """
    chunk_verdict = judge(results, thresholds_for(dtype, topk))
    reasons = [
        f"chunk {index}: {', '.join(failures)}" for index, failures in sorted(chunk_verdict.failures.items())
    ]
    pooled = pooled_mant_err_mean(results, topk)
    baseline = None if expected is None else pooled_mant_err_mean(expected, topk)
    ratio = prefill = decode = None
    prefill_limit = ratio_limit(PREFILL_TOLERANCE, 1, topk)
    decode_limit = ratio_limit(DECODE_TOLERANCE, max(1, len(results) - 1), topk)
    if expected is not None and baseline is not None:
        ratio = _ratio(pooled, baseline)
        prefill = _part_ratio(results[:1], expected[:1], topk)
        decode = _part_ratio(results[1:], expected[1:], topk)
    for part, value, limit in (
        ("prefill chunk", prefill, prefill_limit),
        ("decode chunks", decode, decode_limit),
    ):
        if value is not None and value > limit:
            reasons.append(
                f"{part}: mant_err_mean is {value:.2f}x that of honest {dtype} arithmetic on these tokens "
                f"(at most {limit:.2f}x)"
            )
    if ratio is not None and ratio < POOLED_RATIO_MIN:
        reasons.append(
            f"pooled mant_err_mean {pooled:.3g} is {ratio:.2f}x the {baseline:.3g} of honest {dtype} "
            f"arithmetic (at least {POOLED_RATIO_MIN:g}x): computed in a finer precision than {dtype}"
        )
    return RecordVerdict(
        accepted=not reasons,
        reasons=tuple(reasons),
        failed_chunks=tuple(chunk_verdict.failed_chunks),
        pooled_mant_err_mean=pooled,
        expected_mant_err_mean=baseline,
        ratio=ratio,
        prefill_ratio=prefill,
        decode_ratio=decode,
        prefill_limit=None if prefill is None else prefill_limit,
        decode_limit=None if decode is None else decode_limit,
    )
