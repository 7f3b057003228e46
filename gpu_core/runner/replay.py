"""The validator's check that the output tokens came from the model: replay the sampler on the
validator's own logits (docs/sampler.md).

Inputs per record: the final-norm rows that predict each output token (row t predicts output[t]: the
last prompt row, then output rows 0..n-2), the model's lm_head, the record's DecodeSpec and stop
reason. Checks, each failure naming the check, the position, the token, the sampler's choice and the
gap:

- `stop-token`: no stop token before the last position (generation would have ended there);
- `stop-reason`: the claimed reason holds where the output ends: `eos` ends with a stop token, `stop`
  with the first stop string, `length` after exactly max_new_tokens tokens and neither of the others;
- `sampler` (replayable specs: greedy, or gumbel-max with its seed): at every position the token is
  the sampler's choice within `tolerance` logits: greedy, no token's logit exceeds the token's by more;
  gumbel-max, no token the provider surely kept scores (scaled logit + noise) more than tolerance /
  temperature above it;
- `filter` (sampled specs): the token survives top-k / top-p / min-p with the tolerance as slack;
- `likelihood` (the engine sampler, not replayable): a z-score of the tokens' log-probabilities
  against the filtered distribution's expectation and variance, |z| <= Z_LIMIT. Weaker: it judges the
  record as a whole and needs many tokens to see a subtle cheat.

The tolerance covers honest numerical noise between the provider's logits and the validator's (other
dtype, kernels, batch); gpu_core.runner.verdict holds the measured values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from gpu_core.runner.decoding import DecodeSpec, stop_problem
from gpu_core.runner.sampler import (
    PenaltyContext,
    RowParams,
    amplification,
    exact_scores,
    filter_threshold,
    filtered_log_probs,
    pair_scores,
    process,
    race,
    sample_keys,
)
from gpu_core.runner.stopping import contains_stop

VARIANCE_FLOOR = 0.25
"""The likelihood test's smallest variance per position (squared log-probability)."""

Z_LIMIT = 8.0
"""The engine sampler's likelihood test: |z| above this is fraud (docs/sampler.md: measured honest
z-scores and cheats)."""

REPLAY_REACH = 16.0
"""The replay examines the tokens within this much noise (scaled logits) of the chosen token's score:
a token further below would need a Gumbel noise above 16 to beat it, which one token in 9 million
draws. Leaving such tokens out can only miss a cheat at such a position, never reject an honest
token; it makes the replay of a sampled record about 5x cheaper (docs/sampler.md)."""

MAX_LOGITS_PER_CALL = 1 << 24
"""Rows of logits computed at once: bounds the replay's memory (64 MiB of float32) whatever the record."""

LmHead = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TokenFailure:
    """One failed token check (see the module docstring for `check`)."""

    check: str
    position: int | None
    token: int | None
    choice: int | None
    gap: float | None
    limit: float | None
    detail: str

    def reason(self) -> str:
        where = "" if self.position is None else f" at output position {self.position}"
        return f"{self.check}{where}: {self.detail}"


@dataclass(frozen=True)
class TokenReport:
    """The token checks of one record.

    `kind`: "replay" (greedy or gumbel-max: every token recomputed), "likelihood" (the engine sampler)
    or "none" (a version 1 record, which binds no decode spec). `max_gap` is the largest gap of a
    token behind the sampler's choice (logit units) against `limit`; `mismatches` counts positions
    where the validator's own choice differs (within the tolerance or not); `unconstrained` counts
    sampled positions where no token is surely inside the provider's top-k / top-p set, so only the
    filter check applies there; `z` is the likelihood test's score. `failure_count` counts every
    failure, `failures` holds the first ones.
    """

    kind: str
    failures: tuple[TokenFailure, ...]
    positions: int
    max_gap: float | None = None
    limit: float | None = None
    mismatches: int = 0
    unconstrained: int = 0
    z: float | None = None
    failure_count: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures


def check_stop(
    spec: DecodeSpec, stop_reason: str, output: Sequence[int], tokenizer: object
) -> list[TokenFailure]:
    """The stop-token and stop-reason checks (no logits needed; the tokenizer only for stop strings)."""
    problem = stop_problem(
        spec, stop_reason, output, lambda prefix: contains_stop(tokenizer, prefix, spec.stop)
    )
    if problem is None:
        return []
    token = None if problem.position is None else output[problem.position]
    return [TokenFailure(problem.check, problem.position, token, None, None, None, problem.detail)]


@torch.inference_mode()
def replay_tokens(
    hidden: torch.Tensor,
    lm_head: LmHead,
    prompt: Sequence[int],
    output: Sequence[int],
    spec: DecodeSpec,
    stop_reason: str,
    tolerance: float,
    tokenizer: object = None,
    max_failures: int = 16,
) -> TokenReport:
    """Check one record's tokens (module docstring). `hidden` [n, H] are the rows predicting each
    output token; `lm_head` maps rows to float32 logits; `tolerance` is in logit units.

    Requires len(output) == n >= 1 and a resolved spec whose stop ids and top_k suit the model.
    """
    failures = check_stop(spec, stop_reason, output, tokenizer)
    n = len(output)
    limit = tolerance * amplification(spec)
    kind = "replay" if spec.replayable else "likelihood"
    max_gap = -math.inf
    mismatches = unconstrained = 0
    z_sum = z_var = 0.0
    device = hidden.device
    tokens_all = torch.tensor(list(output), dtype=torch.int64, device=device)
    step = max(1, MAX_LOGITS_PER_CALL // max(1, _vocab(lm_head, hidden)))
    for start in range(0, n, step):
        stop = min(n, start + step)
        logits = lm_head(hidden[start:stop]).float()
        rows = stop - start
        params = RowParams.repeat(spec, rows, device)
        context = (
            PenaltyContext.at_positions(prompt, output, range(start, stop), device)
            if spec.has_penalties
            else None
        )
        scores, exact = process(logits, params, context)
        tokens = tokens_all[start:stop]
        positions = list(range(start, stop))
        if spec.greedy:
            best, choice = scores.max(dim=1)  # the first maximal index: ties go to the smallest id
            gap = (best - scores.gather(1, tokens.unsqueeze(1)).squeeze(1)).double()
        else:
            slack = torch.full((rows,), limit / spec.temperature, dtype=torch.float32, device=device)
            admissible = filter_threshold(scores, params, slack)
            outside = scores.gather(1, tokens.unsqueeze(1)).squeeze(1) < admissible
            for i in outside.nonzero().flatten().tolist():
                failures.append(
                    TokenFailure(
                        "filter", start + i, int(tokens[i]), None, None, None,
                        f"token {int(tokens[i])} is outside the top-k / top-p / min-p set even with "
                        f"{limit:.3g} logits of slack",
                    )
                )  # fmt: skip
            if spec.replayable:
                keys = sample_keys([spec] * rows, positions, device)
                robust = filter_threshold(scores, params, -slack)
                chosen = exact_scores(scores, keys, tokens)
                result = race(scores, robust, keys, floor=chosen, reach=REPLAY_REACH)
                choice = torch.where(result.winners >= 0, result.winners, tokens)  # none beats the token
                best = result.best
                top = scores.amax(dim=1)
                empty = top < robust  # no token surely kept: count them, and use the weaker bound below
                unconstrained += int(empty.sum())
                if bool(empty.any()):
                    # Every filter keeps the provider's own best-scored token, one of those within the
                    # slack of the top here: the chosen token must reach the lowest of their scores.
                    r, j = ((scores >= (top - slack).unsqueeze(1)) & empty.unsqueeze(1)).nonzero(
                        as_tuple=True
                    )
                    totals = pair_scores(scores, keys, r, j)
                    lowest = torch.full_like(best, math.inf).scatter_reduce(0, r, totals, reduce="amin")
                    weakest = torch.zeros_like(choice).scatter_reduce(
                        0, r[totals == lowest[r]], j[totals == lowest[r]], reduce="amax", include_self=False
                    )
                    best = torch.where(empty, lowest, best)
                    choice = torch.where(empty & (lowest > chosen), weakest, choice)
                gap = ((best - chosen) * spec.temperature).clamp(min=0.0)
            else:
                # Expectation under the exact filters, as the provider's engine applied them (the
                # widened ones would drift honest z upwards with the length). A token outside the
                # exact set, which only the widened filters admit, is scored by its probability
                # under them: never dropped, or a wide enough slack would let any token through.
                log_q = filtered_log_probs(scores, exact)
                q = log_q.exp()
                mean = (q * log_q.nan_to_num(neginf=0.0)).sum(1)
                var = (q * log_q.nan_to_num(neginf=0.0).square()).sum(1) - mean.square()
                got = log_q.gather(1, tokens.unsqueeze(1)).squeeze(1)
                wide = filtered_log_probs(scores, admissible).gather(1, tokens.unsqueeze(1)).squeeze(1)
                got = torch.where(torch.isfinite(got), got, wide)
                counted = torch.isfinite(got)  # the rest already failed the filter check
                z_sum += float((got - mean)[counted].sum())
                # Each position's variance floored: where the exact nucleus is one token, a token from
                # outside it must still weigh (a zero variance would make any z 0).
                z_var += float(var.clamp(min=VARIANCE_FLOOR)[counted].sum())
                choice = log_q.argmax(dim=1)
                gap = None
        mismatches += int((choice != tokens).sum())
        if gap is not None:
            if not bool(torch.isfinite(gap).all()):  # finite logits and bounded penalties never do this
                raise RuntimeError("the replay's scores are not finite (the validator's logits overflowed?)")
            max_gap = max(max_gap, float(gap.max()))
            for i in (gap > limit).nonzero().flatten().tolist():
                failures.append(
                    TokenFailure(
                        "sampler", start + i, int(tokens[i]), int(choice[i]), float(gap[i]), limit,
                        f"token {int(tokens[i])} is {float(gap[i]):.3g} logits behind the sampler's "
                        f"choice {int(choice[i])} (tolerance {limit:.3g})",
                    )
                )  # fmt: skip
    z = None
    if kind == "likelihood":
        z = z_sum / math.sqrt(z_var) if z_var > 0 else 0.0
        if abs(z) > Z_LIMIT:
            side = "less" if z < 0 else "more"
            failures.append(
                TokenFailure(
                    "likelihood", None, None, None, z, Z_LIMIT,
                    f"the tokens are {side} likely under the model than its sampling allows: "
                    f"z = {z:.2f} (|z| at most {Z_LIMIT:g}, over {n} tokens)",
                )
            )  # fmt: skip
    failures.sort(key=lambda f: (-1 if f.position is None else f.position, f.check))
    return TokenReport(
        kind=kind,
        failures=tuple(failures[:max_failures]),
        positions=n,
        max_gap=None if kind == "likelihood" else max(0.0, max_gap),
        limit=None if kind == "likelihood" else limit,
        mismatches=mismatches,
        unconstrained=unconstrained,
        z=z,
        failure_count=len(failures),
    )


def _vocab(lm_head: LmHead, hidden: torch.Tensor) -> int:
    size = getattr(lm_head, "out_features", None)
    return int(size) if size is not None else 1 << 17
