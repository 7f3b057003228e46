"""Capturing the final-norm output: the hidden state lm_head consumes, one row per input position.

A forward hook on the final norm module hands each forward pass's output to a sink, so generation and
validation see the same activations without asking the model for every layer's hidden states.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn
from transformers import PreTrainedModel

from gpu_core.runner.errors import RunnerError

# Attribute names of the final norm on the decoder of the architectures transformers ships
# (Llama/Mistral/Qwen/Gemma: norm; GPT-2/Falcon/Bloom: ln_f; Phi: final_layernorm; Mamba: norm_f).
_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layernorm", "norm_f")

Sink = Callable[[torch.Tensor], None]


def final_norm(model: PreTrainedModel) -> nn.Module:
    """The module whose output lm_head consumes; RunnerError if the architecture has none we know."""
    decoder = model.get_decoder()
    for name in _FINAL_NORM_NAMES:
        module = getattr(decoder, name, None)
        if isinstance(module, nn.Module):
            return module
    raise RunnerError(
        f"model: no final norm found on {type(decoder).__name__} (looked for {_FINAL_NORM_NAMES})"
    )


@contextlib.contextmanager
def capture_final_norm(model: PreTrainedModel, sink: Sink) -> Iterator[None]:
    """Call `sink(output)` with the final-norm output ([batch, positions, hidden]) of each forward pass
    run inside the block. The tensor is detached; the sink must not modify it in place."""

    def hook(_module: nn.Module, _args: object, output: torch.Tensor) -> None:
        sink(output.detach())

    handle = final_norm(model).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
