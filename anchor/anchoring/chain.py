"""The few contract calls the anchor loop and verify-receipt make: reads through anchor.chain's
ToplocAuditClient; the anchor transaction is signed (anchor.chain.transactions) and returned unsent,
because the loop must persist it before sending."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from anchor.chain.artifacts import load_artifact
from anchor.chain.client import Checkpoint, ToplocAuditClient
from anchor.chain.connection import connect
from anchor.chain.transactions import SignedTx, broadcast, receipt_of, sign_transaction

CONTRACT_NAME = "ToplocAudit"


@dataclass(frozen=True)
class OnChainCheckpoint:
    id: int
    size: int
    root: bytes
    timestamp: int


def _ours(cp: Checkpoint) -> OnChainCheckpoint:
    return OnChainCheckpoint(cp.id, cp.size, cp.root, cp.timestamp)


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

    def receipt_signer_address(self) -> str:
        return self.client.receipt_signer()

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

    def sign_anchor(self, size: int, root: bytes, proof: list[bytes]) -> SignedTx:
        """A signed anchor(size, root, proof) transaction at the operator's next nonce (not sent); a
        revert in its simulation raises the contract's error and nothing is signed."""
        assert self.operator is not None, "signing needs the operator key"
        data = self.contract.encode_abi("anchor", args=[size, root, proof])
        tx = {"to": self.address, "data": data, "value": 0}
        return sign_transaction(self.w3, self.operator, tx, self.client.decoder)

    def broadcast(self, raw: bytes) -> str:
        """Send a signed transaction: 'sent', 'known' (already pooled or mined) or 'nonce-used'."""
        return broadcast(self.w3, raw)

    def receipt(self, tx_hash: bytes) -> Any | None:
        return receipt_of(self.w3, tx_hash)

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
