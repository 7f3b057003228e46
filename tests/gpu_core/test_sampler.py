"""The sampler (gpu_core.runner.sampler) against brute-force definitions: filters, their slack,
penalties, the pruned Gumbel race, greedy ties, and independence from batch-mates."""

from __future__ import annotations

import math

import pytest
import torch

from gpu_core.runner import noise
from gpu_core.runner.decoding import DecodeSpec
from gpu_core.runner.sampler import (
    MASS_SLACK,
    PenaltyContext,
    RowParams,
    choose,
    exact_scores,
    filter_threshold,
    process,
    race,
    sample_keys,
)

CPU = torch.device("cpu")


def _spec(**kwargs: object) -> DecodeSpec:
    return DecodeSpec(**{"temperature": 1.0, "seed": 1, "stop_token_ids": (), **kwargs})  # type: ignore[arg-type]


def _kept_brute_force(scores: list[float], spec: DecodeSpec) -> set[int]:
    """docs/sampler.md's filters, token by token, in plain Python."""
    kept = set(range(len(scores)))
    if 0 < spec.top_k < len(scores):
        kept = {j for j in kept if sum(scores[i] > scores[j] for i in range(len(scores))) < spec.top_k}
    if spec.top_p < 1:
        z = sum(math.exp(scores[i]) for i in kept)
        mass = {i: math.exp(scores[i]) / z for i in kept}
        kept = {j for j in kept if sum(mass[i] for i in kept if scores[i] > scores[j]) < spec.top_p}
    if spec.min_p > 0:
        best = max(scores)
        kept = {j for j in kept if scores[j] >= best + math.log(spec.min_p)}
    return kept


@pytest.mark.parametrize(
    "spec",
    [
        _spec(top_k=5),
        _spec(top_k=1),
        _spec(top_p=0.5),
        _spec(top_p=0.95),
        _spec(min_p=0.1),
        _spec(top_k=20, top_p=0.8, min_p=0.01),
        _spec(temperature=0.5, top_p=0.7),
    ],
)
def test_filters_keep_exactly_the_defined_set(spec: DecodeSpec) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(40, 64, generator=generator) * 2).round(decimals=1)  # rounding makes ties
    params = RowParams.repeat(spec, 40, CPU)
    scores, threshold = process(logits, params)
    for row in range(40):
        got = set((scores[row] >= threshold[row]).nonzero().flatten().tolist())
        assert got == _kept_brute_force(scores[row].tolist(), spec), row


def test_slack_widens_and_narrows_every_filter() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 200, generator=generator) * 3
    for spec in (_spec(top_k=10), _spec(top_p=0.9), _spec(min_p=0.05), _spec(top_k=30, top_p=0.6)):
        params = RowParams.repeat(spec, 64, CPU)
        scores, exact = process(logits, params)

        def kept(threshold: torch.Tensor, scores: torch.Tensor = scores) -> torch.Tensor:
            return scores >= threshold.unsqueeze(1)

        for slack in (0.1, 0.5, 2.0):
            wide = kept(filter_threshold(scores, params, torch.full((64,), slack)))
            narrow = kept(filter_threshold(scores, params, torch.full((64,), -slack)))
            assert not bool((kept(exact) & ~wide).any()) and not bool((narrow & ~kept(exact)).any()), (
                spec,
                slack,
            )
        # A token moved by less than the slack stays admissible (the provider's own logits).
        noisy = logits + (torch.rand(logits.shape, generator=generator) - 0.5) * 0.4
        noisy_scores, noisy_threshold = process(noisy, params)
        provider_kept = noisy_scores >= noisy_threshold.unsqueeze(1)
        admissible = scores >= filter_threshold(scores, params, torch.full((64,), 0.5)).unsqueeze(1)
        surely = scores >= filter_threshold(scores, params, torch.full((64,), -0.5)).unsqueeze(1)
        assert not bool((provider_kept & ~admissible).any())
        assert not bool((surely & ~provider_kept).any())


def test_penalties_follow_their_definitions() -> None:
    prompt, output = [3, 4, 4, 9], [5, 3, 5, 5, 1]
    spec = _spec(repetition_penalty=1.5, presence_penalty=0.3, frequency_penalty=0.2)
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(len(output) + 1, 12, generator=generator) * 2
    positions = range(len(output) + 1)
    context = PenaltyContext.at_positions(prompt, output, positions, CPU)
    scores, _ = process(logits, RowParams.repeat(spec, len(positions), CPU), context)
    for t in positions:
        seen = set(prompt) | set(output[:t])
        for token in range(12):
            want = float(logits[t, token])
            if token in seen:
                want = want / 1.5 if want > 0 else want * 1.5
            count = output[:t].count(token)
            want -= 0.3 * (count > 0) + 0.2 * count
            assert math.isclose(float(scores[t, token]), want, rel_tol=1e-6, abs_tol=1e-6), (t, token)


@pytest.mark.parametrize("scale", [0.3, 2.0, 12.0])
def test_the_pruned_race_is_the_exact_argmax(scale: float) -> None:
    generator = torch.Generator().manual_seed(3)
    rows, vocab = 48, 3000
    scores = torch.randn(rows, vocab, generator=generator) * scale
    threshold = torch.where(
        torch.arange(rows) % 3 == 0, torch.full((rows,), float("-inf")), scores.quantile(0.9, dim=1)
    )
    keys = noise.row_keys(torch.full((rows,), 99), torch.arange(rows))
    result = race(scores, threshold, keys)
    full = scores.double() + noise.gumbel_from_bits(noise.noise_bits(keys.unsqueeze(1), torch.arange(vocab)))
    full = full.masked_fill(scores < threshold.unsqueeze(1), float("-inf"))
    assert torch.equal(result.winners, full.argmax(dim=1))
    assert torch.equal(result.best, full.max(dim=1).values)
    assert torch.equal(exact_scores(scores, keys, result.winners), result.best)
    empty = race(scores[:2], torch.full((2,), float("inf")), keys[:2])
    assert empty.winners.tolist() == [-1, -1] and empty.best.isinf().all()


def test_greedy_ties_go_to_the_smallest_id_and_rows_ignore_their_batch_mates() -> None:
    logits = torch.zeros(1, 10)
    logits[0, 7] = logits[0, 3] = 5.0
    assert choose(logits, [DecodeSpec(stop_token_ids=())], [0]).tolist() == [3]
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 500, generator=generator) * 3
    specs = [
        _spec(seed=1),
        DecodeSpec(stop_token_ids=()),
        _spec(seed=2, top_p=0.9),
        _spec(seed=1, temperature=0.3),
        _spec(seed=5, top_k=7),
        _spec(seed=1),
    ]
    positions = [0, 3, 5, 0, 9, 1]
    together = choose(logits, specs, positions)
    alone = [int(choose(logits[i : i + 1], [specs[i]], [positions[i]])[0]) for i in range(6)]
    assert together.tolist() == alone
    assert together[0] != together[5] or positions[0] == positions[5]  # the position is in the noise


def test_sampling_follows_the_distribution() -> None:
    """Gumbel-max over the noise draws tokens with softmax probabilities (many positions, one row)."""
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(20000, 1)
    spec = _spec(seed=77)
    scores, threshold = process(logits, RowParams.repeat(spec, 20000, CPU))
    keys = sample_keys([spec] * 20000, list(range(20000)), CPU)
    drawn = torch.bincount(race(scores, threshold, keys).winners, minlength=4).double() / 20000
    assert torch.allclose(drawn, torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64), atol=0.015)


def _top_p_with_slack_brute_force(scores: list[float], top_p: float, slack: float) -> set[int]:
    """top-p with slack as docs/sampler.md states it: keep j iff the mass of the other tokens scoring
    above s_j + slack is below top_p * e^(MASS_SLACK * slack)."""
    z = sum(math.exp(x) for x in scores)
    target = top_p * math.exp(MASS_SLACK * slack)
    return {
        j
        for j in range(len(scores))
        if sum(
            math.exp(scores[i]) / z for i in range(len(scores)) if i != j and scores[i] > scores[j] + slack
        )
        < target
    }


@pytest.mark.parametrize("slack", [-1.0, -0.3, 0.0, 0.3, 1.0])
def test_top_p_slack_keeps_exactly_the_defined_set(slack: float) -> None:
    # Flat tails right below the cut, past the first 64 ranks, where a narrowed filter must look
    # beyond the head it starts with (a reviewer's counterexample), and random rows.
    flat = [0.5] + [0.0] * 63 + [-0.4] * 936
    generator = torch.Generator().manual_seed(6)
    rows = [flat, *(torch.randn(3, 1000, generator=generator) * 1.5).round(decimals=1).tolist()]
    for top_p in (0.151, 0.5, 0.9):
        spec = _spec(top_p=top_p)
        logits = torch.tensor(rows)
        params = RowParams.repeat(spec, len(rows), CPU)
        scores, _ = process(logits, params)
        threshold = filter_threshold(scores, params, torch.full((len(rows),), slack))
        for r, row in enumerate(scores.tolist()):
            got = set((scores[r] >= threshold[r]).nonzero().flatten().tolist())
            assert got == _top_p_with_slack_brute_force(row, top_p, slack), (top_p, slack, r)
