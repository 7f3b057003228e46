"""The few contract calls the anchor loop and verify-receipt make: reads through anchor.chain's
ToplocAuditClient; the anchor transaction is signed here, because the loop must persist it before sending."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound

from anchor.chain.artifacts import load_artifact
from anchor.chain.client import Checkpoint, ToplocAuditClient
from anchor.chain.connection import connect

CONTRACT_NAME = "ToplocAudit"
GAS_MARGIN = 1.25


@dataclass(frozen=True)
class OnChainCheckpoint:
    id: int
    size: int
    root: bytes
    timestamp: int


def _ours(cp: Checkpoint) -> OnChainCheckpoint:
    return OnChainCheckpoint(cp.id, cp.size, cp.root, cp.timestamp)


@dataclass(frozen=True)
class SignedAnchor:
    raw: bytes
    tx_hash: bytes
    nonce: int


class AuditContract:
    """Read calls for anyone; `sign_anchor` needs the operator's account."""

    def __init__(self, w3: Web3, address: str, operator: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.contract = w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=load_artifact(CONTRACT_NAME).abi
        )
        self.address = self.contract.address
        self.operator = operator
        self.chain_id = int(w3.eth.chain_id)
        self.client = ToplocAuditClient(w3, self.address)

    @classmethod
    def connect(cls, rpc_url: str, address: str, operator_key: bytes | None = None) -> AuditContract:
        account = None if operator_key is None else Account.from_key(operator_key)
        return cls(connect(rpc_url), address, account)

    def operator_address(self) -> str:
        return self.client.operator()

    def checkpoint_count(self) -> int:
        return self.client.checkpoint_count()

    def checkpoint(self, checkpoint_id: int) -> OnChainCheckpoint:
        """Checkpoint `checkpoint_id` (from its event, checked against the stored hash)."""
        return _ours(self.client.checkpoint(checkpoint_id))

    def latest(self) -> OnChainCheckpoint | None:
        checkpoint_id, size, root, ts = self.client.latest_checkpoint()
        return None if checkpoint_id == 0 else OnChainCheckpoint(checkpoint_id, size, root, ts)

    def first_covering(self, leaf_index: int) -> OnChainCheckpoint | None:
        cp = self.client.checkpoint_covering(leaf_index)
        return None if cp is None else _ours(cp)

    def verify_inclusion(
        self, checkpoint_id: int, leaf_index: int, leaf_hash: bytes, proof: list[bytes]
    ) -> bool:
        return self.client.verify_inclusion(
            self.client.checkpoint(checkpoint_id), leaf_index, leaf_hash, proof
        )

    def sign_anchor(self, size: int, root: bytes, proof: list[bytes]) -> SignedAnchor:
        """A signed anchor(size, root, proof) transaction at the operator's next nonce (not sent)."""
        assert self.operator is not None, "signing needs the operator key"
        fn = self.contract.functions.anchor(size, root, proof)
        sender = self.operator.address
        gas = fn.estimate_gas({"from": sender})  # reverts here (nothing signed) if the contract refuses
        latest = self.w3.eth.get_block("latest")
        base_fee = int(latest.get("baseFeePerGas", 0) or 0)
        tip = self.w3.to_wei(1, "gwei")
        nonce = self.w3.eth.get_transaction_count(sender, "pending")
        tx = fn.build_transaction(
            {
                "from": sender,
                "nonce": nonce,
                "gas": int(gas * GAS_MARGIN),
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": 2 * base_fee + tip,
                "chainId": self.chain_id,
            }
        )
        signed = self.operator.sign_transaction(tx)
        return SignedAnchor(bytes(signed.raw_transaction), bytes(signed.hash), nonce)

    def broadcast(self, raw: bytes) -> str:
        """Send a signed transaction: 'sent', 'known' (already pooled or mined) or 'nonce-used'."""
        try:
            self.w3.eth.send_raw_transaction(raw)
            return "sent"
        except Exception as exc:  # the node's refusal comes as a JSON-RPC error; read its message
            text = str(exc).lower()
            if "already known" in text or "already imported" in text or "known transaction" in text:
                return "known"
            if "nonce too low" in text or "nonce is too low" in text:
                return "nonce-used"
            raise

    def receipt(self, tx_hash: bytes) -> Any | None:
        try:
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def block(self, number: int) -> Any:
        return self.w3.eth.get_block(number)

    def anchored_id(self, receipt: Any) -> int:
        """The checkpoint id from the CheckpointAnchored event in `receipt`."""
        events = self.contract.events.CheckpointAnchored().process_receipt(receipt)
        if len(events) != 1:
            raise ValueError(f"receipt has {len(events)} CheckpointAnchored events, want 1")
        return int(events[0]["args"]["id"])
