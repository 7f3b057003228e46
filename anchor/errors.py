"""The error hierarchy of anchor and verifier: one root, so entry points map it to an exit code or status."""

from __future__ import annotations


class Error(Exception):
    """Root of every error this project raises on purpose."""


class VerificationError(Error):
    """A check failed: a proof, a signature, a digest or a root did not match."""


class InputError(Error):
    """Bad input: names the offending field and the reason; nothing was changed."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
