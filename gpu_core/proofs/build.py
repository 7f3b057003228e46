"""Building proofs: toploc 0.1.6's build_proofs* names and semantics, plus a batched entry point.

Differences from the reference, on purpose: a failed build raises a ToplocError instead of returning
"null" proofs of modulus 0; indices are int64 throughout (the reference truncates them to int); float32
is supported (two planes, see encoding.py). Proofs are computed on the activations' device.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import torch

from gpu_core.proofs.chunks import Activations, check_parameters
from gpu_core.proofs.encoding import Encoding
from gpu_core.proofs.field import PRIME
from gpu_core.proofs.format import ProofPoly, serialize_proofs
from gpu_core.proofs.modulus import injective_moduli
from gpu_core.proofs.parallel import map_threads, rows_per_task
from gpu_core.proofs.polynomial import interpolate
from gpu_core.proofs.selection import select_records

_ELEMENTS_PER_STEP = 1 << 22  # bounds the (rows, k, k) temporaries of interpolation (32 MiB of float64)


def prove_selected(
    indices: torch.Tensor, bits: torch.Tensor, encoding: Encoding
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k indices and value bits (N, k) -> moduli (N,) and coefficients (N, planes * k).

    Requires distinct indices within each row.
    """
    count, k = indices.shape
    moduli = injective_moduli(indices)
    xs = indices % moduli.unsqueeze(1)
    planes = encoding.to_planes(bits) % PRIME  # (N, planes, k)
    xs = xs.unsqueeze(1).expand_as(planes).reshape(-1, k)
    ys = planes.reshape(-1, k)
    step = rows_per_task(xs.shape[0], max(1, _ELEMENTS_PER_STEP // (k * k)))
    starts = range(0, xs.shape[0], step)
    coeffs = torch.cat(
        map_threads(lambda i: interpolate(xs[i : i + step], ys[i : i + step]), starts, xs.device)
    )
    return moduli, coeffs.reshape(count, -1)


def build_proofs_batch(
    records: Sequence[Activations], decode_batching_size: int, topk: int, skip_prefill: bool = False
) -> list[list[bytes]]:
    """Proofs (wire format) for many records at once: one list of proofs per record, in order.

    Each record is a list of tensors or one tensor (see chunks.py); records may differ in length,
    dtype and device (each (dtype, device) group is computed in batched calls on its device).
    Raises ParameterError or ActivationError (nothing built) on bad input.
    """
    check_parameters(decode_batching_size, topk)
    out: list[list[bytes]] = [[] for _ in records]
    for selection in select_records(records, decode_batching_size, topk, skip_prefill):
        moduli, coeffs = prove_selected(selection.indices, selection.bits, selection.encoding)
        proofs = serialize_proofs(moduli, coeffs)
        start = 0
        for position, count in zip(selection.records, selection.counts, strict=True):
            out[position] = proofs[start : start + count]
            start += count
    return out


def build_proofs_bytes(
    activations: Activations, decode_batching_size: int, topk: int, skip_prefill: bool = False
) -> list[bytes]:
    """One record's proofs in the wire format (toploc 0.1.6 build_proofs_bytes)."""
    return build_proofs_batch([activations], decode_batching_size, topk, skip_prefill)[0]


def build_proofs_base64(
    activations: Activations, decode_batching_size: int, topk: int, skip_prefill: bool = False
) -> list[str]:
    """One record's proofs as base64 strings (toploc 0.1.6 build_proofs_base64)."""
    proofs = build_proofs_bytes(activations, decode_batching_size, topk, skip_prefill)
    return [base64.b64encode(proof).decode("ascii") for proof in proofs]


def build_proofs(
    activations: Activations, decode_batching_size: int, topk: int, skip_prefill: bool = False
) -> list[ProofPoly]:
    """One record's proofs as ProofPoly objects (toploc 0.1.6 build_proofs)."""
    return [
        ProofPoly.from_bytes(proof)
        for proof in build_proofs_bytes(activations, decode_batching_size, topk, skip_prefill)
    ]
