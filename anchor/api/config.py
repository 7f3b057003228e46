"""What the recorder needs to run: the database, the EIP-712 domain (chain id + contract) and the receipt
key (never the log operator's transaction key: the recorder sends no transaction)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_keys import keys

from anchor.chain.errors import ChainError
from anchor.errors import InputError
from anchor.keyfiles import configured_key
from anchor.records.eip712 import Domain
from anchor.records.ingest import RecordPolicy
from anchor.settings import Settings
from anchor.transparency.checkpoint import log_note_signer, log_origin
from anchor.transparency.note import NoteSigner


def note_signer_of(domain: Domain, receipt_key: keys.PrivateKey) -> NoteSigner:
    """The log's checkpoint-note key, derived from the receipt key (the recorder holds no other)."""
    return log_note_signer(log_origin(domain.chain_id, domain.contract), receipt_key.to_bytes())


@dataclass(frozen=True)
class AppConfig:
    database_url: str
    domain: Domain
    """Provider signatures and receipts are bound to this chain id and contract."""
    receipt_key: keys.PrivateKey
    """Signs receipts (the contract's receiptSigner) and seeds the checkpoint note key."""
    max_merge_delay: int
    policy: RecordPolicy = field(default_factory=RecordPolicy)
    stake_problem: Callable[[str], str | None] | None = None
    """Why a provider may not log now (its stake on chain), or None; unset, stakes are not checked."""
    access: AccessPolicy = field(default_factory=lambda: AccessPolicy())
    chain_probe: Callable[[], None] | None = None
    """Raises ChainError when the chain does not answer (GET /readyz); unset, the chain is not probed."""

    @property
    def note_signer(self) -> NoteSigner:
        """The key the log's checkpoints are signed with as C2SP notes (derived from the log key)."""
        return note_signer_of(self.domain, self.receipt_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppConfig:
        receipt_key = load_receipt_key(settings)
        signer = receipt_key.public_key.to_checksum_address()
        return cls(
            database_url=settings.database_url,
            domain=load_domain(settings),
            receipt_key=receipt_key,
            max_merge_delay=settings.max_merge_delay,
            policy=RecordPolicy(
                settings.record_min_version,
                settings.record_max_tokens,
                settings.record_max_bytes,
                settings.record_allow_engine,
                clock_skew=settings.record_clock_skew,
                max_age=settings.record_max_age,
            ),
            stake_problem=provider_stakes(settings, signer).problem if settings.stake_check else None,
            access=AccessPolicy(settings.require_api_key, settings.rate_per_key, settings.rate_per_address),
            chain_probe=chain_probe(settings),
        )


@dataclass(frozen=True)
class AccessPolicy:
    """Who may write, and how often (settings: TOPLOC_AUDIT_REQUIRE_API_KEY, TOPLOC_AUDIT_RATE_*)."""

    require_api_key: bool = True
    """Record writes need an API key that identifies a provider, checked before the body is read."""
    rate_per_key: float = 0.0
    """Record writes per second per API key (bursts of twice that); 0 = no limit."""
    rate_per_address: float = 0.0
    """Writes per second per client address (bursts of twice that); 0 = no limit."""


def chain_probe(settings: Settings, timeout_s: float = 2.0) -> Callable[[], None] | None:
    """A probe of the chain for GET /readyz: eth_chainId at TOPLOC_AUDIT_RPC_URL, else the deployment
    file's rpcUrl, must answer within `timeout_s` with the deployment's chain id. None when neither names
    an endpoint (such a recorder never asks the chain: TOPLOC_AUDIT_STAKE_CHECK off)."""
    data = json.loads(settings.deployment_file.read_text())  # load_domain has read it already
    url = settings.rpc_url or data.get("rpcUrl")
    return None if not url else rpc_probe(url, int(data["chainId"]), timeout_s)


def rpc_probe(url: str, chain_id: int, timeout_s: float = 2.0) -> Callable[[], None]:
    """A probe raising ChainError unless the JSON-RPC node at `url` answers eth_chainId with `chain_id`."""

    def probe() -> None:
        import httpx

        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        try:
            answer = httpx.post(url, json=body, timeout=timeout_s).raise_for_status().json()
            got = int(answer["result"], 16)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ChainError(f"the chain does not answer at {url}: {type(exc).__name__}") from None
        if got != chain_id:
            raise ChainError(f"the node at {url} is on chain {got}, want {chain_id}")

    return probe


def provider_stakes(settings: Settings, receipt_signer: str) -> Any:
    """The deployment's ProviderStakes (anchor.chain.provider_stakes), read through its RPC URL, after
    checking that the contract's receiptSigner is `receipt_signer` (else no receipt would verify) and
    that its unbonding covers what this recorder's receipts promise: the chain must answer when the
    recorder starts (later outages answer 503)."""
    from anchor.chain.client import ToplocAuditClient
    from anchor.chain.connection import connect
    from anchor.chain.deployment import Deployment
    from anchor.chain.provider_stakes import ProviderStakes

    deployment = Deployment.load(settings.deployment_file)
    w3 = connect(settings.rpc_url or deployment.rpc_url)
    deployment.check_on_chain(w3)
    client = ToplocAuditClient(w3, deployment.address)
    published = client.receipt_signer()
    if published != receipt_signer:
        raise InputError(
            "TOPLOC_AUDIT_RECEIPT_KEY",
            f"is the key of {receipt_signer}, but the contract's receiptSigner is {published}: "
            "no receipt it signed would verify",
        )
    p = client.parameters()
    if settings.max_merge_delay > p.maxMergeDelay:
        raise InputError(
            "TOPLOC_AUDIT_MAX_MERGE_DELAY",
            f"{settings.max_merge_delay} s is above the deployment's maxMergeDelay {p.maxMergeDelay} s: "
            "receipts would promise anchoring later than the contract's unbonding period covers",
        )
    exposure = p.exposure + settings.stake_cache_seconds
    if p.unbondingPeriod <= exposure:
        raise InputError(
            "TOPLOC_AUDIT_STAKE_CACHE_SECONDS",
            f"an entry's exposure (maxMergeDelay + disputeWindow + every round's periods, {p.exposure} s) + "
            f"{settings.stake_cache_seconds:g} s of stake "
            f"cache is {exposure:g} s, not below the deployment's unbondingPeriod {p.unbondingPeriod} s",
        )
    return ProviderStakes(client, settings.stake_cache_seconds)


def load_log_key(settings: Settings) -> keys.PrivateKey:
    """The log operator's key (it sends the anchor transactions): TOPLOC_AUDIT_LOG_KEY, else
    <home>/log.key."""
    return _private_key(settings.log_key, "TOPLOC_AUDIT_LOG_KEY", settings.log_key_file)


def load_receipt_key(settings: Settings) -> keys.PrivateKey:
    """The receipt signer's key: TOPLOC_AUDIT_RECEIPT_KEY, else <home>/receipt.key."""
    return _private_key(settings.receipt_key, "TOPLOC_AUDIT_RECEIPT_KEY", settings.receipt_key_file)


def _private_key(value: str | None, variable: str, path: Path) -> keys.PrivateKey:
    """The key from `variable` (its `value`), else from key file `path` (which must be mode 0600)."""
    found = configured_key(value, variable, path)
    if found is None:
        raise InputError(variable, f"not set, and {path} does not exist")
    text, source = found
    try:
        return keys.PrivateKey(bytes.fromhex(text.strip().removeprefix("0x")))
    except Exception:
        raise InputError(source, "is not a 32-byte hex private key") from None


def load_domain(settings: Settings) -> Domain:
    """Chain id and contract address from the deployment file (written by `toploc-audit chain deploy`)."""
    path = settings.deployment_file
    if not path.is_file():
        raise InputError("TOPLOC_AUDIT_DEPLOYMENT", f"{path} does not exist: deploy the contract first")
    try:
        data = json.loads(path.read_text())
        # The file anchor.chain.deployment writes: {"chainId", "addresses": {"ToplocAudit": ...}, ...}
        return Domain.of(int(data["chainId"]), data["addresses"]["ToplocAudit"])
    except Exception as exc:
        raise InputError(
            "TOPLOC_AUDIT_DEPLOYMENT", f"{path}: no chain id and contract address ({exc})"
        ) from None
