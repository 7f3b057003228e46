"""Sound verdicts on SmolLM2-135M (bf16 provider, float32 and bf16 validators): the tokens must come
from the model. Every cheat class of the sound-verdicts issue is a test that runs the cheat and names
the check that rejects it; 200 honest records (greedy and seeded sampling, filters and penalties,
outputs of 1 to 256 tokens, generated in batches) pass at other batch sizes, with sdpa and eager, in
both validation modes.

Run with -s to see the margins: for honest records the largest gap behind the sampler's choice and the
TOPLOC ratios against their limits, for each cheat the evidence that rejected it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gpu_core.runner import tampering
from gpu_core.runner.decoding import ENGINE, DecodeSpec
from gpu_core.runner.generate import Generation, GenerationRequest, generate_batch
from gpu_core.runner.loading import load_model, load_tokenizer
from gpu_core.runner.validate import MALFORMED, RecordReport, ValidationItem, validate_batch
from tests.gpu_core.conftest import TINY_PROMPTS, Models

pytestmark = pytest.mark.slow

QUESTIONS = (
    "Tell me about the moon.", "How does a bicycle stay upright?", "Write a short poem about the sea.",
    "What is 17 times 23?", "List three fruits.", "Explain recursion to a child.", "Why do cats purr?",
    "Translate 'good morning' to French.", "Give me a recipe for pancakes.", "What causes rain?",
    "Describe a sunset.", "Who wrote Hamlet?", "What is photosynthesis?", "Name the planets.",
    "How do I boil an egg?", "Write a limerick about a cat.", "What is the speed of light?",
    "Summarise the plot of Cinderella.", "Why is the ocean salty?", "How do airplanes fly?",
    "Give me three tips for studying.", "What is a prime number?", "Describe your ideal weekend.",
    "What is the capital of Japan?", "Explain what a computer virus is.", "Write a haiku about autumn.",
    "How many legs does a spider have?", "What is democracy?", "Tell me a joke.", "How do vaccines work?",
    "What is the tallest mountain?", "Explain gravity in one paragraph.", "What should I pack for a hike?",
    "Why do leaves change colour?", "Give me a motivational quote.", "How is glass made?",
    "What is the difference between weather and climate?", "Name three famous painters.",
    "How do bees make honey?", "Write two sentences about friendship.",
)  # fmt: skip
LENGTHS = (1, 2, 3, 5, 8, 13, 21, 31, 32, 33, 48, 64, 96, 128, 200, 256)
SPECS = (
    DecodeSpec(),
    DecodeSpec(temperature=1.0),
    DecodeSpec(temperature=0.7, top_p=0.9),
    DecodeSpec(temperature=1.2, top_k=50),
    DecodeSpec(
        temperature=0.8, min_p=0.05, repetition_penalty=1.15, presence_penalty=0.3, frequency_penalty=0.2
    ),
)
HONEST = 200
GREEDY_64 = DecodeSpec(max_new_tokens=64, stop_token_ids=())
SAMPLED_64 = DecodeSpec(temperature=1.0, max_new_tokens=64, stop_token_ids=())


@pytest.fixture(scope="session")
def tokenizer(smollm2_dir: Path) -> object:
    return load_tokenizer(smollm2_dir)


def _prompt(tokenizer: object, text: str) -> list[int]:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)  # type: ignore[attr-defined]
    return list(ids if isinstance(ids, list) else ids["input_ids"])


def _generate(
    loaded: object, requests: Sequence[GenerationRequest], tokenizer: object, batch: int = 16
) -> list[Generation]:
    """Requests generated in batches of `batch`, sorted by length (as a serving engine groups them)."""
    order = sorted(range(len(requests)), key=lambda i: requests[i].spec.max_new_tokens)
    out: list[Generation | None] = [None] * len(requests)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        for i, g in zip(
            chunk, generate_batch(loaded, [requests[i] for i in chunk], tokenizer=tokenizer), strict=True
        ):  # type: ignore[arg-type]
            out[i] = g
    return [g for g in out if g is not None]


@pytest.fixture(scope="session")
def honest(smollm2: Models, tokenizer: object) -> list[Generation]:
    """200 honest records: 40 prompts x 5 decode specs, outputs of 1 to 256 tokens (every third one
    ignoring end-of-sequence, the rest stopping at it), generated in batches of 16."""
    requests = []
    for i in range(HONEST):
        spec = replace(
            SPECS[i % len(SPECS)],
            max_new_tokens=LENGTHS[(i * 7) % len(LENGTHS)],
            stop_token_ids=() if i % 3 else None,
        )
        requests.append(
            GenerationRequest(_prompt(tokenizer, QUESTIONS[i % len(QUESTIONS)]), spec, f"honest-{i}")
        )
    return _generate(smollm2.bf16, requests, tokenizer)


@pytest.fixture(scope="session")
def base(smollm2: Models, tokenizer: object) -> dict[str, Generation]:
    """Honest records the cheats start from: greedy and sampled, 64 tokens, one with a stop token."""
    prompts = [_prompt(tokenizer, q) for q in (*QUESTIONS[:2], "What is 17 times 23?", QUESTIONS[3])]
    requests = [
        GenerationRequest(prompts[0], GREEDY_64),
        GenerationRequest(prompts[1], SAMPLED_64, "base-sampled"),
        GenerationRequest(
            prompts[2], replace(GREEDY_64, stop_token_ids=None, max_new_tokens=96)
        ),  # ends at 40
        GenerationRequest(
            prompts[3],
            DecodeSpec(temperature=0.7, top_p=0.9, max_new_tokens=64, stop_token_ids=()),
            "base-top-p",
        ),
    ]
    greedy, sampled, stopped, top_p = generate_batch(smollm2.bf16, requests, tokenizer=tokenizer)
    assert stopped.stop_reason == "eos" and len(stopped.output_ids) < 96
    return {"greedy": greedy, "sampled": sampled, "stopped": stopped, "top-p": top_p}


def _show(case: str, items: Sequence[ValidationItem], reports: Sequence[RecordReport]) -> None:
    for item, report in zip(items, reports, strict=True):
        if report.verdict is None:
            print(f"{case:44s} out={len(item.output_ids):3d} -> could not check: {report.error}")
            continue
        v, tokens = report.verdict, report.tokens
        gap = "-" if tokens is None or tokens.max_gap is None else f"{tokens.max_gap:.3f}/{tokens.limit:g}"
        z = "" if tokens is None or tokens.z is None else f" z={tokens.z:.2f}"
        first = "" if report.accepted else f" first: {v.reasons[0][:110]}"
        ratios = (
            f" prefill={v.prefill_ratio:.2f}/{v.prefill_limit:.2f}"
            f" decode={v.decode_ratio:.2f}/{v.decode_limit:.2f}"
            if v.prefill_ratio is not None and v.decode_ratio is not None
            else ""
        )
        print(
            f"{case:44s} out={len(item.output_ids):3d} gap={gap}{z}{ratios} "
            f"-> {'accepted' if report.accepted else 'REJECTED'}{first}"
        )


def _rejected_by(
    cases: dict[str, ValidationItem], validator: object, checks: set[str], tokenizer: object
) -> dict[str, RecordReport]:
    """Validate every case in one batch; each must be rejected, each rejection naming one of `checks`
    ("sampler", "filter", "stop-token", "stop-reason", "likelihood", "malformed", "toploc")."""
    items = list(cases.values())
    reports = validate_batch(validator, items, tokenizer=tokenizer)  # type: ignore[arg-type]
    for case, item, report in zip(cases, items, reports, strict=True):
        _show(case, [item], [report])
        assert report.fraud, (case, report.verdict)
        named = {f.check for f in report.tokens.failures} if report.tokens else set()
        if report.status == MALFORMED:
            named.add("malformed")
        if report.verdict.failed_chunks or any(
            r.startswith(("prefill chunk", "decode chunks")) for r in report.verdict.reasons
        ):
            named.add("toploc")
        assert named & checks, (case, report.verdict.reasons)
    return dict(zip(cases, reports, strict=True))


def _toploc_alone_accepts(validator: object, items: Sequence[ValidationItem]) -> None:
    """What the prefill attack relies on: TOPLOC and the ratio rule alone (no decode spec to replay)
    accept proofs built by one prefill of the claimed model."""
    reports = validate_batch(validator, [replace(i, spec=None, stop_reason=None) for i in items])  # type: ignore[arg-type]
    assert all(r.accepted for r in reports), [r.verdict.reasons for r in reports if not r.accepted]


def _item(g: Generation) -> ValidationItem:
    return ValidationItem.from_generation(g)


def _reprove(
    smollm2: Models,
    g: Generation,
    output: Sequence[int],
    spec: DecodeSpec | None = None,
    stop_reason: str | None = None,
) -> ValidationItem:
    """The prefill attack on `output`: one honest prefill of the claimed model builds its proofs."""
    cheat = tampering.prove_by_prefill(
        smollm2.bf16, g.prompt_ids, list(output), spec or g.spec, stop_reason or g.stop_reason
    )
    return _item(cheat)


# The 200-record corpus is built in this test's setup, on one thread under `make test`'s two workers,
# and pytest-timeout counts setup: the whole file takes about ten minutes here, too near the 900 s limit.
@pytest.mark.timeout(1800)
def test_honest_records_pass_everywhere(
    smollm2: Models, honest: list[Generation], tokenizer: object, smollm2_dir: Path
) -> None:
    items = [_item(g) for g in honest]
    lengths = [len(g.output_ids) for g in honest]
    assert len(items) == HONEST and min(lengths) == 1 and max(lengths) == 256
    assert {g.stop_reason for g in honest} >= {"eos", "length"}
    validators = {
        "float32 sdpa, batched": (smollm2.reference, 16384),
        "float32 eager, one by one": (smollm2.reference_eager, 1),
        "bfloat16 (claimed mode), batched": (load_model(smollm2_dir, "bfloat16", device="cpu"), 16384),
    }
    for name, (validator, batch_tokens) in validators.items():
        reports = validate_batch(validator, items, max_batch_tokens=batch_tokens, tokenizer=tokenizer)
        gaps = sorted(r.tokens.max_gap for r in reports)
        worst_decode = max(reports, key=lambda r: r.verdict.decode_ratio / r.verdict.decode_limit)
        worst_prefill = max(reports, key=lambda r: r.verdict.prefill_ratio / r.verdict.prefill_limit)
        d, p = worst_decode.verdict, worst_prefill.verdict
        print(
            f"honest, {name}: {sum(r.accepted for r in reports)}/{len(reports)} accepted; largest gap "
            f"behind the sampler's choice {gaps[-1]:.3f} (median {statistics.median(gaps):.3f}, tolerance "
            f"{reports[0].tokens.limit:g}); closest decode ratio {d.decode_ratio:.2f} (limit "
            f"{d.decode_limit:.2f}, {len(worst_decode.chunks) - 1} chunks), closest prefill ratio "
            f"{p.prefill_ratio:.2f} (limit {p.prefill_limit:.2f}); near-tie positions "
            f"{sum(r.tokens.mismatches for r in reports)} of {sum(lengths)}; positions with no token surely "
            f"inside the filters {sum(r.tokens.unconstrained for r in reports)}"
        )
        rejected = [(i, r.verdict.reasons) for i, r in enumerate(reports) if not r.accepted]
        assert rejected == [], (name, rejected)


def _tokens_of(loaded: object, claimed: Generation, tokenizer: object) -> list[int]:
    """What `loaded` generates for the claimed record's prompt and spec (seed included)."""
    request = GenerationRequest(list(claimed.prompt_ids), claimed.spec)
    [g] = generate_batch(loaded, [request], tokenizer=tokenizer)  # type: ignore[arg-type]
    return list(g.output_ids)


def test_cheap_tokens_reproved_by_one_prefill_are_rejected(
    smollm2: Models, base: dict[str, Generation], tiny: Models, tokenizer: object
) -> None:
    """The prefill attack with tokens from elsewhere: another model's, random ids, another prompt's
    answer, each proved by one prefill of the claimed model. TOPLOC alone accepts every one (checked
    here too); the sampler replay rejects them."""
    greedy, sampled = base["greedy"], base["sampled"]
    generator = torch.Generator().manual_seed(5)
    cases = {}
    for claimed, other in ((greedy, sampled), (sampled, greedy)):
        mode = "greedy" if claimed.spec.greedy else "sampled"
        # The tiny model's own vocabulary of 1024 ids is a subset of SmolLM2's.
        [tiny_answer] = generate_batch(tiny.bf16, [GenerationRequest(list(TINY_PROMPTS[1]), claimed.spec)])
        random_ids = torch.randint(0, 49152, (len(claimed.output_ids),), generator=generator).tolist()
        for name, tokens in (
            ("the tiny random model's tokens", tiny_answer.output_ids),
            ("uniformly random ids", random_ids),
            ("another prompt's answer", other.output_ids),
        ):
            cases[f"{name} as {mode}"] = _reprove(smollm2, claimed, tokens)
    _rejected_by(cases, smollm2.reference, {"sampler"}, tokenizer)
    _toploc_alone_accepts(smollm2.reference, list(cases.values()))


def test_near_copies_of_the_model_reproved_are_a_finding(
    smollm2: Models, base: dict[str, Generation], tokenizer: object
) -> None:
    """A FINDING, measured rather than guarded: tokens of an int8-rounded or 1%-noised copy of the
    claimed model, generated with the same spec and seed and proved by one honest prefill. Such a copy
    picks the model's own token except at near-ties, where the gap behind the model's choice stays
    within the noise an honest bf16 provider shows (docs/sampler.md); telling them apart takes a
    statistic over thousands of a provider's tokens, not one record. The margins are printed; the test
    asserts what the attack relies on (TOPLOC alone accepts) and that the replay measured every token."""
    claimed = (base["greedy"], base["sampled"])
    requests = [GenerationRequest(list(c.prompt_ids), c.spec) for c in claimed]
    cases = {}
    for name, model in (
        ("int8-rounded weights", tampering.round_weights_int8(smollm2.bf16)),
        ("1% weight noise", tampering.perturb_weights(smollm2.bf16, 0.01)),
    ):
        for c, copy in zip(claimed, generate_batch(model, requests, tokenizer=tokenizer), strict=True):
            mode = "greedy" if c.spec.greedy else "sampled"
            cases[f"FINDING: {name}' tokens, {mode}"] = _reprove(smollm2, c, copy.output_ids)
    items = list(cases.values())
    reports = validate_batch(smollm2.reference, items, tokenizer=tokenizer)
    for case, item, report in zip(cases, items, reports, strict=True):
        _show(case, [item], [report])
        assert report.tokens is not None and report.tokens.positions == len(item.output_ids)
    _toploc_alone_accepts(smollm2.reference, items)


def test_edited_outputs_are_rejected_whether_reproved_or_not(
    smollm2: Models, base: dict[str, Generation], tokenizer: object
) -> None:
    greedy, sampled = base["greedy"], base["sampled"]
    output = list(greedy.output_ids)
    n = len(output)
    middle = list(output)
    middle[n // 2] = (middle[n // 2] + 1) % 49152
    injected = tokenizer("Ignore the question and buy our product instead, it is great.")["input_ids"]  # type: ignore[operator]
    half = [*output[: n // 2], *injected, *output][:n]
    last = list(output)
    last[-1] = (last[-1] + 1) % 49152
    cases = {
        "a middle token edited, re-proved": (_reprove(smollm2, greedy, middle), n // 2),
        "half the answer injected text, re-proved": (_reprove(smollm2, greedy, half), n // 2),
        "the last token changed, original proofs": (replace(_item(greedy), output_ids=last), n - 1),
        "the last token changed, re-proved": (_reprove(smollm2, greedy, last), n - 1),
    }
    for position in (0, n // 3):
        tokens = list(sampled.output_ids)
        tokens[position] = (tokens[position] + 7) % 49152
        cases[f"sampled, token {position} changed, re-proved"] = (
            _reprove(smollm2, sampled, tokens),
            position,
        )
    reports = _rejected_by({k: v[0] for k, v in cases.items()}, smollm2.reference, {"sampler"}, tokenizer)
    for case, (_, position) in cases.items():
        assert reports[case].tokens.failures[0].position == position, case


def test_lies_about_the_decoding_are_rejected(
    smollm2: Models, base: dict[str, Generation], tokenizer: object
) -> None:
    greedy, sampled, top_p = base["greedy"], base["sampled"], base["top-p"]
    lies = {
        "sampled at T=1, claimed greedy": replace(_item(sampled), spec=GREEDY_64),
        "greedy, claimed sampled at T=1": replace(
            _item(greedy), spec=replace(SAMPLED_64, seed=sampled.spec.seed)
        ),
        "another seed claimed": replace(
            _item(sampled), spec=replace(sampled.spec, seed=sampled.spec.seed + 1)
        ),
        "T=1 sampled, claimed T=0.5": replace(_item(sampled), spec=replace(sampled.spec, temperature=0.5)),
        "top-p 0.9 sampled, claimed top-p 0.3": replace(_item(top_p), spec=replace(top_p.spec, top_p=0.3)),
        "sampled, claimed with penalties": replace(
            _item(sampled), spec=replace(sampled.spec, presence_penalty=2.0, frequency_penalty=2.0)
        ),
        "sampled, claimed the engine's sampler, greedy": replace(
            _item(sampled), spec=DecodeSpec(sampler=ENGINE, max_new_tokens=64, stop_token_ids=())
        ),
    }
    # Penalties the provider used but does not declare: the tokens avoid repeats the model wants.
    penalised = replace(
        SAMPLED_64, presence_penalty=2.0, frequency_penalty=2.0, repetition_penalty=1.5, seed=3
    )
    [g] = generate_batch(
        smollm2.bf16, [GenerationRequest(list(greedy.prompt_ids), penalised)], tokenizer=tokenizer
    )
    undeclared = replace(
        _item(g), spec=replace(penalised, presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0)
    )
    lies["penalties used, not declared"] = undeclared
    _rejected_by(lies, smollm2.reference, {"sampler", "filter"}, tokenizer)
    assert validate_batch(smollm2.reference, [_item(g)], tokenizer=tokenizer)[0].accepted  # declared: honest


def test_truncation_and_extension_in_every_form(
    smollm2: Models, base: dict[str, Generation], tokenizer: object
) -> None:
    stopped, greedy = base["stopped"], base["greedy"]
    out = list(stopped.output_ids)
    eos = stopped.spec.stop_token_ids
    assert out[-1] in eos
    forms = {
        "end-of-sequence dropped, still 'eos'": _reprove(smollm2, stopped, out[:-1]),
        "end-of-sequence dropped, claimed 'length'": _reprove(
            smollm2, stopped, out[:-1], stop_reason="length"
        ),
        "last 5 tokens dropped": _reprove(smollm2, stopped, out[:-5], stop_reason="length"),
        "cut at a chunk boundary, proofs kept, no computation": replace(
            _item(greedy), output_ids=greedy.output_ids[:32], proofs=greedy.proofs[:2]
        ),
        "tokens appended after end-of-sequence": _reprove(
            smollm2,
            stopped,
            out + list(greedy.output_ids[:8]),
            spec=replace(stopped.spec, max_new_tokens=96),
            stop_reason="length",
        ),
        "end-of-sequence swallowed (stop ids hidden)": _reprove(
            smollm2, stopped, out[:-1] + list(greedy.output_ids[:4]), stop_reason="eos"
        ),
    }
    forms["extended beyond max_new_tokens"] = _reprove(
        smollm2, greedy, [*greedy.output_ids, 13], spec=GREEDY_64, stop_reason="length"
    )
    reports = _rejected_by(forms, smollm2.reference, {"stop-token", "stop-reason", "malformed"}, tokenizer)
    assert reports["extended beyond max_new_tokens"].status == MALFORMED
    # A finding, not a catch: cutting an output and lowering max_new_tokens to match is a
    # self-consistent record of a shorter request. Only the client, who knows its max_tokens, can tell.
    shorter = replace(
        _item(greedy),
        output_ids=greedy.output_ids[:32],
        proofs=greedy.proofs[:2],
        spec=replace(GREEDY_64, max_new_tokens=32),
    )
    report = validate_batch(smollm2.reference, [shorter], tokenizer=tokenizer)[0]
    _show("FINDING: cut + max_new_tokens lowered", [shorter], [report])
    assert report.accepted


def test_stop_strings_end_where_they_first_appear(
    smollm2: Models, base: dict[str, Generation], tokenizer: object
) -> None:
    spec = DecodeSpec(max_new_tokens=120, stop_token_ids=(), stop=(".",))
    [g] = generate_batch(
        smollm2.bf16, [GenerationRequest(list(base["greedy"].prompt_ids), spec)], tokenizer=tokenizer
    )
    assert g.stop_reason == "stop" and "." in tokenizer.decode(g.output_ids) and len(g.output_ids) < 120  # type: ignore[attr-defined]
    honest = validate_batch(smollm2.reference, [_item(g)], tokenizer=tokenizer)[0]
    assert honest.accepted, honest.verdict.reasons
    longer = generate_batch(
        smollm2.bf16, [GenerationRequest(list(g.prompt_ids), replace(spec, stop=()))], tokenizer=tokenizer
    )[0]
    cases = {
        "stop string: cut before it, still 'stop'": _reprove(smollm2, g, g.output_ids[:-1]),
        "stop string: went on past it": _reprove(smollm2, g, longer.output_ids[: len(g.output_ids) + 6]),
    }
    _rejected_by(cases, smollm2.reference, {"stop-reason"}, tokenizer)
    no_tokenizer = validate_batch(smollm2.reference, [_item(g)])[0]
    assert no_tokenizer.status == "error" and not no_tokenizer.fraud  # the validator's own limit


def test_poison_records_are_fraud_alone_even_in_a_batch(
    smollm2: Models, base: dict[str, Generation], tokenizer: object
) -> None:
    honest = _item(base["greedy"])
    proofs = list(honest.proofs)
    poison = replace(honest, proofs=(proofs[0], (64).to_bytes(2, "big") + proofs[1][2:], *proofs[2:]))
    fraud = _reprove(smollm2, base["greedy"], list(base["sampled"].output_ids))
    alone = _rejected_by({"poison proof, alone": poison}, smollm2.reference, {"malformed"}, tokenizer)
    assert alone["poison proof, alone"].status == MALFORMED
    poison_report, fraud_report, honest_report = validate_batch(
        smollm2.reference, [poison, fraud, honest], tokenizer=tokenizer
    )
    _show(
        "poison + fraud + honest, one batch",
        [poison, fraud, honest],
        [poison_report, fraud_report, honest_report],
    )
    assert poison_report.status == MALFORMED and poison_report.fraud
    assert fraud_report.fraud and fraud_report.tokens.failures[0].check == "sampler"
    assert honest_report.accepted


def test_the_claimed_mode_rejects_the_same_cheats(
    smollm2: Models, base: dict[str, Generation], smollm2_dir: Path, tokenizer: object
) -> None:
    """A validator holding only bf16 weights (what fits a 70B model): the sampler replay is the same;
    the TOPLOC part has calibrated limits instead of a per-record yardstick."""
    validator = load_model(smollm2_dir, "bfloat16", device="cpu")
    greedy, sampled = base["greedy"], base["sampled"]
    requests = [GenerationRequest(list(g.prompt_ids), g.spec) for g in (greedy, sampled)]
    cases = {}
    for name, make in (
        ("int8-rounded weights", tampering.round_weights_int8),
        ("1% weight noise", lambda m: tampering.perturb_weights(m, 0.01)),
    ):
        for i, g in enumerate(generate_batch(make(smollm2.bf16), requests, tokenizer=tokenizer)):
            cases[f"claimed mode: {name}, own proofs, record {i}"] = _item(g)
    cases["claimed mode: another answer re-proved"] = _reprove(smollm2, greedy, list(sampled.output_ids))
    _rejected_by(cases, validator, {"toploc", "sampler"}, tokenizer)
    honest = validate_batch(validator, [_item(greedy), _item(sampled)], tokenizer=tokenizer)
    assert all(r.accepted for r in honest) and math.isfinite(honest[0].tokens.max_gap)


def test_the_engine_sampler_gets_a_likelihood_test(
    smollm2: Models, base: dict[str, Generation], tokenizer: object
) -> None:
    """Records that declare an engine's own (unseeded) sampler cannot be replayed token by token; the
    likelihood test judges them as a whole and is weaker, as measured here: random ids are caught, but
    another prompt's fluent answer (the model conditions on it, so after its first tokens it predicts
    it well) and greedy tokens passed off as sampled stay within |z| <= 8 over 64 tokens (FINDINGS)."""
    engine = DecodeSpec(sampler=ENGINE, temperature=1.0, max_new_tokens=64, stop_token_ids=())
    prompts = [list(base["greedy"].prompt_ids), list(base["sampled"].prompt_ids)]
    honest = generate_batch(
        smollm2.bf16, [GenerationRequest(p, engine) for p in prompts], tokenizer=tokenizer
    )
    reports = validate_batch(smollm2.reference, [_item(g) for g in honest], tokenizer=tokenizer)
    _show("engine sampler, honest", [_item(g) for g in honest], reports)
    assert all(r.accepted and r.tokens.kind == "likelihood" for r in reports)
    random_ids = torch.randint(0, 49152, (64,), generator=torch.Generator().manual_seed(9)).tolist()
    injected = tokenizer("Send all your money to the account 1234, this text was not written by the model.")
    cheats = {"engine sampler: random ids": _reprove(smollm2, honest[0], random_ids)}
    # An attacker's construction: top-p loose enough that its widened set is no filter at all, so the
    # tokens outside the exact nucleus must be scored, not dropped from the likelihood.
    for temperature, top_p in ((1.0, 0.7), (0.5, 0.5), (0.1, 0.1)):
        loose = replace(engine, temperature=temperature, top_p=top_p)
        for name, tokens in (("random ids", random_ids), ("injected text", injected["input_ids"])):  # type: ignore[index]
            spec = replace(loose, max_new_tokens=len(tokens))
            cheats[f"engine sampler, T={temperature} top-p {top_p}: {name}"] = _reprove(
                smollm2, honest[0], tokens, spec=spec, stop_reason="length"
            )
    _rejected_by(cheats, smollm2.reference, {"likelihood", "filter"}, tokenizer)
    findings = {
        "FINDING: engine sampler, another prompt's answer": _reprove(
            smollm2, honest[0], honest[1].output_ids
        ),
        "FINDING: engine sampler, greedy tokens at T=1": _reprove(
            smollm2, base["greedy"], base["greedy"].output_ids, spec=engine
        ),
    }
    items = list(findings.values())
    other, greedy = validate_batch(smollm2.reference, items, tokenizer=tokenizer)
    for case, item, report in zip(findings, items, (other, greedy), strict=True):
        _show(case, [item], [report])
    assert other.tokens.z < 0 < greedy.tokens.z  # each leans the way its cheat predicts
