"""Generation with proofs on the tiny model: chunking, coverage of every output token, the sampler,
batching, stop reasons, errors."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gpu_core.runner.capture import capture_final_norm, final_norm
from gpu_core.runner.decoding import ENGINE, DecodeSpec, seed_from_request_id
from gpu_core.runner.errors import RunnerInputError
from gpu_core.runner.generate import GenerationRequest, generate_batch, generate_with_proofs
from gpu_core.runner.loading import load_model
from gpu_core.runner.validate import ValidationItem, validate_batch
from tests.gpu_core.conftest import TINY_PROMPTS, Models

PROMPT = list(TINY_PROMPTS[0])
GREEDY = DecodeSpec(max_new_tokens=6, stop_token_ids=())
SAMPLED = DecodeSpec(temperature=1.0, top_p=0.9, top_k=50, seed=123, max_new_tokens=12, stop_token_ids=())


def test_final_norm_hook_sees_what_lm_head_consumes(tiny: Models) -> None:
    model = tiny.reference.model
    assert final_norm(model) is model.model.norm
    ids = torch.tensor([PROMPT])
    captured: list[torch.Tensor] = []
    with torch.inference_mode(), capture_final_norm(model, captured.append):
        out = model(ids, output_hidden_states=False)
    assert len(captured) == 1 and captured[0].shape == (1, len(PROMPT), model.config.hidden_size)
    assert torch.allclose(model.lm_head(captured[0]), out.logits)
    with torch.inference_mode():
        model(ids)
    assert len(captured) == 1  # the hook is gone after the block


@pytest.mark.parametrize(("new_tokens", "size"), [(1, 32), (5, 2), (32, 32), (33, 32), (40, 8)])
def test_one_proof_per_chunk_and_every_output_token_covered(tiny: Models, new_tokens: int, size: int) -> None:
    generation = generate_with_proofs(
        tiny.bf16, PROMPT, replace(GREEDY, max_new_tokens=new_tokens), decode_batching_size=size
    )
    assert len(generation.output_ids) == new_tokens and generation.stop_reason == "length"
    assert len(generation.proofs) == 1 + math.ceil(new_tokens / size)
    assert {len(p) for p in generation.proofs} == {2 + 2 * 128}
    assert (generation.dtype, generation.fingerprint) == ("bfloat16", tiny.bf16.fingerprint)
    # Each proof matches a prefill over prompt + output, the last chunk (ending with the last output
    # token, which the loop feeds once more for its row) included.
    report = validate_batch(tiny.reference, [ValidationItem.from_generation(generation)])[0]
    assert report.accepted, report.verdict
    assert report.tokens is not None and report.tokens.kind == "replay"
    assert [(c.begin, c.end) for c in report.chunks][-1] == (
        len(PROMPT) + size * (len(generation.proofs) - 2),
        len(PROMPT) + new_tokens,
    )


def test_last_output_token_is_covered_by_its_own_activation(tiny: Models) -> None:
    # With one decode token per chunk the last proof holds only the last output token's activation:
    # changing that token must fail that chunk, so its activation was really captured.
    generation = generate_with_proofs(tiny.bf16, PROMPT, GREEDY, decode_batching_size=1)
    item = ValidationItem.from_generation(generation)
    changed = list(item.output_ids)
    changed[-1] = (changed[-1] + 1) % 1024
    honest, tampered = validate_batch(tiny.reference, [item, replace(item, output_ids=changed)])
    assert honest.accepted
    assert not tampered.accepted
    assert [c.passed for c in tampered.chunks] == [True] * 6 + [False]
    assert any(f.check == "sampler" and f.position == 5 for f in tampered.tokens.failures)


def test_generation_stops_at_a_stop_token_unless_it_has_none(tiny_llama_dir: Path) -> None:
    loaded = load_model(tiny_llama_dir, "bfloat16", device="cpu")
    greedy = generate_with_proofs(loaded, PROMPT, GREEDY).output_ids
    stop = greedy[2]
    loaded.model.generation_config.eos_token_id = stop  # the model's end-of-sequence id, for this test
    stopped = generate_with_proofs(loaded, PROMPT, replace(GREEDY, stop_token_ids=None))
    kept_going = generate_with_proofs(loaded, PROMPT, GREEDY)
    assert stopped.spec.stop_token_ids == (stop,)  # resolved from the model's generation config
    assert stopped.output_ids == greedy[: greedy.index(stop) + 1] and stopped.stop_reason == "eos"
    assert len(stopped.proofs) == 2  # the prefill, and the chunk ending with the stop token's activation
    # Without stop ids the stop token is an ordinary token: the same greedy output, to max_new_tokens.
    assert kept_going.output_ids == greedy and kept_going.stop_reason == "length"
    validator = load_model(tiny_llama_dir, "float32", device="cpu")
    assert validate_batch(validator, [ValidationItem.from_generation(stopped)])[0].accepted


def test_greedy_is_deterministic_and_seeded_sampling_reproducible(tiny: Models) -> None:
    greedy = [generate_with_proofs(tiny.bf16, PROMPT, GREEDY) for _ in range(2)]
    assert greedy[0] == greedy[1]
    assert greedy[0].spec.seed is None

    first, second = (generate_with_proofs(tiny.bf16, PROMPT, SAMPLED) for _ in range(2))
    other = generate_with_proofs(tiny.bf16, PROMPT, replace(SAMPLED, seed=124))
    assert first.output_ids == second.output_ids and first.proofs == second.proofs
    assert other.output_ids != first.output_ids
    assert first.spec == SAMPLED

    # Without a seed it comes from the request id: fixed before generation, the same on a replay.
    unseeded = replace(SAMPLED, seed=None)
    by_id = generate_with_proofs(tiny.bf16, PROMPT, unseeded, request_id="req-7")
    assert by_id.spec.seed == seed_from_request_id("req-7")
    assert (
        generate_with_proofs(tiny.bf16, PROMPT, unseeded, request_id="req-7").output_ids == by_id.output_ids
    )
    with pytest.raises(RunnerInputError, match="needs a seed or a request id") as info:
        generate_with_proofs(tiny.bf16, PROMPT, unseeded)
    assert info.value.field == "decode.seed"
    # Sampling does not touch torch's random state (the noise is a hash of its coordinates).
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    generate_with_proofs(tiny.bf16, PROMPT, SAMPLED)
    assert torch.equal(torch.rand(1), before)


def test_a_sequence_generates_the_same_tokens_in_any_batch(tiny: Models) -> None:
    """Left-padded batches: each sequence depends on its own prompt, spec and seed only. In float32 the
    logits agree across batch layouts to ~1e-6, so the tokens are identical; in bf16 they are honest
    records the validator accepts (a near-tie may flip)."""
    requests = [
        GenerationRequest(list(TINY_PROMPTS[0]), replace(SAMPLED, max_new_tokens=20)),
        GenerationRequest(list(TINY_PROMPTS[1]), replace(GREEDY, max_new_tokens=7)),
        GenerationRequest(list(TINY_PROMPTS[2]), replace(SAMPLED, seed=9, temperature=0.7, top_p=1.0)),
    ]
    together = generate_batch(tiny.reference, requests)
    alone = [generate_batch(tiny.reference, [r])[0] for r in requests]
    assert [g.output_ids for g in together] == [g.output_ids for g in alone]
    assert [len(g.output_ids) for g in together] == [20, 7, 12]
    assert [len(g.proofs) for g in together] == [2, 2, 2]
    reversed_order = generate_batch(tiny.reference, requests[::-1])[::-1]
    assert [g.output_ids for g in reversed_order] == [g.output_ids for g in alone]

    bf16 = generate_batch(tiny.bf16, requests)
    reports = validate_batch(tiny.reference, [ValidationItem.from_generation(g) for g in bf16])
    assert all(r.accepted for r in reports), [r.verdict.reasons for r in reports]


def test_penalties_and_the_engine_sampler_validate(tiny: Models) -> None:
    """Honest records with penalties and min-p, and of the engine sampler (a likelihood test), pass.
    Lies about the penalties are caught on SmolLM2 (tests/gpu_core/test_sound_verdicts.py): the tiny
    model's flat distributions rarely let a penalty change a choice."""
    penalised = replace(
        SAMPLED,
        repetition_penalty=1.5,
        presence_penalty=2.0,
        frequency_penalty=1.0,
        min_p=0.02,
        max_new_tokens=40,
    )
    engine = DecodeSpec(sampler=ENGINE, temperature=1.0, max_new_tokens=40, stop_token_ids=())
    generations = [generate_with_proofs(tiny.bf16, PROMPT, spec) for spec in (penalised, engine)]
    honest, engine_report = validate_batch(
        tiny.reference, [ValidationItem.from_generation(g) for g in generations]
    )
    assert honest.accepted and honest.tokens.kind == "replay", honest.verdict.reasons
    assert engine_report.accepted and engine_report.tokens.kind == "likelihood"
    assert engine_report.tokens.z is not None and abs(engine_report.tokens.z) < 8


@pytest.mark.parametrize(
    ("prompt", "spec", "kwargs", "field", "reason"),
    [
        ([], GREEDY, {}, "prompt_ids", "is empty"),
        ([1, 2, 1024], GREEDY, {}, "prompt_ids[2]", "1024 is not a token id in [0, 1024)"),
        ([1, -1], GREEDY, {}, "prompt_ids[1]", "-1 is not a token id"),
        (
            PROMPT,
            replace(GREEDY, max_new_tokens=2048),
            {},
            "decode.max_new_tokens",
            "exceeds the model's 2048",
        ),
        (
            PROMPT,
            replace(GREEDY, stop_token_ids=(1024,)),
            {},
            "decode.stop_token_ids[0]",
            "outside the vocabulary",
        ),
        (PROMPT, replace(SAMPLED, top_k=2000), {}, "decode.top_k", "exceeds the vocabulary"),
        (PROMPT, replace(GREEDY, stop=("x",)), {}, "decode.stop", "need the model's tokenizer"),
        (PROMPT, GREEDY, {"topk": 257}, "topk", "257 exceeds the hidden size 256"),
        (PROMPT, GREEDY, {"topk": 0}, "topk", "want an int in"),
        (PROMPT, GREEDY, {"decode_batching_size": 0}, "decode_batching_size", "want an int >= 1"),
    ],
)
def test_bad_generation_input_names_the_field(
    tiny: Models, prompt: list[int], spec: DecodeSpec, kwargs: dict, field: str, reason: str
) -> None:
    with pytest.raises(ValueError) as info:
        generate_with_proofs(tiny.bf16, prompt, spec, **kwargs)
    assert info.value.field == field  # type: ignore[attr-defined]
    assert reason in info.value.reason  # type: ignore[attr-defined]
