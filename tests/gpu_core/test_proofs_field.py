"""GF(65497) arithmetic, interpolation, the modulus search and the float encodings, against plain
Python integers."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_core.proofs.encoding import FLOAT32, encoding_for
from gpu_core.proofs.field import PRIME, inverse, matmul_mod, powers
from gpu_core.proofs.modulus import injective_moduli
from gpu_core.proofs.polynomial import evaluate, interpolate, poly_from_roots

FAST = settings(max_examples=30, deadline=None)


def horner(coeffs: list[int], x: int) -> int:
    result = 0
    for c in reversed(coeffs):
        result = (result * x + c) % PRIME
    return result


def test_prime_is_prime() -> None:
    assert PRIME == 65497 and all(PRIME % d for d in range(2, 256))


def test_inverse_of_every_element() -> None:
    a = torch.arange(1, PRIME)
    assert torch.all(a * inverse(a) % PRIME == 1)


def test_matmul_mod_is_exact_at_the_largest_values() -> None:
    a = torch.full((2, 3, 256), PRIME - 1)
    b = torch.full((2, 256, 4), PRIME - 1)
    assert torch.all(matmul_mod(a, b) == (256 * (PRIME - 1) ** 2) % PRIME)


@FAST
@given(st.lists(st.integers(0, PRIME - 1), min_size=1, max_size=5), st.integers(1, 40))
def test_powers(xs: list[int], count: int) -> None:
    got = powers(torch.tensor(xs), count)
    assert got.tolist() == [[pow(x, e, PRIME) for e in range(count)] for x in xs]


@FAST
@given(st.integers(1, 140), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_interpolation_passes_through_every_point(k: int, rows: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    xs = torch.stack([torch.randperm(PRIME, generator=g)[:k] for _ in range(rows)])
    ys = torch.randint(0, PRIME, (rows, k), generator=g)
    coeffs = interpolate(xs, ys)
    assert coeffs.shape == (rows, k) and int(coeffs.min()) >= 0 and int(coeffs.max()) < PRIME
    for r in range(rows):
        assert [horner(coeffs[r].tolist(), x) for x in xs[r].tolist()] == ys[r].tolist()
    assert torch.equal(evaluate(coeffs, xs), ys)


@FAST
@given(st.lists(st.integers(0, PRIME - 1), min_size=1, max_size=20, unique=True))
def test_poly_from_roots(roots: list[int]) -> None:
    coeffs = poly_from_roots(torch.tensor([roots]))[0].tolist()
    assert len(coeffs) == len(roots) + 1 and coeffs[-1] == 1
    assert all(horner(coeffs, r) == 0 for r in roots)
    assert horner(coeffs, 3) == _product((3 - r) % PRIME for r in roots)


def _product(values) -> int:
    out = 1
    for v in values:
        out = out * v % PRIME
    return out


def _largest_injective(indices: list[int]) -> int:
    for m in range(PRIME, 0, -1):
        if len({i % m for i in indices}) == len(indices):
            return m
    raise AssertionError("none")


@FAST
@given(st.lists(st.integers(0, 3 * PRIME), min_size=1, max_size=12, unique=True))
def test_injective_modulus_is_the_largest(indices: list[int]) -> None:
    assert int(injective_moduli(torch.tensor([indices]))[0]) == _largest_injective(indices)


def test_injective_modulus_searches_past_collisions() -> None:
    # Index 0 collides with index m modulo m, for every m from 65497 down to 65497 - 150: three
    # windows of candidates fail before 65497 - 151 works.
    indices = [0, *range(PRIME - 150, PRIME + 1)]
    got = injective_moduli(torch.tensor([indices, list(range(len(indices)))]))
    assert got.tolist() == [PRIME - 151, PRIME] == [_largest_injective(indices), PRIME]


@FAST
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=10))
def test_float32_planes_keep_31_bits(patterns: list[int]) -> None:
    bits = torch.tensor(patterns, dtype=torch.int64)
    planes = FLOAT32.to_planes(bits)
    # hi may reach 65535 (negative NaNs wrap mod the prime, as 16-bit patterns do); lo never wraps.
    assert (
        planes.shape == (2, len(patterns)) and int(planes[0].max()) < 2**16 and int(planes[1].max()) < 2**15
    )
    assert FLOAT32.from_planes(planes).tolist() == [p & ~1 for p in patterns]


def test_exponent_and_mantissa_fields() -> None:
    x = torch.tensor([1.5, -3.0, 0.0])
    for name, exponents, mantissas in [
        ("bfloat16", [127, 128, 0], [0x40, 0x40, 0]),
        ("float16", [15, 16, 0], [0x200, 0x200, 0]),
        ("float32", [127, 128, 0], [0x200000, 0x200000, 0]),  # 22 committed bits
    ]:
        e = encoding_for(name)
        bits = e.bits(x.to(e.dtype))
        assert e.exponent(bits).tolist() == exponents and e.mantissa(bits).tolist() == mantissas
