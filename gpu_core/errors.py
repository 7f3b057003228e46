"""Errors of gpu_core. Every one derives from ToplocError, a ValueError, so callers can catch one type.

The proof errors carry what failed as fields (which proof, which parameter, the value seen) so a
validator can record them as evidence; their messages read "<field>: <reason>".
"""

from __future__ import annotations


class ToplocError(ValueError):
    """Root of every gpu_core error: bad input or a failed check, never a crash."""


class ProofsInputError(ToplocError):
    """Bad input to a proof function; names the offending field and the reason. Nothing was built."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ParameterError(ProofsInputError):
    """A TOPLOC parameter (topk, decode_batching_size, dtype) is out of range."""


class ActivationError(ProofsInputError):
    """Activations that cannot be proved or verified: empty, mixed dtypes or devices, a chunk with
    fewer elements than topk, an unsupported dtype."""


class ProofFormatError(ProofsInputError):
    """A proof is malformed: bad base64, wrong length, modulus 0 or out of range, a coefficient that is
    not a field element. `index` is the proof's position in its record's list (None when alone),
    `record` the record's position in a batch (None for a single record)."""

    def __init__(self, index: int | None, reason: str, record: int | None = None) -> None:
        field = "proof" if index is None else f"proofs[{index}]"
        super().__init__(field if record is None else f"records[{record}] {field}", reason)
        self.index = index
        self.record = record


class ProofCountError(ProofsInputError):
    """The number of proofs does not match the number of chunks the activations make."""

    def __init__(self, got: int, want: int, record: int | None = None) -> None:
        field = "proofs" if record is None else f"records[{record}] proofs"
        super().__init__(field, f"got {got} proofs, want {want} (one per chunk)")
        self.got = got
        self.want = want
        self.record = record
