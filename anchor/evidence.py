"""Validators' evidence reports, kept by the SHA-256 that their reveal (or abstention) binds on chain.

A report is any JSON object up to MAX_REPORT_BYTES; it is stored as the exact bytes given, so
SHA-256(bytes) is the on-chain hash and anyone can check a vote against what was published.
Publishing the same bytes twice keeps one row.
"""

from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy.orm import Session

from anchor.db.models import Evidence
from anchor.errors import InputError

MAX_REPORT_BYTES = 1 << 20


class EvidenceNotFound(InputError):
    """No report with that hash (HTTP 404)."""


def check_report(body: bytes) -> bytes:
    """The report's SHA-256 if `body` is a JSON object within the size limit; InputError otherwise."""
    if len(body) > MAX_REPORT_BYTES:
        raise InputError("report", f"has {len(body)} bytes, more than {MAX_REPORT_BYTES}")
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError("report", f"is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError("report", f"must be a JSON object, got {type(value).__name__}")
    return hashlib.sha256(body).digest()


def publish(session: Session, body: bytes) -> bytes:
    """Stores `body` (checked by check_report) in the caller's transaction; returns its hash."""
    digest = check_report(body)
    if session.get(Evidence, digest) is None:
        session.add(Evidence(hash=digest, report=body, created_at=int(time.time())))
        session.flush()
    return digest


def parse_hash(text: str) -> bytes:
    """A 0x-prefixed 32-byte hex hash; InputError naming `evidenceHash` otherwise."""
    raw = text.removeprefix("0x")
    if len(raw) != 64:
        raise InputError("evidenceHash", f"must be 0x and 64 hex digits, got {text!r}")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise InputError("evidenceHash", f"{text!r} is not hex") from None


def find_report(session: Session, digest: bytes) -> bytes:
    row = session.get(Evidence, digest)
    if row is None:
        raise EvidenceNotFound("evidenceHash", f"no report 0x{digest.hex()} was published")
    return bytes(row.report)
