"""Generation with proofs on the tiny model: chunking, coverage of every output token, sampling, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gpu_core.runner.capture import capture_final_norm, final_norm
from gpu_core.runner.errors import RunnerInputError
from gpu_core.runner.generate import generate_with_proofs
from gpu_core.runner.loading import load_model
from gpu_core.runner.sampling import SamplingParams
from gpu_core.runner.validate import ValidationItem, validate_batch
from tests.gpu_core.conftest import TINY_PROMPTS, Models

PROMPT = list(TINY_PROMPTS[0])


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
        tiny.bf16, PROMPT, new_tokens, SamplingParams(ignore_eos=True), decode_batching_size=size
    )
    assert len(generation.output_ids) == new_tokens
    assert len(generation.proofs) == 1 + math.ceil(new_tokens / size)
    assert {len(p) for p in generation.proofs} == {2 + 2 * 128}
    assert (generation.dtype, generation.fingerprint) == ("bfloat16", tiny.bf16.fingerprint)
    # Each proof matches a prefill over prompt + output, the last chunk (ending with the last output
    # token, which generate itself never feeds) included.
    report = validate_batch(tiny.reference, [ValidationItem.from_generation(generation)])[0]
    assert report.accepted, report.verdict.reasons
    assert [(c.begin, c.end) for c in report.chunks][-1] == (
        len(PROMPT) + size * (len(generation.proofs) - 2),
        len(PROMPT) + new_tokens,
    )


def test_last_output_token_is_covered_by_its_own_activation(tiny: Models) -> None:
    # With one decode token per chunk the last proof holds only the last output token's activation:
    # changing that token must fail that chunk, so its activation was really captured.
    generation = generate_with_proofs(
        tiny.bf16, PROMPT, 6, SamplingParams(ignore_eos=True), decode_batching_size=1
    )
    item = ValidationItem.from_generation(generation)
    changed = list(item.output_ids)
    changed[-1] = (changed[-1] + 1) % 1024
    honest, tampered = validate_batch(
        tiny.reference, [item, ValidationItem(item.prompt_ids, changed, item.proofs, decode_batching_size=1)]
    )
    assert honest.accepted
    assert not tampered.accepted
    assert [c.passed for c in tampered.chunks] == [True] * 6 + [False]


def test_generation_stops_at_end_of_sequence_unless_told_not_to(tiny_llama_dir: Path) -> None:
    loaded = load_model(tiny_llama_dir, "bfloat16", device="cpu")  # its generation config is changed below
    greedy = generate_with_proofs(loaded, PROMPT, 6, SamplingParams(ignore_eos=True)).output_ids
    stop = greedy[2]
    loaded.model.generation_config.eos_token_id = stop
    stopped = generate_with_proofs(loaded, PROMPT, 6)
    kept_going = generate_with_proofs(loaded, PROMPT, 6, SamplingParams(ignore_eos=True))
    assert stopped.output_ids == greedy[: greedy.index(stop) + 1]
    assert len(stopped.proofs) == 2  # the prefill, and the chunk ending with the stop token's activation
    # ignore_eos never emits the stop token (its logit is masked), so greedy picks the runner-up there.
    assert len(kept_going.output_ids) == 6 and stop not in kept_going.output_ids
    assert kept_going.output_ids[:2] == greedy[:2]
    assert validate_batch(
        load_model(tiny_llama_dir, "float32", device="cpu"), [ValidationItem.from_generation(stopped)]
    )[0].accepted


def test_greedy_is_deterministic_and_seeded_sampling_reproducible(tiny: Models) -> None:
    greedy = [generate_with_proofs(tiny.bf16, PROMPT, 12, SamplingParams(ignore_eos=True)) for _ in range(2)]
    assert greedy[0] == greedy[1]
    assert greedy[0].sampling.seed is None

    sampling = SamplingParams(temperature=1.0, top_p=0.9, top_k=50, seed=123, ignore_eos=True)
    first, second = (generate_with_proofs(tiny.bf16, PROMPT, 12, sampling) for _ in range(2))
    other = generate_with_proofs(
        tiny.bf16, PROMPT, 12, SamplingParams(temperature=1.0, seed=124, ignore_eos=True)
    )
    assert first.output_ids == second.output_ids and first.proofs == second.proofs
    assert other.output_ids != first.output_ids
    assert first.sampling.to_dict() == {
        "temperature": 1.0,
        "top_p": 0.9,
        "top_k": 50,
        "seed": 123,
        "ignore_eos": True,
    }

    # Without a seed one is drawn and recorded, and replaying it reproduces the tokens.
    unseeded = generate_with_proofs(tiny.bf16, PROMPT, 12, SamplingParams(temperature=1.0, ignore_eos=True))
    assert unseeded.sampling.seed is not None
    replay = generate_with_proofs(tiny.bf16, PROMPT, 12, unseeded.sampling)
    assert replay.output_ids == unseeded.output_ids
    # Sampling does not disturb the caller's random state.
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    generate_with_proofs(tiny.bf16, PROMPT, 3, sampling)
    assert torch.equal(torch.rand(1), before)


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"prompt_ids": []}, "prompt_ids", "is empty"),
        ({"prompt_ids": [1, 2, 1024]}, "prompt_ids[2]", "1024 is not a token id in [0, 1024)"),
        ({"prompt_ids": [1, -1]}, "prompt_ids[1]", "-1 is not a token id"),
        ({"max_new_tokens": 0}, "max_new_tokens", "must be an integer >= 1, got 0"),
        ({"max_new_tokens": 2048}, "max_new_tokens", "exceeds the model's 2048 positions"),
        ({"topk": 257}, "topk", "257 exceeds the hidden size 256"),
        ({"topk": 0}, "topk", "want an int in"),
        ({"decode_batching_size": 0}, "decode_batching_size", "want an int >= 1"),
    ],
)
def test_bad_generation_input_names_the_field(tiny: Models, kwargs: dict, field: str, reason: str) -> None:
    arguments = {"prompt_ids": PROMPT, "max_new_tokens": 4, **kwargs}
    with pytest.raises(
        ValueError, match=reason.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ) as info:
        generate_with_proofs(tiny.bf16, **arguments)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"temperature": -1.0}, "sampling.temperature"),
        ({"temperature": float("nan")}, "sampling.temperature"),
        ({"top_p": 0.0}, "sampling.top_p"),
        ({"top_p": 1.5}, "sampling.top_p"),
        ({"top_k": -3}, "sampling.top_k"),
        ({"seed": -1}, "sampling.seed"),
        ({"seed": 2**63}, "sampling.seed"),
        ({"ignore_eos": "yes"}, "sampling.ignore_eos"),
    ],
)
def test_bad_sampling_parameters_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(RunnerInputError) as info:
        SamplingParams(**kwargs)
    assert info.value.field == field


def test_sampling_parameters_round_trip_and_reject_unknown_keys() -> None:
    params = SamplingParams(temperature=0.7, top_p=0.9, top_k=40, seed=9, ignore_eos=False)
    assert SamplingParams.from_dict(params.to_dict()) == params
    with pytest.raises(RunnerInputError, match="unknown sampling parameter") as info:
        SamplingParams.from_dict({**params.to_dict(), "min_p": 0.1})
    assert info.value.field == "sampling.min_p"
    with pytest.raises(RunnerInputError, match="missing") as info:
        SamplingParams.from_dict({"temperature": 0.0})
    assert info.value.field == "sampling.top_p"
