"""Batched polynomial interpolation and evaluation over GF(65497), in log-depth tensor steps.

Coefficients are in ascending order (c[0] + c[1]*x + ...), as in toploc 0.1.6. The interpolating
polynomial of degree < k through k points with distinct x is unique, so any correct method gives the
reference's bytes; we use the Lagrange form, which needs no loop over coefficients:

    L(x) = sum_i z_i * P(x) / (x - x_i),  P(x) = prod_i (x - x_i),  z_i = y_i / P'(x_i)

and the coefficient of x**m in P(x) / (x - x_i) is sum_{t > m} P_t * x_i**(t-m-1), so

    c_m = sum_{u=0}^{k-1-m} P_{m+1+u} * S_u,  with power sums S_u = sum_i z_i * x_i**u.

Every function works on a batch: leading dimension C (chunks), then k.
"""

from __future__ import annotations

import math

import torch

from gpu_core.proofs.field import PRIME, inverse, matmul_mod, mulmod, powers

_CONV_MIN_LENGTH = 33  # polynomial pairs at least this long are multiplied by conv1d


def correlate(signal: torch.Tensor, kernel: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """Row-wise cross-correlation mod PRIME: out[..., m] = sum_j signal[..., m + j - padding] * kernel[..., j]

    (..., n) x (..., w) -> (..., n + 2*padding - w + 1); signals zero-padded by `padding` on both
    sides. Requires entries in [0, PRIME) and w <= 2**21. One depthwise float64 conv1d, which is exact:
    every product is below 2**32 and every sum below 2**53 (rounded anyway, in case a backend
    convolves by FFT or Winograd).
    """
    shape = signal.shape[:-1]
    rows = signal.reshape(1, -1, signal.shape[-1]).to(torch.float64)
    weights = kernel.reshape(-1, 1, kernel.shape[-1]).to(torch.float64)
    out = torch.nn.functional.conv1d(rows, weights, padding=padding, groups=weights.shape[0])
    return out.round().to(torch.int64).reshape(*shape, -1) % PRIME


def _convolve_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Products of polynomial pairs mod PRIME: (..., L) x (..., L) -> (..., 2L-1).

    Long pairs: a correlation with the reversed kernel (conv1d). Short ones (many groups, where conv1d
    is slow): result[m] = windows(a)[m] . reversed(b), windows(a)[m] being a[m-L+1 .. m] of the
    zero-padded a, as one batched float64 matmul (exact, see field.py).
    """
    length = a.shape[-1]
    if length >= _CONV_MIN_LENGTH:
        return correlate(a, b.flip(-1), padding=length - 1)
    windows = torch.nn.functional.pad(a.to(torch.float64), (length - 1, length - 1)).unfold(-1, length, 1)
    reversed_b = b.flip(-1).to(torch.float64).unsqueeze(-1)
    return torch.matmul(windows, reversed_b).squeeze(-1).to(torch.int64) % PRIME


def poly_from_roots(roots: torch.Tensor) -> torch.Tensor:
    """Coefficients of prod_i (x - roots_i) mod PRIME: (C, k) -> (C, k+1), monic, ascending.

    A product tree: log2(k) levels, each multiplying all neighbouring pairs at once.
    """
    count, k = roots.shape
    width = 1 << max(0, (k - 1).bit_length())
    factors = torch.zeros((count, width, 2), dtype=torch.int64, device=roots.device)
    factors[:, :, 0] = 1  # padding factors are the constant 1
    factors[:, :k, 0] = (PRIME - roots) % PRIME
    factors[:, :k, 1] = 1
    while factors.shape[1] > 1:
        factors = _convolve_pairs(factors[:, 0::2], factors[:, 1::2])
    return factors[:, 0, : k + 1]


def _split(degree_bound: int) -> tuple[int, int]:
    """Baby and giant step counts with baby * giant >= degree_bound, both about sqrt of it."""
    baby = max(1, math.isqrt(degree_bound - 1) + 1) if degree_bound > 1 else 1
    giant = -(-degree_bound // baby)
    return baby, giant


class _Powers:
    """x**b (b < baby) and (x**baby)**a (a < giant) of a batch of points, shared by the evaluations
    and power sums that use the same points and degree bound."""

    def __init__(self, points: torch.Tensor, degree_bound: int) -> None:
        self.baby, self.giant = _split(degree_bound)
        self.small = powers(points, self.baby)  # (C, q, baby)
        self.big = powers(mulmod(self.small[..., -1], points), self.giant)  # (C, q, giant)

    def evaluate(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Each row's polynomial (C, d) at that row's points -> (C, q). Requires d <= baby * giant.

        Baby-step giant-step: c(x) = sum_a (x**baby)**a * c_a(x), c_a holding coefficients
        a*baby ... a*baby + baby-1.
        """
        count, degree_bound = coeffs.shape
        padded = torch.nn.functional.pad(coeffs, (0, self.baby * self.giant - degree_bound))
        partial = matmul_mod(self.small, padded.view(count, self.giant, self.baby).transpose(1, 2))
        return mulmod(self.big, partial).sum(-1) % PRIME  # sum of giant terms < 2**37

    def power_sums(self, weights: torch.Tensor, count: int) -> torch.Tensor:
        """S_u = sum_i weights_i * points_i**u mod PRIME for u < count: (C, q) -> (C, count)."""
        small = mulmod(weights.unsqueeze(-1), self.small)  # (C, q, baby): w * x**b
        sums = matmul_mod(self.big.transpose(1, 2), small)  # (C, giant, baby): index a*baby + b
        return sums.reshape(weights.shape[0], -1)[:, :count]


def evaluate(coeffs: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Evaluate each row's polynomial at that row's points: (C, d) x (C, q) -> (C, q) mod PRIME.

    Requires coefficients and points in [0, PRIME).
    """
    return _Powers(points, coeffs.shape[1]).evaluate(coeffs)


def interpolate(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Coefficients (C, k) of the polynomial of degree < k through the points (xs, ys) of each row.

    Requires xs distinct within a row and xs, ys in [0, PRIME).
    """
    k = xs.shape[1]
    monic = poly_from_roots(xs)  # (C, k+1)
    derivative = mulmod(monic[:, 1:], torch.arange(1, k + 1, device=xs.device) % PRIME)
    at_nodes = _Powers(xs, k)
    weights = mulmod(ys, inverse(at_nodes.evaluate(derivative)))
    sums = at_nodes.power_sums(weights, k)  # (C, k)
    # c_m = sum_u monic[m+1+u] * sums[u]: the correlation of monic[1..k] (zero-extended) with sums.
    tail = torch.nn.functional.pad(monic[:, 1:], (0, k - 1))  # (C, 2k-1): monic[1..k], then zeros
    return correlate(tail, sums)
