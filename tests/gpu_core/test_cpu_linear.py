"""Half Linear layers on a CPU multiply in float32 (gpu_core.runner.cpu_linear): same numerics class as
the half GEMM (half in, float32 accumulation, half out), and never a stale copy of a changed weight."""

from __future__ import annotations

import copy

import torch
from torch import nn

from gpu_core.runner.cpu_linear import Float32AccumulateLinear, widen_cpu_linears
from gpu_core.runner.loading import LoadedModel
from tests.gpu_core.conftest import Models


def _layer() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 8, bias=False)).to(torch.bfloat16)


def test_a_widened_layer_is_the_float32_product_rounded_to_bfloat16() -> None:
    model, x = _layer(), torch.randn(5, 64).to(torch.bfloat16)
    native = model(x)
    widen_cpu_linears(model)
    assert all(type(m) is Float32AccumulateLinear for m in model)
    out = model(x)
    first = (x.float() @ model[0].weight.float().T + model[0].bias.float()).to(torch.bfloat16)
    expected = (first.float() @ model[1].weight.float().T).to(torch.bfloat16)
    assert out.dtype == torch.bfloat16 and torch.equal(out, expected)
    # The bf16 kernel it replaces agrees to bf16 rounding (summation order is all that differs).
    assert torch.allclose(out.float(), native.float(), rtol=0.02, atol=0.02)


def test_a_changed_weight_is_never_multiplied_from_a_stale_copy() -> None:
    model, x = _layer(), torch.randn(3, 64).to(torch.bfloat16)
    widen_cpu_linears(model)
    before = model(x)
    tampered = copy.deepcopy(model)  # as gpu_core.runner.tampering copies before changing weights
    with torch.no_grad():
        tampered[0].weight.mul_(2)  # in place: the version counter moves
    assert not torch.equal(tampered(x), before)
    assert torch.equal(model(x), before)  # the original is untouched
    with torch.no_grad():
        model[1].weight = nn.Parameter(torch.zeros_like(model[1].weight))  # replaced outright
    assert torch.equal(model(x), torch.zeros_like(before))


def test_float32_layers_and_inputs_take_the_plain_path() -> None:
    model = _layer().float()
    widen_cpu_linears(model)
    x = torch.randn(2, 64)
    assert torch.equal(
        model(x),
        nn.functional.linear(nn.functional.linear(x, model[0].weight, model[0].bias), model[1].weight),
    )


def test_every_half_model_on_a_cpu_is_widened_loaded_or_derived(tiny: Models) -> None:
    """Loaded in bf16, or a bf16 variant of the float32 reference (the validator's expectation):
    both multiply in float32; the float32 reference keeps plain layers."""

    def linears(loaded: LoadedModel) -> set[type]:
        return {type(m) for m in loaded.model.modules() if isinstance(m, nn.Linear)}

    assert linears(tiny.bf16) == {Float32AccumulateLinear}
    assert linears(tiny.reference.variant("bfloat16", "sdpa")) == {Float32AccumulateLinear}
    assert linears(tiny.reference) == {nn.Linear}
