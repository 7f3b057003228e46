"""Per-chunk verification results and the named thresholds that accept or reject them.

Every statistic measures error (larger is worse), so a chunk passes when each is at or below its
threshold. A record is accepted only if every chunk passes: one chunk over the thresholds is fraud.

Thresholds are stated for topk = 128 (the paper's setting); `for_topk` scales the exponent-mismatch
count linearly with k, the mantissa statistics (per-value errors) do not change with k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gpu_core.errors import ParameterError
from gpu_core.proofs.encoding import encoding_for

NO_MANTISSA = float(2**64)
"""mant_err_mean/median when every exponent mismatched (no mantissa to compare), as in the reference."""


@dataclass(frozen=True)
class VerificationResult:
    """One chunk's errors: how many of the top-k exponents differ from the proof's, and the mean and
    median absolute mantissa difference (in units of the last committed mantissa bit) over the values
    whose exponents match. The median is the upper middle element (the reference's C++ rule)."""

    exp_mismatches: int
    mant_err_mean: float
    mant_err_median: float

    def failures(self, thresholds: Thresholds) -> list[str]:
        """What exceeds the thresholds, as "<statistic> <value> > <threshold>"; empty if it passes."""
        failed = []
        if self.exp_mismatches > thresholds.exp_mismatches:
            failed.append(f"exp_mismatches {self.exp_mismatches} > {thresholds.exp_mismatches}")
        if self.mant_err_mean > thresholds.mant_err_mean:
            failed.append(f"mant_err_mean {self.mant_err_mean:g} > {thresholds.mant_err_mean:g}")
        if self.mant_err_median > thresholds.mant_err_median:
            failed.append(f"mant_err_median {self.mant_err_median:g} > {thresholds.mant_err_median:g}")
        return failed

    def passes(self, thresholds: Thresholds) -> bool:
        return not self.failures(thresholds)


@dataclass(frozen=True)
class Thresholds:
    """Acceptance limits for one chunk at topk = `topk`. Requires non-negative limits."""

    name: str
    exp_mismatches: int
    mant_err_mean: float
    mant_err_median: float
    topk: int = 128

    def for_topk(self, topk: int) -> Thresholds:
        """The same limits at another k: exponent mismatches scale with k (rounded down)."""
        if topk == self.topk:
            return self
        count = math.floor(self.exp_mismatches * topk / self.topk)
        return Thresholds(self.name, count, self.mant_err_mean, self.mant_err_median, topk)


THRESHOLDS: dict[str, Thresholds] = {
    # The paper's bfloat16 thresholds (arXiv 2501.16007): 38 of 128 exponents, mantissa
    # error mean 10 and median 8 (units of 2**-7).
    "bfloat16": Thresholds("bfloat16", 38, 10.0, 8.0),
    # Ours: the same counts in float16's own mantissa units (2**-10). Honest recomputation differs by
    # a few units of the working precision, whichever it is; see docs/toploc.md for the measurements.
    "float16": Thresholds("float16", 38, 10.0, 8.0),
    # The paper's float32 numbers (8 / 256 / 128), applied to our 22-bit committed mantissa (units of
    # 2**-22): honest float32 noise is a few units, bfloat16 or TF32 compute is thousands.
    "float32": Thresholds("float32", 8, 256.0, 128.0),
}
"""Named thresholds per activation dtype, at topk = 128."""


def thresholds_for(dtype: torch.dtype | str, topk: int = 128) -> Thresholds:
    """The named thresholds of a dtype (torch dtype or name), scaled to topk."""
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ParameterError("topk", f"is {topk!r}, want an int >= 1")
    return THRESHOLDS[encoding_for(dtype).name].for_topk(topk)


@dataclass(frozen=True)
class Verdict:
    """A record's outcome: accepted iff no chunk fails. `failures` maps chunk number -> reasons."""

    accepted: bool
    thresholds: Thresholds
    failures: dict[int, list[str]]
    results: tuple[VerificationResult, ...]

    @property
    def failed_chunks(self) -> list[int]:
        return sorted(self.failures)


def judge(results: Sequence[VerificationResult], thresholds: Thresholds) -> Verdict:
    """Accept a record's chunk results against thresholds. Requires at least one result."""
    if not results:
        raise ParameterError("results", "is empty: a record has at least one chunk")
    failures = {i: reasons for i, result in enumerate(results) if (reasons := result.failures(thresholds))}
    return Verdict(not failures, thresholds, failures, tuple(results))
