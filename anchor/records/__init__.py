"""Inference records: the canonical form and recordDigest (one definition for every package)."""

from anchor.records.canonical import canonical_json
from anchor.records.record import (
    DTYPES,
    VERSION,
    ModelRef,
    Record,
    RecordDigest,
    Sampling,
    ToplocParams,
    proof_count,
    proof_length,
)

__all__ = [
    "DTYPES",
    "VERSION",
    "ModelRef",
    "Record",
    "RecordDigest",
    "Sampling",
    "ToplocParams",
    "canonical_json",
    "proof_count",
    "proof_length",
]
