"""The decode spec (gpu_core.runner.decoding): field checks naming the field, the JSON form, resolution
(stop ids, the seed from the request id), and where a generation ends (stop reasons)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from gpu_core.runner.decoding import (
    ENGINE,
    DecodeSpec,
    end_after,
    expected_end,
    seed_from_request_id,
    stop_problem,
)
from gpu_core.runner.errors import RunnerInputError

SPEC = DecodeSpec(
    temperature=0.7, top_k=40, top_p=0.9, min_p=0.05, seed=3, max_new_tokens=5, stop_token_ids=(2,)
)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"sampler": "mine"}, "decode.sampler", "is not one of"),
        ({"sampler_version": 2}, "decode.sampler_version", "has versions (1,)"),
        ({"sampler_version": True}, "decode.sampler_version", "has versions"),
        ({"temperature": -1.0}, "decode.temperature", "outside [0, 100]"),
        ({"temperature": float("nan")}, "decode.temperature", "finite number"),
        ({"temperature": 0.001}, "decode.temperature", "neither 0 (greedy) nor >= 0.01"),
        ({"temperature": True}, "decode.temperature", "got a boolean"),
        ({"top_p": 0.0}, "decode.top_p", "outside (0, 1]"),
        ({"top_p": 1.5}, "decode.top_p", "outside (0, 1]"),
        ({"top_k": -3}, "decode.top_k", "outside [0,"),
        ({"top_k": 2.0}, "decode.top_k", "must be an integer"),
        ({"min_p": 1.0}, "decode.min_p", "in [0, 1)"),
        ({"repetition_penalty": 0.0}, "decode.repetition_penalty", "outside [0.5, 2]"),
        ({"repetition_penalty": 5e-324}, "decode.repetition_penalty", "outside [0.5, 2]"),
        ({"repetition_penalty": 10.0}, "decode.repetition_penalty", "outside [0.5, 2]"),
        ({"presence_penalty": 2.5}, "decode.presence_penalty", "outside [-2, 2]"),
        ({"frequency_penalty": -3}, "decode.frequency_penalty", "outside [-2, 2]"),
        ({"seed": -1}, "decode.seed", "outside [0,"),
        ({"seed": 2**53}, "decode.seed", "outside [0,"),
        ({"temperature": 0.0}, "decode.seed", "greedy decoding uses no seed"),
        ({"sampler": ENGINE}, "decode.seed", "the engine sampler uses no seed"),
        ({"max_new_tokens": 0}, "decode.max_new_tokens", "outside [1,"),
        ({"stop_token_ids": (3, 2)}, "decode.stop_token_ids", "distinct and in ascending order"),
        ({"stop_token_ids": (2, 2)}, "decode.stop_token_ids", "distinct"),
        ({"stop_token_ids": tuple(range(65))}, "decode.stop_token_ids", "at most 64"),
        ({"stop_token_ids": (True,)}, "decode.stop_token_ids[0]", "must be an integer"),
        ({"stop": ("",)}, "decode.stop[0]", "1 to 256 characters"),
        ({"stop": ("a", "a")}, "decode.stop", "repeated"),
        ({"stop": "ab"}, "decode.stop", "must be an array of strings"),
        ({"stop": ("\ud800",)}, "decode.stop[0]", "not valid Unicode"),
    ],
)
def test_bad_fields_name_the_field(changes: dict, field: str, reason: str) -> None:
    with pytest.raises(RunnerInputError) as info:
        replace(SPEC, **changes)
    assert info.value.field == field
    assert reason in info.value.reason, info.value.reason


def test_the_json_form_round_trips_and_is_strict() -> None:
    data = SPEC.to_dict()
    assert data == {
        "sampler": "toploc-audit/gumbel-max",
        "sampler_version": 1,
        "temperature": 0.7,
        "top_k": 40,
        "top_p": 0.9,
        "min_p": 0.05,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "seed": 3,
        "max_new_tokens": 5,
        "stop_token_ids": [2],
        "stop": [],
    }
    assert DecodeSpec.from_dict(data) == SPEC
    with pytest.raises(RunnerInputError) as info:
        DecodeSpec.from_dict({**data, "typical_p": 0.5})
    assert (info.value.field, info.value.reason) == ("decode.typical_p", "unknown field")
    missing = dict(data)
    del missing["min_p"]
    with pytest.raises(RunnerInputError) as info:
        DecodeSpec.from_dict(missing)
    assert (info.value.field, info.value.reason) == ("decode.min_p", "missing")
    with pytest.raises(RunnerInputError) as info:
        DecodeSpec.from_dict({**data, "stop": "x"})
    assert info.value.field == "decode.stop"
    with pytest.raises(RunnerInputError, match="not resolved"):
        replace(SPEC, stop_token_ids=None).to_dict()


def test_resolution_fills_stop_ids_and_the_seed_from_the_request_id() -> None:
    spec = replace(SPEC, seed=None, stop_token_ids=None)
    resolved = spec.resolved([7, 2, 7], "req-7")
    assert resolved.stop_token_ids == (2, 7) and resolved.seed == seed_from_request_id("req-7")
    assert replace(SPEC, stop_token_ids=()).resolved([2]).stop_token_ids == ()  # told to ignore EOS
    assert SPEC.resolved([9], "other").seed == 3  # a client's seed stays
    digest = hashlib.sha256(b"toploc-audit/seed/v1\x00req-7").digest()
    assert seed_from_request_id("req-7") == int.from_bytes(digest[:8], "big") % 2**53 == 3868631201980065
    with pytest.raises(RunnerInputError, match="needs a seed or a request id"):
        spec.resolved([2])


def test_where_a_generation_ends() -> None:
    spec = replace(SPEC, stop=("da",))
    has = lambda ids: "da" in "".join(chr(96 + t) for t in ids)  # noqa: E731 - token t is a letter
    assert expected_end(spec, [5, 6, 2, 4], has) == (3, "eos")
    assert expected_end(spec, [1, 2, 9], has) == (2, "eos")  # the stop token first
    assert expected_end(spec, [4, 1, 2], has) == (2, "stop")  # "d", then "da": the string ends at token 2
    assert expected_end(spec, [5, 6, 7, 8, 9], has) == (5, "length")
    assert expected_end(spec, [5, 6, 7], has) is None  # it would go on
    assert stop_problem(spec, "eos", [5, 6, 2], has) is None
    truncated = stop_problem(spec, "eos", [5, 6, 7], has)
    assert truncated is not None and truncated.check == "stop-reason" and "end without" in truncated.detail
    extended = stop_problem(spec, "length", [5, 2, 6, 7, 8], has)
    assert extended is not None and (extended.check, extended.position) == ("stop-token", 1)
    wrong = stop_problem(spec, "stop", [5, 6, 7, 8, 9], has)
    assert wrong is not None and "stop reason 'length', but the record says 'stop'" in wrong.detail
    # Without a tokenizer (the recorder) a claimed stop string is taken on trust at the end only.
    assert stop_problem(spec, "stop", [4, 1, 7], None) is None
    assert stop_problem(replace(spec, stop=()), "stop", [4, 1, 7], None) is not None
    assert stop_problem(spec, "stop", [4, 2, 7], None) is not None  # the stop token ended it first


def test_the_fast_end_search_is_the_token_by_token_rule() -> None:
    """expected_end finds the first stop token and max_new_tokens without walking prefixes; it must
    agree with applying end_after after every token, as the decode loop does."""
    import random

    rng = random.Random(0)
    for _ in range(2000):
        stop_ids = tuple(sorted(rng.sample(range(6), rng.randint(0, 2))))
        spec = DecodeSpec(max_new_tokens=rng.randint(1, 12), stop_token_ids=stop_ids)
        output = [rng.randrange(8) for _ in range(rng.randint(1, 14))]
        walked = next(
            (
                (n, r)
                for n in range(1, len(output) + 1)
                if (r := end_after(spec, output[:n], None)) is not None
            ),
            None,
        )
        assert expected_end(spec, output, None) == walked, (spec, output)
