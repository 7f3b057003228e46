"""Sends signed transactions from a local key and turns reverts into readable errors.

Every transaction is simulated first (the gas estimate): a revert there raises the contract's custom
error by name and nothing is sent, so bad input changes nothing on chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError

from anchor.chain.errors import ChainError
from anchor.chain.revert import RevertDecoder

RECEIPT_TIMEOUT_S = 120.0
# Anvil's estimate can fall short of what the transaction then uses (seen: contract creation).
GAS_MARGIN = 1.25


@dataclass(frozen=True)
class Event:
    name: str
    args: dict[str, Any]
    log_index: int


@dataclass(frozen=True)
class Sent:
    """A mined, successful transaction and the events it emitted (decoded with the contract's ABI).

    `gas_cost` is what the sender paid in wei (gas used times the effective gas price)."""

    tx_hash: str
    block_number: int
    gas_used: int
    gas_cost: int
    contract_address: str | None = None
    events: list[Event] = field(default_factory=list)

    def event(self, name: str) -> dict[str, Any]:
        """The arguments of the one `name` event; raises ChainError if there is not exactly one."""
        found = [e.args for e in self.events if e.name == name]
        if len(found) != 1:
            raise ChainError(f"transaction {self.tx_hash} emitted {len(found)} {name} events, want 1")
        return found[0]

    def all(self, name: str) -> list[dict[str, Any]]:
        return [e.args for e in self.events if e.name == name]


def send_transaction(
    w3: Web3, account: LocalAccount, tx: dict[str, Any], decoder: RevertDecoder, contract: Any = None
) -> Sent:
    """Signs `tx` (to, data, value) with `account`, sends it and waits for its receipt.

    Raises ContractRevert (nothing sent) when the simulation reverts, ChainError when the mined
    transaction fails. `contract` (a web3 contract) decodes the receipt's events.
    """
    tx = {**tx, "from": account.address, "chainId": w3.eth.chain_id}
    try:
        estimate = w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
    except (ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError) as exc:
        raise decoder.from_exception(exc) from None
    latest = w3.eth.get_block("latest")
    base_fee = int(latest.get("baseFeePerGas", 0) or 0)
    tip = w3.to_wei(1, "gwei")
    tx.update(
        gas=min(int(estimate * GAS_MARGIN), int(latest["gasLimit"])),
        nonce=w3.eth.get_transaction_count(account.address, "pending"),
        maxPriorityFeePerGas=tip,
        maxFeePerGas=2 * base_fee + tip,
    )
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    if receipt["status"] != 1:
        raise ChainError(f"transaction {tx_hash.to_0x_hex()} failed on chain (gas used {receipt['gasUsed']})")
    return Sent(
        tx_hash=tx_hash.to_0x_hex(),
        block_number=int(receipt["blockNumber"]),
        gas_used=int(receipt["gasUsed"]),
        gas_cost=int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"]),
        contract_address=receipt.get("contractAddress"),
        events=decode_events(contract, receipt) if contract is not None else [],
    )


def decode_events(contract: Any, receipt: Any) -> list[Event]:
    """The events of `contract` in `receipt`, in log order; logs of other contracts are skipped."""
    by_topic = _events_by_topic(contract)
    events = []
    for log in receipt["logs"]:
        if log["address"].lower() != contract.address.lower() or not log["topics"]:
            continue
        name = by_topic.get(bytes(log["topics"][0]))
        if name is None:
            continue
        decoded = contract.events[name]().process_log(log)
        events.append(Event(name, dict(decoded["args"]), int(log["logIndex"])))
    return events


def _events_by_topic(contract: Any) -> dict[bytes, str]:
    from eth_utils import event_abi_to_log_topic

    return {
        bytes(event_abi_to_log_topic(item)): item["name"] for item in contract.abi if item["type"] == "event"
    }
