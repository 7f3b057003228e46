"""Loading a local Hugging Face causal LM folder in a chosen dtype, never touching the hub."""

from __future__ import annotations

import copy
import os

# Read by huggingface_hub at import time: set before transformers is imported anywhere below.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from gpu_core.runner.cpu_linear import widen_cpu_linears
from gpu_core.runner.errors import RunnerError, RunnerInputError
from gpu_core.runner.fingerprint import fingerprint_model, fingerprinted_files

TORCH_DTYPES: dict[str, torch.dtype] = {
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float32": torch.float32,
}
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: weights on `device` in `dtype`, in eval mode, gradients off.

    `dtype` is the precision the runner claims in proofs: captured activations are cast to it (a no-op
    unless a caller deliberately pairs other weights with it, as gpu_core.runner.tampering does).
    """

    model: PreTrainedModel
    folder: Path
    fingerprint: str
    dtype: str
    device: torch.device
    attn_implementation: str
    _copies: dict[tuple[str, str], LoadedModel] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.dtype]

    def variant(self, dtype: str, attn_implementation: str) -> LoadedModel:
        """This model with its weights rounded to `dtype` and the given attention kernel (made once,
        then cached; self if both are already so).

        Validation uses it to measure how far an honest `dtype` computation lands from the float32
        reference. The copy shares no parameter with this one; tied weights stay tied. Requires the
        weights to be representable in `dtype` for the copy to equal a model loaded in it (true of
        checkpoints stored in that dtype, as SmolLM2's bf16 files).
        """
        torch_dtype = check_dtype(dtype)
        _check_attn(attn_implementation)
        key = (dtype, attn_implementation)
        if key == (self.dtype, self.attn_implementation):
            return self
        if key not in self._copies:
            # deepcopy with a memo of pre-cast parameters: no second full-precision copy is ever made.
            memo: dict[int, object] = {
                id(p): nn.Parameter(p.detach().to(torch_dtype), requires_grad=False)
                for p in self.model.parameters()
            }
            model = copy.deepcopy(self.model, memo)
            model.set_attn_implementation(attn_implementation)
            _widen_on_cpu(model, self.device, torch_dtype)
            self._copies[key] = LoadedModel(
                model, self.folder, self.fingerprint, dtype, self.device, attn_implementation
            )
        return self._copies[key]


def _widen_on_cpu(model: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """A half model on a CPU multiplies in float32 (cpu_linear): half GEMMs without native instructions
    are 5-9x slower there."""
    if device.type == "cpu" and dtype != torch.float32:
        widen_cpu_linears(model)


def _check_attn(attn_implementation: str) -> None:
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        choices = ", ".join(ATTN_IMPLEMENTATIONS)
        raise RunnerInputError("attn_implementation", f"{attn_implementation!r} is not one of {choices}")


def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_dtype(dtype: str, field: str = "dtype") -> torch.dtype:
    """The torch dtype for a dtype string; RunnerInputError naming `field` if it is not one we support."""
    if dtype not in TORCH_DTYPES:
        raise RunnerInputError(field, f"{dtype!r} is not one of {', '.join(TORCH_DTYPES)}")
    return TORCH_DTYPES[dtype]


def load_model(
    folder: str | Path,
    dtype: str,
    device: str | torch.device | None = None,
    attn_implementation: str | None = None,
) -> LoadedModel:
    """Load the causal LM in `folder` (a Hugging Face folder: config.json + safetensors) for inference.

    Requires `dtype` in "bfloat16" / "float16" / "float32" and `attn_implementation` None (sdpa), "sdpa"
    or "eager". `device` defaults to CUDA when available. Only local files are read. The fingerprint
    is computed from the same files (gpu_core.runner.fingerprint).
    """
    folder = Path(folder)
    torch_dtype = check_dtype(dtype)
    attn = attn_implementation or "sdpa"
    _check_attn(attn)
    target = torch.device(device) if device is not None else default_device()
    fingerprint = fingerprint_model(folder)  # also checks the folder holds config.json and weights
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch_dtype, local_files_only=True, attn_implementation=attn
        )
    except (OSError, ValueError, KeyError) as exc:
        raise RunnerError(f"folder: cannot load a causal LM from {folder}: {exc}") from exc
    model.to(target)
    _widen_on_cpu(model, target, torch_dtype)
    model.eval()
    model.requires_grad_(False)
    # Keep only the special token ids of the checkpoint's generation defaults: sampling must be exactly
    # what the record says (gpu_core.runner.sampling), not a repetition penalty shipped with the weights.
    defaults = model.generation_config
    pad = defaults.pad_token_id if defaults.pad_token_id is not None else defaults.eos_token_id
    model.generation_config = GenerationConfig(
        bos_token_id=defaults.bos_token_id, eos_token_id=defaults.eos_token_id, pad_token_id=pad
    )
    return LoadedModel(model, folder.resolve(), fingerprint, dtype, target, attn)


def load_tokenizer(folder: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved with the model in `folder` (local files only)."""
    folder = Path(folder)
    fingerprinted_files(folder)  # same folder checks as load_model, same messages
    try:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise RunnerError(f"folder: {folder} has no usable tokenizer: {exc}") from exc
    return tokenizer
