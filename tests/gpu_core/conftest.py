"""Fixtures of the gpu_core runner suites: loaded models and honest generations shared per session.

Generation is the expensive part (tens of ms per token on 2 CPU cores, bf16), so honest records are
generated once per session and shared by the detection tests; each test only validates (one prefill).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gpu_core.runner.decoding import DecodeSpec
from gpu_core.runner.generate import Generation, GenerationRequest, generate_batch
from gpu_core.runner.loading import LoadedModel, load_model, load_tokenizer

TINY_PROMPTS = ((5, 17, 300, 42, 7, 99, 1000, 3), tuple(range(40, 71)), (11, 12, 13, 14, 15, 16))
"""Token-id prompts of the tiny model (its vocabulary is 1024 ids, no tokenizer)."""

SMOLLM2_QUESTIONS = (
    "Tell me about the moon.",
    "How does a bicycle stay upright?",
    "Write a short poem about the sea.",
)


@dataclass(frozen=True)
class Models:
    """One model family as the tests need it: the provider's bf16 model (sdpa and eager) and the
    validator's float32 reference (sdpa and eager)."""

    bf16: LoadedModel
    bf16_eager: LoadedModel
    reference: LoadedModel
    reference_eager: LoadedModel


def _models(folder: Path) -> Models:
    return Models(
        load_model(folder, "bfloat16", device="cpu"),
        load_model(folder, "bfloat16", device="cpu", attn_implementation="eager"),
        load_model(folder, "float32", device="cpu"),
        load_model(folder, "float32", device="cpu", attn_implementation="eager"),
    )


@pytest.fixture(scope="session")
def tiny(tiny_llama_dir: Path) -> Models:
    return _models(tiny_llama_dir)


@pytest.fixture(scope="session")
def smollm2(smollm2_dir: Path) -> Models:
    return _models(smollm2_dir)


@pytest.fixture(scope="session")
def smollm2_prompts(smollm2_dir: Path) -> list[list[int]]:
    tokenizer = load_tokenizer(smollm2_dir)
    prompts = []
    for question in SMOLLM2_QUESTIONS:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True
        )
        prompts.append(list(ids if isinstance(ids, list) else ids["input_ids"]))
    return prompts


TINY_SAMPLING = DecodeSpec(temperature=1.0, top_p=0.95, seed=7, stop_token_ids=())
SMOLLM2_SAMPLING = DecodeSpec(stop_token_ids=())  # greedy; no stop token fixes the number of chunks


def generate_set(
    loaded: LoadedModel, prompts: list[list[int]], lengths: list[int], spec: DecodeSpec
) -> list[Generation]:
    """One generation per (prompt, length) pair, in order, generated together in one batch."""
    requests = [
        GenerationRequest(p, replace(spec, max_new_tokens=n)) for p, n in zip(prompts, lengths, strict=True)
    ]
    return generate_batch(loaded, requests)
