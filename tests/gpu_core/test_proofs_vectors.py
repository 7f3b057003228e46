"""Interop with toploc 0.1.6: byte-identical proofs and the same verify statistics as its C++ path."""

from __future__ import annotations

import base64

import pytest
import torch

from gpu_core import (
    ProofPoly,
    build_proofs,
    build_proofs_base64,
    build_proofs_batch,
    build_proofs_bytes,
    verify_proofs,
    verify_proofs_base64,
    verify_proofs_batch,
    verify_proofs_bytes,
)
from tests.gpu_core.proofs_vectors import case, case_names, cases, tensor_from

NAMES = case_names()
WITH_DECODE = [c.name for c in cases() if c.decode_only]


@pytest.mark.parametrize("name", NAMES)
def test_build_is_byte_identical(name: str) -> None:
    c = case(name)
    got = build_proofs_base64(c.activations, c.decode_batching_size, c.topk, c.skip_prefill)
    assert got == c.proofs_b64
    raw = build_proofs_bytes(c.activations, c.decode_batching_size, c.topk, c.skip_prefill)
    assert raw == [base64.b64decode(p) for p in c.proofs_b64]
    assert [int.from_bytes(p[:2], "big") for p in raw] == c.moduli
    polys = build_proofs(c.activations, c.decode_batching_size, c.topk, c.skip_prefill)
    assert [p.to_bytes() for p in polys] == raw
    assert [p.modulus for p in polys] == c.moduli


def test_collision_case_needs_a_smaller_modulus() -> None:
    # The reference vectors' point: top-k indices that collide mod 65497 and 65496.
    assert case("llama8b_shape_collisions").moduli[0] == 65495


@pytest.mark.parametrize("name", WITH_DECODE)
def test_decode_only_proofs_are_byte_identical(name: str) -> None:
    c = case(name)
    got = build_proofs_base64(c.decode_activations, c.decode_batching_size, c.topk, skip_prefill=True)
    assert got == c.decode_only["proofs_b64"]


@pytest.mark.parametrize("name", WITH_DECODE)
def test_verify_matches_reference_results(name: str) -> None:
    c = case(name)
    jittered = tensor_from(c.decode_only["jittered"])
    results = verify_proofs_base64(
        jittered, c.decode_only["proofs_b64"], c.decode_batching_size, c.topk, skip_prefill=True
    )
    want = c.decode_only["ref_results"]
    assert [r.exp_mismatches for r in results] == [w[0] for w in want]
    assert [r.mant_err_mean for r in results] == [w[1] for w in want]
    # Our median rule is the reference C++ one (upper middle element), so these agree as well.
    assert [r.mant_err_median for r in results] == [w[2] for w in want]


@pytest.mark.parametrize("name", WITH_DECODE)
def test_verify_entry_points_agree(name: str) -> None:
    c = case(name)
    jittered = tensor_from(c.decode_only["jittered"])
    b64 = c.decode_only["proofs_b64"]
    raw = [base64.b64decode(p) for p in b64]
    args = (c.decode_batching_size, c.topk, True)
    by_b64 = verify_proofs_base64(jittered, b64, *args)
    assert verify_proofs_bytes(jittered, raw, *args) == by_b64
    assert verify_proofs(jittered, [ProofPoly.from_bytes(p) for p in raw], *args) == by_b64
    # The same record as a list of rows gives the same chunks.
    assert verify_proofs_bytes(list(jittered.unbind(0)), raw, *args) == by_b64


def test_honest_activations_verify_with_zero_error() -> None:
    for c in cases():
        args = (c.decode_batching_size, c.topk, c.skip_prefill)
        proofs = build_proofs_bytes(c.activations, *args)
        for result in verify_proofs_bytes(c.activations, proofs, *args):
            assert (result.exp_mismatches, result.mant_err_mean, result.mant_err_median) == (0, 0.0, 0.0)


def test_batch_equals_one_by_one() -> None:
    usable = [c for c in cases() if (c.decode_batching_size, c.topk, c.skip_prefill) == (32, 128, False)]
    records = [c.activations for c in usable]
    batch = build_proofs_batch(records, 32, 128)
    assert batch[0] != batch[1]
    for c, proofs in zip(usable, batch, strict=True):
        assert proofs == [base64.b64decode(p) for p in c.proofs_b64]
    results = verify_proofs_batch(records, batch, 32, 128)
    assert all(r.exp_mismatches == 0 for rs in results for r in rs)
    assert [len(rs) for rs in results] == [len(c.proofs_b64) for c in usable]


def test_stacked_tensor_equals_list_of_rows() -> None:
    c = case("llama8b_shape_collisions")
    stacked = torch.stack(c.activations)
    assert build_proofs_base64(stacked, 32, 128, skip_prefill=True) == c.proofs_b64
