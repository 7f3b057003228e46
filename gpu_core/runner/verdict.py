"""The record-level rule: one verdict per record from its chunks' verification results.

Inputs per chunk: `result`, the provider's proof against the float32 reference, and `expected`, the
validator's own computation in the claimed dtype against the same reference (validate.py): how much
error honest arithmetic in that dtype leaves on exactly these tokens. Pooled over a record, the mantissa
error is the mean absolute mantissa difference over every exponent-matched top-k value of all chunks.

A record is fraud if any of these holds (docs/models.md gives the measurements behind the numbers):

1. a chunk exceeds the paper's per-chunk thresholds (gpu_core.proofs.thresholds_for): any chunk over
   them is fraud, as DESIGN.md says;
2. its pooled error is more than POOLED_RATIO_MAX times the expected pooled error: a deviation spread
   thinly over the record (int8-rounded weights, a slightly different model, a changed token) is
   caught even when no single chunk crosses the paper's thresholds;
3. its pooled error is below POOLED_RATIO_MIN times the expected one: the proofs match float32
   arithmetic too well for honest computation in the claimed dtype (a finer precision was used).

Rules 2 and 3 need `expected`, so they apply to bfloat16 and float16 records; float32 records, whose
reference is their own precision, are judged by rule 1 alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpu_core.proofs import VerificationResult, judge, thresholds_for
from gpu_core.proofs.thresholds import NO_MANTISSA

POOLED_RATIO_MAX = 1.4
"""Rule 2: largest accepted ratio of the provider's pooled error to the expected one. Measured on this
CPU (docs/models.md): honest records 0.69-1.29 (SmolLM2 at most 1.18), tampered ones 1.50 and up
(a changed system-prompt token of SmolLM2 the closest; int8 weights 1.72, 1% weight noise 1.72)."""

POOLED_RATIO_MIN = 0.3
"""Rule 3: smallest accepted ratio; below it the provider computed in a finer precision than claimed.
Measured: honest records 0.69 and up, float32 arithmetic passed off as bf16 or fp16 0.00-0.01."""

EXPECTED_FLOOR = 0.25
"""Expected pooled errors below this (mantissa units) count as this, so a near-zero expectation never
turns ordinary noise into a huge ratio."""


@dataclass(frozen=True)
class RecordVerdict:
    """A record's outcome. `reasons` is empty iff accepted; each reason names the rule that fired.
    `ratio` is pooled / max(expected, EXPECTED_FLOOR), None when rules 2 and 3 do not apply."""

    accepted: bool
    reasons: tuple[str, ...]
    failed_chunks: tuple[int, ...]
    pooled_mant_err_mean: float
    expected_mant_err_mean: float | None
    ratio: float | None

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


def judge_record(
    results: Sequence[VerificationResult],
    expected: Sequence[VerificationResult] | None,
    dtype: str,
    topk: int,
) -> RecordVerdict:
    """Apply the rules of the module docstring to one record.

    Requires at least one result, `expected` None or of the same length, `dtype` among "bfloat16",
    "float16", "float32".
    """
    chunk_verdict = judge(results, thresholds_for(dtype, topk))
    reasons = [
        f"chunk {index}: {', '.join(failures)}" for index, failures in sorted(chunk_verdict.failures.items())
    ]
    pooled = pooled_mant_err_mean(results, topk)
    baseline = None if expected is None else pooled_mant_err_mean(expected, topk)
    ratio = None
    if baseline is not None and baseline < NO_MANTISSA:
        ratio = pooled / max(baseline, EXPECTED_FLOOR)
        if ratio > POOLED_RATIO_MAX:
            reasons.append(
                f"pooled mant_err_mean {pooled:.3g} is {ratio:.2f}x the {baseline:.3g} of honest {dtype} "
                f"arithmetic on these tokens (at most {POOLED_RATIO_MAX:g}x)"
            )
        elif ratio < POOLED_RATIO_MIN:
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
    )
