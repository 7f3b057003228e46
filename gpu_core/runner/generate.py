"""Generation with TOPLOC proofs: a batched decode loop (KV cache) that samples every token with the
sampler a validator replays (gpu_core.runner.sampler), captures the final-norm activations and proves
them.

Activation rows: the prefill gives one row per prompt position (the prefill chunk); feeding output
token i gives its row. The loop feeds every sampled token, the last one too (the paper's experiments
get that row by generating N+1 tokens), so a record of N output tokens has 1 + ceil(N /
decode_batching_size) proofs and every output token is covered.

Batches: the prefill runs without padding, one forward per group of prompts of equal length, so each
prompt's rows are exactly what it alone would give (the prefill chunk's top-k over all prompt rows is
sensitive to tiny changes where massive activations tie: measured, padded float16 prefills made honest
records fail); the groups' KV caches are then left-padded into one cache and the decode steps run
together (attention mask, position ids counted from each sequence's first real token). Every sequence
gets its own rows and proofs, and its tokens depend only on its own logits, spec, seed and output
positions, never on its batch-mates. A sequence stops at a stop token (`eos`), a stop string (`stop`)
or max_new_tokens (`length`); the batch runs until its last sequence has fed its last token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional
from transformers import DynamicCache

from gpu_core.proofs import build_proofs_batch, chunk_count
from gpu_core.proofs.chunks import check_parameters
from gpu_core.runner.capture import capture_final_norm
from gpu_core.runner.decoding import DecodeSpec, end_after, spec_problem
from gpu_core.runner.errors import RunnerError, RunnerInputError
from gpu_core.runner.loading import LoadedModel
from gpu_core.runner.sampler import PenaltyContext, choose
from gpu_core.runner.stopping import contains_stop

Progress = Callable[[int, int], None]
"""Called as progress(steps_done, max_steps) after each forward step of the decode loop."""


@dataclass(frozen=True)
class Generation:
    """What a provider records: tokens, proofs, the resolved decode spec and how the output ended."""

    prompt_ids: tuple[int, ...]
    output_ids: tuple[int, ...]
    proofs: tuple[bytes, ...]
    spec: DecodeSpec
    stop_reason: str
    dtype: str
    fingerprint: str
    topk: int
    decode_batching_size: int


@dataclass(frozen=True)
class GenerationRequest:
    """One sequence of a batch: its prompt and its spec (resolved with the model's end-of-sequence ids
    and, when sampling without a seed, the request id)."""

    prompt_ids: Sequence[int]
    spec: DecodeSpec
    request_id: str | None = None


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


def eos_token_ids(loaded: LoadedModel) -> tuple[int, ...]:
    """The model's end-of-sequence ids (its generation config's, sorted); () if it declares none."""
    eos = loaded.model.generation_config.eos_token_id
    if eos is None:
        return ()
    return tuple(sorted({int(e) for e in (eos if isinstance(eos, list | tuple) else [eos])}))


def check_spec(loaded: LoadedModel, spec: DecodeSpec, prompt_len: int, field: str) -> None:
    """A resolved spec this model can run: stop ids and top_k within the vocabulary, prompt +
    max_new_tokens within its positions. Errors name `<field>.<spec field>`."""
    config = loaded.model.config
    limit = getattr(config, "max_position_embeddings", None)
    problem = spec_problem(spec, int(config.vocab_size), limit, prompt_len)
    if problem is not None:
        raise RunnerInputError(f"{field}.{problem[0]}", problem[1])


def generate_batch(
    loaded: LoadedModel,
    requests: Sequence[GenerationRequest],
    topk: int = 128,
    decode_batching_size: int = 32,
    tokenizer: object = None,
    progress: Progress | None = None,
) -> list[Generation]:
    """Generate every request together and prove each sequence's activations; one Generation per
    request, in order.

    Requires non-empty prompts of token ids in the vocabulary, specs this model can run (check_spec),
    1 <= topk <= hidden size (the smallest chunk is one row), decode_batching_size >= 1. Raises
    RunnerInputError naming requests[i] (nothing generated) otherwise.
    """
    if not requests:
        raise RunnerInputError("requests", "is empty")
    check_parameters(decode_batching_size, topk)
    hidden = int(loaded.model.config.hidden_size)
    if topk > hidden:
        raise RunnerInputError("topk", f"{topk} exceeds the hidden size {hidden} (one-row chunks)")
    eos = eos_token_ids(loaded)
    prompts: list[list[int]] = []
    specs: list[DecodeSpec] = []
    for i, request in enumerate(requests):
        prompts.append(check_token_ids(loaded, request.prompt_ids, f"requests[{i}].prompt_ids"))
        spec = request.spec.resolved(eos, request.request_id)
        check_spec(loaded, spec, len(prompts[-1]), f"requests[{i}].decode")
        if spec.stop and tokenizer is None:
            raise RunnerInputError(f"requests[{i}].decode.stop", "stop strings need the model's tokenizer")
        specs.append(spec)

    with torch.inference_mode():
        rows, outputs, reasons = _decode(loaded, prompts, specs, tokenizer, progress)
    proofs = build_proofs_batch(rows, decode_batching_size, topk)  # rows: [prefill rows, row 1, ...]
    out = []
    for prompt, output, spec, reason, record_rows, record_proofs in zip(
        prompts, outputs, specs, reasons, rows, proofs, strict=True
    ):
        want = chunk_count(1 + len(output), decode_batching_size, skip_prefill=False)
        if len(record_rows) != 1 + len(output) or len(record_proofs) != want:
            raise RunnerError(
                f"model: captured {len(record_rows) - 1} decode rows and {len(record_proofs)} proofs for "
                f"{len(output)} output tokens, want {len(output)} and {want} (one forward call per token?)"
            )
        out.append(
            Generation(
                prompt_ids=tuple(prompt),
                output_ids=tuple(output),
                proofs=tuple(record_proofs),
                spec=spec,
                stop_reason=reason,
                dtype=loaded.dtype,
                fingerprint=loaded.fingerprint,
                topk=topk,
                decode_batching_size=decode_batching_size,
            )
        )
    return out


def _decode(
    loaded: LoadedModel,
    prompts: list[list[int]],
    specs: list[DecodeSpec],
    tokenizer: object,
    progress: Progress | None,
) -> tuple[list[list[torch.Tensor]], list[list[int]], list[str]]:
    """The decode loop: per sequence its activation rows ([prefill rows, row of output 1, ...], in the
    claimed dtype), its output tokens and its stop reason."""
    device = loaded.device
    batch = len(prompts)
    width = max(len(p) for p in prompts)
    pad = 0
    mask = torch.zeros((batch, width), dtype=torch.long)
    for b, prompt in enumerate(prompts):
        mask[b, width - len(prompt) :] = 1
    mask = mask.to(device)
    lengths = torch.tensor([len(p) for p in prompts], device=device)

    captured: list[torch.Tensor] = []
    rows: list[list[torch.Tensor]] = [[] for _ in prompts]
    outputs: list[list[int]] = [[] for _ in prompts]
    reasons: list[str | None] = [None] * batch  # None while a sequence is still choosing tokens
    max_steps = max(s.max_new_tokens for s in specs) + 1
    with capture_final_norm(loaded.model, captured.append):
        cache, logits = _prefill(loaded, prompts, width, captured, rows)
        step = 0
        while True:
            active = [b for b in range(batch) if reasons[b] is None]
            if not active:
                break
            index = torch.tensor(active, device=device)
            context = None
            if any(specs[b].has_penalties for b in active):
                context = PenaltyContext.stack(
                    [
                        PenaltyContext.at_positions(prompts[b], outputs[b], [len(outputs[b])], device)
                        for b in active
                    ]
                )
            tokens = choose(
                logits[index], [specs[b] for b in active], [len(outputs[b]) for b in active], context
            ).tolist()
            fed = torch.full((batch, 1), pad, dtype=torch.long)
            for b, token in zip(active, tokens, strict=True):
                outputs[b].append(int(token))
                fed[b, 0] = int(token)
                reasons[b] = end_after(specs[b], outputs[b], _has_stop(tokenizer, specs[b]))
            # Feed this step's tokens (a sequence's last one too, for its activation row); sequences that
            # ended earlier feed padding, masked out.
            column = torch.zeros((batch, 1), dtype=torch.long)
            column[index.cpu()] = 1
            mask = torch.cat([mask, column.to(device)], dim=1)
            step_positions = (lengths + torch.tensor([len(o) for o in outputs], device=device) - 1).unsqueeze(
                1
            )
            out = loaded.model(
                fed.to(device), attention_mask=mask, position_ids=step_positions, past_key_values=cache,
                use_cache=True, logits_to_keep=1,
            )  # fmt: skip
            row = captured.pop().to(loaded.torch_dtype)
            for b in active:
                rows[b].append(row[b, 0])
            logits = out.logits[:, -1, :].float()
            step += 1
            if progress is not None:
                progress(step, max_steps)
    return rows, outputs, [str(reason) for reason in reasons]


def _prefill(
    loaded: LoadedModel,
    prompts: list[list[int]],
    width: int,
    captured: list[torch.Tensor],
    rows: list[list[torch.Tensor]],
) -> tuple[DynamicCache, torch.Tensor]:
    """Prefill prompts of equal length together, without padding; append each prompt's rows (claimed
    dtype) to `rows`; return one KV cache left-padded to `width` for the batch, and the logits [B, V]
    (float32) that choose each sequence's first token."""
    device = loaded.device
    groups: dict[int, list[int]] = {}
    for b, prompt in enumerate(prompts):
        groups.setdefault(len(prompt), []).append(b)
    layers: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
    order: list[int] = []
    logits: list[torch.Tensor] = []
    for length, members in groups.items():
        cache = DynamicCache()
        ids = torch.tensor([prompts[b] for b in members], dtype=torch.long, device=device)
        out = loaded.model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        activations = captured.pop().to(loaded.torch_dtype)
        for i, b in enumerate(members):
            rows[b].append(activations[i])
        padding = (width - length, 0)  # left-pad the sequence axis of [batch, heads, positions, dim]
        layers.append(
            [
                (functional.pad(layer.keys, (0, 0, *padding)), functional.pad(layer.values, (0, 0, *padding)))
                for layer in cache.layers
            ]
        )
        order += members
        logits.append(out.logits[:, -1, :].float())
    merged = [
        (torch.cat([g[i][0] for g in layers]), torch.cat([g[i][1] for g in layers]))
        for i in range(len(layers[0]))
    ]
    inverse = torch.tensor([order.index(b) for b in range(len(prompts))], device=device)
    cache = DynamicCache(ddp_cache_data=[(k[inverse], v[inverse]) for k, v in merged])
    return cache, torch.cat(logits)[inverse]


def _has_stop(tokenizer: object, spec: DecodeSpec) -> Callable[[Sequence[int]], bool]:
    return lambda ids: contains_stop(tokenizer, ids, spec.stop)


def generate_with_proofs(
    loaded: LoadedModel,
    prompt_ids: Sequence[int],
    spec: DecodeSpec,
    topk: int = 128,
    decode_batching_size: int = 32,
    tokenizer: object = None,
    request_id: str | None = None,
    progress: Progress | None = None,
) -> Generation:
    """One sequence: generate_batch of a single request."""
    request = GenerationRequest(prompt_ids, spec, request_id)
    try:
        [generation] = generate_batch(loaded, [request], topk, decode_batching_size, tokenizer, progress)
    except RunnerInputError as exc:
        field = exc.field.removeprefix("requests[0].")
        raise RunnerInputError(field, exc.reason) from None
    return generation
