"""Detection of model-level cheats with the cheat's own proofs (TOPLOC and the record-level rule) and
of tampered tokens (TOPLOC and the sampler replay): honest records pass on every chunk, tampered ones
are rejected, on SmolLM2-135M (trained, bf16) and on the tiny random Llama. Records have outputs of 1,
2 and 8 decode chunks (32, 64, 256 tokens) and, for the tiny model, short ones (8 tokens).
tests/gpu_core/test_sound_verdicts.py covers the token cheats (the prefill attack) in full.

Every test prints its margins (run with -s): per record the error ratios (prefill chunk, decode
chunks, all) against the rule's limits (gpu_core.runner.verdict), the worst chunk against the paper's
thresholds, and the largest gap behind the sampler's choice against its tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pytest

from gpu_core.runner import tampering
from gpu_core.runner.decoding import DecodeSpec
from gpu_core.runner.generate import Generation
from gpu_core.runner.loading import LoadedModel, load_model
from gpu_core.runner.tiny import prepare_tiny_llama
from gpu_core.runner.validate import RecordReport, ValidationItem, validate_batch
from gpu_core.runner.verdict import POOLED_RATIO_MIN
from tests.gpu_core.conftest import SMOLLM2_SAMPLING, TINY_PROMPTS, TINY_SAMPLING, Models, generate_set

pytestmark = pytest.mark.slow


@dataclass
class Family:
    """One model and its shared records; cheats' records are generated on first use."""

    name: str
    models: Models
    vocab: int
    prompts: list[list[int]]
    lengths: list[int]  # output length of each honest record (prompts cycle)
    cheat_lengths: list[int]  # of the int8 records; fp32-as-bf16 (caught by far) uses the first two
    sampling: DecodeSpec
    other_models: dict[str, Callable[[], LoadedModel]]
    _cache: dict[str, list[Generation]]

    def _generate(self, loaded: LoadedModel, lengths: list[int]) -> list[Generation]:
        prompts = [self.prompts[i % len(self.prompts)] for i in range(len(lengths))]
        return generate_set(loaded, prompts, lengths, self.sampling)

    def records(self, kind: str) -> list[Generation]:
        if kind not in self._cache:
            if kind == "honest":
                self._cache[kind] = self._generate(self.models.bf16, self.lengths)
            elif kind == "honest-eager":
                self._cache[kind] = self._generate(self.models.bf16_eager, self.lengths[:2])
            elif kind == "fp32-as-bf16":
                cheat = tampering.with_claimed_dtype(self.models.reference, "bfloat16")
                self._cache[kind] = self._generate(cheat, self.cheat_lengths[:2])
            elif kind == "int8-weights":
                self._cache[kind] = self._generate(
                    tampering.round_weights_int8(self.models.bf16), self.cheat_lengths
                )
        return self._cache[kind]

    def items(self, kind: str) -> list[ValidationItem]:
        return [ValidationItem.from_generation(g) for g in self.records(kind)]


@pytest.fixture(scope="session")
def tiny_family(tiny: Models, tmp_path_factory: pytest.TempPathFactory) -> Family:
    other_dir = tmp_path_factory.mktemp("other")
    return Family(
        name="tiny",
        models=tiny,
        vocab=1024,
        prompts=[list(p) for p in TINY_PROMPTS],
        lengths=[8, 32, 64, 256],
        cheat_lengths=[8, 32, 64],
        sampling=TINY_SAMPLING,
        other_models={
            "re-initialised (seed 1)": lambda: load_model(
                prepare_tiny_llama(other_dir, seed=1)[0], "float32", "cpu"
            ),
            "1% weight noise": lambda: tampering.perturb_weights(tiny.reference, 0.01),
        },
        _cache={},
    )


@pytest.fixture(scope="session")
def smollm2_family(smollm2: Models, smollm2_prompts: list[list[int]]) -> Family:
    return Family(
        name="SmolLM2",
        models=smollm2,
        vocab=49152,
        prompts=smollm2_prompts,
        lengths=[32, 64, 256],
        cheat_lengths=[32, 64, 256],
        sampling=SMOLLM2_SAMPLING,
        other_models={"1% weight noise": lambda: tampering.perturb_weights(smollm2.reference, 0.01)},
        _cache={},
    )


@pytest.fixture(params=["tiny", "smollm2"])
def family(request: pytest.FixtureRequest) -> Family:
    return request.getfixturevalue(f"{request.param}_family")


def _show(
    family: Family, case: str, items: Sequence[ValidationItem], reports: Sequence[RecordReport]
) -> None:
    for item, report in zip(items, reports, strict=True):
        worst = max(report.chunks, key=lambda c: c.result.mant_err_mean)
        verdict = report.verdict
        print(
            f"{family.name:8s} {case:28s} out={len(item.output_ids):3d} chunks={len(report.chunks) - 1}"
            f" ratio={_fmt(verdict.ratio)} (>= {POOLED_RATIO_MIN})"
            f" prefill={_fmt(verdict.prefill_ratio)} (<= {_fmt(verdict.prefill_limit)})"
            f" decode={_fmt(verdict.decode_ratio)} (<= {_fmt(verdict.decode_limit)})"
            f" max_exp_mismatches={max(c.result.exp_mismatches for c in report.chunks)}/38"
            f" worst_chunk_mant_mean={worst.result.mant_err_mean:.2f}/10"
            f" gap={report.tokens.max_gap:.3f}/{report.tokens.limit:g}"
            f" -> {'accepted' if report.accepted else 'REJECTED'}"
        )


def _fmt(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def _assert_all_rejected(
    family: Family, case: str, items: Sequence[ValidationItem], validator: LoadedModel
) -> None:
    reports = validate_batch(validator, items)
    _show(family, case, items, reports)
    assert [r.accepted for r in reports] == [False] * len(items), case


def test_honest_records_pass_every_chunk(family: Family) -> None:
    for kind in ("honest", "honest-eager"):
        items = family.items(kind)
        reports = validate_batch(family.models.reference, items)
        _show(family, f"{kind} (validator sdpa)", items, reports)
        for report in reports:
            assert report.accepted, report.verdict.reasons
            assert all(chunk.passed for chunk in report.chunks)
    assert [len(g.proofs) - 1 for g in family.records("honest")] == [-(-n // 32) for n in family.lengths]


@pytest.mark.parametrize("batch_tokens", [1, 100_000], ids=["batch1", "one-batch"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_honest_records_pass_across_reorderings(family: Family, attention: str, batch_tokens: int) -> None:
    # The validator's attention kernel and batch size differ from the provider's (sdpa, batch 1), and
    # records generated with eager attention are validated too.
    validator = family.models.reference if attention == "sdpa" else family.models.reference_eager
    items = family.items("honest") + family.items("honest-eager")
    reports = validate_batch(validator, items, max_batch_tokens=batch_tokens)
    _show(
        family,
        f"honest (validator {attention}, {'batch 1' if batch_tokens == 1 else 'batched'})",
        items,
        reports,
    )
    assert all(r.accepted for r in reports), [r.verdict.reasons for r in reports if not r.accepted]


def test_validator_with_another_model_rejects_every_record(family: Family) -> None:
    for name, make in family.other_models.items():
        _assert_all_rejected(family, f"other model: {name}", family.items("honest"), make())


def test_one_changed_prompt_token_is_rejected(family: Family) -> None:
    tampered = []
    for item in family.items("honest"):
        for position in (len(item.prompt_ids) // 2, len(item.prompt_ids) - 1):
            prompt = list(item.prompt_ids)
            prompt[position] = (prompt[position] + 1) % family.vocab
            tampered.append(replace(item, prompt_ids=prompt))
    _assert_all_rejected(family, "one prompt token changed", tampered, family.models.reference)


def test_one_changed_output_token_is_rejected(family: Family) -> None:
    # The first and the middle output token. The last one is covered only by its own row, 1 of up to 32
    # in the last chunk: see test_changed_last_output_token_margins and docs/models.md.
    tampered = []
    for item in family.items("honest"):
        for position in (0, len(item.output_ids) // 2):
            output = list(item.output_ids)
            output[position] = (output[position] + 1) % family.vocab
            tampered.append(replace(item, output_ids=output))
    _assert_all_rejected(family, "one output token changed", tampered, family.models.reference)


def test_fp32_passed_off_as_bf16_is_rejected(family: Family) -> None:
    _assert_all_rejected(
        family, "fp32 computed, bf16 claimed", family.items("fp32-as-bf16"), family.models.reference
    )


def test_int8_rounded_weights_are_rejected(family: Family) -> None:
    _assert_all_rejected(
        family, "int8 per-channel weights", family.items("int8-weights"), family.models.reference
    )


def test_changed_last_output_token_is_rejected(family: Family) -> None:
    """Changing only the last output token alters one activation row of the last chunk, which TOPLOC's
    top-k over up to 32 rows can miss (a finding before the sampler replay); the replay catches it at
    that position, whatever the chunk holds."""
    alone = generate_set(family.models.bf16, family.prompts[:1], [33], family.sampling)
    items = [ValidationItem.from_generation(g) for g in alone] + family.items("honest")
    tampered = []
    for item in items:
        output = list(item.output_ids)
        output[-1] = (output[-1] + 1) % family.vocab
        tampered.append(replace(item, output_ids=output))
    reports = validate_batch(family.models.reference, tampered)
    _show(family, "last output token changed", tampered, reports)
    for item, report in zip(tampered, reports, strict=True):
        assert not report.accepted
        assert any(
            f.check == "sampler" and f.position == len(item.output_ids) - 1 for f in report.tokens.failures
        )
