"""Verifying proofs: toploc 0.1.6's verify_proofs* names and semantics, plus a batched entry point.

For each chunk (toploc/C/csrc/poly.cpp verify_proofs, @7ab7bcd):
  1. take the verifier's own top-k of the chunk (same selection as build);
  2. reduce those indices modulo the proof's modulus (the reference's Python path skips this step and
     so rejects honest chunks whose modulus is not 65497; every path here reduces);
  3. evaluate the proof's polynomial(s) there, giving the prover's committed bit patterns;
  4. compare exponents (count mismatches) and mantissas (mean and upper-median absolute difference
     over the values whose exponents match; 2**64 for both if none match).
Proofs are parsed and checked (count, length, modulus, coefficients) before any activation is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gpu_core.errors import ProofCountError, ProofFormatError, ProofsInputError
from gpu_core.proofs.chunks import Activations, check_parameters, chunk_count, encoding_of, is_empty
from gpu_core.proofs.encoding import Encoding
from gpu_core.proofs.format import ProofPoly, decode_base64, parse_proofs
from gpu_core.proofs.parallel import map_threads, rows_per_task
from gpu_core.proofs.polynomial import evaluate
from gpu_core.proofs.selection import select_records
from gpu_core.proofs.thresholds import NO_MANTISSA, VerificationResult

_ELEMENTS_PER_STEP = 1 << 22


def compare_selected(
    indices: torch.Tensor,
    bits: torch.Tensor,
    moduli: torch.Tensor,
    coeffs: torch.Tensor,
    encoding: Encoding,
) -> list[VerificationResult]:
    """Verifier's top-k indices and bits (N, k) against proofs' moduli (N,) and coefficients
    (N, planes * k) -> one result per chunk. Requires 1 <= moduli <= 65497 and coefficients < 65497.
    """
    count, k = indices.shape
    device = indices.device
    points = indices % moduli.to(device).unsqueeze(1)
    planes = coeffs.to(device).reshape(count * encoding.planes, -1)
    points = points.repeat_interleave(encoding.planes, dim=0)
    step = rows_per_task(len(points), max(1, _ELEMENTS_PER_STEP // (k * 16)))
    starts = range(0, len(points), step)
    values = torch.cat(
        map_threads(lambda i: evaluate(planes[i : i + step], points[i : i + step]), starts, device)
    )
    committed = encoding.from_planes(values.reshape(count, encoding.planes, k))

    mismatch = encoding.exponent(committed) != encoding.exponent(bits)
    errors = (encoding.mantissa(committed) - encoding.mantissa(bits)).abs()
    matched = k - mismatch.sum(dim=1)
    total = errors.masked_fill(mismatch, 0).sum(dim=1)
    ranked = errors.masked_fill(mismatch, torch.iinfo(torch.int64).max).sort(dim=1).values
    median = ranked.gather(1, (matched // 2).clamp(max=k - 1).unsqueeze(1)).squeeze(1)

    results = []
    for mismatches, n, sum_, mid in zip(
        (k - matched).tolist(), matched.tolist(), total.tolist(), median.tolist(), strict=True
    ):
        if n == 0:
            results.append(VerificationResult(mismatches, NO_MANTISSA, NO_MANTISSA))
        else:
            results.append(VerificationResult(mismatches, sum_ / n, float(mid)))
    return results


def _as_bytes(proof: bytes | ProofPoly) -> bytes:
    return proof.to_bytes() if isinstance(proof, ProofPoly) else proof


def verify_proofs_batch(
    records: Sequence[Activations],
    proofs: Sequence[Sequence[bytes | ProofPoly]],
    decode_batching_size: int,
    topk: int,
    skip_prefill: bool = False,
) -> list[list[VerificationResult]]:
    """Verify many records at once: proofs[i] are record i's proofs, one per chunk, in order.

    Raises (before any heavy work, nothing changed) ParameterError, ActivationError, ProofCountError
    or ProofFormatError naming the record and proof.
    """
    check_parameters(decode_batching_size, topk)
    if len(proofs) != len(records):
        raise ProofsInputError(
            "proofs", f"got {len(proofs)} lists of proofs, want {len(records)} (one per record)"
        )
    single = len(records) == 1
    parsed: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    for position, (activations, record_proofs) in enumerate(zip(records, proofs, strict=True)):
        label = None if single else position
        if skip_prefill and is_empty(activations):  # no chunk: no proof expected, no result
            if record_proofs:
                raise ProofCountError(len(record_proofs), 0, label)
            parsed.append(None)
            continue
        encoding = encoding_of(activations, "activations" if single else f"records[{position}]")
        want = chunk_count(len(activations), decode_batching_size, skip_prefill)
        if len(record_proofs) != want:
            raise ProofCountError(len(record_proofs), want, label)
        datas = [_as_bytes(proof) for proof in record_proofs]
        moduli, coeffs = parse_proofs(datas, encoding.planes * topk, label)
        bad = (moduli < topk).nonzero()
        if bad.numel():
            index = int(bad[0])
            reason = f"modulus is {int(moduli[index])}, below topk {topk} (k indices need k residues)"
            raise ProofFormatError(index, reason, label)
        parsed.append((moduli, coeffs))

    out: list[list[VerificationResult]] = [[] for _ in records]
    for selection in select_records(records, decode_batching_size, topk, skip_prefill):
        chosen = [parsed[p] for p in selection.records]
        moduli = torch.cat([c[0] for c in chosen if c is not None])
        coeffs = torch.cat([c[1] for c in chosen if c is not None])
        results = compare_selected(selection.indices, selection.bits, moduli, coeffs, selection.encoding)
        start = 0
        for position, count in zip(selection.records, selection.counts, strict=True):
            out[position] = results[start : start + count]
            start += count
    return out


def verify_proofs_bytes(
    activations: Activations,
    proofs: Sequence[bytes],
    decode_batching_size: int,
    topk: int,
    skip_prefill: bool = False,
) -> list[VerificationResult]:
    """One record against its proofs in the wire format (toploc 0.1.6 verify_proofs_bytes)."""
    return verify_proofs_batch([activations], [proofs], decode_batching_size, topk, skip_prefill)[0]


def verify_proofs_base64(
    activations: Activations,
    proofs: Sequence[str],
    decode_batching_size: int,
    topk: int,
    skip_prefill: bool = False,
) -> list[VerificationResult]:
    """One record against base64 proofs (toploc 0.1.6 verify_proofs_base64); strict base64."""
    datas = [decode_base64(text, index) for index, text in enumerate(proofs)]
    return verify_proofs_bytes(activations, datas, decode_batching_size, topk, skip_prefill)


def verify_proofs(
    activations: Activations,
    proofs: Sequence[ProofPoly],
    decode_batching_size: int,
    topk: int,
    skip_prefill: bool = False,
) -> list[VerificationResult]:
    """One record against ProofPoly objects (toploc 0.1.6 verify_proofs)."""
    return verify_proofs_batch([activations], [list(proofs)], decode_batching_size, topk, skip_prefill)[0]
