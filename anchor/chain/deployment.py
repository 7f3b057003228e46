"""Deploys ToplocAudit and records where it is: the deployment file the other commands read.

The file (Settings.deployment_file, default <home>/deployment.json) holds the chain id, the RPC URL,
the contract addresses, the deployment block and transaction, the operator (anchors: the log key), the
receipt signer (signs receipts: the receipt key), the parameters and the hash of the runtime code. It
is written atomically, so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from eth_keys import keys
from eth_utils import is_address, keccak, to_checksum_address
from web3 import Web3

from anchor.chain.artifacts import Artifact, load_artifact
from anchor.chain.errors import ChainError
from anchor.chain.parameters import Parameters
from anchor.chain.revert import RevertDecoder
from anchor.chain.transactions import Sent, send_transaction
from anchor.errors import InputError

CONTRACT_NAME = "ToplocAudit"
FILE_VERSION = 2
"""Version 2 added receiptSigner (the contract before it had none): a version 1 file names a
deployment this code cannot use."""


@dataclass(frozen=True)
class Deployment:
    """Where one ToplocAudit lives and how it was made."""

    chain_id: int
    rpc_url: str
    address: str
    deployment_block: int
    transaction_hash: str
    operator: str
    receipt_signer: str
    deployer: str
    parameters: Parameters
    code_hash: str
    checkpoint_key: str | None = None
    """The verifier key (C2SP vkey) of the log's checkpoint notes, derived from the receipt key; None
    when the deployer did not hold that key (then /v1/log's checkpointKey is the only source)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FILE_VERSION,
            "chainId": self.chain_id,
            "rpcUrl": self.rpc_url,
            "addresses": {CONTRACT_NAME: self.address},
            "deploymentBlock": self.deployment_block,
            "transactionHash": self.transaction_hash,
            "operator": self.operator,
            "receiptSigner": self.receipt_signer,
            "deployer": self.deployer,
            "parameters": self.parameters.to_json(),
            "codeHash": self.code_hash,
            "checkpointKey": self.checkpoint_key,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        """Raises InputError naming a missing or malformed field."""
        if data.get("version") != FILE_VERSION:
            raise InputError(
                "version", f"deployment file version {data.get('version')!r}, want {FILE_VERSION}"
            )
        addresses = data.get("addresses")
        address = addresses.get(CONTRACT_NAME) if isinstance(addresses, dict) else None
        if not isinstance(address, str) or not is_address(address):
            raise InputError(f"addresses.{CONTRACT_NAME}", f"{address!r} is not an address")
        for name in ("operator", "receiptSigner", "deployer"):
            if not isinstance(data.get(name), str) or not is_address(data[name]):
                raise InputError(name, f"{data.get(name)!r} is not an address")
        if not isinstance(data.get("parameters"), dict):
            raise InputError("parameters", "missing from the deployment file")
        return cls(
            chain_id=_field(data, "chainId", int),
            rpc_url=_field(data, "rpcUrl", str),
            address=to_checksum_address(address),
            deployment_block=_field(data, "deploymentBlock", int),
            transaction_hash=_field(data, "transactionHash", str),
            operator=to_checksum_address(data["operator"]),
            receipt_signer=to_checksum_address(data["receiptSigner"]),
            deployer=to_checksum_address(data["deployer"]),
            parameters=Parameters.from_json(data["parameters"]),
            code_hash=_field(data, "codeHash", str),
            checkpoint_key=_checkpoint_key(data.get("checkpointKey")),
        )

    def save(self, path: Path) -> None:
        """Writes the file atomically (temporary file, fsync, rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as out:
            out.write(json.dumps(self.to_json(), indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        """Raises InputError if the file is missing or malformed."""
        if not path.is_file():
            raise InputError(
                "deployment", f"no deployment file at {path}: run `toploc-audit chain up` or `chain deploy`"
            )
        return cls.from_json(read_json(path))

    def check_on_chain(self, w3: Web3) -> None:
        """Raises ChainError unless `w3`'s chain has this deployment's code at its address."""
        chain_id = w3.eth.chain_id
        if chain_id != self.chain_id:
            raise ChainError(f"the node is on chain {chain_id}, the deployment on chain {self.chain_id}")
        code = bytes(w3.eth.get_code(to_checksum_address(self.address)))
        if "0x" + keccak(code).hex() != self.code_hash:
            raise ChainError(f"no ToplocAudit at {self.address} on this chain (state reset or another node?)")


T = TypeVar("T", int, str)


def _field(data: dict[str, Any], name: str, kind: type[T]) -> T:
    """data[name] if it is a `kind` (bool is not an int here); InputError naming it otherwise."""
    if name not in data:
        raise InputError(name, "missing from the deployment file")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(name, f"must be {'an integer' if kind is int else 'a string'}, got {value!r}")
    return value


def deploy_contract(w3: Web3, deployer: LocalAccount, artifact: Artifact, args: tuple[Any, ...] = ()) -> Sent:
    """Deploys `artifact` with constructor `args`; raises ContractRevert if its constructor refuses."""
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = factory.constructor(*args).data_in_transaction
    return send_transaction(w3, deployer, {"data": data, "value": 0}, RevertDecoder(artifact.abi))


def deploy_toploc_audit(
    w3: Web3,
    deployer: LocalAccount,
    operator: str,
    parameters: Parameters,
    rpc_url: str,
    *,
    receipt_signer: str,
    receipt_key: bytes | None = None,
) -> Deployment:
    """Deploys ToplocAudit with `operator` as the log operator (it anchors) and `receipt_signer` as the
    address receipts are signed by; returns the Deployment (not saved). With the `receipt_key` (whose
    address must be receipt_signer), the deployment also publishes the log's checkpoint-note key.

    Requires a funded `deployer`; raises InputError for a bad operator or receipt signer address.
    """
    for name, value in (("operator", operator), ("receipt-signer", receipt_signer)):
        if not is_address(value):
            raise InputError(name, f"{value!r} is not an address")
    operator, receipt_signer = to_checksum_address(operator), to_checksum_address(receipt_signer)
    if (
        receipt_key is not None
        and keys.PrivateKey(receipt_key).public_key.to_checksum_address() != receipt_signer
    ):
        raise InputError("receipt-key", f"is not the key of the receipt signer {receipt_signer}")
    parameters.validate()
    artifact = load_artifact(CONTRACT_NAME)
    sent = deploy_contract(w3, deployer, artifact, (operator, receipt_signer, parameters.to_abi()))
    if sent.contract_address is None:
        raise ChainError(f"deployment transaction {sent.tx_hash} created no contract")
    code = bytes(w3.eth.get_code(to_checksum_address(sent.contract_address)))
    return Deployment(
        chain_id=w3.eth.chain_id,
        rpc_url=rpc_url,
        address=to_checksum_address(sent.contract_address),
        deployment_block=sent.block_number,
        transaction_hash=sent.tx_hash,
        operator=operator,
        receipt_signer=receipt_signer,
        deployer=deployer.address,
        parameters=parameters,
        code_hash="0x" + keccak(code).hex(),
        checkpoint_key=None
        if receipt_key is None
        else _note_key(w3.eth.chain_id, sent.contract_address, receipt_key),
    )


def _note_key(chain_id: int, contract: str, receipt_key: bytes) -> str:
    from anchor.transparency.checkpoint import log_note_signer, log_origin

    origin = log_origin(chain_id, to_checksum_address(contract))
    return log_note_signer(origin, receipt_key).verifier.encode()


def _checkpoint_key(value: Any) -> str | None:
    from anchor.transparency.note import VerifierKey

    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError("checkpointKey", "must be a C2SP verifier key (name+hash+key)")
    VerifierKey.parse(value)  # raises InputError naming what is wrong
    return value


def read_json(path: Path) -> dict[str, Any]:
    """A deployment file's JSON object, unchecked; raises InputError if it is not a JSON object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError("deployment", f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError("deployment", f"{path} is not a JSON object")
    return data
