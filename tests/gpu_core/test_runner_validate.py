"""Validation by one batched prefill: per-chunk reports, order, batching, and bad input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gpu_core.runner import tampering
from gpu_core.runner.errors import RunnerInputError
from gpu_core.runner.generate import Generation, generate_with_proofs
from gpu_core.runner.loading import load_model
from gpu_core.runner.sampling import SamplingParams
from gpu_core.runner.validate import ValidationItem, validate_batch
from tests.gpu_core.conftest import TINY_PROMPTS, TINY_SAMPLING, Models


@pytest.fixture(scope="module")
def records(tiny: Models) -> list[Generation]:
    """Records of different lengths and TOPLOC parameters, as validators receive them."""
    p0, p1, p2 = (list(p) for p in TINY_PROMPTS)
    return [
        generate_with_proofs(tiny.bf16, p0, 5, TINY_SAMPLING),
        generate_with_proofs(tiny.bf16, p1, 40, TINY_SAMPLING, decode_batching_size=16),
        generate_with_proofs(tiny.bf16, p2, 3, TINY_SAMPLING, topk=64),
        generate_with_proofs(tiny.bf16, p0, 9, SamplingParams(ignore_eos=True)),
    ]


def test_reports_in_input_order_with_positions_of_every_chunk(
    tiny: Models, records: list[Generation]
) -> None:
    reports = validate_batch(tiny.reference, [ValidationItem.from_generation(g) for g in records])
    assert len(reports) == len(records)
    for report, record in zip(reports, records, strict=True):
        assert report.accepted, report.verdict.reasons
        assert all(chunk.passed for chunk in report.chunks)
        assert len(report.chunks) == len(record.proofs)
        prompt, output = len(record.prompt_ids), len(record.output_ids)
        assert report.chunks[0].begin == 0 and report.chunks[0].end == prompt
        assert report.chunks[-1].end == prompt + output
        for left, right in zip(report.chunks, report.chunks[1:], strict=False):
            assert left.end == right.begin
        assert all(chunk.expected is not None for chunk in report.chunks)
    assert [(c.begin, c.end) for c in reports[1].chunks] == [(0, 31), (31, 47), (47, 63), (63, 71)]


def test_batch_size_does_not_change_verdicts(tiny: Models, records: list[Generation]) -> None:
    items = [ValidationItem.from_generation(g) for g in records]
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
    items = [ValidationItem.from_generation(g) for g in records]
    changed = list(items[1].prompt_ids)
    changed[3] = (changed[3] + 1) % 1024
    items[1] = replace(items[1], prompt_ids=changed)
    verdicts = [report.accepted for report in validate_batch(tiny.reference, items)]
    assert verdicts == [True, False, True, True]


def test_reports_name_the_rule_that_rejected(tiny: Models, records: list[Generation]) -> None:
    item = ValidationItem.from_generation(records[1])
    changed = list(item.output_ids)
    changed[0] = (changed[0] + 1) % 1024
    report = validate_batch(tiny.reference, [replace(item, output_ids=changed)])[0]
    assert not report.accepted
    assert report.verdict.ratio is not None and report.verdict.ratio > 1
    assert any(
        reason.startswith("decode chunks:") and "arithmetic on these tokens" in reason
        for reason in report.verdict.reasons
    )
    assert report.chunks[0].passed  # the prompt is untouched


def _item(records: list[Generation], **changes: object) -> ValidationItem:
    return replace(ValidationItem.from_generation(records[0]), **changes)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"prompt_ids": []}, "items[1].prompt_ids", "is empty"),
        ({"output_ids": [5, 2000]}, "items[1].output_ids[1]", "2000 is not a token id in [0, 1024)"),
        ({"dtype": "int4"}, "items[1].dtype", "'int4' is not one of"),
        ({"topk": 0}, "items[1].topk", "want an int in"),
        ({"topk": 512}, "items[1].topk", "512 exceeds the hidden size 256"),
        ({"decode_batching_size": 0}, "items[1].decode_batching_size", "want an int >= 1"),
        ({"proofs": ()}, "items[1].proofs", "got 0 proofs, want 2 (one per chunk)"),
    ],
)
def test_bad_items_name_the_field_before_any_work(
    tiny: Models, records: list[Generation], changes: dict, field: str, reason: str
) -> None:
    good = ValidationItem.from_generation(records[0])
    with pytest.raises(ValueError) as info:
        validate_batch(tiny.reference, [good, _item(records, **changes)])
    assert isinstance(info.value, RunnerInputError)
    assert info.value.field == field
    assert reason in info.value.reason


def test_malformed_proofs_are_reported_by_position(tiny: Models, records: list[Generation]) -> None:
    proofs = list(records[0].proofs)
    with pytest.raises(RunnerInputError, match="has 257 bytes, want 258") as info:
        validate_batch(tiny.reference, [_item(records, proofs=(proofs[0], proofs[1][:-1]))])
    assert info.value.field == "items[0].proofs[1]"
    zero_modulus = b"\x00\x00" + proofs[1][2:]
    with pytest.raises(RunnerInputError) as info:
        validate_batch(tiny.reference, [_item(records, proofs=(proofs[0], zero_modulus))])
    assert info.value.field == "items[0].proofs[1]" and "modulus" in info.value.reason


def test_validation_needs_the_float32_reference(tiny: Models, records: list[Generation]) -> None:
    with pytest.raises(
        RunnerInputError, match="is bfloat16; validation computes the reference in float32"
    ) as info:
        validate_batch(tiny.bf16, [ValidationItem.from_generation(records[0])])
    assert info.value.field == "loaded.dtype"
    with pytest.raises(RunnerInputError) as info:
        validate_batch(tiny.reference, [], max_batch_tokens=0)
    assert info.value.field == "max_batch_tokens"
    assert validate_batch(tiny.reference, []) == []


def test_float32_records_are_judged_by_the_chunk_thresholds(tiny: Models) -> None:
    record = generate_with_proofs(tiny.reference, list(TINY_PROMPTS[0]), 6, TINY_SAMPLING)
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
    record = generate_with_proofs(provider, list(TINY_PROMPTS[2]), 6, TINY_SAMPLING)
    item = ValidationItem.from_generation(record)
    fp32_cheat = generate_with_proofs(
        tampering.with_claimed_dtype(tiny.reference, "float16"), list(TINY_PROMPTS[2]), 6, TINY_SAMPLING
    )
    honest, cheat = validate_batch(tiny.reference, [item, ValidationItem.from_generation(fp32_cheat)])
    assert item.dtype == "float16" and honest.accepted, honest.verdict.reasons
    assert not cheat.accepted and "finer precision than float16" in cheat.verdict.reasons[-1]
