"""The sampler's counter-based noise: known answers (tests/vectors/sampler/noise.json), an independent
pure-Python computation of the bits, the deterministic log, the distribution, and CPU == CUDA."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gpu_core.runner import noise

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "sampler" / "noise.json").read_text())["cases"]


def _lowbias32(x: int) -> int:
    """The improved lowbias32 as C. Wellons publishes it (hash-prospector), in plain Python integers."""
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x735A2D97) & 0xFFFFFFFF
    return x ^ (x >> 15)


def _bits(seed: int, position: int, token: int) -> int:
    """docs/sampler.md's construction, step by step."""
    key = _lowbias32(_lowbias32((seed & 0xFFFFFFFF) ^ 0x9E3779B9) ^ (seed >> 32))
    row = _lowbias32(key ^ _lowbias32(position ^ 0x85EBCA6B))
    return _lowbias32(row ^ _lowbias32(token ^ 0xC2B2AE35))


def test_hash32_is_the_published_function() -> None:
    x = torch.tensor([0, 1, 2, 12345, 0x7FFFFFFF, 0xFFFFFFFF], dtype=torch.int64)
    assert noise.hash32(x).tolist() == [_lowbias32(int(v)) for v in x]
    assert _lowbias32(0) == 0  # a fixed point of every xorshift-multiply hash
    table = noise.token_hashes(4096, torch.device("cpu"))
    keys = torch.tensor([[5], [2**32 - 1]])
    assert torch.equal(noise.hash32(keys ^ table), noise.noise_bits(keys, torch.arange(4096)))


@pytest.mark.parametrize("case", VECTORS, ids=lambda c: f"{c['seed']}-{c['position']}-{c['token']}")
def test_noise_vectors(case: dict) -> None:
    seed, position, token = (
        torch.tensor([case[k]], dtype=torch.int64) for k in ("seed", "position", "token")
    )
    key = noise.row_keys(seed, position)
    bits = noise.noise_bits(key, token)
    assert int(key[0]) == case["rowKey"]
    assert int(bits[0]) == case["bits"] == _bits(case["seed"], case["position"], case["token"])
    assert float(noise.uniforms(bits)[0]).hex() == case["uniform"]
    assert float(noise.gumbel(seed, position, token)[0]).hex() == case["gumbel"]  # bit for bit
    u = (case["bits"] + 0.5) / 2**32
    assert math.isclose(float.fromhex(case["gumbel"]), -math.log(-math.log(u)), rel_tol=1e-14, abs_tol=1e-14)


def test_deterministic_log_matches_libm_to_an_ulp_or_two() -> None:
    x = torch.cat(
        [torch.rand(100_000, dtype=torch.float64) * 50, torch.tensor([1e-300, 2.0**-33, 1.0, 23.0])]
    )
    x = x[x > 0]
    got = noise._log(x)
    assert torch.allclose(got, torch.log(x), rtol=5e-16, atol=1e-15)


def test_noise_is_uniform_and_gumbel_distributed() -> None:
    seeds = torch.tensor([[11]])
    positions = torch.arange(64).unsqueeze(1)
    tokens = torch.arange(4096).unsqueeze(0)
    bits = noise.noise_bits(noise.row_keys(seeds, positions), tokens)
    counts = torch.bincount((bits >> 28).flatten(), minlength=16).double()  # the top 4 bits
    expected = bits.numel() / 16
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 45  # 15 degrees of freedom: p < 1e-4 beyond this
    low_bits = torch.bincount((bits & 15).flatten(), minlength=16).double()
    assert float(((low_bits - expected) ** 2 / expected).sum()) < 45
    g = noise.gumbel_from_bits(bits)
    assert abs(float(g.mean()) - 0.5772156649) < 0.01  # Euler-Mascheroni
    assert abs(float(g.std()) - math.pi / math.sqrt(6)) < 0.01
    # Rows of other positions and seeds are not shifted copies of each other.
    other = noise.noise_bits(noise.row_keys(torch.tensor([[12]]), positions), tokens)
    assert float((bits == other).double().mean()) < 1e-3


def test_bounds_enclose_the_exact_noise() -> None:
    low, high = noise.gumbel_bounds(torch.device("cpu"))
    bits = torch.randint(0, 2**32, (200_000,), dtype=torch.int64)
    g = noise.gumbel_from_bits(bits)
    bucket = bits >> (32 - noise.BUCKET_BITS)
    assert bool((low[bucket] <= g).all()) and bool((g <= high[bucket]).all())
    extremes = noise.gumbel_from_bits(torch.tensor([0, 2**32 - 1]))
    assert float(extremes[0]) >= noise.G_MIN and float(extremes[1]) <= noise.G_MAX


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_computes_the_same_noise_bit_for_bit() -> None:
    seeds = torch.tensor([0, 7, 2**53 - 1]).unsqueeze(1)
    positions = torch.tensor([0, 5, 2**32 - 1]).unsqueeze(1)
    tokens = torch.arange(0, 131072, 7).unsqueeze(0)
    cpu = noise.gumbel(seeds, positions, tokens)
    gpu = noise.gumbel(seeds.cuda(), positions.cuda(), tokens.cuda()).cpu()
    assert torch.equal(cpu.view(torch.int64), gpu.view(torch.int64))
    for case in VECTORS:
        args = (torch.tensor([case[k]], device="cuda") for k in ("seed", "position", "token"))
        assert float(noise.gumbel(*args)[0].cpu()).hex() == case["gumbel"]
