"""The one transaction path: sign from a local key, broadcast, wait for the receipt, decode reverts.
Anchoring, votes, disputes and stakes all go through it.

Every transaction is simulated first (the gas estimate): a revert there raises the contract's custom
error by name and nothing is sent, so bad input changes nothing on chain. Callers that must survive a
crash between signing and mining (the anchor loop, votes) store `sign_transaction`'s bytes first and
`broadcast` them, again after a restart; the others call `send_transaction`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TransactionNotFound,
    Web3RPCError,
)

from anchor.chain.errors import ChainError, ReceiptTimeout
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


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction, not sent: what a caller stores before broadcasting, so that a restart
    sends the same bytes again (one nonce: at most one of them can ever be mined)."""

    raw: bytes
    tx_hash: bytes
    nonce: int


def sign_transaction(w3: Web3, account: LocalAccount, tx: dict[str, Any], decoder: RevertDecoder) -> SignedTx:
    """Simulates `tx` (to, data, value) from `account`, then signs it at the account's next nonce with
    gas, fees and chain id filled in. A revert in the simulation raises ContractRevert, nothing signed.

    Simulated in the pending block, the earliest the transaction can be mined in: a rule on the block
    number (a committee draw) is then judged as it will be."""
    tx = {**tx, "from": account.address, "chainId": int(w3.eth.chain_id)}
    try:
        estimate = w3.eth.estimate_gas(tx, "pending")  # type: ignore[arg-type]
    except (ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError) as exc:
        raise decoder.from_exception(exc) from None
    latest = w3.eth.get_block("latest")
    base_fee = int(latest.get("baseFeePerGas", 0) or 0)
    tip = w3.to_wei(1, "gwei")
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    tx.update(
        gas=min(int(estimate * GAS_MARGIN), int(latest["gasLimit"])),
        nonce=nonce,
        maxPriorityFeePerGas=tip,
        maxFeePerGas=2 * base_fee + tip,
    )
    signed = account.sign_transaction(tx)
    return SignedTx(bytes(signed.raw_transaction), bytes(signed.hash), nonce)


def broadcast(w3: Web3, raw: bytes) -> str:
    """Sends signed bytes: 'sent', 'known' (already pooled or mined) or 'nonce-used' (this nonce was
    taken, by these bytes or another transaction: look for the receipt)."""
    try:
        w3.eth.send_raw_transaction(raw)
        return "sent"
    except Exception as exc:  # the node's refusal comes as a JSON-RPC error; read its message
        text = str(exc).lower()
        if "already known" in text or "already imported" in text or "known transaction" in text:
            return "known"
        if "nonce too low" in text or "nonce is too low" in text:
            return "nonce-used"
        raise


def receipt_of(w3: Web3, tx_hash: bytes) -> Any | None:
    """The transaction's receipt, None while it is not mined (or a reorg dropped it)."""
    try:
        return w3.eth.get_transaction_receipt(HexBytes(tx_hash))
    except TransactionNotFound:
        return None


def wait_for_receipt(w3: Web3, tx_hash: bytes, timeout: float = RECEIPT_TIMEOUT_S) -> Any:
    """The receipt once mined; ReceiptTimeout when none came within `timeout` seconds."""
    try:
        return w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=timeout)
    except Exception as exc:  # web3's TimeExhausted, or the node went away while waiting
        raise ReceiptTimeout(
            f"transaction 0x{tx_hash.hex()} has no receipt after {timeout:g} s: {exc}"
        ) from exc


def send_transaction(
    w3: Web3, account: LocalAccount, tx: dict[str, Any], decoder: RevertDecoder, contract: Any = None
) -> Sent:
    """Signs `tx` (to, data, value) with `account`, sends it and waits for its receipt.

    Raises ContractRevert (nothing sent) when the simulation reverts, ChainError when the mined
    transaction fails. `contract` (a web3 contract) decodes the receipt's events.
    """
    signed = sign_transaction(w3, account, tx, decoder)
    w3.eth.send_raw_transaction(signed.raw)
    receipt = wait_for_receipt(w3, signed.tx_hash)
    if receipt["status"] != 1:
        raise ChainError(
            f"transaction 0x{signed.tx_hash.hex()} failed on chain (gas used {receipt['gasUsed']})"
        )
    return Sent(
        tx_hash="0x" + signed.tx_hash.hex(),
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
