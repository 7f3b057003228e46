"""What a cheating provider does, for detection tests, benchmarks and demos of a dispute.

The model cheats return a new LoadedModel (the original is untouched) that keeps the honest model's
fingerprint and claimed dtype, as a cheat's records would: only the arithmetic behind them differs.
`prove_by_prefill` is the token cheat: any tokens, proved by one prefill of the claimed model.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from gpu_core.proofs import build_proofs_batch
from gpu_core.runner.capture import capture_final_norm
from gpu_core.runner.decoding import DecodeSpec
from gpu_core.runner.errors import RunnerInputError
from gpu_core.runner.generate import Generation
from gpu_core.runner.loading import TORCH_DTYPES, LoadedModel


def with_claimed_dtype(loaded: LoadedModel, dtype: str) -> LoadedModel:
    """Compute in loaded.dtype but record (and round activations to) `dtype`: e.g. float32 arithmetic
    passed off as bfloat16."""
    if dtype not in TORCH_DTYPES:
        raise RunnerInputError("dtype", f"{dtype!r} is not one of {', '.join(TORCH_DTYPES)}")
    return dataclasses.replace(loaded, dtype=dtype)


def round_weights_int8(loaded: LoadedModel) -> LoadedModel:
    """Weights of every Linear layer of the decoder rounded to int8 with one scale per output channel
    (max |w| / 127), as a cheap weight-only quantisation would; embeddings and lm_head are kept."""
    model = copy.deepcopy(loaded.model)
    with torch.no_grad():
        for module in model.get_decoder().modules():
            if isinstance(module, nn.Linear):
                weight = module.weight.float()
                scale = (
                    weight.abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny) / 127
                )
                module.weight.copy_((torch.round(weight / scale) * scale).to(module.weight.dtype))
    return dataclasses.replace(loaded, model=model)


def perturb_weights(loaded: LoadedModel, relative: float, seed: int = 0) -> LoadedModel:
    """Every weight matrix plus Gaussian noise of `relative` times its root mean square: a sibling of
    the model (a light fine-tune) that a validator must not accept in its place. Requires relative > 0."""
    if not relative > 0:
        raise RunnerInputError("relative", f"must be > 0, got {relative!r}")
    model = copy.deepcopy(loaded.model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                weight = parameter.float()
                noise = torch.randn(weight.shape, generator=generator).to(weight.device)
                rms = weight.pow(2).mean().sqrt()
                parameter.copy_((weight + noise * rms * relative).to(parameter.dtype))
    return dataclasses.replace(loaded, model=model)


def prove_by_prefill(
    loaded: LoadedModel,
    prompt_ids: Sequence[int],
    output_ids: Sequence[int],
    spec: DecodeSpec,
    stop_reason: str,
    topk: int = 128,
    decode_batching_size: int = 32,
) -> Generation:
    """The prefill attack: output tokens produced any cheap way, then ONE prefill of the claimed model
    over prompt + output and proofs built from its activations, as if the model had generated them.
    TOPLOC alone accepts such a record (the proofs match the validator's own prefill); the sampler
    replay is what rejects it. `spec` must be resolved (stop ids, seed)."""
    tokens = [*prompt_ids, *output_ids]
    captured: list[torch.Tensor] = []
    with torch.inference_mode(), capture_final_norm(loaded.model, captured.append):
        loaded.model(torch.tensor([tokens], device=loaded.device), use_cache=False, logits_to_keep=1)
    rows = captured[0][0].to(loaded.torch_dtype)
    prompt = len(prompt_ids)
    activations = [rows[:prompt], *rows[prompt:].unbind(0)]
    [proofs] = build_proofs_batch([activations], decode_batching_size, topk)
    return Generation(
        prompt_ids=tuple(prompt_ids),
        output_ids=tuple(output_ids),
        proofs=tuple(proofs),
        spec=spec,
        stop_reason=stop_reason,
        dtype=loaded.dtype,
        fingerprint=loaded.fingerprint,
        topk=topk,
        decode_batching_size=decode_batching_size,
    )
