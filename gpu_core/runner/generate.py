"""Generation with TOPLOC proofs: Hugging Face `generate` with a hook on the final norm, proving each
chunk as soon as it is complete, plus one extra forward step so the last output token is covered.

Activation rows: the prefill gives one row per prompt position (the prefill chunk); decode step j feeds
output token j and gives its row. `generate` never feeds the last token it samples, so after it returns
one more forward step (on the kept KV cache) feeds it; the paper's experiments get the same row by
generating N+1 tokens. A record of N output tokens so has 1 + ceil(N / decode_batching_size) proofs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import GenerationConfig

from gpu_core.proofs import build_proofs_bytes, chunk_count
from gpu_core.proofs.chunks import check_parameters
from gpu_core.runner.capture import capture_final_norm
from gpu_core.runner.errors import RunnerError, RunnerInputError
from gpu_core.runner.loading import LoadedModel
from gpu_core.runner.sampling import SamplingParams

Progress = Callable[[int, int], None]
"""Called as progress(output_tokens_fed, max_new_tokens) after each forward step (ends at len(output))."""


@dataclass(frozen=True)
class Generation:
    """What a provider records: tokens, proofs and everything needed to check them."""

    prompt_ids: tuple[int, ...]
    output_ids: tuple[int, ...]
    proofs: tuple[bytes, ...]
    sampling: SamplingParams
    dtype: str
    fingerprint: str
    topk: int
    decode_batching_size: int


class _ChunkProver:
    """Sink for capture_final_norm during one batch-1 generation: the first call is the prefill (proved
    at once), later calls are single decode rows, proved every `decode_batching_size` rows."""

    def __init__(
        self,
        dtype: torch.dtype,
        topk: int,
        decode_batching_size: int,
        max_new_tokens: int,
        progress: Progress | None,
    ):
        self.dtype = dtype
        self.topk = topk
        self.size = decode_batching_size
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        self.proofs: list[bytes] = []
        self.pending: list[torch.Tensor] = []
        self.decode_rows = 0

    def __call__(self, output: torch.Tensor) -> None:
        # The cast is a no-op unless a caller pairs weights of another precision with the claimed dtype.
        rows = output[0].to(self.dtype)
        if not self.proofs:
            self.proofs += build_proofs_bytes([rows], self.size, self.topk)
        else:
            self.pending.extend(rows.unbind(0))  # one row per decode step (batch 1, KV cache)
            self.decode_rows += rows.shape[0]
            while len(self.pending) >= self.size:
                self._prove(self.pending[: self.size])
                self.pending = self.pending[self.size :]
        if self.progress is not None:
            self.progress(self.decode_rows, self.max_new_tokens)

    def flush(self) -> None:
        """Prove the last, possibly shorter, decode chunk."""
        if self.pending:
            self._prove(self.pending)
            self.pending = []

    def _prove(self, rows: list[torch.Tensor]) -> None:
        self.proofs += build_proofs_bytes(torch.stack(rows), self.size, self.topk, skip_prefill=True)


def check_token_ids(loaded: LoadedModel, ids: Sequence[int], field: str) -> list[int]:
    """Token ids as a list of ints; RunnerInputError naming `field` unless non-empty and in the vocabulary."""
    vocab = int(loaded.model.config.vocab_size)
    tokens = list(ids)
    if not tokens:
        raise RunnerInputError(field, "is empty")
    for position, token in enumerate(tokens):
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < vocab:
            raise RunnerInputError(f"{field}[{position}]", f"{token!r} is not a token id in [0, {vocab})")
    return tokens


def generate_with_proofs(
    loaded: LoadedModel,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    sampling: SamplingParams | None = None,
    topk: int = 128,
    decode_batching_size: int = 32,
    progress: Progress | None = None,
) -> Generation:
    """Generate up to `max_new_tokens` tokens after `prompt_ids` (stopping at end-of-sequence unless
    sampling.ignore_eos) and prove the final-norm activations of every chunk.

    Requires 1 <= max_new_tokens, len(prompt_ids) + max_new_tokens <= the model's
    max_position_embeddings, 1 <= topk <= hidden size (the smallest chunk is one row),
    decode_batching_size >= 1. Raises RunnerInputError (nothing generated) otherwise.
    """
    sampling = (sampling or SamplingParams()).resolved()
    prompt = check_token_ids(loaded, prompt_ids, "prompt_ids")
    config = loaded.model.config
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise RunnerInputError("max_new_tokens", f"must be an integer >= 1, got {max_new_tokens!r}")
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and len(prompt) + max_new_tokens > limit:
        raise RunnerInputError(
            "max_new_tokens",
            f"prompt ({len(prompt)}) + {max_new_tokens} exceeds the model's {limit} positions",
        )
    check_parameters(decode_batching_size, topk)
    if topk > config.hidden_size:
        raise RunnerInputError(
            "topk", f"{topk} exceeds the hidden size {config.hidden_size} (one-row chunks)"
        )

    prover = _ChunkProver(loaded.torch_dtype, topk, decode_batching_size, max_new_tokens, progress)
    input_ids = torch.tensor([prompt], dtype=torch.long, device=loaded.device)
    generation_config = generation_config_for(max_new_tokens, sampling)
    devices = [loaded.device.index or 0] if loaded.device.type == "cuda" else []
    with (
        torch.inference_mode(),
        torch.random.fork_rng(devices=devices),
        capture_final_norm(loaded.model, prover),
    ):
        if not sampling.greedy:
            torch.manual_seed(sampling.seed if sampling.seed is not None else 0)
        out = loaded.model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=generation_config,
        )
        sequence = out.sequences
        # The extra step: feed the last sampled token so its activation row exists too.
        loaded.model(sequence[:, -1:], past_key_values=out.past_key_values, use_cache=True, logits_to_keep=1)
    prover.flush()

    output = sequence[0, len(prompt) :].tolist()
    want = chunk_count(1 + len(output), decode_batching_size, skip_prefill=False)
    if prover.decode_rows != len(output) or len(prover.proofs) != want:
        raise RunnerError(
            f"model: captured {prover.decode_rows} decode rows and {len(prover.proofs)} proofs for "
            f"{len(output)} output tokens, want {len(output)} and {want} (one forward call per token?)"
        )
    return Generation(
        prompt_ids=tuple(prompt),
        output_ids=tuple(output),
        proofs=tuple(prover.proofs),
        sampling=sampling,
        dtype=loaded.dtype,
        fingerprint=loaded.fingerprint,
        topk=topk,
        decode_batching_size=decode_batching_size,
    )


def generation_config_for(max_new_tokens: int, sampling: SamplingParams) -> GenerationConfig:
    """The `generate` configuration of exactly the recorded policy (load_model cleared the checkpoint's
    own generation defaults, so nothing else applies)."""
    options: dict[str, object] = {
        "max_new_tokens": max_new_tokens,
        "return_dict_in_generate": True,
        "use_cache": True,
        "do_sample": not sampling.greedy,
    }
    if sampling.ignore_eos:
        options["min_new_tokens"] = max_new_tokens
    if not sampling.greedy:
        options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
    return GenerationConfig(**options)
