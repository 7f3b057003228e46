"""The pruned top-k selection picks exactly torch.topk's set, ties included (the proof bytes depend on
which tied values are committed)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_core.proofs.topk import select_topk, select_topk_blocks


def _torch_sets(rows: torch.Tensor, k: int) -> list[set[int]]:
    return [set(r.abs().topk(k).indices.tolist()) for r in rows]


def _sets(indices: torch.Tensor) -> list[set[int]]:
    return [set(r.tolist()) for r in indices]


@st.composite
def tied_rows(draw: st.DrawFn) -> tuple[torch.Tensor, int]:
    """Rows long enough to be pruned (n >= 128k), with many ties at the k-th place."""
    k = draw(st.integers(1, 24))
    n = draw(st.integers(128 * k, 700 * k + 500))
    rows = draw(st.integers(1, 4))
    levels = draw(st.sampled_from([3, 17, 256, 0]))  # 0: continuous values
    order = draw(st.sampled_from(["random", "rising", "falling", "bursts"]))
    dtype = draw(st.sampled_from([torch.bfloat16, torch.float16, torch.float32]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.randn(rows, n, generator=g)
    if levels:
        x = torch.randint(-levels, levels + 1, (rows, n), generator=g).float()
    if order == "rising":  # every value enters the heap: the pruning must give up gracefully
        x = x.abs().sort(dim=1).values
    elif order == "falling":
        x = x.abs().sort(dim=1, descending=True).values
    elif order == "bursts":  # late large values after a long quiet stretch
        x[:, n // 3 : 2 * n // 3] *= 0.01
    return x.to(dtype), k


@settings(max_examples=60, deadline=None)
@given(tied_rows())
def test_same_set_as_torch_topk(case: tuple[torch.Tensor, int]) -> None:
    rows, k = case
    assert _sets(select_topk(rows, k)) == _torch_sets(rows, k)


def test_ties_at_the_boundary_follow_the_partial_sort() -> None:
    # Many equal magnitudes at the k-th place, spread over the row; the chosen ones are torch's, not
    # simply the first ones.
    g = torch.Generator().manual_seed(11)
    for _ in range(20):
        x = torch.randint(0, 6, (3, 40_000), generator=g).to(torch.bfloat16)
        x[:, torch.randint(0, 40_000, (30,), generator=g)] = 9
        chosen = _sets(select_topk(x, 64))
        assert chosen == _torch_sets(x, 64)
        first_tied = [set((r == 5).nonzero().flatten().tolist()[: 64 - 30]) for r in x.abs()]
        assert any(not f <= c for f, c in zip(first_tied, chosen, strict=True))


def test_nan_rows_match_torch() -> None:
    x = torch.randn(3, 50_000).to(torch.bfloat16)
    x[0, 123] = float("nan")
    x[2, 40_000:40_010] = float("nan")
    assert _sets(select_topk(x, 16)) == _torch_sets(x, 16)


def test_blocks_of_different_shapes_and_dtypes() -> None:
    g = torch.Generator().manual_seed(3)
    blocks = [
        torch.randn(5, 20_000, generator=g).to(torch.bfloat16),
        torch.randn(2, 20_000, generator=g).to(torch.float16),
        torch.randn(3, 300, generator=g).to(torch.bfloat16),  # too short to prune
        torch.randn(4, 20_000, generator=g).round().to(torch.bfloat16),
    ]
    got = select_topk_blocks(blocks, 16)
    assert [_sets(i) for i in got] == [_torch_sets(b, 16) for b in blocks]


@pytest.mark.parametrize("n", [2 * 64 * 8, 2 * 64 * 8 + 1, 2 * 64 * 8 + 63, 5 * 64 * 8 + 17])
def test_lengths_around_block_edges(n: int) -> None:
    x = (torch.randn(4, n) * 3).round().to(torch.bfloat16)
    assert _sets(select_topk(x, 8)) == _torch_sets(x, 8)
