"""The sampler replay (gpu_core.runner.replay) on synthetic logits: every check fires on its own cheat
and names itself, the position, the token, the sampler's choice and the gap; honest noise passes."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from gpu_core.runner.decoding import ENGINE, DecodeSpec
from gpu_core.runner.replay import Z_LIMIT, replay_tokens
from gpu_core.runner.sampler import PenaltyContext, choose

VOCAB, N = 300, 96
TOLERANCE = 1.0


def _head() -> nn.Linear:
    """The identity as lm_head: the replay's rows are the logits themselves."""
    head = nn.Linear(VOCAB, VOCAB, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(VOCAB))
    return head


HEAD = _head()


def _logits(seed: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(N, VOCAB, generator=torch.Generator().manual_seed(seed)) * scale


def _provider_tokens(logits: torch.Tensor, spec: DecodeSpec, prompt: list[int]) -> list[int]:
    """What the provider's decode loop picks, position by position (penalties see the output so far)."""
    out: list[int] = []
    for t in range(N):
        context = PenaltyContext.at_positions(prompt, out, [t], logits.device) if spec.has_penalties else None
        out.append(int(choose(logits[t : t + 1], [spec], [t], context)[0]))
    return out


def _replay(logits: torch.Tensor, tokens: list[int], spec: DecodeSpec, reason: str = "length", prompt=(1, 2)):
    return replay_tokens(logits, HEAD, list(prompt), tokens, spec, reason, TOLERANCE)


GREEDY = DecodeSpec(max_new_tokens=N, stop_token_ids=())
SAMPLED = DecodeSpec(temperature=1.0, seed=42, max_new_tokens=N, stop_token_ids=())


def test_honest_tokens_pass_with_the_providers_noise() -> None:
    logits = _logits(0)
    noisy = logits + (torch.rand(logits.shape, generator=torch.Generator().manual_seed(1)) - 0.5) * 0.4
    for spec in (
        GREEDY,
        SAMPLED,
        replace(SAMPLED, temperature=0.6, top_p=0.9),
        replace(SAMPLED, top_k=20, min_p=0.02),
        replace(SAMPLED, repetition_penalty=1.3, presence_penalty=0.5, frequency_penalty=0.3),
    ):
        tokens = _provider_tokens(noisy, spec, [1, 2])  # the provider's logits differ by up to 0.2
        report = _replay(logits, tokens, spec)
        assert report.passed, (spec, report.failures)
        assert report.kind == "replay" and report.positions == N and report.max_gap <= TOLERANCE


def test_a_changed_token_fails_the_sampler_check_at_its_position() -> None:
    logits = _logits(2)
    for spec in (GREEDY, SAMPLED):
        tokens = _provider_tokens(logits, spec, [1, 2])
        changed = list(tokens)
        changed[N - 1] = (tokens[N - 1] + 1) % VOCAB  # the last token: TOPLOC alone often misses it
        report = _replay(logits, changed, spec)
        [failure] = report.failures
        assert (failure.check, failure.position, failure.token, failure.choice) == (
            "sampler",
            N - 1,
            changed[N - 1],
            tokens[N - 1],
        )
        assert failure.gap > failure.limit == TOLERANCE
        assert failure.reason().startswith(f"sampler at output position {N - 1}: token {changed[N - 1]} is ")


def test_lies_about_the_decoding_fail() -> None:
    logits = _logits(3)
    sampled = _provider_tokens(logits, SAMPLED, [1, 2])
    greedy = _provider_tokens(logits, GREEDY, [1, 2])
    cases = {
        "sampled, claimed greedy": (sampled, GREEDY),
        "greedy, claimed sampled": (greedy, SAMPLED),
        "another seed": (sampled, replace(SAMPLED, seed=43)),
        "another temperature": (sampled, replace(SAMPLED, temperature=0.5)),
        "penalties left out": (
            _provider_tokens(logits, replace(SAMPLED, presence_penalty=2.0, frequency_penalty=2.0), [1, 2]),
            SAMPLED,
        ),
        "random ids": (
            torch.randint(0, VOCAB, (N,), generator=torch.Generator().manual_seed(4)).tolist(),
            SAMPLED,
        ),
    }
    for name, (tokens, claimed) in cases.items():
        report = _replay(logits, tokens, claimed)
        assert not report.passed, name
        assert {f.check for f in report.failures} <= {"sampler", "filter"}, name
        assert report.failure_count >= len(report.failures) >= 1


def test_a_token_outside_the_filters_fails_the_filter_check() -> None:
    logits = _logits(5)
    spec = replace(SAMPLED, top_k=5)
    tokens = _provider_tokens(logits, spec, [1, 2])
    worst = int(logits[7].argmin())
    tokens[7] = worst
    report = _replay(logits, tokens, spec)
    checks = [(f.check, f.position) for f in report.failures]
    assert ("filter", 7) in checks and ("sampler", 7) in checks


def test_stop_reasons_hold_or_fail() -> None:
    logits = _logits(6)
    spec = replace(GREEDY, stop_token_ids=(299,))
    tokens = _provider_tokens(logits, replace(GREEDY, stop_token_ids=()), [1, 2])
    tokens = [t if t != 299 else 298 for t in tokens]
    truncated = _replay(logits[:50], tokens[:50], spec, "length")
    assert truncated.failures[0].check == "stop-reason"
    assert "end without a stop token" in truncated.failures[0].detail
    early = list(tokens)
    early[10] = 299
    report = _replay(logits, early, spec, "length")
    assert any(f.check == "stop-token" and f.position == 10 for f in report.failures)
    wrong = _replay(logits, tokens, spec, "eos")
    assert any(f.check == "stop-reason" and "says 'eos'" in f.detail for f in wrong.failures)


def test_the_engine_sampler_gets_a_likelihood_test() -> None:
    logits = _logits(7, scale=2.0)
    engine = DecodeSpec(sampler=ENGINE, temperature=1.0, max_new_tokens=N, stop_token_ids=())
    generator = torch.Generator().manual_seed(8)
    drawn = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).squeeze(1).tolist()
    honest = _replay(logits, drawn, engine)
    assert honest.passed and honest.kind == "likelihood" and abs(honest.z) < 4 and honest.max_gap is None
    greedy = _replay(logits, logits.argmax(dim=1).tolist(), engine)  # greedy passed off as sampled
    [failure] = greedy.failures
    assert failure.check == "likelihood" and greedy.z > Z_LIMIT and "more likely" in failure.detail
    other = _replay(
        logits,
        torch.multinomial(torch.softmax(-logits, 1), 1, generator=generator).squeeze(1).tolist(),
        engine,
    )
    assert (
        other.failures[0].check == "likelihood"
        and other.z < -Z_LIMIT
        and "less likely" in other.failures[0].detail
    )


def test_where_no_token_is_surely_kept_the_top_still_binds() -> None:
    """A flat cluster of ten tokens under top-p 0.9: none is surely inside the provider's nucleus, and
    the widened nucleus admits everything. The provider's own best-scored token is still one of the
    cluster, so a token from far below cannot be its choice."""
    logits = torch.full((N, VOCAB), -5.0)
    logits[:, :10] = 5.0
    spec = replace(SAMPLED, top_p=0.9)
    honest = _provider_tokens(logits, spec, [1, 2])
    assert set(honest) <= set(range(10))
    report = _replay(logits, honest, spec)
    assert report.passed and report.unconstrained == N  # every position has an empty robust set
    cheat = [200 + t for t in honest]  # tokens at -5: inside the widened filter, far below the cluster
    failed = _replay(logits, cheat, spec)
    assert not failed.passed and failed.failure_count == N
    assert {f.check for f in failed.failures} == {"sampler"} and failed.failures[0].choice in range(10)


def test_the_likelihood_test_scores_against_the_exact_filters() -> None:
    """Honest engine tokens drawn under top-p: scored against the widened filter they would drift to
    |z| > 8 over long outputs (a reviewer measured z = 11.3 over 2000 tokens); against the exact one
    they do not."""
    from gpu_core.runner.sampler import RowParams, filtered_log_probs, process

    rows = 2000
    logits = torch.randn(rows, VOCAB, generator=torch.Generator().manual_seed(11)) * 3
    engine = DecodeSpec(sampler=ENGINE, temperature=0.7, top_p=0.9, max_new_tokens=rows, stop_token_ids=())
    scores, threshold = process(logits, RowParams.repeat(engine, rows, logits.device))
    probs = filtered_log_probs(scores, threshold).exp()
    drawn = torch.multinomial(probs.float(), 1, generator=torch.Generator().manual_seed(12)).squeeze(1)
    report = replay_tokens(logits, HEAD, [1], drawn.tolist(), engine, "length", TOLERANCE)
    assert report.passed and abs(report.z) < 4, report.z
