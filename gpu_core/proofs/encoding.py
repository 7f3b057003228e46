"""How activation values become field elements, and how verify splits them into exponent and mantissa.

A proof interpolates, per chunk, the top-k indices (mod the proof's modulus) to "planes" of 16-bit
patterns of the top-k values:

- bfloat16 and float16: one plane, the value's raw 16 bits, as in toploc 0.1.6 (byte-compatible).
  Patterns >= 65497 (negative NaNs only) wrap modulo the prime, as in the reference.
- float32 (ours; the reference refuses it): two planes, hi = bits[31:16] (sign, exponent, top 7
  mantissa bits) and lo = bits[15:1] (the next 15 mantissa bits, < 2**15 so never wrapped). The lowest
  mantissa bit is not committed: float32 mantissas compare at 22 bits (units of 2**-22, two ulps).

Verify compares exponent fields for equality and mantissa fields by absolute difference, in units of
the last committed mantissa bit. The sign is not compared (as in the reference and the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gpu_core.errors import ActivationError


@dataclass(frozen=True)
class Encoding:
    """One dtype's layout. `planes` polynomials per proof; bits are raw patterns as int64 >= 0."""

    name: str
    dtype: torch.dtype
    planes: int
    exponent_shift: int
    exponent_mask: int
    mantissa_mask: int
    mantissa_drop: int  # low mantissa bits not committed

    def bits(self, values: torch.Tensor) -> torch.Tensor:
        """Raw bit patterns of `values` (this dtype) as non-negative int64."""
        if self.dtype == torch.float32:
            return values.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
        return values.view(torch.int16).to(torch.int64) & 0xFFFF

    def to_planes(self, bits: torch.Tensor) -> torch.Tensor:
        """(..., k) bit patterns -> (..., planes, k) plane values in [0, 2**16)."""
        if self.planes == 1:
            return bits.unsqueeze(-2)
        return torch.stack([bits >> 16, (bits & 0xFFFF) >> 1], dim=-2)

    def from_planes(self, planes: torch.Tensor) -> torch.Tensor:
        """(..., planes, k) reconstructed plane values -> (..., k) bit patterns (dropped bits zero).

        Values outside a plane's range (only from a wrong proof) are masked into it; they then differ
        from the honest value, which is what verify reports.
        """
        if self.planes == 1:
            return planes[..., 0, :] & 0xFFFF
        return ((planes[..., 0, :] & 0xFFFF) << 16) | ((planes[..., 1, :] & 0x7FFF) << 1)

    def exponent(self, bits: torch.Tensor) -> torch.Tensor:
        return (bits >> self.exponent_shift) & self.exponent_mask

    def mantissa(self, bits: torch.Tensor) -> torch.Tensor:
        """The committed mantissa bits, as an integer in units of the last committed bit."""
        return (bits & self.mantissa_mask) >> self.mantissa_drop


BFLOAT16 = Encoding("bfloat16", torch.bfloat16, 1, 7, 0xFF, 0x7F, 0)
FLOAT16 = Encoding("float16", torch.float16, 1, 10, 0x1F, 0x3FF, 0)
FLOAT32 = Encoding("float32", torch.float32, 2, 23, 0xFF, 0x7FFFFF, 1)

ENCODINGS: dict[torch.dtype, Encoding] = {e.dtype: e for e in (BFLOAT16, FLOAT16, FLOAT32)}
"""Supported activation dtypes."""

DTYPE_NAMES: dict[str, torch.dtype] = {e.name: e.dtype for e in ENCODINGS.values()}


def encoding_for(dtype: torch.dtype | str) -> Encoding:
    """The encoding of a torch dtype or its name ("bfloat16", "float16", "float32")."""
    if isinstance(dtype, str):
        if dtype not in DTYPE_NAMES:
            raise ActivationError("dtype", f"{dtype!r} is not supported; use one of {sorted(DTYPE_NAMES)}")
        dtype = DTYPE_NAMES[dtype]
    encoding = ENCODINGS.get(dtype)
    if encoding is None:
        raise ActivationError("dtype", f"{dtype} is not supported; use one of {sorted(DTYPE_NAMES)}")
    return encoding
