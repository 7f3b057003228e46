"""Errors of the model runner. All derive from gpu_core.errors.ToplocError (a ValueError)."""

from __future__ import annotations

from gpu_core.errors import ToplocError


class RunnerError(ToplocError):
    """The runner could not do what was asked (a model it cannot load, a missing source file)."""


class RunnerInputError(RunnerError):
    """Bad input to the runner: names the offending field and the reason; nothing was changed."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
