"""The same proofs on CUDA tensors (runs only where CUDA is available: the `gpu` marker)."""

from __future__ import annotations

import base64

import pytest
import torch

from gpu_core import build_proofs_batch, build_proofs_bytes, judge, thresholds_for, verify_proofs_batch
from tests.gpu_core.proofs_vectors import case, tensor_from

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the gpu marker)"),
]


def test_cuda_matches_cpu_without_ties() -> None:
    # float32 values from a continuous distribution: no ties at the k-th place, so CUDA's radix select
    # and the CPU's partial sort choose the same set, and the proofs agree byte for byte.
    g = torch.Generator().manual_seed(5)
    records = [torch.randn(70, 512, generator=g), torch.randn(33, 512, generator=g)]
    cpu = build_proofs_batch(records, 32, 128)
    cuda = build_proofs_batch([r.cuda() for r in records], 32, 128)
    assert cuda == cpu
    results = verify_proofs_batch([r.cuda() for r in records], cpu, 32, 128)
    assert all(r.exp_mismatches == 0 and r.mant_err_mean == 0 for rs in results for r in rs)


def test_cuda_build_verifies_on_cuda_and_cpu() -> None:
    g = torch.Generator().manual_seed(6)
    record = torch.randn(200, 2048, generator=g).to(torch.bfloat16)
    proofs = build_proofs_bytes(record.cuda(), 32, 128, skip_prefill=True)
    on_cuda = verify_proofs_batch([record.cuda()], [proofs], 32, 128, skip_prefill=True)[0]
    assert all(r.exp_mismatches == 0 for r in on_cuda)
    # A tie chosen differently by the CPU costs at most a few exponent mismatches.
    on_cpu = verify_proofs_batch([record], [proofs], 32, 128, skip_prefill=True)[0]
    assert judge(on_cpu, thresholds_for("bfloat16")).accepted


def test_cuda_verify_of_reference_jitter_is_accepted() -> None:
    c = case("smollm_shape")
    jittered = tensor_from(c.decode_only["jittered"]).cuda()
    proofs = [base64.b64decode(p) for p in c.decode_only["proofs_b64"]]
    results = verify_proofs_batch([jittered], [proofs], 32, 128, skip_prefill=True)[0]
    assert judge(results, thresholds_for("bfloat16")).accepted
