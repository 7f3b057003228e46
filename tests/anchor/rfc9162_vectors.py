"""Loads the transparency-dev RFC 9162 vectors (tests/vectors/rfc9162) for the Python and Solidity suites."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc9162"


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


@dataclass(frozen=True)
class InclusionVector:
    name: str
    index: int
    size: int
    root: bytes
    leaf_hash: bytes
    proof: list[bytes]
    want_err: bool


@dataclass(frozen=True)
class ConsistencyVector:
    name: str
    size1: int
    size2: int
    root1: bytes
    root2: bytes
    proof: list[bytes]
    want_err: bool


def _files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def inclusion_vectors() -> list[InclusionVector]:
    out = []
    for path in _files("inclusion"):
        d = json.loads(path.read_text())
        out.append(
            InclusionVector(
                name=str(path.relative_to(VECTORS)),
                index=d["leafIdx"],
                size=d["treeSize"],
                root=_b64(d["root"]),
                leaf_hash=_b64(d["leafHash"]),
                proof=[_b64(p) for p in d["proof"] or []],
                want_err=d["wantErr"],
            )
        )
    return out


def consistency_vectors() -> list[ConsistencyVector]:
    out = []
    for path in _files("consistency"):
        d = json.loads(path.read_text())
        out.append(
            ConsistencyVector(
                name=str(path.relative_to(VECTORS)),
                size1=d["size1"],
                size2=d["size2"],
                root1=_b64(d["root1"]),
                root2=_b64(d["root2"]),
                proof=[_b64(p) for p in d["proof"] or []],
                want_err=d["wantErr"],
            )
        )
    return out
