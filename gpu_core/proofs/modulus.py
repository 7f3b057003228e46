"""The proof's index modulus: the largest m <= 65497 for which index mod m is injective on the top-k
indices (ProofPoly::from_points in toploc/C/csrc/poly.cpp, @7ab7bcd, which tries 65497 down to 1).

Reducing indices mod m keeps them below the field's prime, so they are distinct points to interpolate
at. Batched: all chunks test 65497 at once; only the few that collide search further, a window of
candidate moduli per step.
"""

from __future__ import annotations

import torch

from gpu_core.errors import ActivationError
from gpu_core.proofs.field import PRIME

_WINDOW = 64


def _injective(indices: torch.Tensor, moduli: torch.Tensor) -> torch.Tensor:
    """(N, k) indices, (N, W) candidate moduli -> (N, W) bool: is index mod m injective?"""
    residues = (indices.unsqueeze(1) % moduli.unsqueeze(2)).sort(dim=-1).values
    return (residues[..., 1:] != residues[..., :-1]).all(dim=-1)


def injective_moduli(indices: torch.Tensor) -> torch.Tensor:
    """(N, k) non-negative distinct indices -> (N,) largest injective modulus per row.

    A modulus below k cannot be injective, so the search stops there: ActivationError if none works
    (possible only for chunks longer than 65497 with adversarially spread indices).
    """
    count, k = indices.shape
    moduli = torch.full((count,), PRIME, dtype=torch.int64, device=indices.device)
    pending = (~_injective(indices, moduli.unsqueeze(1))[:, 0]).nonzero().flatten()
    top = PRIME - 1
    while pending.numel():
        if top < max(k, 1):
            raise ActivationError("activations", "no modulus <= 65497 keeps the top-k indices distinct")
        candidates = torch.arange(top, max(top - _WINDOW, k - 1), -1, device=indices.device)
        found = _injective(indices[pending], candidates.expand(pending.numel(), -1))
        hit = found.any(dim=1)
        first = found.to(torch.int8).argmax(dim=1)
        moduli[pending[hit]] = candidates[first[hit]]
        pending = pending[~hit]
        top -= _WINDOW
    return moduli
