"""Overhead of generating with TOPLOC proofs against plain Hugging Face `generate`, same run, same model.

Workload: SmolLM2-135M-Instruct (prepared into the model store if missing), one chat prompt, 256 new
tokens (end-of-sequence ignored so every run has the same length), greedy (or sampled at
--temperature), bf16, batch 1, topk 128, decode_batching_size 32. Two variants, interleaved --repeats
times so slow phases of a shared machine hit both alike:

- baseline: `model.generate` (greedy, or multinomial sampling at the same temperature), no hook;
- proofs: gpu_core.runner.generate_with_proofs: the project's decode loop with the replayable
  sampler (argmax, or Gumbel-max with counter-based noise), the final-norm hook, a proof per chunk,
  and the extra forward step that covers the last output token.

Prints each run, the medians, and the ratio proofs/baseline (target: overhead under 3%), plus where the
extra time goes (proof building and the extra step, timed separately). Uses CUDA when available.

    .venv/bin/python bench/bench_generate_overhead.py [--tokens 256] [--repeats 5] [--dtype bfloat16]
        [--temperature 0] [--model FOLDER]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from transformers import GenerationConfig  # noqa: E402

from anchor.settings import Settings  # noqa: E402
from gpu_core.proofs import build_proofs_bytes  # noqa: E402
from gpu_core.runner.decoding import DecodeSpec  # noqa: E402
from gpu_core.runner.generate import generate_with_proofs  # noqa: E402
from gpu_core.runner.loading import LoadedModel, load_model, load_tokenizer  # noqa: E402
from gpu_core.runner.smollm2 import prepare_smollm2  # noqa: E402

QUESTION = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def _sync(loaded: LoadedModel) -> None:
    if loaded.device.type == "cuda":
        torch.cuda.synchronize(loaded.device)


def time_baseline(loaded: LoadedModel, prompt: list[int], tokens: int, temperature: float) -> float:
    ids = torch.tensor([prompt], device=loaded.device)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature else {"do_sample": False}
    )
    config = GenerationConfig(
        max_new_tokens=tokens, min_new_tokens=tokens, return_dict_in_generate=True, use_cache=True, **sampling
    )
    _sync(loaded)
    started = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)
    _sync(loaded)
    elapsed = time.perf_counter() - started
    assert out.sequences.shape[1] == len(prompt) + tokens
    return elapsed


def time_proofs(loaded: LoadedModel, prompt: list[int], tokens: int, temperature: float) -> float:
    spec = DecodeSpec(
        temperature=temperature, seed=1 if temperature else None, max_new_tokens=tokens, stop_token_ids=()
    )
    _sync(loaded)
    started = time.perf_counter()
    generation = generate_with_proofs(loaded, prompt, spec)
    _sync(loaded)
    elapsed = time.perf_counter() - started
    assert len(generation.output_ids) == tokens and len(generation.proofs) == 1 + -(-tokens // 32)
    return elapsed


def time_parts(loaded: LoadedModel, prompt: list[int], tokens: int) -> tuple[float, float]:
    """Seconds to build all proofs of such a record, and for one extra forward step on a full cache."""
    hidden = loaded.model.config.hidden_size
    prefill = torch.randn(len(prompt), hidden, device=loaded.device).to(loaded.torch_dtype)
    decode = torch.randn(tokens, hidden, device=loaded.device).to(loaded.torch_dtype)
    _sync(loaded)
    started = time.perf_counter()
    build_proofs_bytes([prefill], 32, 128)
    for start in range(0, tokens, 32):
        build_proofs_bytes(decode[start : start + 32], 32, 128, skip_prefill=True)
    _sync(loaded)
    proofs = time.perf_counter() - started
    ids = torch.tensor([prompt + [0] * tokens], device=loaded.device)
    with torch.inference_mode():
        out = loaded.model(ids[:, :-1], use_cache=True, logits_to_keep=1)
        _sync(loaded)
        started = time.perf_counter()
        loaded.model(ids[:, -1:], past_key_values=out.past_key_values, use_cache=True, logits_to_keep=1)
        _sync(loaded)
    return proofs, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256, help="new tokens per generation (default 256)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs of each variant (default 5)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default); else sampled")
    parser.add_argument("--model", type=Path, help="an HF model folder (default: SmolLM2 from the store)")
    args = parser.parse_args()

    folder = args.model or prepare_smollm2(Settings.from_env().models_dir)[0]
    loaded = load_model(folder, args.dtype)
    tokenizer = load_tokenizer(folder)
    chat = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True)
    prompt = list(chat if isinstance(chat, list) else chat["input_ids"])
    print(
        f"model {folder.name} {args.dtype} on {loaded.device}, prompt {len(prompt)} tokens, "
        f"{args.tokens} new, {'greedy' if not args.temperature else f'sampled at T={args.temperature}'}"
    )

    t = args.temperature
    time_baseline(loaded, prompt, 8, t)  # warm-up: first calls pay one-off allocations
    time_proofs(loaded, prompt, 8, t)
    baseline: list[float] = []
    proofs: list[float] = []
    for run in range(args.repeats):
        baseline.append(time_baseline(loaded, prompt, args.tokens, t))
        proofs.append(time_proofs(loaded, prompt, args.tokens, t))
        print(f"run {run + 1}: baseline {baseline[-1]:.3f} s   with proofs {proofs[-1]:.3f} s", flush=True)
    base, ours = statistics.median(baseline), statistics.median(proofs)
    paired = statistics.median(p / b for p, b in zip(proofs, baseline, strict=True))
    build, extra = time_parts(loaded, prompt, args.tokens)
    print(
        f"median: baseline {base:.3f} s ({base / args.tokens * 1e3:.1f} ms/token), with proofs {ours:.3f} s"
    )
    print(f"ratio with proofs / plain generate: {ours / base:.4f} (overhead {100 * (ours / base - 1):+.2f}%)")
    print(f"median of per-run ratios: {paired:.4f}; baseline runs {min(baseline):.3f}-{max(baseline):.3f} s")
    print(
        f"where the extra time goes: building all {1 + -(-args.tokens // 32)} proofs {build * 1e3:.1f} ms "
        f"({100 * build / base:.2f}% of baseline), the extra forward step {extra * 1e3:.1f} ms "
        f"({100 * extra / base:.2f}%)"
    )
    print(f"target: overhead under 3%: {'met' if ours / base < 1.03 else 'MISSED'}")


if __name__ == "__main__":
    main()
