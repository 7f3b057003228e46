"""The contract's events and blocks as the watcher reads them over JSON-RPC.

Logs are decoded with ToplocAudit's ABI into `ChainLog`s whose arguments are JSON values (addresses
checksummed, bytes as 0x hex, integers as integers), the form stored in chain_events.args.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic, to_checksum_address
from hexbytes import HexBytes

from anchor.chain.client import ToplocAuditClient

LOG_RANGE = 2000
"""Blocks per eth_getLogs call (nodes cap the range or the answer size)."""


@dataclass(frozen=True)
class Block:
    number: int
    hash: bytes
    timestamp: int


@dataclass(frozen=True)
class ChainLog:
    """One decoded contract event; (tx_hash, log_index) identifies it, block_hash says on which fork."""

    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    name: str
    args: dict[str, Any]
    record: bytes | None = None
    """DisputeOpened only: the disputed record's canonical bytes from the transaction's openDispute
    calldata (None when the transaction called another contract that called openDispute). Not part of
    `args`: kept in the dispute row, not in chain_events."""

    @property
    def key(self) -> tuple[bytes, int]:
        return (self.tx_hash, self.log_index)


def json_value(value: Any) -> Any:
    """An event argument as a JSON value (see the module docstring)."""
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


class EventSource:
    """Blocks and the events of one ToplocAudit, read through `client`'s node."""

    def __init__(self, client: ToplocAuditClient) -> None:
        self.client = client
        self.w3 = client.w3
        self.address = client.address
        self.chain_id = int(self.w3.eth.chain_id)
        self._names = {
            bytes(event_abi_to_log_topic(item)): item["name"]
            for item in client.contract.abi
            if item["type"] == "event"
        }

    def head(self) -> Block:
        return self._block(self.w3.eth.get_block("latest"))

    def block(self, number: int) -> Block | None:
        """Block `number` of the node's current chain, None if the chain is shorter."""
        if number > int(self.w3.eth.block_number):
            return None
        return self._block(self.w3.eth.get_block(number))

    @staticmethod
    def _block(raw: Any) -> Block:
        return Block(int(raw["number"]), bytes(raw["hash"]), int(raw["timestamp"]))

    def logs(self, start: int, end: int) -> list[ChainLog]:
        """The contract's events in blocks [start, end], in chain order. Requires start <= end + 1."""
        out: list[ChainLog] = []
        for first in range(start, end + 1, LOG_RANGE):
            last = min(first + LOG_RANGE - 1, end)
            raw = self.w3.eth.get_logs({"address": self.address, "fromBlock": first, "toBlock": last})
            out.extend(self._decode(log) for log in raw if log["topics"])
        known = [log for log in out if log.name]
        return sorted(known, key=lambda log: (log.block_number, log.log_index))

    def _decode(self, log: Any) -> ChainLog:
        name = self._names.get(bytes(log["topics"][0]), "")
        args: dict[str, Any] = {}
        if name:
            decoded = self.client.contract.events[name]().process_log(log)
            args = {k: json_value(v) for k, v in decoded["args"].items()}
        return ChainLog(
            block_number=int(log["blockNumber"]),
            block_hash=bytes(log["blockHash"]),
            tx_hash=bytes(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            name=name,
            args=args,
            record=self._calldata_record(bytes(log["transactionHash"])) if name == "DisputeOpened" else None,
        )

    def _calldata_record(self, tx_hash: bytes) -> bytes | None:
        """The `record` argument of the openDispute call `tx_hash` made, if it called it directly (the
        contract checked SHA-256(record) == recordDigest)."""
        tx = self.w3.eth.get_transaction(tx_hash)
        if str(tx["to"]).lower() != self.address.lower():
            return None
        try:
            function, params = self.client.contract.decode_function_input(tx["input"])
        except ValueError:
            return None
        return bytes(params["record"]) if function.fn_name == "openDispute" else None
