"""Accept/reject against the named thresholds: honest recomputation passes, changed activations fail."""

from __future__ import annotations

import pytest
import torch

from gpu_core import THRESHOLDS, Thresholds, build_proofs_bytes, judge, thresholds_for, verify_proofs_bytes
from gpu_core.errors import ActivationError, ParameterError
from gpu_core.proofs.thresholds import NO_MANTISSA, VerificationResult
from tests.gpu_core.proofs_vectors import case, cases


def test_paper_thresholds() -> None:
    assert THRESHOLDS["bfloat16"] == Thresholds("bfloat16", 38, 10.0, 8.0, 128)
    assert THRESHOLDS["float32"] == Thresholds("float32", 8, 256.0, 128.0, 128)
    assert thresholds_for(torch.bfloat16) is THRESHOLDS["bfloat16"]
    assert thresholds_for("bfloat16", 64) == Thresholds("bfloat16", 19, 10.0, 8.0, 64)
    assert thresholds_for("float16", 8).exp_mismatches == 2


def test_thresholds_for_bad_input() -> None:
    with pytest.raises(ActivationError, match=r"^dtype: 'int8' is not supported"):
        thresholds_for("int8")
    with pytest.raises(ParameterError, match=r"^topk: is 0, want an int >= 1$"):
        thresholds_for("bfloat16", 0)
    with pytest.raises(ParameterError, match=r"^results: is empty"):
        judge([], THRESHOLDS["bfloat16"])


def test_limits_are_inclusive() -> None:
    limits = THRESHOLDS["bfloat16"]
    assert VerificationResult(38, 10.0, 8.0).passes(limits)
    assert VerificationResult(39, 0.0, 0.0).failures(limits) == ["exp_mismatches 39 > 38"]
    assert VerificationResult(0, 10.5, 9.0).failures(limits) == [
        "mant_err_mean 10.5 > 10",
        "mant_err_median 9 > 8",
    ]


def test_reference_jitter_results_are_accepted() -> None:
    # The reference's own results for 1% jitter: honest-looking noise, all within the paper's limits.
    for c in cases():
        if c.decode_only:
            results = [VerificationResult(*r) for r in c.decode_only["ref_results"]]
            assert judge(results, thresholds_for("bfloat16", c.topk)).accepted


def test_judge_names_failing_chunks() -> None:
    c = case("smollm_shape")
    proofs = build_proofs_bytes(c.activations, 32, 128)
    tampered = [a.clone() for a in c.activations]
    tampered[40] = torch.randn_like(tampered[40], dtype=torch.float32).to(torch.bfloat16) * 3  # chunk 2
    verdict = judge(verify_proofs_bytes(tampered, proofs, 32, 128), THRESHOLDS["bfloat16"])
    assert not verdict.accepted
    assert verdict.failed_chunks == [2]
    assert verdict.failures[2][0].startswith("exp_mismatches ")
    assert judge(verify_proofs_bytes(c.activations, proofs, 32, 128), THRESHOLDS["bfloat16"]).accepted


def test_every_exponent_off_gives_the_no_mantissa_sentinel() -> None:
    c = case("smollm_shape")
    proofs = build_proofs_bytes(c.activations, 32, 128)
    scaled = [a * 4 for a in c.activations]  # exponent + 2, mantissa unchanged
    results = verify_proofs_bytes(scaled, proofs, 32, 128)
    assert all(r == VerificationResult(128, NO_MANTISSA, NO_MANTISSA) for r in results)
    assert not judge(results, THRESHOLDS["bfloat16"]).accepted


def _decode(n: int, hidden: int, seed: int) -> torch.Tensor:
    return torch.randn(n, hidden, generator=torch.Generator().manual_seed(seed))


def _jitter(x: torch.Tensor, relative: float, seed: int) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return x * (1 + relative * noise)


@pytest.mark.parametrize(
    ("dtype", "honest_noise"),
    [(torch.bfloat16, 2**-9), (torch.float16, 2**-12), (torch.float32, 2**-22)],
)
def test_honest_noise_passes_and_other_values_fail(dtype: torch.dtype, honest_noise: float) -> None:
    """Noise of a fraction of the dtype's precision passes; unrelated values fail every chunk."""
    exact = _decode(96, 576, seed=1)
    proofs = build_proofs_bytes(exact.to(dtype), 32, 128, skip_prefill=True)
    limits = thresholds_for(dtype)
    honest = _jitter(exact, honest_noise, seed=2).to(dtype)
    assert judge(verify_proofs_bytes(honest, proofs, 32, 128, skip_prefill=True), limits).accepted
    other = _decode(96, 576, seed=3).to(dtype)
    verdict = judge(verify_proofs_bytes(other, proofs, 32, 128, skip_prefill=True), limits)
    assert verdict.failed_chunks == [0, 1, 2]


def test_float32_rejects_bfloat16_precision() -> None:
    """A float32 record recomputed in bfloat16 precision fails the float32 thresholds."""
    exact = _decode(64, 1024, seed=4)
    proofs = build_proofs_bytes(exact, 32, 128, skip_prefill=True)
    cheap = exact.to(torch.bfloat16).to(torch.float32)
    results = verify_proofs_bytes(cheap, proofs, 32, 128, skip_prefill=True)
    assert all(r.mant_err_mean > 256 for r in results)
    assert judge(results, thresholds_for(torch.float32)).failed_chunks == [0, 1]


def test_fp16_vector_verifies_with_noise() -> None:
    c = case("fp16_build_only")
    proofs = build_proofs_bytes(c.activations, 32, 64)
    noisy = [_jitter(a.float(), 2**-11, seed=5).to(torch.float16) for a in c.activations]
    results = verify_proofs_bytes(noisy, proofs, 32, 64)
    assert any(r.mant_err_mean > 0 for r in results)
    assert judge(results, thresholds_for("float16", 64)).accepted
