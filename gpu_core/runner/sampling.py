"""Sampling parameters of a generation, as recorded in a record (validation does not depend on them:
it prefills the recorded tokens)."""

from __future__ import annotations

import math
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from gpu_core.runner.errors import RunnerInputError

_FIELDS = ("temperature", "top_p", "top_k", "seed", "ignore_eos")


@dataclass(frozen=True)
class SamplingParams:
    """How output tokens are chosen.

    temperature 0 means greedy (argmax; top_p, top_k and seed play no part). Otherwise tokens are drawn
    from softmax(logits / temperature) restricted to the top_k most likely tokens (0: no limit) and to
    the smallest set whose probability reaches top_p, with torch's generator seeded with `seed`.
    ignore_eos keeps generating after the end-of-sequence token, up to max_new_tokens.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, int | float) and math.isfinite(self.temperature)):
            raise RunnerInputError("sampling.temperature", f"want a finite number, got {self.temperature!r}")
        if self.temperature < 0:
            raise RunnerInputError("sampling.temperature", f"must be >= 0, got {self.temperature}")
        if not (isinstance(self.top_p, int | float) and 0 < self.top_p <= 1):
            raise RunnerInputError("sampling.top_p", f"must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 0:
            raise RunnerInputError("sampling.top_k", f"must be an integer >= 0, got {self.top_k!r}")
        if self.seed is not None and (
            not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**63
        ):
            raise RunnerInputError("sampling.seed", f"must be an integer in [0, 2**63), got {self.seed!r}")
        if not isinstance(self.ignore_eos, bool):
            raise RunnerInputError("sampling.ignore_eos", f"must be true or false, got {self.ignore_eos!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def resolved(self) -> SamplingParams:
        """These parameters with a fresh random seed when sampling without one, so the record can say
        which seed produced its tokens; greedy parameters are returned as they are."""
        if self.greedy or self.seed is not None:
            return self
        return replace(self, seed=secrets.randbelow(2**63))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a record stores."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParams:
        """Parse the JSON form; unknown or missing keys are an error naming the field."""
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise RunnerInputError(f"sampling.{unknown[0]}", "unknown sampling parameter")
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise RunnerInputError(f"sampling.{missing[0]}", "missing")
        return cls(**data)
