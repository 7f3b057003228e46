"""Validation throughput through the whole verifier pipeline, against raw prefill and against generation.

Workload: --records records of one model (a chat prompt, --output-tokens greedy tokens, end-of-sequence
ignored, bf16, topk 128, decode_batching_size 32), logged, anchored and disputed on a local Anvil, with
one validator (committee of 1) whose validations the watcher stored in a SQLite database. Measured in one
run, --repeats times each, interleaved so the slow phases of a shared machine hit every variant alike:

- raw prefill (the baseline): one forward pass of the validator's model (float32, the dtype validators
  load) over the same records in the same padded batch, no hook, no proofs;
- compute: gpu_core.runner.validate_batch on the same records (the float32 reference prefill, the
  claimed-dtype prefill, proofs and verification, the sampler replay, the verdicts);
- compute without the replay: the same records with no decode spec (as version 1 records): the
  difference is the sampling check's cost (the lm_head matmul over the rows that predict each output
  token, the sampler's filters and race), reported as a share of the raw prefill (target under 10%);
- pipeline: database -> batched prefill -> verify -> vote: verifier.validation.Pipeline.run (claim every
  validation of the batch, load the records, recompute their digests, validate_batch, store the reports
  and evidence hashes) and a commitVote and a revealVote transaction per record
  (verifier.verdicts.send_vote; a committee of one reveals at once), on a
  fresh set of disputes each repeat;
- generation: one record generated with proofs at batch 1 (gpu_core.runner.generate_with_proofs), the
  time scaled to the same number of records.

Validated tokens are prompt + output tokens (the prefill covers both). Prints tokens/s of each variant,
pipeline / raw prefill (target >= 0.7), the sampling check's share of the raw prefill (and of it, the
lm_head matmul alone), and generation time / pipeline time for the same records (target >= 100 at batch
1). --temperature samples the records (Gumbel-max) instead of greedy. Uses CUDA when available.

    .venv/bin/python bench/bench_validate.py [--records 8] [--output-tokens 64] [--repeats 3]
        [--model smollm2 | llama-8b | llama-small] [--temperature 0]

`--model llama-8b` (CUDA only) is a Llama-3.1-8B-shaped model with random weights built in memory (as
NOTES.md describes); `llama-small` is the same code path at a small size, to check it on a CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from eth_keys import keys  # noqa: E402
from sqlalchemy import select  # noqa: E402

from anchor.anchoring import Anchorer, AuditContract, LoopConfig  # noqa: E402
from anchor.chain.anvil import dev_account, start_anvil  # noqa: E402
from anchor.chain.client import Role, ToplocAuditClient  # noqa: E402
from anchor.chain.deployment import deploy_toploc_audit  # noqa: E402
from anchor.chain.parameters import ETHER, Parameters  # noqa: E402
from anchor.db import make_engine, session_factory, transaction, upgrade  # noqa: E402
from anchor.records import Record  # noqa: E402
from anchor.records.eip712 import Domain  # noqa: E402
from anchor.records.ingest import Recorder, Submission  # noqa: E402
from anchor.records.registry import declare_model, limits_from_folder, register_provider  # noqa: E402
from anchor.settings import Settings  # noqa: E402
from gpu_core.runner.decoding import DecodeSpec  # noqa: E402
from gpu_core.runner.fingerprint import fingerprint_model, fingerprint_tokenizer  # noqa: E402
from gpu_core.runner.generate import generate_with_proofs  # noqa: E402
from gpu_core.runner.loading import LoadedModel, default_device, load_model, load_tokenizer  # noqa: E402
from gpu_core.runner.smollm2 import prepare_smollm2  # noqa: E402
from gpu_core.runner.validate import REFERENCE_DTYPE, ValidationItem, validate_batch  # noqa: E402
from toploc_audit.commands.generate import signed_entry  # noqa: E402
from verifier.disputes import file_dispute, plan_dispute  # noqa: E402
from verifier.events import EventSource  # noqa: E402
from verifier.model_store import ModelStore  # noqa: E402
from verifier.models import VALIDATED, VOTED, Validation  # noqa: E402
from verifier.validation import Pipeline  # noqa: E402
from verifier.verdicts import send_vote  # noqa: E402
from verifier.watcher import sync  # noqa: E402

QUESTION = "Explain in a few sentences how a lighthouse keeper spends a stormy night."
DEPLOYER, OPERATOR, PROVIDER, CHALLENGER, VALIDATOR = (dev_account(i) for i in range(5))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_llama(shape: str, device: torch.device, folder: Path) -> LoadedModel:
    """A Llama with random weights built in memory (float32, the validator's dtype), and a small folder
    whose fingerprint names it (the store finds it by fingerprint; its weights never touch the disk)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if shape == "llama-8b":
        config = LlamaConfig(
            vocab_size=128_256, hidden_size=4096, intermediate_size=14_336, num_hidden_layers=32,
            num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500_000.0,
        )  # fmt: skip
    else:
        config = LlamaConfig(
            vocab_size=4096, hidden_size=512, intermediate_size=1024, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=4096,
        )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(f"random weights, seed 0, {shape}".encode())
    torch.manual_seed(0)
    with torch.device(device):
        # Initialised in bf16 and widened: the weights are exactly representable in bf16, like a
        # checkpoint stored in bf16 (what a provider loads), so the validator's float32 copy is that model.
        model = LlamaForCausalLM(config).to(torch.bfloat16).to(torch.float32)
    model.eval().requires_grad_(False)
    return LoadedModel(model, folder.resolve(), fingerprint_model(folder), REFERENCE_DTYPE, device, "sdpa")


def raw_prefill(loaded: LoadedModel, items: list[ValidationItem]) -> float:
    """Seconds for one plain forward pass over the records, padded into one batch as validation does."""
    lengths = [len(i.prompt_ids) + len(i.output_ids) for i in items]
    ids = torch.zeros((len(items), max(lengths)), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, item in enumerate(items):
        ids[row, : lengths[row]] = torch.tensor([*item.prompt_ids, *item.output_ids])
        mask[row, : lengths[row]] = 1
    _sync(loaded.device)
    started = time.perf_counter()
    with torch.inference_mode():
        loaded.model(
            ids.to(loaded.device), attention_mask=mask.to(loaded.device), use_cache=False, logits_to_keep=1
        )
    _sync(loaded.device)
    return time.perf_counter() - started


def compute_only(loaded: LoadedModel, items: list[ValidationItem]) -> float:
    _sync(loaded.device)
    started = time.perf_counter()
    reports = validate_batch(loaded, items)
    _sync(loaded.device)
    assert all(r.accepted for r in reports), [
        r.verdict.reasons for r in reports if r.verdict and not r.accepted
    ]
    return time.perf_counter() - started


def lm_head_only(loaded: LoadedModel, items: list[ValidationItem]) -> float:
    """Seconds of the replay's lm_head matmul alone: one row per output token of every record."""
    hidden = loaded.model.config.hidden_size
    rows = torch.randn(sum(len(i.output_ids) for i in items), hidden, device=loaded.device)
    head = loaded.model.get_output_embeddings()
    _sync(loaded.device)
    started = time.perf_counter()
    with torch.inference_mode():
        head(rows)
    _sync(loaded.device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=8, help="records per batch (default 8)")
    parser.add_argument("--output-tokens", type=int, default=64, help="output tokens per record (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each variant (default 3)")
    parser.add_argument("--model", choices=["smollm2", "llama-8b", "llama-small"], default="smollm2")
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy records (default)")
    args = parser.parse_args()
    device = default_device()
    if args.model == "llama-8b" and device.type != "cuda":
        parser.error("--model llama-8b needs a GPU (CUDA); this machine has none")

    work = Path(tempfile.mkdtemp(prefix="bench-validate-"))
    store = ModelStore(work / "models")
    if args.model == "smollm2":
        folder = prepare_smollm2(Settings.from_env().models_dir)[0]
        (work / "models").mkdir()
        (work / "models" / folder.name).symlink_to(folder, target_is_directory=True)
        chat = load_tokenizer(folder).apply_chat_template(
            [{"role": "user", "content": QUESTION}], add_generation_prompt=True
        )
        prompt = list(chat if isinstance(chat, list) else chat["input_ids"])
        reference = store.load(work / "models" / folder.name, REFERENCE_DTYPE)
        provider = load_model(folder, "bfloat16")
    else:
        reference = random_llama(args.model, device, work / "models" / args.model)
        store._loaded[(str(reference.folder), REFERENCE_DTYPE)] = reference  # built in memory, not loaded
        provider = reference.variant("bfloat16", "sdpa")  # what a provider runs: the same weights in bf16
        prompt = [(7 * i + 3) % 4000 for i in range(40)]
    print(
        f"model {args.model} on {device}, {args.records} records x ({len(prompt)} prompt + "
        f"{args.output_tokens} output tokens), {args.repeats} repeats; "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )

    # Generation at batch 1 (also the records' content): a warm-up, then timed.
    sampling = DecodeSpec(
        temperature=args.temperature, seed=7 if args.temperature else None, max_new_tokens=args.output_tokens,
        stop_token_ids=(),
    )  # fmt: skip
    generate_with_proofs(provider, prompt, replace(sampling, max_new_tokens=4))
    _sync(device)
    started = time.perf_counter()
    generation = generate_with_proofs(provider, prompt, sampling)
    _sync(device)
    generate_s = time.perf_counter() - started
    print(f"generation at batch 1: {generate_s:.2f} s for {args.output_tokens} tokens", flush=True)

    # Chain, database, records, disputes: setup, not timed.
    node = start_anvil(accounts=6)
    try:
        w3 = node.web3()
        parameters = Parameters(
            committeeSize=1,
            quorum=1,
            appealRounds=0,
            drawDelay=1,
            disputeWindow=10**6,
            commitPeriod=10**6,
            revealPeriod=10**6,
            unbondingPeriod=10**7,
        )
        deployment = deploy_toploc_audit(
            w3, DEPLOYER, OPERATOR.address, parameters, node.url, receipt_signer=OPERATOR.address
        )
        client = ToplocAuditClient(w3, deployment.address)
        client.as_account(PROVIDER).stake(Role.PROVIDER, ETHER)
        client.as_account(VALIDATOR).stake(Role.VALIDATOR, ETHER)
        url = f"sqlite:///{work / 'audit.sqlite3'}"
        upgrade(url)
        engine = make_engine(url)
        sessions = session_factory(engine)
        name = reference.folder.name
        with transaction(sessions) as s:
            register_provider(s, PROVIDER.address)
            declare_model(s, name, reference.fingerprint, limits_from_folder(reference.folder))
        domain = Domain.of(deployment.chain_id, deployment.address)
        recorder = Recorder(sessions, domain, keys.PrivateKey(OPERATOR.key), 3600)
        tokenizer = fingerprint_tokenizer(reference.folder)
        base = Record.from_generation(generation, PROVIDER.address, name, tokenizer, "bench")
        records = [
            replace(base, request_id=f"bench-{r}-{i}")
            for r in range(args.repeats)
            for i in range(args.records)
        ]
        recorder.submit(
            [Submission.from_json(signed_entry(rec, PROVIDER.key, domain), domain) for rec in records]
        )
        Anchorer(
            sessions, AuditContract(w3, deployment.address, OPERATOR), LoopConfig(1, 0, 1, poll_seconds=0.01)
        ).run(once=True)
        challenger = client.as_account(CHALLENGER)
        for index in range(len(records)):
            with sessions() as s:
                filed = file_dispute(challenger, plan_dispute(s, challenger, str(index)))
            challenger.draw(filed.dispute_id)
        sync(sessions, EventSource(client), deployment.deployment_block, [VALIDATOR.address], 2)
        with sessions() as s:
            ids = list(s.scalars(select(Validation.id).order_by(Validation.id)))
        assert len(ids) == len(records), f"{len(ids)} validations for {len(records)} disputes"
        voter = client.as_account(VALIDATOR)
        items = [ValidationItem.from_generation(generation)] * args.records
        unreplayed = [replace(item, spec=None, stop_reason=None) for item in items]  # as version 1
        tokens = args.records * (len(prompt) + args.output_tokens)

        compute_only(reference, items[:1])  # warm-up: the bf16 copy is made here, kernels are loaded
        raw_prefill(reference, items)
        raw, compute, bare, head, pipeline, vote = [], [], [], [], [], []
        for r in range(args.repeats):
            raw.append(raw_prefill(reference, items))
            compute.append(compute_only(reference, items))
            bare.append(compute_only(reference, unreplayed))
            head.append(lm_head_only(reference, items))
            group = ids[r * args.records : (r + 1) * args.records]
            _sync(device)
            started = time.perf_counter()
            outcomes = Pipeline(sessions, store, VALIDATOR.address, 600, args.records).run(
                group[0], f"bench-{r}"
            )
            _sync(device)
            validated = time.perf_counter()
            statuses = [send_vote(sessions, voter, o.validation_id) for o in outcomes]
            done = time.perf_counter()
            assert sorted(o.validation_id for o in outcomes) == group and all(
                o.status == VALIDATED for o in outcomes
            )
            assert statuses == [VOTED] * args.records
            pipeline.append(done - started)
            vote.append(done - validated)
            print(
                f"run {r + 1}: raw prefill {raw[-1]:.3f} s, compute {compute[-1]:.3f} s (without the replay "
                f"{bare[-1]:.3f} s), "
                f"pipeline {pipeline[-1]:.3f} s (of which {args.records} votes {vote[-1]:.3f} s)",
                flush=True,
            )
        engine.dispose()
    finally:
        node.stop()

    raw_s, compute_s, pipe_s = statistics.median(raw), statistics.median(compute), statistics.median(pipeline)
    generate_all = generate_s * args.records
    print(f"tokens validated per batch: {tokens}")
    print(f"raw prefill (float32, baseline): {tokens / raw_s:10.0f} tokens/s  ({raw_s:.3f} s)")
    print(f"compute (validate_batch):        {tokens / compute_s:10.0f} tokens/s  ({compute_s:.3f} s)")
    print(f"pipeline (db -> prefill -> verify -> vote): {tokens / pipe_s:.0f} tokens/s  ({pipe_s:.3f} s)")
    ratio, speedup = raw_s / pipe_s, generate_all / pipe_s
    print(
        f"pipeline / raw prefill: {ratio:.3f} (target >= 0.7: {'met' if ratio >= 0.7 else 'MISSED'}); "
        f"compute / raw prefill: {raw_s / compute_s:.3f}; pipeline time beyond compute "
        f"{100 * (pipe_s - compute_s) / pipe_s:.1f}% (votes {100 * statistics.median(vote) / pipe_s:.1f}%)"
    )
    replay_s = statistics.median(c - b for c, b in zip(compute, bare, strict=True))
    head_s = statistics.median(head)
    share = replay_s / raw_s
    print(
        f"sampling check (replay: lm_head over {args.records * args.output_tokens} rows, filters, race, stop "
        f"rules): {replay_s:.3f} s = {100 * share:.1f}% of the raw prefill (target under 10%: "
        f"{'met' if share < 0.10 else 'MISSED'}); the lm_head matmul alone {head_s:.3f} s = "
        f"{100 * head_s / raw_s:.1f}%"
    )
    print(
        f"generation at batch 1 of the same {args.records} records: {generate_all:.1f} s; / pipeline = "
        f"{speedup:.1f}x (target >= 100x: {'met' if speedup >= 100 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
