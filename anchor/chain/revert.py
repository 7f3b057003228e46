"""Turns revert data into readable errors: custom errors by name with their arguments.

web3.py reports a custom-error revert as ContractCustomError carrying only the raw data (4-byte
selector + ABI-encoded arguments); the ABI has what it takes to decode them.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from anchor.chain.errors import ChainError, ContractRevert

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


def _canonical_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


class RevertDecoder:
    """Decodes the revert data of the contracts whose ABIs it was given."""

    def __init__(self, *abis: list[dict[str, Any]]) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for abi in abis:
            for item in abi:
                if item["type"] != "error":
                    continue
                types = [_canonical_type(i) for i in item["inputs"]]
                selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
                self._errors[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)

    def decode(self, data: bytes) -> ChainError:
        """The error for `data`: ContractRevert for a known custom error, ChainError otherwise."""
        selector, payload = data[:4], data[4:]
        if selector in self._errors:
            name, names, types = self._errors[selector]
            values = decode(types, payload)
            args = {n: _readable(t, v) for n, t, v in zip(names, types, values, strict=True)}
            return ContractRevert(name, args)
        if selector == _ERROR_STRING:
            return ChainError(f"contract reverted: {decode(['string'], payload)[0]}")
        if selector == _PANIC:
            return ChainError(f"contract panicked with code {decode(['uint256'], payload)[0]:#x}")
        if not data:
            return ChainError("contract reverted without a reason")
        return ChainError(f"contract reverted with unknown data 0x{data.hex()}")

    def from_exception(self, exc: Exception) -> ChainError:
        """The error for a web3 exception raised by a call or a gas estimate that reverted."""
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            return self.decode(bytes.fromhex(data[2:]))
        if isinstance(data, bytes | bytearray):
            return self.decode(bytes(data))
        return ChainError(f"call failed: {exc}")


def _readable(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    return value
