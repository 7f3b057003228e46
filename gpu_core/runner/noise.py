"""The sampler's noise: a counter-based generator that every device computes bit for bit the same.

Gumbel-max sampling picks argmax_j(score_j + G(seed, position, j)). G must be a pure function of the
seed, the output position and the token id, so a validator replays exactly the noise the provider drew,
on any hardware, for any batch layout. Stateful generators (torch's Philox on CUDA, its Mersenne
Twister on the CPU) differ between devices and depend on how many values were drawn before, so the
noise here is a hash of its coordinates, computed with operations that are exact on every device:

1. 32-bit words: the seed (0 <= seed < 2**64) splits into lo and hi words; the position and the token
   id are words (< 2**32).
2. M(x) is the improved `lowbias32` integer hash (C. Wellons, hash-prospector, bias 0.107):
   x ^= x >> 16; x *= 0x21f0aaad; x ^= x >> 15; x *= 0x735a2d97; x ^= x >> 15 (all mod 2**32).
3. key = M(M(seed_lo ^ 0x9e3779b9) ^ seed_hi); row = M(key ^ M(position ^ 0x85ebca6b));
   bits = M(row ^ M(token ^ 0xc2b2ae35)).
4. u = (bits + 0.5) / 2**32, in (0, 1), exact in float64.
5. G = -log(-log(u)) in float64, with `log` computed from IEEE-754 basic operations only (frexp, then
   the atanh series; `_log` below), never a device's libm, whose last bits differ between CPU and GPU.

Every integer operation runs on int64 tensors holding values below 2**32, and both multipliers are
below 2**31, so no product reaches 2**63: nothing overflows, on any device, and one multiply and one
mask make each step. M(token ^ 0xc2b2ae35) depends on the token alone and is computed once per
vocabulary and device (`token_hashes`). Each float step is one separate torch operation (one IEEE
rounding, no fused multiply-add). The test vectors are in tests/vectors/sampler/noise.json
(docs/sampler.md).
"""

from __future__ import annotations

import functools
import math

import torch

MASK32 = 0xFFFFFFFF
SEED_SALT = 0x9E3779B9
POSITION_SALT = 0x85EBCA6B
TOKEN_SALT = 0xC2B2AE35
_MUL1 = 0x21F0AAAD
_MUL2 = 0x735A2D97

BUCKET_BITS = 16
"""Noise upper and lower bounds per bucket of the top 16 bits (pruning only; see gumbel_bounds)."""

_SQRT_HALF = 0.7071067811865476
_LN2 = 0.6931471805599453
# atanh series: log(m) = 2 * (z + z**3/3 + z**5/5 + ...), z = (m - 1) / (m + 1), |z| <= 0.1716, so
# eleven terms reach float64's precision.
_SERIES = tuple(1.0 / (2 * k + 1) for k in range(11))

# The noise's range, for pruning only (libm's log is fine here; the 1e-6 margin covers its last bits).
# Plain Python at import time: torch work in a parent process can hang OpenMP in its forked workers.
G_MIN = -math.log(-math.log(0.5 * 2.0**-32)) - 1e-6
G_MAX = -math.log(-math.log((2.0**32 - 0.5) * 2.0**-32)) + 1e-6


def hash32(x: torch.Tensor) -> torch.Tensor:
    """The improved lowbias32 of int64 values in [0, 2**32) (products stay below 2**63)."""
    x = x ^ (x >> 16)
    x = (x * _MUL1) & MASK32
    x = x ^ (x >> 15)
    x = (x * _MUL2) & MASK32
    return x ^ (x >> 15)


def row_keys(seeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Per-row keys (int64 in [0, 2**32)) of seeds in [0, 2**63) and output positions in [0, 2**32)."""
    lo = seeds & MASK32
    hi = seeds >> 32
    key = hash32(hash32(lo ^ SEED_SALT) ^ hi)
    return hash32(key ^ hash32(positions ^ POSITION_SALT))


def noise_bits(keys: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The 32 random bits of each (row key, token id) pair; `keys` broadcasts against `tokens`."""
    return hash32(keys ^ hash32(tokens ^ TOKEN_SALT))


@functools.cache
def token_hashes(vocab: int, device: torch.device) -> torch.Tensor:
    """M(token ^ TOKEN_SALT) of every token id below `vocab`, on `device` (cached): the per-token half of
    noise_bits, so noise_bits(keys, j) == hash32(keys ^ token_hashes(vocab, device)[j])."""
    return hash32(torch.arange(vocab, dtype=torch.int64, device=device) ^ TOKEN_SALT)


def _log(x: torch.Tensor) -> torch.Tensor:
    """Natural log of positive float64 values from basic IEEE operations (bit-identical on every device)."""
    mantissa, exponent = torch.frexp(x)  # x = mantissa * 2**exponent, mantissa in [0.5, 1): exact
    low = mantissa < _SQRT_HALF
    mantissa = torch.where(low, mantissa * 2.0, mantissa)
    exponent = torch.where(low, exponent - 1, exponent).to(torch.float64)
    f = mantissa - 1.0
    z = f / (f + 2.0)
    w = z * z
    poly = torch.full_like(z, _SERIES[-1])
    for coefficient in reversed(_SERIES[:-1]):
        poly = poly * w
        poly = poly + coefficient
    return exponent * _LN2 + (z * poly) * 2.0


def uniforms(bits: torch.Tensor) -> torch.Tensor:
    """(bits + 0.5) / 2**32 as float64: in (0, 1), exact."""
    return (bits.to(torch.float64) + 0.5) * 2.0**-32


def gumbel_from_bits(bits: torch.Tensor) -> torch.Tensor:
    """-log(-log(u)) for the uniforms of `bits` (float64)."""
    return -_log(-_log(uniforms(bits)))


def gumbel(seeds: torch.Tensor, positions: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The noise of (seed, position, token) triples (int64 tensors that broadcast together), float64."""
    return gumbel_from_bits(noise_bits(row_keys(seeds, positions), tokens))


@functools.cache
def _bounds_cpu() -> tuple[torch.Tensor, torch.Tensor]:
    buckets = torch.arange(1 << BUCKET_BITS, dtype=torch.int64)
    shift = 32 - BUCKET_BITS
    low = gumbel_from_bits(buckets << shift)
    high = gumbel_from_bits(((buckets + 1) << shift) - 1)
    # G is increasing in u; the margin covers any last-bit non-monotonicity of the float evaluation.
    return low - 1e-9, high + 1e-9


@functools.cache
def gumbel_bounds(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(lower, upper) bounds of the noise in each bucket of `bits >> (32 - BUCKET_BITS)`, on `device`:
    cheap bounds that let the sampler skip the exact noise of tokens that cannot win."""
    low, high = _bounds_cpu()
    return low.to(device), high.to(device)
