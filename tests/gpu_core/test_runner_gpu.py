"""The runner on CUDA (marker `gpu`): generation with proofs built on the GPU, batched validation on the
GPU, and records crossing devices (generated on the CPU, validated on the GPU and back), which is the
cross-hardware case validators meet. Runs only where torch.cuda.is_available(); CI has no GPU.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gpu_core.runner import tampering
from gpu_core.runner.generate import generate_with_proofs
from gpu_core.runner.loading import load_model
from gpu_core.runner.validate import ValidationItem, validate_batch
from tests.gpu_core.conftest import SMOLLM2_SAMPLING, TINY_PROMPTS, TINY_SAMPLING

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on a GPU machine)"),
]


def test_tiny_generate_and_validate_on_cuda(tiny_llama_dir: Path) -> None:
    provider = load_model(tiny_llama_dir, "bfloat16", device="cuda")
    validator = load_model(tiny_llama_dir, "float32", device="cuda")
    assert provider.device.type == "cuda"
    records = [
        generate_with_proofs(provider, list(p), n, TINY_SAMPLING)
        for p, n in zip(TINY_PROMPTS, [8, 64, 256], strict=True)
    ]
    items = [ValidationItem.from_generation(g) for g in records]
    reports = validate_batch(validator, items)
    assert all(r.accepted for r in reports), [r.verdict.reasons for r in reports]
    changed = list(items[1].output_ids)
    changed[0] = (changed[0] + 1) % 1024
    assert not validate_batch(validator, [replace(items[1], output_ids=changed)])[0].accepted


def test_records_cross_devices(tiny_llama_dir: Path) -> None:
    cpu = load_model(tiny_llama_dir, "bfloat16", device="cpu")
    gpu = load_model(tiny_llama_dir, "bfloat16", device="cuda")
    on_cpu = generate_with_proofs(cpu, list(TINY_PROMPTS[1]), 64, TINY_SAMPLING)
    on_gpu = generate_with_proofs(gpu, list(TINY_PROMPTS[1]), 64, TINY_SAMPLING)
    items = [ValidationItem.from_generation(on_cpu), ValidationItem.from_generation(on_gpu)]
    for device in ("cpu", "cuda"):
        reports = validate_batch(load_model(tiny_llama_dir, "float32", device=device), items)
        for report in reports:
            print(device, f"ratio {report.verdict.ratio:.2f}", report.verdict.reasons)
        assert all(r.accepted for r in reports)


def test_smollm2_detection_on_cuda(smollm2_dir: Path, smollm2_prompts: list[list[int]]) -> None:
    provider = load_model(smollm2_dir, "bfloat16", device="cuda")
    validator = load_model(smollm2_dir, "float32", device="cuda")
    honest = [
        generate_with_proofs(provider, p, n, SMOLLM2_SAMPLING)
        for p, n in zip(smollm2_prompts, [32, 64, 256], strict=True)
    ]
    cheats = {
        "fp32": tampering.with_claimed_dtype(validator, "bfloat16"),
        "int8": tampering.round_weights_int8(provider),
    }
    reports = validate_batch(validator, [ValidationItem.from_generation(g) for g in honest])
    print("honest ratios", [round(r.verdict.ratio, 2) for r in reports])
    assert all(r.accepted for r in reports)
    for name, cheat in cheats.items():
        records = [
            generate_with_proofs(cheat, p, n, SMOLLM2_SAMPLING)
            for p, n in zip(smollm2_prompts, [32, 64, 256], strict=True)
        ]
        reports = validate_batch(validator, [ValidationItem.from_generation(g) for g in records])
        print(name, "ratios", [round(r.verdict.ratio, 2) for r in reports])
        assert not any(r.accepted for r in reports)


def test_many_records_in_one_gpu_prefill(tiny_llama_dir: Path) -> None:
    provider = load_model(tiny_llama_dir, "bfloat16", device="cuda")
    validator = load_model(tiny_llama_dir, "float32", device="cuda")
    records = [
        generate_with_proofs(provider, list(TINY_PROMPTS[i % 3]), 16 + i, TINY_SAMPLING) for i in range(16)
    ]
    items = [ValidationItem.from_generation(g) for g in records]
    batched = validate_batch(validator, items)
    single = [validate_batch(validator, [item])[0] for item in items]
    assert all(r.accepted for r in batched) and all(r.accepted for r in single)
