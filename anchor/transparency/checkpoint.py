"""C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the body a log signs as a signed note.

<origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[<extension line>\\n ...]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from anchor.errors import VerificationError
from anchor.transparency.note import NoteSigner, VerifierKey, open_note

HASH_SIZE = 32


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise VerificationError("checkpoint origin: a non-empty line")
        if self.size < 0:
            raise VerificationError(f"checkpoint size: not negative, got {self.size}")
        if len(self.root) != HASH_SIZE:
            raise VerificationError(f"checkpoint root: {HASH_SIZE} bytes, got {len(self.root)}")
        if any(not line or "\n" in line for line in self.extensions):
            raise VerificationError("checkpoint extensions: non-empty single lines")

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    def sign(self, signer: NoteSigner) -> str:
        """The checkpoint as a signed note."""
        return signer.sign(self.body())


def parse_checkpoint(body: str) -> Checkpoint:
    """A checkpoint body, strictly: canonical decimal size, a 32-byte standard-base64 root."""
    if not body.endswith("\n"):
        raise VerificationError("checkpoint: the body ends with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise VerificationError("checkpoint: origin, size and root lines are required")
    origin, size, root, *extensions = lines
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise VerificationError(f"checkpoint size: a decimal without leading zeros, got {size[:30]!r}")
    try:
        raw = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise VerificationError(f"checkpoint root: not base64: {root[:60]!r}") from None
    if base64.b64encode(raw).decode() != root:
        raise VerificationError("checkpoint root: not canonical base64")
    return Checkpoint(origin, int(size), raw, tuple(extensions))


def open_checkpoint(note: str, key: VerifierKey, origin: str) -> Checkpoint:
    """Verifies a signed checkpoint note by `key` and checks its origin line."""
    checkpoint = parse_checkpoint(open_note(note, key))
    if checkpoint.origin != origin:
        raise VerificationError(f"checkpoint origin: expected {origin!r}, got {checkpoint.origin!r}")
    return checkpoint


def log_origin(chain_id: int, contract: str) -> str:
    """The checkpoint origin line (and note key name) of a deployment's log."""
    return f"toploc-audit/{chain_id}/{contract.lower()}"


def log_note_signer(origin: str, receipt_key: bytes) -> NoteSigner:
    """The log's Ed25519 note key, derived from its secp256k1 receipt key: the recorder signs notes
    and receipts with what it already holds (one secret, never the operator's transaction key); the
    verifier key is published at /v1/log and is the same on every restart."""
    seed = hashlib.sha256(b"toploc-audit checkpoint note key\x00" + receipt_key).digest()
    return NoteSigner(origin, seed)
