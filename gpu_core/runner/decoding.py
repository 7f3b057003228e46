"""The decode specification: everything that decides which tokens a generation emits, as a record
(version 2) binds it. Pure Python (no torch), so the recorder can check records without loading torch.

The sampler (gpu_core.runner.sampler, docs/sampler.md) turns the model's logits at each output position
into one token:

1. penalties on the raw logits: `repetition_penalty` (every token of prompt + output so far: positive
   logits divided by it, negative ones multiplied), then `presence_penalty` and `frequency_penalty`
   (every token of the output so far: minus presence, minus frequency x its count);
2. temperature 0: the token with the largest logit (greedy; ties to the smallest id). Otherwise the
   logits are divided by the temperature and filtered: `top_k` (0: off; ties at the k-th value kept),
   `top_p` (1: off; the smallest set of most likely tokens whose mass reaches top_p), `min_p` (0: off;
   tokens at least min_p times as likely as the most likely one);
3. the `toploc-audit/gumbel-max` sampler picks argmax of scaled logit + Gumbel noise, the noise a pure
   function of (seed, output position, token id) (gpu_core.runner.noise): replayable by a validator.
   The `engine` sampler is an inference engine's own (unseeded) sampling: not replayable, so it gets a
   statistical likelihood test instead (weaker);
4. generation stops after a token of `stop_token_ids` (stop reason `eos`), once the decoded output
   contains one of the `stop` strings (`stop`), or after `max_new_tokens` tokens (`length`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from gpu_core.runner.errors import RunnerInputError

GUMBEL_MAX = "toploc-audit/gumbel-max"
"""The replayable sampler: Gumbel-max with counter-based noise (docs/sampler.md)."""
ENGINE = "engine"
"""An engine's own sampler, unseeded or not replayable: judged by a likelihood test."""
SAMPLERS = {GUMBEL_MAX: (1,), ENGINE: (1,)}
"""Known samplers and their versions."""

STOP_REASONS = ("eos", "stop", "length")
MAX_STOP_TOKEN_IDS = 64
MAX_STOP_STRINGS = 16
MAX_STOP_CHARS = 256
MAX_NEW_TOKENS = 1 << 20
MAX_SEED = 2**53 - 1  # exact in JSON
MAX_TEMPERATURE = 100.0
MIN_TEMPERATURE = 0.01
"""Temperatures are 0 (greedy) or at least this: below it, scaled logits outgrow float32's precision."""
MIN_REPETITION_PENALTY = 0.5
MAX_REPETITION_PENALTY = 2.0
"""The repetition penalty's range. It multiplies (or divides) a seen token's logit, and so its
numerical error: the replay's tolerance grows by max(rp, 1/rp). Measured (an attacker's test): at 10 a
steered advert passed the replay, 1e-50 made the tolerance infinite; at 2 steering stayed on topic."""
MAX_ABS_PENALTY = 2.0  # OpenAI's range for presence and frequency penalties

_SEED_DOMAIN = b"toploc-audit/seed/v1\x00"


def seed_from_request_id(request_id: str) -> int:
    """The seed of a sampled generation whose client gave none: fixed by the request id before any
    token exists. First 8 bytes of SHA-256("toploc-audit/seed/v1" || 0x00 || request_id) mod 2**53."""
    digest = hashlib.sha256(_SEED_DOMAIN + request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _number(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RunnerInputError(f"decode.{name}", f"must be a finite number, got {_kind(value)}")
    if (value <= low if low_open else value < low) or value > high:
        raise RunnerInputError(
            f"decode.{name}", f"{value} is outside {'(' if low_open else '['}{low:g}, {high:g}]"
        )
    return float(value)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RunnerInputError(f"decode.{name}", f"must be an integer, got {_kind(value)}")
    if not low <= value <= high:
        raise RunnerInputError(f"decode.{name}", f"{value} is outside [{low}, {high}]")
    return value


@dataclass(frozen=True)
class DecodeSpec:
    """How a generation chose its tokens (module docstring). Invariants are checked on construction;
    bad values raise RunnerInputError naming `decode.<field>`.

    `seed` is required by the gumbel-max sampler at temperature > 0 and must be None otherwise (greedy
    decoding and the engine sampler use none; `resolved` fills it from the request id). `stop_token_ids`
    None means "the model's end-of-sequence ids", filled in by `resolved`; an empty tuple means the
    generation ignores end-of-sequence.
    """

    sampler: str = GUMBEL_MAX
    sampler_version: int = 1
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    max_new_tokens: int = 256
    stop_token_ids: tuple[int, ...] | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.sampler, str) or self.sampler not in SAMPLERS:
            raise RunnerInputError("decode.sampler", f"{self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        versions = SAMPLERS[self.sampler]
        if isinstance(self.sampler_version, bool) or self.sampler_version not in versions:
            raise RunnerInputError(
                "decode.sampler_version", f"{self.sampler_version!r}: {self.sampler} has versions {versions}"
            )
        set_ = object.__setattr__
        set_(self, "temperature", _number("temperature", self.temperature, 0.0, MAX_TEMPERATURE))
        if 0 < self.temperature < MIN_TEMPERATURE:
            raise RunnerInputError(
                "decode.temperature", f"{self.temperature} is neither 0 (greedy) nor >= {MIN_TEMPERATURE}"
            )
        set_(self, "top_k", _integer("top_k", self.top_k, 0, 2**31 - 1))
        set_(self, "top_p", _number("top_p", self.top_p, 0.0, 1.0, low_open=True))
        if isinstance(self.min_p, bool) or not isinstance(self.min_p, int | float) or not 0 <= self.min_p < 1:
            raise RunnerInputError("decode.min_p", f"must be a number in [0, 1), got {self.min_p!r}")
        set_(self, "min_p", float(self.min_p))
        set_(
            self,
            "repetition_penalty",
            _number(
                "repetition_penalty", self.repetition_penalty, MIN_REPETITION_PENALTY, MAX_REPETITION_PENALTY
            ),
        )
        for name in ("presence_penalty", "frequency_penalty"):
            set_(self, name, _number(name, getattr(self, name), -MAX_ABS_PENALTY, MAX_ABS_PENALTY))
        set_(self, "max_new_tokens", _integer("max_new_tokens", self.max_new_tokens, 1, MAX_NEW_TOKENS))
        if self.seed is not None:
            _integer("seed", self.seed, 0, MAX_SEED)
            if not self.seeded:
                why = "greedy decoding" if self.greedy else f"the {self.sampler} sampler"
                raise RunnerInputError("decode.seed", f"must be null: {why} uses no seed")
        if self.stop_token_ids is not None:
            ids = self.stop_token_ids
            if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
                raise RunnerInputError("decode.stop_token_ids", f"must be an array, got {_kind(ids)}")
            if len(ids) > MAX_STOP_TOKEN_IDS:
                raise RunnerInputError(
                    "decode.stop_token_ids", f"has {len(ids)} ids, at most {MAX_STOP_TOKEN_IDS}"
                )
            for i, token in enumerate(ids):
                _integer(f"stop_token_ids[{i}]", token, 0, 2**31 - 1)
            if len(set(ids)) != len(ids) or list(ids) != sorted(ids):
                raise RunnerInputError("decode.stop_token_ids", "must be distinct and in ascending order")
            set_(self, "stop_token_ids", tuple(ids))
        stop = self.stop
        if isinstance(stop, str | bytes) or not isinstance(stop, Sequence):
            raise RunnerInputError("decode.stop", f"must be an array of strings, got {_kind(stop)}")
        if len(stop) > MAX_STOP_STRINGS:
            raise RunnerInputError("decode.stop", f"has {len(stop)} strings, at most {MAX_STOP_STRINGS}")
        for i, text in enumerate(stop):
            if not isinstance(text, str) or not 0 < len(text) <= MAX_STOP_CHARS:
                raise RunnerInputError(
                    f"decode.stop[{i}]", f"must be a string of 1 to {MAX_STOP_CHARS} characters"
                )
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise RunnerInputError(f"decode.stop[{i}]", "is not valid Unicode") from None
        if len(set(stop)) != len(stop):
            raise RunnerInputError("decode.stop", "has repeated strings")
        set_(self, "stop", tuple(stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def seeded(self) -> bool:
        """True when the tokens depend on a seed: the gumbel-max sampler at temperature > 0."""
        return self.sampler == GUMBEL_MAX and not self.greedy

    @property
    def replayable(self) -> bool:
        """True when a validator can recompute every token: greedy, or the gumbel-max sampler."""
        return self.greedy or self.sampler == GUMBEL_MAX

    @property
    def has_penalties(self) -> bool:
        return self.repetition_penalty != 1 or self.presence_penalty != 0 or self.frequency_penalty != 0

    @property
    def is_resolved(self) -> bool:
        return self.stop_token_ids is not None and (self.seed is not None or not self.seeded)

    def resolved(self, eos_token_ids: Sequence[int], request_id: str | None = None) -> DecodeSpec:
        """This spec with stop_token_ids (the model's end-of-sequence ids, unless given) and the seed
        (from `request_id`, unless given) filled in, as a record states them."""
        spec = self
        if spec.stop_token_ids is None:
            spec = replace(spec, stop_token_ids=tuple(sorted(set(eos_token_ids))))
        if spec.seeded and spec.seed is None:
            if request_id is None:
                raise RunnerInputError(
                    "decode.seed", "sampling needs a seed or a request id to derive it from"
                )
            spec = replace(spec, seed=seed_from_request_id(request_id))
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a record (version 2) stores. Requires a resolved spec."""
        if not self.is_resolved:
            raise RunnerInputError("decode", "is not resolved (stop_token_ids or seed missing)")
        out: dict[str, Any] = {name: getattr(self, name) for name in _FIELD_NAMES}
        out["stop_token_ids"] = list(self.stop_token_ids or ())
        out["stop"] = list(self.stop)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> DecodeSpec:
        """Parse the JSON form (every field required, no others); errors name `decode.<field>`."""
        if not isinstance(data, Mapping):
            raise RunnerInputError("decode", f"must be an object, got {_kind(data)}")
        names = _FIELD_NAMES
        for name in names:
            if name not in data:
                raise RunnerInputError(f"decode.{name}", "missing")
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise RunnerInputError(f"decode.{unknown[0]}", "unknown field")
        values = dict(data)
        for name in ("stop_token_ids", "stop"):
            if not isinstance(values[name], list):
                raise RunnerInputError(f"decode.{name}", f"must be an array, got {_kind(values[name])}")
            values[name] = tuple(values[name])
        return cls(**values)


_FIELD_NAMES = tuple(f.name for f in fields(DecodeSpec))
"""DecodeSpec's fields in order (dataclasses.fields rebuilds its tuple on every call: recorders parse
thousands of specs a second)."""


def spec_problem(
    spec: DecodeSpec, vocab: int, positions: int | None, prompt_len: int
) -> tuple[str, str] | None:
    """(decode field, reason) if a model of `vocab` ids and `positions` positions (None: unbounded)
    cannot run `spec` after a prompt of `prompt_len` tokens, else None. One rule for the provider
    (generate.check_spec), the recorder (Record.check_model) and the validator."""
    for i, token in enumerate(spec.stop_token_ids or ()):
        if token >= vocab:
            return f"stop_token_ids[{i}]", f"token id {token} is outside the vocabulary ({vocab} ids)"
    if spec.top_k > vocab:
        return "top_k", f"{spec.top_k} exceeds the vocabulary ({vocab} ids)"
    if positions is not None and prompt_len + spec.max_new_tokens > positions:
        return (
            "max_new_tokens",
            f"prompt ({prompt_len}) + {spec.max_new_tokens} exceeds the model's {positions} positions",
        )
    return None


HasStop = Callable[[Sequence[int]], bool]
"""has_stop(output prefix): does the decoded prefix contain one of the spec's stop strings?"""


def end_after(spec: DecodeSpec, output: Sequence[int], has_stop: HasStop | None) -> str | None:
    """The stop reason if a generation of `spec` ends right after the last token of `output`, else
    None: a stop token ends it (`eos`), else a stop string in the decoded output (`stop`), else
    reaching max_new_tokens (`length`). The decode loop applies it after every token; `has_stop` None
    leaves stop strings out (the recorder holds no tokenizer)."""
    if output[-1] in (spec.stop_token_ids or ()):
        return "eos"
    if has_stop is not None and spec.stop and has_stop(output):
        return "stop"
    if len(output) >= spec.max_new_tokens:
        return "length"
    return None


def expected_end(spec: DecodeSpec, output: Sequence[int], has_stop: HasStop | None) -> tuple[int, str] | None:
    """Where a generation of `spec` that emitted `output` ends: (tokens, stop reason) of the first n
    at which `end_after(spec, output[:n], has_stop)` fires, or None if it would go on.

    The first stop token and max_new_tokens are found without walking the prefixes (the recorder parses
    thousands of records a second); only stop strings need the prefix walk, up to that bound."""
    stop_ids = set(spec.stop_token_ids or ()).intersection(output)
    eos_at = min(output.index(t) for t in stop_ids) + 1 if stop_ids else None
    bound = min(n for n in (eos_at, spec.max_new_tokens, len(output)) if n is not None)
    if has_stop is not None and spec.stop:
        for n in range(1, bound + 1):
            reason = end_after(spec, output[:n], has_stop)
            if reason is not None:
                return n, reason
        return None
    if eos_at is not None and eos_at == bound:
        return eos_at, "eos"
    if spec.max_new_tokens == bound:
        return bound, "length"
    return None


@dataclass(frozen=True)
class StopProblem:
    """Why a claimed stop reason does not hold: the check (`stop-token` or `stop-reason`), the output
    position it concerns (None: the output as a whole) and what happened."""

    check: str
    position: int | None
    detail: str


def stop_problem(
    spec: DecodeSpec, stop_reason: str, output: Sequence[int], has_stop: HasStop | None
) -> StopProblem | None:
    """None if a generation of `spec` ends exactly where `output` ends, for `stop_reason`; with
    `has_stop` None a claimed `stop` is taken on trust at the last token (the rest is still checked)."""
    n = len(output)
    end = expected_end(spec, output, has_stop)
    if has_stop is None and stop_reason == "stop":
        if not spec.stop:
            return StopProblem(
                "stop-reason", None, "the stop reason is 'stop' but the spec has no stop strings"
            )
        if end is None or (end[0] == n and end[1] != "eos"):
            return None
    if end is None:
        return StopProblem(
            "stop-reason",
            None,
            f"{n} tokens end without a stop token, a stop string or max_new_tokens ({spec.max_new_tokens}), "
            f"but the record says {stop_reason!r}",
        )
    at, reason = end
    if at < n:
        what = {"eos": f"stop token {output[at - 1]}", "stop": "a stop string", "length": "max_new_tokens"}
        return StopProblem(
            "stop-token" if reason == "eos" else "stop-reason",
            at - 1,
            f"{what[reason]} ended the generation after {at} tokens, but the output goes on to {n}",
        )
    if reason != stop_reason:
        return StopProblem(
            "stop-reason",
            n - 1,
            f"the output ends with stop reason {reason!r}, but the record says {stop_reason!r}",
        )
    return None
