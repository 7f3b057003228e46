"""Errors of the chain layer: all derive from anchor.errors.Error, so the CLI prints them in one line."""

from __future__ import annotations

from typing import Any

from anchor.errors import Error


class ChainError(Error):
    """The node, the compiler or a transaction failed (not the caller's input)."""


class ReceiptTimeout(ChainError):
    """A sent transaction has no receipt yet (the node is slow or was unreachable): worth retrying."""


class ContractRevert(ChainError):
    """The contract refused a call with a custom error: keeps its name and decoded arguments."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
        super().__init__(f"contract reverted: {name}({shown})")
        self.name = name
        self.values = values


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
