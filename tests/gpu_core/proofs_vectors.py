"""Reading tests/vectors/toploc/reference_v0.1.6.json (made with toploc 0.1.6; see its README)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from tests.conftest import VECTORS

REFERENCE = VECTORS / "toploc" / "reference_v0.1.6.json"
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def tensor_from(entry: dict[str, Any]) -> torch.Tensor:
    """{"dtype", "shape", "b64": raw little-endian bits} -> tensor."""
    raw = bytearray(base64.b64decode(entry["b64"]))
    flat = torch.frombuffer(raw, dtype=torch.int16).view(_DTYPES[entry["dtype"]])
    return flat.reshape(entry["shape"])


@dataclass(frozen=True)
class Case:
    name: str
    decode_batching_size: int
    topk: int
    skip_prefill: bool
    activations: list[torch.Tensor]
    proofs_b64: list[str]
    moduli: list[int]
    decode_only: dict[str, Any] | None

    @property
    def decode_activations(self) -> list[torch.Tensor]:
        return self.activations if self.skip_prefill else self.activations[1:]


@cache
def cases() -> tuple[Case, ...]:
    document = json.loads(REFERENCE.read_text())
    return tuple(
        Case(
            name=c["name"],
            decode_batching_size=c["decode_batching_size"],
            topk=c["topk"],
            skip_prefill=c["skip_prefill"],
            activations=[tensor_from(a) for a in c["activations"]],
            proofs_b64=c["proofs_b64"],
            moduli=c["moduli"],
            decode_only=c.get("decode_only"),
        )
        for c in document["cases"]
    )


def case_names() -> list[str]:
    return [c.name for c in cases()]


def case(name: str) -> Case:
    return next(c for c in cases() if c.name == name)
