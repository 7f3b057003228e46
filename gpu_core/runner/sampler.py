"""The sampler: logits -> scores -> one token per row, the same function for the provider (generation)
and the validator (replay, gpu_core.runner.replay). docs/sampler.md describes it step by step.

`process` applies penalties, temperature and the filters (top-k, top-p, min-p) of each row's
DecodeSpec. Every filter keeps an upper set of scores, so the filtered set of a row is
{j : score_j >= threshold}. `slack` widens (> 0) or narrows (< 0) each filter as if every score could
move by up to `slack`: a validator, whose logits differ a little from the provider's, asks both "could
the provider have kept this token?" (slack +tolerance) and "did the provider surely keep it?" (slack
-tolerance). With slack 0 it is the provider's own filter.

`race` is Gumbel-max over a filtered set: argmax_j (score_j + G(seed, position, j)) with the noise of
gpu_core.runner.noise, ties going to the smallest token id. It computes the exact noise only for tokens
that can still win: a cheap lower bound on the winning score (the best-scored token's exact score, and
per-bucket lower bounds of the noise) rules out every token whose score plus the bucket's upper bound
of the noise falls below it. The result is exactly the unpruned argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gpu_core.runner.decoding import ENGINE, DecodeSpec
from gpu_core.runner.noise import (
    BUCKET_BITS,
    G_MAX,
    gumbel_bounds,
    gumbel_from_bits,
    hash32,
    row_keys,
    token_hashes,
)

_NEG_INF = float("-inf")

MASS_SLACK = 0.5
"""The share of a filter's slack that moves top-p's probability masses (docs/sampler.md): a mass
averages many tokens' errors. Measured on SmolLM2 (bf16 provider at batch 1, float32 validator, 6 x 96
sampled tokens): per-token logit errors reach 0.8 within 10 logits of the top, |log| of the ratio of a
mass above a token (between 0.05 and 0.99) 0.23 at temperature 0.7 or 1."""


@dataclass(frozen=True)
class RowParams:
    """The decode parameters of R rows as tensors (one row per sequence step, or per replayed position)."""

    temperature: torch.Tensor  # float32 [R]
    top_k: torch.Tensor  # int64 [R], 0 = off
    top_p: torch.Tensor  # float64 [R], 1 = off
    min_p: torch.Tensor  # float32 [R], 0 = off
    repetition_penalty: torch.Tensor  # float32 [R]
    presence_penalty: torch.Tensor  # float32 [R]
    frequency_penalty: torch.Tensor  # float32 [R]
    penalties: bool  # any row has a penalty

    @classmethod
    def of(cls, specs: Sequence[DecodeSpec], device: torch.device) -> RowParams:
        def column(name: str, dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor([getattr(s, name) for s in specs], dtype=dtype, device=device)

        return cls(
            temperature=column("temperature", torch.float32),
            top_k=column("top_k", torch.int64),
            top_p=column("top_p", torch.float64),
            min_p=column("min_p", torch.float32),
            repetition_penalty=column("repetition_penalty", torch.float32),
            presence_penalty=column("presence_penalty", torch.float32),
            frequency_penalty=column("frequency_penalty", torch.float32),
            penalties=any(s.has_penalties for s in specs),
        )

    @classmethod
    def repeat(cls, spec: DecodeSpec, rows: int, device: torch.device) -> RowParams:
        return cls.of([spec] * rows, device)


@dataclass(frozen=True)
class PenaltyContext:
    """What the penalties see at each row: the distinct tokens of prompt + output so far (`ids`, padded
    where `seen` is False) and how often each occurred in the output so far (`counts`)."""

    ids: torch.Tensor  # int64 [R, M]
    seen: torch.Tensor  # bool [R, M]
    counts: torch.Tensor  # float32 [R, M]

    @classmethod
    def at_positions(
        cls, prompt: Sequence[int], output: Sequence[int], positions: Sequence[int], device: torch.device
    ) -> PenaltyContext:
        """Rows for the contexts prompt + output[:t], one per t in `positions` (ascending, each <=
        len(output)). Linear in the output and in rows x distinct tokens: counts up to the first
        position by one bincount, then cumulated over the positions' span only."""
        tokens = torch.tensor([*prompt, *output], dtype=torch.int64)
        distinct, inverse = torch.unique(tokens, return_inverse=True)
        in_prompt = torch.zeros(len(distinct), dtype=torch.bool)
        in_prompt[inverse[: len(prompt)]] = True
        emitted = inverse[len(prompt) :]
        first, last = min(positions), max(positions)
        base = torch.bincount(emitted[:first], minlength=len(distinct)).float()
        steps = torch.zeros((last - first + 1, len(distinct)), dtype=torch.float32)
        if last > first:
            steps[torch.arange(1, last - first + 1), emitted[first:last]] = 1.0
        counts = (base + steps.cumsum(0))[torch.tensor(list(positions), dtype=torch.int64) - first]
        seen = in_prompt.unsqueeze(0) | (counts > 0)
        ids = distinct.unsqueeze(0).expand(len(positions), -1)
        return cls(ids.to(device), seen.to(device), counts.to(device))

    @classmethod
    def stack(cls, parts: Sequence[PenaltyContext]) -> PenaltyContext:
        """Rows of several contexts, padded to the widest."""
        width = max(p.ids.shape[1] for p in parts)

        def pad(t: torch.Tensor, value: float | bool) -> torch.Tensor:
            return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

        return cls(
            torch.cat([pad(p.ids, 0) for p in parts]),
            torch.cat([pad(p.seen, False) for p in parts]),
            torch.cat([pad(p.counts, 0.0) for p in parts]),
        )


def apply_penalties(logits: torch.Tensor, params: RowParams, context: PenaltyContext) -> torch.Tensor:
    """Repetition penalty on every token seen (prompt + output so far), then presence and frequency
    penalties on the output's tokens. Returns a new tensor."""
    zeros = torch.zeros_like(logits)
    # amax, not scatter: padding slots repeat id 0 with seen False and count 0, so a real token 0 wins.
    seen = zeros.scatter_reduce(1, context.ids, context.seen.float(), reduce="amax") > 0
    counts = zeros.scatter_reduce(1, context.ids, context.counts, reduce="amax")
    rp = params.repetition_penalty.unsqueeze(1)
    out = torch.where(seen, torch.where(logits > 0, logits / rp, logits * rp), logits)
    out = out - params.presence_penalty.unsqueeze(1) * (counts > 0).float()
    return out - params.frequency_penalty.unsqueeze(1) * counts


def process(
    logits: torch.Tensor,
    params: RowParams,
    context: PenaltyContext | None = None,
    slack: torch.Tensor | float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, thresholds) of float logits [R, V]: penalties, then for rows at temperature > 0 the
    logits over the temperature and each filter's threshold moved by `slack` (score units, per row or
    one value); greedy rows keep their logits and a threshold of -inf. The filtered set of row r is
    {j : scores[r, j] >= thresholds[r]}."""
    x = logits.float()
    if params.penalties:
        if context is None:
            raise ValueError("penalties need a PenaltyContext")
        x = apply_penalties(x, params, context)
    rows = x.shape[0]
    threshold = torch.full((rows,), _NEG_INF, dtype=torch.float32, device=x.device)
    sampled = params.temperature > 0
    if not bool(sampled.any()):  # greedy rows only: the logits are the scores, no filter applies
        return x, threshold
    slack_t = torch.as_tensor(slack, dtype=torch.float32, device=x.device).expand(rows)
    if bool(sampled.all()):
        scores = x / params.temperature.unsqueeze(1)
    else:
        scores = torch.where(sampled.unsqueeze(1), x / params.temperature.clamp(min=1e-30).unsqueeze(1), x)
    threshold = torch.where(sampled, filter_threshold(scores, params, slack_t), threshold)
    return scores, threshold


def filter_threshold(scores: torch.Tensor, params: RowParams, slack: torch.Tensor) -> torch.Tensor:
    """Each row's filter threshold on temperature-scaled scores, every filter moved by `slack` [R]
    (the rows' temperatures must be > 0). With slack s, a filter keeps token j iff it would keep j
    were every other score moved by up to |s| against it (s < 0: j is surely kept) or for it (s > 0:
    j may have been kept); docs/sampler.md derives each rule."""
    rows, vocab = scores.shape
    device = scores.device
    threshold = torch.full((rows,), _NEG_INF, dtype=torch.float32, device=device)
    if not bool(((params.top_k > 0) | (params.top_p < 1) | (params.min_p > 0)).any()):
        return threshold  # no filter: every token is kept, whatever the slack
    top = scores.max(dim=1).values
    narrow = slack < 0

    # top-k: keep j iff #{i != j : s_i > s_j + slack} < k: s_j >= s_(k-1) - slack, or for slack < 0
    # (j itself is then among the counted) s_j >= s_(k) - slack, ranks counted from 0.
    k_on = (params.top_k > 0) & (params.top_k < vocab)
    if bool(k_on.any()):
        k_max = int(params.top_k[k_on].max())
        ranked = scores.topk(min(vocab, k_max + 1), dim=1).values
        rank = (params.top_k - 1 + narrow.long()).clamp(0, ranked.shape[1] - 1)
        kth = ranked.gather(1, rank.unsqueeze(1)).squeeze(1)
        threshold = torch.where(k_on, kth - slack, threshold)

    # top-p: keep j iff mass{i != j : s_i > s_j + slack} < top_p * e^(MASS_SLACK * slack), masses
    # over the top-k set. Which tokens rank above j can flip with any near-tie (the full slack), but a
    # mass moves by an average of many tokens' errors, not by the largest one (MASS_SLACK of it).
    target = params.top_p * torch.exp(MASS_SLACK * slack.double())
    p_on = (params.top_p < 1) & (target < 1)
    if bool(p_on.any()):
        kept = scores.masked_fill(scores < threshold.unsqueeze(1), _NEG_INF)
        log_z = torch.logsumexp(kept, dim=1).double()
        width = min(64, vocab)
        while True:
            head = kept.topk(width, dim=1).values.double()
            mass = torch.exp(head - log_z.unsqueeze(1))
            total = torch.nn.functional.pad(mass.cumsum(1), (1, 0))  # total[:, c] = mass of the top c
            above = torch.searchsorted(
                -head, -(head + slack.double().unsqueeze(1))
            )  # #{i: s_i > s_j + slack}
            mass_above = total.gather(1, above) - torch.where(narrow.unsqueeze(1), mass, 0.0)
            keep = mass_above < target.unsqueeze(1)
            last = keep.sum(dim=1) - 1  # keep is true up to a rank, then false
            edge = head.gather(1, last.clamp(min=0).unsqueeze(1)).squeeze(1)
            # The head must hold every token counted for the last kept rank and the next one: all kept
            # ranks (slack >= 0), and also the tokens within |slack| below them (slack < 0).
            short = keep[:, -1] | (narrow & (head[:, -1] > edge + slack.double()))
            if width == vocab or not bool((short & p_on).any()):
                break
            width = min(vocab, width * 4)
        cut = torch.where(last >= 0, edge.float(), torch.full_like(edge.float(), float("inf")))
        threshold = torch.where(p_on, torch.maximum(threshold, cut), threshold)

    # min-p: keep j iff p_j >= min_p * p_max, i.e. s_j >= s_max + log(min_p) - slack.
    m_on = params.min_p > 0
    if bool(m_on.any()):
        cut = top + torch.log(params.min_p.clamp(min=1e-30)) - slack
        threshold = torch.where(m_on, torch.maximum(threshold, cut), threshold)
    # A filter with slack >= 0 keeps at least the best token; a narrowed one may keep none.
    return torch.where(narrow, threshold, torch.minimum(threshold, top))


@dataclass(frozen=True)
class RaceResult:
    winners: torch.Tensor  # int64 [R]; -1 where the filtered set is empty
    best: torch.Tensor  # float64 [R]: the winner's score + noise; -inf where empty


def race(
    scores: torch.Tensor,
    threshold: torch.Tensor,
    keys: torch.Tensor,
    floor: torch.Tensor | None = None,
    reach: float = G_MAX,
) -> RaceResult:
    """Gumbel-max over each row's filtered set: argmax_j scores[r, j] + G(keys[r], j) over
    {j : scores[r, j] >= threshold[r]}, ties to the smallest j (module docstring).

    Tokens whose score plus `reach` falls below `floor[r]` are not examined. With the defaults (the
    floor is the best-scored kept token's exact score, `reach` the largest noise there is) nothing that
    can win is left out: the result is exact, as the provider's sampler needs. The validator passes the
    chosen token's score as `floor` and a smaller reach (replay.REPLAY_REACH): it only asks whether a
    token beats that score, and leaving tokens out can only miss such a token, never invent one.
    Rows whose examined tokens all score below `floor` get winner -1 and best -inf.
    """
    rows, vocab = scores.shape
    device = scores.device
    top, anchor = scores.max(dim=1)  # the best-scored token is kept whenever anything is
    live = top >= threshold
    low, high = gumbel_bounds(device)
    table = token_hashes(vocab, device)
    shift = 32 - BUCKET_BITS
    if floor is None:
        # The best-scored token's score plus its bucket's lowest noise: a lower bound on the winner's.
        floor = top.double() + low[hash32(keys ^ table[anchor]) >> shift]
    floor = torch.where(
        live, floor.double(), torch.full((rows,), _NEG_INF, dtype=torch.float64, device=device)
    )
    lowest = (floor - reach - 1e-3 - 1e-6 * floor.abs()).float()  # float32 rounding margin
    bar = torch.where(live, torch.maximum(threshold, lowest), torch.full_like(lowest, float("inf")))
    candidate = scores >= bar.unsqueeze(1)  # kept, and within reach of the floor
    r, j = candidate.nonzero(as_tuple=True)
    if 4 * r.numel() > candidate.numel():
        # Most tokens are candidates (one provider row, a flat distribution): the bounds of whole rows
        # are cheaper than gathering the candidates' scores first.
        bucket = hash32(keys.unsqueeze(1) ^ table.unsqueeze(0)) >> shift
        dense = scores.double()
        floor = torch.maximum(floor, (dense + low[bucket]).masked_fill(~candidate, _NEG_INF).amax(dim=1))
        r, j = (candidate & (dense + high[bucket] >= floor.unsqueeze(1))).nonzero(as_tuple=True)
        s = dense[r, j]
        bits = hash32(keys[r] ^ table[j])
    else:
        s = scores[r, j].double()
        bits = hash32(keys[r] ^ table[j])  # noise.noise_bits(keys[r], j), with the per-token half cached
        bucket = bits >> shift
        floor = floor.scatter_reduce(0, r, s + low[bucket], reduce="amax")
        keep = s + high[bucket] >= floor[r]
        r, j, s, bits = r[keep], j[keep], s[keep], bits[keep]
    total = s + gumbel_from_bits(bits)
    best = torch.full((rows,), _NEG_INF, dtype=torch.float64, device=device)
    best = best.scatter_reduce(0, r, total, reduce="amax")
    at_best = (total == best[r]) & (total > _NEG_INF)
    winners = torch.full((rows,), vocab, dtype=torch.int64, device=device)
    winners = winners.scatter_reduce(0, r[at_best], j[at_best], reduce="amin")
    winners = torch.where(winners < vocab, winners, torch.full_like(winners, -1))
    return RaceResult(winners, best)


def pair_scores(
    scores: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor
) -> torch.Tensor:
    """score + noise (float64) of (row, token) pairs, as `race` computes them."""
    bits = hash32(keys[rows] ^ token_hashes(scores.shape[1], scores.device)[tokens])
    return scores[rows, tokens].double() + gumbel_from_bits(bits)


def exact_scores(scores: torch.Tensor, keys: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """score + noise (float64) of one token per row, as `race` computes it."""
    return pair_scores(scores, keys, torch.arange(scores.shape[0], device=scores.device), tokens)


def sample_keys(specs: Sequence[DecodeSpec], positions: Sequence[int], device: torch.device) -> torch.Tensor:
    """Noise keys of rows: the spec's seed (0 when it has none) at the output position."""
    seeds = torch.tensor([s.seed or 0 for s in specs], dtype=torch.int64, device=device)
    return row_keys(seeds, torch.tensor(list(positions), dtype=torch.int64, device=device))


def choose(
    logits: torch.Tensor,
    specs: Sequence[DecodeSpec],
    positions: Sequence[int],
    context: PenaltyContext | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The provider's next token of each row (logits [R, V], one spec and output position per row):
    greedy rows take the argmax, gumbel-max rows the race's winner, engine rows a multinomial draw from
    the filtered distribution (unseeded unless `generator` is given: what an engine's own sampler does)."""
    device = logits.device
    params = RowParams.of(specs, device)
    scores, threshold = process(logits, params, context)
    tokens = scores.argmax(dim=1)
    sampled = [i for i, s in enumerate(specs) if not s.greedy]
    if not sampled:
        return tokens
    gumbel_rows = [i for i in sampled if specs[i].sampler != ENGINE]
    engine_rows = [i for i in sampled if specs[i].sampler == ENGINE]
    if gumbel_rows:
        index = torch.tensor(gumbel_rows, device=device)
        keys = sample_keys([specs[i] for i in gumbel_rows], [positions[i] for i in gumbel_rows], device)
        tokens[index] = race(scores[index], threshold[index], keys).winners
    if engine_rows:
        index = torch.tensor(engine_rows, device=device)
        masked = scores[index].masked_fill(scores[index] < threshold[index].unsqueeze(1), _NEG_INF)
        probs = torch.softmax(masked, dim=1)
        tokens[index] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return tokens


def filtered_log_probs(scores: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """log-softmax over each row's filtered set (-inf outside it), float64."""
    masked = scores.double().masked_fill(scores < threshold.unsqueeze(1), _NEG_INF)
    return torch.log_softmax(masked, dim=1)


def amplification(spec: DecodeSpec) -> float:
    """How much the penalties can magnify a logit's numerical error: the repetition penalty multiplies
    negative logits (or divides positive ones) by up to max(rp, 1/rp)."""
    rp = spec.repetition_penalty
    return max(rp, 1 / rp) if rp != 1 else 1.0
