"""Properties of build and verify over random shapes, k, batch sizes and dtypes (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_core import build_proofs_batch, build_proofs_bytes, verify_proofs_batch, verify_proofs_bytes
from gpu_core.proofs import chunk_count

DTYPES = [torch.bfloat16, torch.float16, torch.float32]
QUICK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Params:
    decode_batching_size: int
    topk: int
    skip_prefill: bool

    @property
    def args(self) -> tuple[int, int, bool]:
        return (self.decode_batching_size, self.topk, self.skip_prefill)


params = st.builds(Params, st.integers(1, 8), st.integers(1, 48), st.booleans())


@st.composite
def activations(draw: st.DrawFn, p: Params) -> list[torch.Tensor] | torch.Tensor:
    """One record's activations that every chunk of which holds at least p.topk values."""
    hidden = draw(st.integers(p.topk, 160))
    decode_rows = draw(st.integers(1 if p.skip_prefill else 0, 40))
    dtype = draw(st.sampled_from(DTYPES))
    # Coarse values make many ties at the k-th place, where the selection rule decides the bytes.
    scale = draw(st.sampled_from([0.0, 1.0, 4.0]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))

    def values(*shape: int) -> torch.Tensor:
        x = torch.randn(*shape, generator=generator)
        return (x * scale).round().to(dtype) if scale else x.to(dtype)

    decode = [values(hidden) for _ in range(decode_rows)]
    if p.skip_prefill:
        return torch.stack(decode) if draw(st.booleans()) else decode  # a tensor's rows are the items
    return [values(draw(st.integers(1, 6)), hidden), *decode]


@QUICK
@given(st.data())
def test_build_then_verify_same_activations_has_zero_error(data: st.DataObject) -> None:
    p = data.draw(params)
    record = data.draw(activations(p))
    proofs = build_proofs_bytes(record, *p.args)
    planes = 2 if record[0].dtype == torch.float32 else 1
    assert len(proofs) == chunk_count(len(record), p.decode_batching_size, p.skip_prefill)
    assert all(len(proof) == 2 + 2 * planes * p.topk for proof in proofs)
    for result in verify_proofs_bytes(record, proofs, *p.args):
        assert (result.exp_mismatches, result.mant_err_mean, result.mant_err_median) == (0, 0.0, 0.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_batch_equals_one_record_at_a_time(data: st.DataObject) -> None:
    p = data.draw(params)
    batch = data.draw(st.lists(activations(p), min_size=1, max_size=5))  # mixed dtypes and lengths
    proofs = build_proofs_batch(batch, *p.args)
    assert proofs == [build_proofs_bytes(record, *p.args) for record in batch]
    results = verify_proofs_batch(batch, proofs, *p.args)
    assert results == [verify_proofs_bytes(r, rp, *p.args) for r, rp in zip(batch, proofs, strict=True)]
