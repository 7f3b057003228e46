"""A tiny random Llama for fast tests: a real Hugging Face folder (config + safetensors), built from a
seed, reloaded through load_model like any checkpoint.

Sized and initialised so TOPLOC's checks mean something: hidden 256 (at least topk 128 values even in a
one-row chunk); weights drawn with std 1/sqrt(fan-in) rather than transformers' 0.02, so every layer
mixes the residual stream and a changed token moves later positions' activations instead of leaving
them dominated by their own embedding; and, like trained LLMs, a few outlier weights per row (1% of
entries scaled by OUTLIER_SCALE), which is what makes per-channel int8 rounding lossy in practice.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from gpu_core.runner.folders import build_folder_once

NAME = "tiny-random-llama"
OUTLIER_FRACTION = 0.01
OUTLIER_SCALE = 6.0


def tiny_config() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=1024,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def write_tiny_llama(dest: Path, seed: int = 0) -> None:
    """Save the tiny model for `seed` into the existing folder `dest` (bf16 safetensors)."""
    config = tiny_config()
    generator = torch.Generator().manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                continue  # RMSNorm gains stay 1
            fan_in = parameter.shape[1] if parameter.dim() == 2 else parameter.numel()
            std = 1.0 if "embed_tokens" in name else fan_in**-0.5
            values = torch.randn(parameter.shape, generator=generator) * std
            outliers = torch.rand(parameter.shape, generator=generator) < OUTLIER_FRACTION
            parameter.copy_(torch.where(outliers, values * OUTLIER_SCALE, values))
    model.to(torch.bfloat16).save_pretrained(dest)


def prepare_tiny_llama(models_dir: Path, seed: int = 0) -> tuple[Path, bool]:
    """Make sure `models_dir/tiny-random-llama` (seed 0) or `-seed<N>` exists; (folder, built now)."""
    target = models_dir / (NAME if seed == 0 else f"{NAME}-seed{seed}")
    return target, build_folder_once(target, lambda tmp: write_tiny_llama(tmp, seed))
