"""Arithmetic in GF(65497), batched over torch int64 tensors on any device.

65497, a prime below 2**16, is the field of toploc 0.1.6 (MOD_N in toploc/C/csrc/ndd.cpp,
PrimeIntellect-ai/toploc@7ab7bcd). Field elements are int64 tensors with values in [0, PRIME).

Products of two elements are below 2**32, so int64 holds a sum of up to 2**31 of them exactly; dot
products go through float64 matmul (int64 matmul has no CUDA kernel), exact while the inner dimension
times (PRIME - 1)**2 stays below 2**53, i.e. for inner dimensions up to 2**21 (we use at most ~256).
"""

from __future__ import annotations

import torch

PRIME = 65497
"""The field's order: every coefficient and every evaluated value is reduced modulo this prime."""

_MAX_EXACT_INNER = 2**21

_inverse_tables: dict[torch.device, torch.Tensor] = {}


def mulmod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a * b mod PRIME, elementwise with broadcasting. Requires a, b in [0, PRIME)."""
    return a * b % PRIME


def matmul_mod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched a @ b mod PRIME. Requires entries in [0, PRIME) and a.shape[-1] <= 2**21.

    float64 is exact here (see the module docstring); the result is int64 in [0, PRIME).
    """
    if a.shape[-1] > _MAX_EXACT_INNER:
        raise ValueError(f"inner dimension {a.shape[-1]} too large for an exact float64 matmul")
    product = torch.matmul(a.to(torch.float64), b.to(torch.float64))
    return product.to(torch.int64) % PRIME


def powers(x: torch.Tensor, count: int) -> torch.Tensor:
    """x**0, x**1, ..., x**(count-1) mod PRIME along a new last dimension. Requires count >= 1.

    Built by doubling (log2(count) steps), not one step per power.
    """
    out = torch.ones((*x.shape, 1), dtype=torch.int64, device=x.device)
    step = x.unsqueeze(-1)  # x**width, where width is the current number of powers
    while out.shape[-1] < count:
        out = torch.cat([out, mulmod(out, step)], dim=-1)
        step = mulmod(step, step)
    return out[..., :count]


def _inverse_table(device: torch.device) -> torch.Tensor:
    """inverse[a] = a**(PRIME-2) mod PRIME for every a (inverse[0] = 0), cached per device."""
    table = _inverse_tables.get(device)
    if table is None:
        base = torch.arange(PRIME, dtype=torch.int64, device=device)
        table = torch.ones_like(base)
        exponent = PRIME - 2
        while exponent:  # square-and-multiply over the bits of the exponent (16 steps)
            if exponent & 1:
                table = mulmod(table, base)
            base = mulmod(base, base)
            exponent >>= 1
        _inverse_tables[device] = table
    return table


def inverse(a: torch.Tensor) -> torch.Tensor:
    """Multiplicative inverse mod PRIME, elementwise. Requires a in [1, PRIME) (0 maps to 0)."""
    return _inverse_table(a.device)[a]
