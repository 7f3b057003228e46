"""Half-precision Linear layers on a CPU, multiplied in float32.

PyTorch's bfloat16/float16 GEMM on a CPU without native half instructions (AVX2 only, as on these
machines) runs at about 10 GFLOPS against 45-85 for float32 (docs/models.md, Loading). A half Linear layer
here widens its input and weight to float32, multiplies, and rounds the output back to the layer's
dtype. That is the numerics of the half GEMMs it replaces (half inputs, float32 accumulation, half
output; GPU tensor cores do the same), only the summation order differs, which is the kernel-to-kernel
noise TOPLOC and the sampler replay already tolerate. Everything else (norms, attention, activations)
stays in the model's dtype.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.nn import functional as F

# id(weight) -> (the weight, weakly; its version counter when widened; the float32 copy). Outside the
# module, so a deepcopy of the model (gpu_core.runner.tampering) never inherits a stale copy, and an
# in-place change of the weight (its version moves) is widened again. Dropped with the weight.
_WIDENED: dict[int, tuple[weakref.ref[torch.Tensor], int, torch.Tensor]] = {}


def _float32(t: torch.Tensor) -> torch.Tensor:
    cached = _WIDENED.get(id(t))
    if cached is not None and cached[0]() is t and cached[1] == t._version:
        return cached[2]
    wide = t.detach().float()
    if cached is None:
        weakref.finalize(t, _WIDENED.pop, id(t), None)
    _WIDENED[id(t)] = (weakref.ref(t), t._version, wide)
    return wide


class Float32AccumulateLinear(nn.Linear):
    """nn.Linear whose half-precision product is computed in float32 and rounded to the input's dtype."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.dtype not in (torch.bfloat16, torch.float16) or input.device.type != "cpu":
            return super().forward(input)
        bias = None if self.bias is None else _float32(self.bias)
        return F.linear(input.float(), _float32(self.weight), bias).to(input.dtype)


def widen_cpu_linears(model: nn.Module) -> None:
    """Every nn.Linear of `model` becomes a Float32AccumulateLinear (same parameters, in place)."""
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = Float32AccumulateLinear
