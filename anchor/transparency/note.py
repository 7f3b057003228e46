"""C2SP signed-note (c2sp.org/signed-note) with Ed25519 keys: pure functions, no I/O.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
"— <name> <base64(key hash || signature)>". The key hash is SHA-256(name || 0x0A || 0x01 || public
key)[:4]; verifier keys are written "<name>+<hex key hash>+<base64(0x01 || public key)>" (the vkey
format golang.org/x/mod/sumdb/note, Tessera and witnesses read).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import cached_property

from Crypto.Signature import eddsa

from anchor.errors import InputError, VerificationError

ED25519 = 0x01
SIGNATURE_PREFIX = "— "  # an em dash and a space
MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note: a bounded amount of work per note


def key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 verifier key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise InputError("name", f"a key name is non-empty, without spaces or '+': {name!r}")


@dataclass(frozen=True)
class VerifierKey:
    """An Ed25519 verifier key of a named signer."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise InputError("public_key", f"an Ed25519 public key is 32 bytes, not {len(self.public_key)}")

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def encode(self) -> str:
        """The vkey string: name+hex8+base64(0x01 || key)."""
        material = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.hash.hex()}+{material}"

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        """Reads a vkey string, checking its type byte and its key hash."""
        name, sep, rest = vkey.partition("+")
        hex_hash, sep2, material = rest.partition("+")  # the base64 part may itself hold '+'
        if not sep or not sep2 or len(hex_hash) != 8:
            raise InputError("vkey", "expected <name>+<8 hex digits>+<base64 key>")
        try:
            raw = base64.b64decode(material, validate=True)
            want = bytes.fromhex(hex_hash)
        except (binascii.Error, ValueError) as e:
            raise InputError("vkey", f"bad encoding: {e}") from None
        if len(raw) != 33 or raw[0] != ED25519:
            raise InputError("vkey", "only Ed25519 keys (type 0x01, 32 bytes) are supported")
        key = cls(name, raw[1:])
        if key.hash != want:
            raise InputError("vkey", f"key hash {hex_hash} does not match the key ({key.hash.hex()})")
        return key


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 signer: the name and the 32-byte private seed."""

    name: str
    seed: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.seed) != 32:
            raise InputError("seed", f"an Ed25519 seed is 32 bytes, not {len(self.seed)}")

    @cached_property  # the public key, derived once (a frozen dataclass keeps it in __dict__)
    def verifier(self) -> VerifierKey:
        public = eddsa.import_private_key(self.seed).public_key().export_key(format="raw")
        return VerifierKey(self.name, public)

    def sign(self, text: str) -> str:
        """The signed note of `text` (which must end with a newline)."""
        body = _check_text(text)
        signature = eddsa.new(eddsa.import_private_key(self.seed), "rfc8032").sign(body)
        blob = base64.b64encode(self.verifier.hash + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"


def _check_text(text: str) -> bytes:
    if not text.endswith("\n"):
        raise InputError("text", "a note's text ends with a newline")
    return text.encode()


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes


def split_note(note: str) -> tuple[str, list[Signature]]:
    """The text and the signature lines of a note, parsed but not verified."""
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise VerificationError("note: no signature block (text, a blank line, signature lines)")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"note: more than {MAX_SIGNATURES} signature lines")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise VerificationError(f"note: a signature line starts with '— ': {line[:60]!r}")
        name, space, blob = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise VerificationError(f"note: signature of {name!r} is not base64") from None
        if not space or not name or len(raw) < 5:
            raise VerificationError(f"note: malformed signature line {line[:60]!r}")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    return text + "\n", signatures


def open_note(note: str, key: VerifierKey) -> str:
    """The note's text, once a signature of `key` over it verifies; VerificationError otherwise."""
    text, signatures = split_note(note)
    mine = [s for s in signatures if s.name == key.name and s.key_hash == key.hash]
    if not mine:
        raise VerificationError(f"note: no signature by {key.name} (key hash {key.hash.hex()})")
    verifier = eddsa.new(eddsa.import_public_key(key.public_key), "rfc8032")
    try:
        verifier.verify(text.encode(), mine[0].signature)
    except ValueError:
        raise VerificationError(f"note: the signature by {key.name} does not verify") from None
    return text
