"""The proof wire format of toploc 0.1.6 (ProofPoly::to_bytes in toploc/C/csrc/poly.cpp, @7ab7bcd):

    modulus: 2 bytes big-endian, then coefficients: 2 bytes big-endian each, ascending order.

A bfloat16/float16 proof holds topk coefficients (258 bytes at k=128); a float32 proof holds 2*topk
(the hi plane, then the lo plane; see encoding.py). Parsing is strict where the reference is lenient:
bad base64, an odd or wrong length, modulus 0 (the reference's "null proof" after a failed build) or
above 65497, and coefficients that are not field elements are all ProofFormatError.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gpu_core.errors import ProofFormatError
from gpu_core.proofs.field import PRIME


@dataclass(frozen=True)
class ProofPoly:
    """One chunk's proof: polynomial coefficients over GF(65497) and the index modulus.

    Invariants (checked here): 1 <= modulus <= 65497, at least one coefficient, each in [0, 65497).
    """

    coeffs: tuple[int, ...]
    modulus: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "coeffs", tuple(int(c) for c in self.coeffs))
        _check_modulus(None, int(self.modulus))
        if not self.coeffs:
            raise ProofFormatError(None, "has no coefficients")
        for position, coeff in enumerate(self.coeffs):
            if not 0 <= coeff < PRIME:
                raise ProofFormatError(None, f"coefficient {position} is {coeff}, want 0 <= c < {PRIME}")

    def __len__(self) -> int:
        return len(self.coeffs)

    def __call__(self, x: int) -> int:
        """The polynomial at x (reduced mod the modulus first, as verify does)."""
        result = 0
        for coeff in reversed(self.coeffs):
            result = (result * (x % self.modulus) + coeff) % PRIME
        return result

    def to_bytes(self) -> bytes:
        return np.array([self.modulus, *self.coeffs], dtype=">u2").tobytes()

    def to_base64(self) -> str:
        return base64.b64encode(self.to_bytes()).decode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> ProofPoly:
        try:
            moduli, coeffs = parse_proofs([data])
        except ProofFormatError as exc:  # alone, not proofs[0] of a list
            raise ProofFormatError(None, exc.reason) from None
        return cls(tuple(coeffs[0].tolist()), int(moduli[0]))

    @classmethod
    def from_base64(cls, text: str) -> ProofPoly:
        return cls.from_bytes(decode_base64(text))


def _check_modulus(index: int | None, modulus: int, record: int | None = None) -> None:
    if modulus == 0:
        raise ProofFormatError(index, "modulus is 0 (a null proof: the prover's build failed)", record)
    if not 1 <= modulus <= PRIME:
        raise ProofFormatError(index, f"modulus is {modulus}, want 1 <= modulus <= {PRIME}", record)


def decode_base64(text: str, index: int | None = None) -> bytes:
    """Strict standard base64 (padding required, no stray characters) -> bytes, else ProofFormatError."""
    if not isinstance(text, str):
        raise ProofFormatError(index, f"is a {type(text).__name__}, want a base64 str")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ProofFormatError(index, f"is not valid base64 ({exc})") from None


def parse_proofs(
    datas: Sequence[bytes], coefficients: int | None = None, record: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proof bytes -> (moduli (N,), coeffs (N, coefficients)) int64 CPU tensors, validated.

    Requires every proof to have the same length; with `coefficients` given, exactly
    2 + 2*coefficients bytes. Raises ProofFormatError naming the first bad proof (and `record`).
    """
    for index, data in enumerate(datas):
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProofFormatError(index, f"is a {type(data).__name__}, want bytes", record)
        size = len(data)
        if coefficients is not None and size != 2 + 2 * coefficients:
            raise ProofFormatError(index, f"has {size} bytes, want {2 + 2 * coefficients}", record)
        if size < 4 or size % 2:
            raise ProofFormatError(index, f"has {size} bytes, want an even number >= 4", record)
        if size != len(datas[0]):
            raise ProofFormatError(index, f"has {size} bytes, want {len(datas[0])} like proofs[0]", record)
    if not datas:
        return torch.zeros(0, dtype=torch.int64), torch.zeros((0, coefficients or 0), dtype=torch.int64)
    words = np.frombuffer(b"".join(bytes(d) for d in datas), dtype=">u2").astype(np.int64)
    table = torch.from_numpy(words.reshape(len(datas), -1))
    moduli, coeffs = table[:, 0], table[:, 1:]
    bad = ((moduli < 1) | (moduli > PRIME)).nonzero()
    if bad.numel():
        index = int(bad[0])
        _check_modulus(index, int(moduli[index]), record)
    bad = (coeffs >= PRIME).nonzero()
    if bad.numel():
        index, position = (int(v) for v in bad[0])
        value = int(coeffs[index, position])
        raise ProofFormatError(index, f"coefficient {position} is {value}, want 0 <= c < {PRIME}", record)
    return moduli, coeffs


def serialize_proofs(moduli: torch.Tensor, coeffs: torch.Tensor) -> list[bytes]:
    """(N,) moduli and (N, m) coefficients (any device) -> N proofs in the wire format."""
    table = torch.cat([moduli.reshape(-1, 1), coeffs], dim=1).cpu().numpy().astype(">u2")
    raw = table.tobytes()
    width = 2 * table.shape[1]
    return [raw[i * width : (i + 1) * width] for i in range(table.shape[0])]
