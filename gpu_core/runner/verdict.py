"""The record-level verdict: TOPLOC's chunk results and the sampler replay's token checks, one verdict.

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
   float32 arithmetic too well for honest computation in the claimed dtype (a finer precision was used);
4. a token check fails (gpu_core.runner.replay, version 2 records): a token is not the sampler's choice
   within LOGIT_TOLERANCE, lies outside the filters, or the stop reason does not hold; for the engine
   sampler, the likelihood test. TOPLOC shows the model ran over the tokens; this shows they came from it.

Rules 2 and 3 need `expected`, so they apply to bfloat16 and float16 records; float32 records, whose
reference is their own precision, are judged by rules 1 and 4. In the claimed mode (the validator holds
only the claimed dtype's weights, validate.py) rule 2 compares with the calibrated CLAIMED_EXPECTED
errors instead, and rule 3 cannot apply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gpu_core.proofs import VerificationResult, judge, thresholds_for
from gpu_core.proofs.thresholds import NO_MANTISSA
from gpu_core.runner.replay import TokenFailure, TokenReport

PREFILL_TOLERANCE = 0.5
"""Rule 2, prefill chunk: limit 1.5 at k = 128. Measured on this CPU (docs/models.md): honest records
0.72-1.26 (generated in batches or alone, validated batched or alone, sdpa or eager), int8-rounded
weights 1.80 and up, 1% weight noise 2.0 and up, a changed prompt token (when the change reaches the
prefill top-k) 1.67 and up."""

DECODE_TOLERANCE = 0.8
"""Rule 2, decode chunks: limit 1.80 for one chunk at k = 128, 1.57 for two, 1.46 for three, 1.28 for
eight. Measured over 200 honest SmolLM2 records (outputs of 1 to 256 tokens, generated in batches of
16, validated batched and one by one with sdpa and eager): honest ratios reach 1.60 over one chunk,
1.35 over two, 1.21 over three, 1.07 over eight; int8-rounded weights 1.54 and up over one chunk, 1.71
over two, about 2 over eight. Over one chunk the prefill rule and the sampler replay carry the
verdict on such weights: a record of one decode chunk is the weak spot."""

REFERENCE_VALUES = 128
"""The number of compared values (one chunk at the paper's k) at which a limit is 1 + tolerance."""

POOLED_RATIO_MIN = 0.3
"""Rule 3: smallest accepted ratio over all chunks; below it the provider computed in a finer precision
than claimed. Measured: honest records 0.82 and up, float32 arithmetic passed off as bf16 0.00-0.01."""

EXPECTED_FLOOR = 0.25
"""Expected pooled errors below this (mantissa units) count as this, so a near-zero expectation never
turns ordinary noise into a huge ratio."""

LOGIT_TOLERANCE: dict[tuple[str, str], float] = {
    ("reference", "bfloat16"): 1.0,
    ("reference", "float16"): 1.0,
    ("reference", "float32"): 0.05,
    ("claimed", "bfloat16"): 1.0,
    ("claimed", "float16"): 1.0,
}
"""The sampler replay's tolerance (logits) by validation mode and claimed dtype: how far behind the
sampler's choice an honest token may land on the validator's logits. Measured (docs/sampler.md)."""

CLAIMED_EXPECTED: dict[str, tuple[float, float]] = {"bfloat16": (2.03, 1.66), "float16": (0.35, 1.58)}
"""Claimed mode, rule 2's yardstick: the pooled mant_err_mean (prefill chunk, decode chunks) that
honest arithmetic in the claimed dtype shows against the validator's own prefill in that dtype, in
place of the expectation the reference mode computes per record. Measured on SmolLM2 (docs/models.md):
bf16, 200 honest records, medians 2.03 and 1.66; fp16, 60 records, prefill 0.16 (at most 0.34: the
provider's unpadded prefill and the validator's agree almost exactly in fp16, so the prefill value is
set above that maximum) and decode median 1.58 (at most 2.59)."""
CLAIMED_PREFILL_TOLERANCE = 0.5
CLAIMED_DECODE_TOLERANCE = 1.25
"""Claimed mode, rule 2's tolerances (limits as ratio_limit): prefill 1.5; decode 2.25 for one chunk,
1.88 for two, 1.44 for eight. Measured over the same 200 honest records with a bfloat16 validator on
two CPU types. Without native bf16 dot products: pooled prefill errors 1.6-2.25 (median 2.03), decode
1.05-2.95 (median 1.66), ratios up to 1.78 over one decode chunk and 1.52 over two. With them
(avx512_bf16): prefill ratios 0.03-0.18 (provider and validator prefills agree almost exactly), decode
up to 2.12 over one chunk (a one-token record) and 1.38 over two. The bf16 yardstick moves with the
hardware's kernels, so the decode limit leaves room for both; the prefill rule (int8 weights and 1%
noise 1.92-2.18 there) and the sampler replay carry the verdict. fp16 cheats were not measured in this
mode, nor any GPU."""


def logit_tolerance(dtype: str, mode: str) -> float:
    """The replay tolerance for records of `dtype` checked in `mode` (LOGIT_TOLERANCE)."""
    return LOGIT_TOLERANCE[(mode, dtype)]


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
    token_check: str = "none"
    """Which token check ran: "replay", "likelihood", or "none" (a version 1 record, or malformed)."""
    token_failures: tuple[TokenFailure, ...] = ()
    mode: str = "reference"

    @property
    def fraud(self) -> bool:
        return not self.accepted


def malformed_verdict(reason: str) -> RecordVerdict:
    """The verdict of a record refused before any computation: fraud, since its provider signed it."""
    return RecordVerdict(
        accepted=False,
        reasons=(f"malformed: {reason}",),
        failed_chunks=(),
        pooled_mant_err_mean=NO_MANTISSA,
        expected_mant_err_mean=None,
        ratio=None,
    )


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
    tokens: TokenReport | None = None,
    mode: str = "reference",
) -> RecordVerdict:
    """Apply the rules of the module docstring to one record; chunk 0 is the prefill chunk. `tokens`
    is the sampler replay's report (None for a version 1 record: its tokens are not checked).

    Requires at least one result, `expected` None or of the same length (None in claimed mode),
    `dtype` among "bfloat16", "float16", "float32".
    """
    chunk_verdict = judge(results, thresholds_for(dtype, topk))
    reasons = [
        f"chunk {index}: {', '.join(failures)}" for index, failures in sorted(chunk_verdict.failures.items())
    ]
    pooled = pooled_mant_err_mean(results, topk)
    baseline = None if expected is None else pooled_mant_err_mean(expected, topk)
    ratio = prefill = decode = None
    claimed = mode == "claimed" and dtype in CLAIMED_EXPECTED
    prefill_tolerance, decode_tolerance = (
        (CLAIMED_PREFILL_TOLERANCE, CLAIMED_DECODE_TOLERANCE)
        if claimed
        else (PREFILL_TOLERANCE, DECODE_TOLERANCE)
    )
    prefill_limit = ratio_limit(prefill_tolerance, 1, topk)
    decode_limit = ratio_limit(decode_tolerance, max(1, len(results) - 1), topk)
    if expected is not None and baseline is not None:
        ratio = _ratio(pooled, baseline)
        prefill = _part_ratio(results[:1], expected[:1], topk)
        decode = _part_ratio(results[1:], expected[1:], topk)
    elif claimed:
        prefill_expected, decode_expected = CLAIMED_EXPECTED[dtype]
        prefill = _ratio(pooled_mant_err_mean(results[:1], topk), prefill_expected)
        decode = _ratio(pooled_mant_err_mean(results[1:], topk), decode_expected)
    yardstick = "honest" if not claimed else "calibrated honest"
    for part, value, limit in (
        ("prefill chunk", prefill, prefill_limit),
        ("decode chunks", decode, decode_limit),
    ):
        if value is not None and value > limit:
            reasons.append(
                f"{part}: mant_err_mean is {value:.2f}x that of {yardstick} {dtype} arithmetic on these "
                f"tokens (at most {limit:.2f}x)"
            )
    if ratio is not None and ratio < POOLED_RATIO_MIN:
        reasons.append(
            f"pooled mant_err_mean {pooled:.3g} is {ratio:.2f}x the {baseline:.3g} of honest {dtype} "
            f"arithmetic (at least {POOLED_RATIO_MIN:g}x): computed in a finer precision than {dtype}"
        )
    token_failures: tuple[TokenFailure, ...] = ()
    if tokens is not None:
        token_failures = tokens.failures
        reasons.extend(failure.reason() for failure in token_failures)
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
        token_check="none" if tokens is None else tokens.kind,
        token_failures=token_failures,
        mode=mode,
    )
