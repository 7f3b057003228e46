"""Every malformed input is rejected with a ToplocError naming the field and the reason, never a crash
and never a silent pass; and the reference's Python-path defect (indices not reduced modulo the
proof's modulus) does not occur here."""

from __future__ import annotations

import base64

import pytest
import torch

from gpu_core import (
    ToplocError,
    build_proofs_bytes,
    thresholds_for,
    verify_proofs_base64,
    verify_proofs_bytes,
)
from gpu_core.errors import (
    ActivationError,
    ParameterError,
    ProofCountError,
    ProofFormatError,
    ProofsInputError,
)
from gpu_core.proofs import ProofPoly, build_proofs_batch, verify_proofs_batch
from gpu_core.proofs.polynomial import evaluate
from gpu_core.proofs.topk import select_topk
from tests.gpu_core.proofs_vectors import case


@pytest.fixture(scope="module")
def record() -> tuple[torch.Tensor, list[bytes]]:
    torch.manual_seed(7)
    activations = torch.randn(65, 64, dtype=torch.bfloat16)  # prefill row + 64 decode rows
    return activations, build_proofs_bytes(activations, 32, 16)


def _replace(proofs: list[bytes], index: int, proof: bytes) -> list[bytes]:
    return [proof if i == index else p for i, p in enumerate(proofs)]


def _words(*values: int) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


MALFORMED = [
    ("empty", lambda p: b"", "proofs[1]: has 0 bytes, want 34"),
    ("short", lambda p: p[:-2], "proofs[1]: has 32 bytes, want 34"),
    ("long", lambda p: p + b"\x00\x01", "proofs[1]: has 36 bytes, want 34"),
    ("odd", lambda p: p + b"\x00", "proofs[1]: has 35 bytes, want 34"),
    (
        "modulus 0",
        lambda p: b"\x00\x00" + p[2:],
        "proofs[1]: modulus is 0 (a null proof: the prover's build failed)",
    ),
    (
        "modulus too big",
        lambda p: _words(65500) + p[2:],
        "proofs[1]: modulus is 65500, want 1 <= modulus <= 65497",
    ),
    ("modulus below k", lambda p: _words(15) + p[2:], "proofs[1]: modulus is 15, below topk 16"),
    (
        "coefficient",
        lambda p: p[:8] + _words(65535) + p[10:],
        "proofs[1]: coefficient 3 is 65535, want 0 <= c < 65497",
    ),
    ("not bytes", lambda p: 12345, "proofs[1]: is a int, want bytes"),
]


@pytest.mark.parametrize(("label", "mutate", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_proof_rejected(record, label, mutate, message) -> None:
    activations, proofs = record
    with pytest.raises(ProofFormatError) as caught:
        verify_proofs_bytes(activations, _replace(proofs, 1, mutate(proofs[1])), 32, 16)
    assert str(caught.value).startswith(message)
    assert caught.value.index == 1
    assert isinstance(caught.value, ToplocError) and isinstance(caught.value, ValueError)


def test_reference_null_proofs_rejected(record) -> None:
    # What toploc 0.1.6's build_proofs returns after swallowing an error: zeros, modulus 0.
    activations, proofs = record
    null = bytes(len(proofs[0]))
    with pytest.raises(ProofFormatError, match=r"^proofs\[0\]: modulus is 0 \(a null proof"):
        verify_proofs_bytes(activations, [null] * len(proofs), 32, 16)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not base64!!", "is not valid base64"),
        ("QUJD", "has 3 bytes, want 34"),
        ("QUJDRA", "is not valid base64"),  # missing padding
        ("QUJD\nRA==", "is not valid base64"),  # stray character
        ("ÄÖÜ", "is not valid base64"),
    ],
)
def test_bad_base64_rejected(record, text, reason) -> None:
    activations, proofs = record
    texts = [base64.b64encode(p).decode() for p in proofs]
    texts[2] = text
    with pytest.raises(ProofFormatError) as caught:
        verify_proofs_base64(activations, texts, 32, 16)
    assert str(caught.value).startswith(f"proofs[2]: {reason}")


def test_base64_of_non_string_rejected(record) -> None:
    activations, proofs = record
    with pytest.raises(ProofFormatError, match=r"^proofs\[0\]: is a bytes, want a base64 str$"):
        verify_proofs_base64(activations, [proofs[0]] * 3, 32, 16)


@pytest.mark.parametrize("count", [0, 2, 4])
def test_wrong_number_of_proofs_rejected(record, count) -> None:
    activations, proofs = record
    given = (proofs * 2)[:count]
    with pytest.raises(ProofCountError) as caught:
        verify_proofs_bytes(activations, given, 32, 16)
    assert str(caught.value) == f"proofs: got {count} proofs, want 3 (one per chunk)"
    assert (caught.value.got, caught.value.want) == (count, 3)


def test_batch_errors_name_the_record(record) -> None:
    activations, proofs = record
    with pytest.raises(ProofsInputError, match=r"^proofs: got 1 lists of proofs, want 2 \(one per record\)$"):
        verify_proofs_batch([activations, activations], [proofs], 32, 16)
    with pytest.raises(ProofCountError, match=r"^records\[1\] proofs: got 2 proofs, want 3"):
        verify_proofs_batch([activations, activations], [proofs, proofs[:2]], 32, 16)
    bad = _replace(proofs, 2, b"\x00\x00" + proofs[2][2:])
    with pytest.raises(ProofFormatError, match=r"^records\[1\] proofs\[2\]: modulus is 0") as caught:
        verify_proofs_batch([activations, activations], [proofs, bad], 32, 16)
    assert (caught.value.record, caught.value.index) == (1, 2)


def test_proofpoly_invariants() -> None:
    with pytest.raises(ProofFormatError, match=r"^proof: modulus is 0"):
        ProofPoly((1, 2), 0)
    with pytest.raises(ProofFormatError, match=r"^proof: coefficient 1 is 65497, want 0 <= c < 65497$"):
        ProofPoly((1, 65497), 65497)
    with pytest.raises(ProofFormatError, match=r"^proof: has no coefficients$"):
        ProofPoly((), 65497)
    with pytest.raises(ProofFormatError, match=r"^proof: has 3 bytes, want an even number >= 4$"):
        ProofPoly.from_bytes(b"\xff\xd9\x01")
    with pytest.raises(ProofFormatError, match=r"^proof: is not valid base64"):
        ProofPoly.from_base64("@@@@")
    poly = ProofPoly((3, 0, 1), 65497)  # 3 + x**2
    assert ProofPoly.from_base64(poly.to_base64()) == poly
    assert poly(2) == 7 and poly(65497 + 2) == 7


@pytest.mark.parametrize(
    ("activations", "topk", "dbs", "error", "message"),
    [
        ([], 4, 2, ActivationError, "activations: is empty"),
        (torch.zeros(0, 8), 4, 2, ActivationError, "activations: is empty"),
        (torch.tensor(1.0), 4, 2, ActivationError, "activations: is a 0-d tensor"),
        ([torch.zeros(8), "x"], 4, 2, ActivationError, "activations[1]: is a str, want a tensor"),
        ("abc", 4, 2, ActivationError, "activations: is a str, want a tensor or a list of them"),
        (
            [torch.zeros(8, dtype=torch.float64)],
            4,
            2,
            ActivationError,
            "activations: torch.float64 is not supported",
        ),
        (
            [torch.zeros(8, dtype=torch.int16)],
            4,
            2,
            ActivationError,
            "activations: torch.int16 is not supported",
        ),
        (
            [torch.zeros(8, dtype=torch.bfloat16), torch.zeros(8, dtype=torch.float16)],
            4,
            2,
            ActivationError,
            "activations[1]: dtype torch.float16 differs from torch.bfloat16",
        ),
        (
            [torch.ones(8, dtype=torch.bfloat16), torch.ones(3, dtype=torch.bfloat16)],
            4,
            2,
            ActivationError,
            "activations chunk 1: has 3 values, fewer than topk 4",
        ),
        (
            [torch.ones(8, dtype=torch.bfloat16)],
            0,
            2,
            ParameterError,
            "topk: is 0, want an int in [1, 65497]",
        ),
        ([torch.ones(8, dtype=torch.bfloat16)], True, 2, ParameterError, "topk: is True"),
        ([torch.ones(8, dtype=torch.bfloat16)], 65498, 2, ParameterError, "topk: is 65498"),
        (
            [torch.ones(8, dtype=torch.bfloat16)],
            4,
            0,
            ParameterError,
            "decode_batching_size: is 0, want an int >= 1",
        ),
        ([torch.ones(8, dtype=torch.bfloat16)], 4, 2.0, ParameterError, "decode_batching_size: is 2.0"),
    ],
)
def test_bad_activations_and_parameters_rejected(activations, topk, dbs, error, message) -> None:
    with pytest.raises(error) as caught:
        build_proofs_bytes(activations, dbs, topk)
    assert str(caught.value).startswith(message)
    count = len(activations) if isinstance(activations, list) and len(activations) > 1 else 1  # dbs 2
    with pytest.raises(error) as caught:
        verify_proofs_bytes(activations, [b"\xff\xd9" + bytes(8)] * count, dbs, topk)
    assert str(caught.value).startswith(message)


def test_build_does_not_return_null_proofs_on_error() -> None:
    # The reference logs the error and returns modulus-0 proofs; we raise.
    with pytest.raises(ActivationError):
        build_proofs_bytes([torch.ones(2, dtype=torch.bfloat16)], 32, 128)


def _chunk_whose_modulus_is_not_prime(k: int = 32) -> torch.Tensor:
    """A flat bf16 chunk longer than 65497 whose top-k indices collide modulo 65497."""
    chunk = torch.zeros(70_000, dtype=torch.bfloat16)
    big = torch.arange(1, k + 1, dtype=torch.bfloat16) + 100
    positions = torch.arange(k) * 7 + 100
    positions[1] = int(positions[0]) + 65497  # collides with positions[0] modulo 65497
    chunk[positions] = big
    return chunk


def test_honest_chunk_with_smaller_modulus_passes_on_every_path() -> None:
    k = 32
    chunk = _chunk_whose_modulus_is_not_prime(k)
    proofs = build_proofs_bytes([chunk], 32, k)
    modulus = int.from_bytes(proofs[0][:2], "big")
    assert modulus < 65497
    limits = thresholds_for("bfloat16", k)
    # List input with a prefill chunk: the reference's Python path, which rejects this chunk.
    result = verify_proofs_bytes([chunk], proofs, 32, k)[0]
    assert (result.exp_mismatches, result.mant_err_mean) == (0, 0.0) and result.passes(limits)
    # Tensor input with skip_prefill: the reference's C++ path.
    result = verify_proofs_bytes(chunk.reshape(1, -1), proofs, 32, k, skip_prefill=True)[0]
    assert result.exp_mismatches == 0

    # The defect, reproduced by hand: evaluating at the unreduced indices misses the committed values.
    poly = ProofPoly.from_bytes(proofs[0])
    indices = select_topk(chunk.reshape(1, -1), k)
    coeffs = torch.tensor([poly.coeffs])
    reduced = evaluate(coeffs, indices % modulus)
    unreduced = evaluate(coeffs, indices % 65497)  # what the reference's Python path computes
    bits = chunk[indices].view(torch.int16).to(torch.int64) & 0xFFFF
    assert torch.equal(reduced, bits)
    assert not torch.equal(unreduced, bits)


def test_vector_collision_chunk_passes_through_list_path() -> None:
    c = case("llama8b_shape_collisions")
    proofs = [base64.b64decode(p) for p in c.proofs_b64]
    assert c.moduli[0] == 65495
    results = verify_proofs_bytes(c.activations, proofs, 32, 128, skip_prefill=True)
    assert [r.exp_mismatches for r in results] == [0, 0]


def test_empty_activations_with_skip_prefill_have_no_proofs() -> None:
    """toploc 0.1.6's tests expect []: no decode item, no chunk. Without skip_prefill the prefill item
    is missing, which is an error."""
    empty = torch.empty(0, 256, dtype=torch.bfloat16)
    assert build_proofs_bytes(empty, 32, 128, skip_prefill=True) == []
    assert build_proofs_bytes([], 32, 128, skip_prefill=True) == []
    assert verify_proofs_bytes(empty, [], 32, 128, skip_prefill=True) == []
    full = torch.randn(40, 256).bfloat16()
    assert [len(p) for p in build_proofs_batch([full, [], full], 32, 128, skip_prefill=True)] == [2, 0, 2]
    with pytest.raises(ProofCountError, match="got 1 proofs, want 0"):
        verify_proofs_batch([empty], [[b"\xff\xd9" + bytes(256)]], 32, 128, skip_prefill=True)
    with pytest.raises(ActivationError, match="is empty"):
        build_proofs_bytes(empty, 32, 128)
