"""Validation by one batched prefill: per-chunk reports, order, batching, malformed records judged
alone, failures isolated to their record, the claimed-dtype mode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gpu_core.runner import tampering
from gpu_core.runner.decoding import DecodeSpec
from gpu_core.runner.errors import RunnerInputError
from gpu_core.runner.generate import Generation, generate_with_proofs
from gpu_core.runner.loading import load_model
from gpu_core.runner.validate import ERROR, MALFORMED, ValidationItem, validate_batch
from tests.gpu_core.conftest import TINY_PROMPTS, TINY_SAMPLING, Models

GREEDY = DecodeSpec(max_new_tokens=9, stop_token_ids=())


def _spec(n: int, **changes: object) -> DecodeSpec:
    return replace(TINY_SAMPLING, max_new_tokens=n, **changes)


@pytest.fixture(scope="module")
def records(tiny: Models) -> list[Generation]:
    """Records of different lengths and TOPLOC parameters, as validators receive them."""
    p0, p1, p2 = (list(p) for p in TINY_PROMPTS)
    return [
        generate_with_proofs(tiny.bf16, p0, _spec(5)),
        generate_with_proofs(tiny.bf16, p1, _spec(40), decode_batching_size=16),
        generate_with_proofs(tiny.bf16, p2, _spec(3), topk=64),
        generate_with_proofs(tiny.bf16, p0, GREEDY),
    ]


def _items(records: list[Generation]) -> list[ValidationItem]:
    return [ValidationItem.from_generation(g) for g in records]


def test_reports_in_input_order_with_positions_of_every_chunk(
    tiny: Models, records: list[Generation]
) -> None:
    reports = validate_batch(tiny.reference, _items(records))
    assert len(reports) == len(records)
    for report, record in zip(reports, records, strict=True):
        assert report.accepted, report.verdict
        assert all(chunk.passed for chunk in report.chunks)
        assert len(report.chunks) == len(record.proofs)
        prompt, output = len(record.prompt_ids), len(record.output_ids)
        assert report.chunks[0].begin == 0 and report.chunks[0].end == prompt
        assert report.chunks[-1].end == prompt + output
        for left, right in zip(report.chunks, report.chunks[1:], strict=False):
            assert left.end == right.begin
        assert all(chunk.expected is not None for chunk in report.chunks)
        assert report.tokens is not None and report.tokens.positions == output
    assert [(c.begin, c.end) for c in reports[1].chunks] == [(0, 31), (31, 47), (47, 63), (63, 71)]


def test_batch_size_does_not_change_verdicts(tiny: Models, records: list[Generation]) -> None:
    items = _items(records)
    batched = validate_batch(tiny.reference, items)
    calls: list[tuple[int, int]] = []
    one_by_one = validate_batch(
        tiny.reference, items, max_batch_tokens=1, progress=lambda *a: calls.append(a)
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    single = [validate_batch(tiny.reference, [item])[0] for item in items]
    for a, b, c in zip(batched, one_by_one, single, strict=True):
        assert a.accepted and b.accepted and c.accepted
        for x, y in zip(a.chunks, b.chunks, strict=True):
            # Padding never changes a record's rows: the statistics agree to rounding.
            assert abs(x.result.exp_mismatches - y.result.exp_mismatches) <= 2
            assert abs(x.result.mant_err_mean - y.result.mant_err_mean) < 0.5


def test_a_tampered_record_does_not_affect_its_batch_neighbours(
    tiny: Models, records: list[Generation]
) -> None:
    items = _items(records)
    changed = list(items[1].prompt_ids)
    changed[3] = (changed[3] + 1) % 1024
    items[1] = replace(items[1], prompt_ids=changed)
    verdicts = [report.accepted for report in validate_batch(tiny.reference, items)]
    assert verdicts == [True, False, True, True]


def test_reports_name_the_check_that_rejected(tiny: Models, records: list[Generation]) -> None:
    item = ValidationItem.from_generation(records[1])
    changed = list(item.output_ids)
    changed[0] = (changed[0] + 1) % 1024
    report = validate_batch(tiny.reference, [replace(item, output_ids=changed)])[0]
    assert not report.accepted
    first = report.tokens.failures[0]
    assert (first.check, first.position, first.token) == ("sampler", 0, changed[0])
    # The choice is the best token the provider surely kept (with the tiny model's flat distributions
    # and top-p 0.95 the original token may lie in the uncertain zone near the nucleus boundary).
    assert first.choice is not None and first.choice != changed[0] and first.gap > first.limit
    assert report.verdict.reasons[-len(report.tokens.failures)].startswith("sampler at output position 0: ")
    assert report.chunks[0].passed  # the prompt is untouched


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"prompt_ids": []}, "record.prompt_tokens", "is empty"),
        ({"output_ids": [5, 2000]}, "record.output_tokens[1]", "2000 is not a token id in [0, 1024)"),
        ({"dtype": "int4"}, "record.dtype", "'int4' is not one of"),
        ({"topk": 0}, "record.toploc.topk", "want an int in"),
        ({"topk": 512}, "record.toploc.topk", "512 exceeds the hidden size 256"),
        ({"decode_batching_size": 0}, "record.toploc.decode_batching_size", "want an int >= 1"),
        ({"proofs": ()}, "record.proofs", "got 0 proofs, want 2 (one per chunk)"),
        (
            {"spec": _spec(9, stop_token_ids=(1024,))},
            "record.decode.stop_token_ids[0]",
            "outside the vocabulary",
        ),
        ({"spec": _spec(4)}, "record.output_tokens", "5 tokens exceed decode.max_new_tokens 4"),
        ({"stop_reason": "tired"}, "record.stop_reason", "'tired' is not one of"),
        ({"spec": None}, "record.stop_reason", "a decode spec and a stop reason go together"),
    ],
)
def test_a_malformed_record_is_fraud_alone_and_its_batch_is_judged(
    tiny: Models, records: list[Generation], changes: dict, field: str, reason: str
) -> None:
    """A record that cannot be a real generation is the provider's fraud (it signed it), reported with
    the field and the reason, before any computation; its batch-mates get their own verdicts."""
    good = ValidationItem.from_generation(records[0])
    items = [good, replace(good, **changes), ValidationItem.from_generation(records[1])]
    first, bad, third = validate_batch(tiny.reference, items)
    assert first.accepted and third.accepted
    assert bad.status == MALFORMED and bad.fraud and bad.chunks == ()
    [why] = bad.verdict.reasons
    assert why.startswith(f"malformed: {field}: ") and reason in why, why


def test_poison_proofs_cannot_make_a_batch_uncheckable(tiny: Models, records: list[Generation]) -> None:
    """A proof whose modulus is below topk (no honest prover makes one) once made the whole batch
    "could not check", hiding a batch-mate's fraud. Now it is fraud alone, and the others are judged."""
    honest = ValidationItem.from_generation(records[1])
    proofs = list(honest.proofs)
    poison = replace(honest, proofs=(proofs[0], (100).to_bytes(2, "big") + proofs[1][2:], *proofs[2:]))
    changed = list(honest.output_ids)
    changed[10] = (changed[10] + 1) % 1024
    fraud = replace(honest, output_ids=changed)
    alone = validate_batch(tiny.reference, [poison])[0]
    assert alone.status == MALFORMED and "modulus 100 is below topk 128" in alone.verdict.reasons[0]
    poison_report, fraud_report, honest_report = validate_batch(tiny.reference, [poison, fraud, honest])
    assert poison_report.status == MALFORMED and poison_report.fraud
    assert fraud_report.status == "checked" and fraud_report.fraud
    assert honest_report.accepted
    truncated = replace(honest, proofs=(proofs[0], proofs[1][:-1], *proofs[2:]))
    assert "has 257 bytes, want 258" in validate_batch(tiny.reference, [truncated])[0].verdict.reasons[0]
    zero = replace(honest, proofs=(proofs[0], b"\x00\x00" + proofs[1][2:], *proofs[2:]))
    assert "modulus is 0" in validate_batch(tiny.reference, [zero])[0].verdict.reasons[0]


@pytest.fixture
def crash_on_token(tiny: Models) -> Iterator[int]:
    """A real fault in the validator's own computation: the model raises (as an out-of-memory would)
    whenever a batch holds token 1023, through a forward pre-hook on its embedding."""
    token = 1023

    def hook(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if bool((args[0] == token).any()):
            raise RuntimeError("CPU out of memory (injected for this test)")

    handle = tiny.reference.model.get_input_embeddings().register_forward_pre_hook(hook)
    yield token
    handle.remove()


def test_a_crash_is_isolated_to_its_record_by_splitting(
    tiny: Models, records: list[Generation], crash_on_token: int
) -> None:
    items = _items(records)
    crashing = replace(items[2], prompt_ids=[*items[2].prompt_ids[:-1], crash_on_token])
    reports = validate_batch(tiny.reference, [items[0], items[1], crashing, items[3]])
    assert [r.status for r in reports] == ["checked", "checked", ERROR, "checked"]
    assert all(r.accepted for i, r in enumerate(reports) if i != 2)
    assert reports[2].verdict is None and not reports[2].fraud  # could not check is never fraud
    assert "out of memory (injected" in str(reports[2].error)


def test_the_claimed_mode_holds_one_copy_of_the_weights(
    tiny_llama_dir: Path, tiny: Models, records: list[Generation]
) -> None:
    """A validator that loads only the claimed dtype (2 bytes per parameter) judges records of that
    dtype with calibrated limits, and cannot check records of another dtype (`error`, not fraud)."""
    validator = load_model(tiny_llama_dir, "bfloat16", device="cpu")
    items = _items(records)
    changed = list(items[1].output_ids)
    changed[3] = (changed[3] + 1) % 1024
    fp32 = generate_with_proofs(tiny.reference, list(TINY_PROMPTS[0]), _spec(6))
    reports = validate_batch(
        validator, [*items, replace(items[1], output_ids=changed), ValidationItem.from_generation(fp32)]
    )
    assert {r.mode for r in reports} == {"claimed"}
    assert [r.accepted for r in reports[:4]] == [True] * 4, [r.verdict.reasons for r in reports[:4]]
    assert all(c.expected is None for r in reports[:4] for c in r.chunks)
    assert reports[4].fraud and reports[4].tokens.failures[0].check == "sampler"
    assert reports[5].status == ERROR and "holds bfloat16 weights only" in str(reports[5].error)


def test_bad_arguments_raise(tiny: Models) -> None:
    with pytest.raises(RunnerInputError) as info:
        validate_batch(tiny.reference, [], max_batch_tokens=0)
    assert info.value.field == "max_batch_tokens"
    assert validate_batch(tiny.reference, []) == []


def test_float32_records_are_judged_by_the_chunk_thresholds(tiny: Models) -> None:
    record = generate_with_proofs(tiny.reference, list(TINY_PROMPTS[0]), _spec(6))
    assert {len(p) for p in record.proofs} == {2 + 4 * 128}  # two planes per float32 value
    honest = validate_batch(tiny.reference, [ValidationItem.from_generation(record)])[0]
    assert honest.accepted and honest.verdict.ratio is None
    assert all(chunk.expected is None for chunk in honest.chunks)
    changed = list(record.output_ids)
    changed[0] = (changed[0] + 1) % 1024
    tampered = validate_batch(
        tiny.reference, [replace(ValidationItem.from_generation(record), output_ids=changed)]
    )
    assert not tampered[0].accepted and tampered[0].verdict.failed_chunks == (1,)


def test_float16_records_are_checked_against_float16_arithmetic(tiny_llama_dir: Path, tiny: Models) -> None:
    provider = load_model(tiny_llama_dir, "float16", device="cpu")
    record = generate_with_proofs(provider, list(TINY_PROMPTS[2]), _spec(6))
    item = ValidationItem.from_generation(record)
    fp32_cheat = generate_with_proofs(
        tampering.with_claimed_dtype(tiny.reference, "float16"), list(TINY_PROMPTS[2]), _spec(6)
    )
    honest, cheat = validate_batch(tiny.reference, [item, ValidationItem.from_generation(fp32_cheat)])
    assert item.dtype == "float16" and honest.accepted, honest.verdict.reasons
    assert not cheat.accepted and any("finer precision than float16" in r for r in cheat.verdict.reasons)


def test_logits_post_processing_is_the_models_own(tmp_path: Path) -> None:
    """Some architectures transform lm_head's output before sampling (Gemma 2 soft-caps its logits):
    the replay must see the logits the provider sampled from, or honest sampled records would fail.
    A tiny random Gemma 2 (eager attention: it has no sdpa) with a tight cap."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(
        vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=64, final_logit_softcapping=3.0, max_position_embeddings=512,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(config).to(torch.bfloat16)
    with torch.no_grad():
        model.lm_head.weight.mul_(20)  # logits far beyond the cap
    model.save_pretrained(tmp_path / "gemma2")
    provider = load_model(tmp_path / "gemma2", "bfloat16", device="cpu", attn_implementation="eager")
    validator = load_model(tmp_path / "gemma2", "float32", device="cpu", attn_implementation="eager")
    spec = DecodeSpec(temperature=1.0, seed=5, max_new_tokens=40, stop_token_ids=())
    generation = generate_with_proofs(provider, list(range(1, 9)), spec)
    report = validate_batch(validator, [ValidationItem.from_generation(generation)])[0]
    assert report.accepted, report.verdict.reasons
