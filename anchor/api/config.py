"""What the recorder needs to run: the database, the EIP-712 domain (chain id + contract) and the log key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_keys import keys

from anchor.errors import InputError
from anchor.records.eip712 import Domain
from anchor.records.ingest import RecordPolicy
from anchor.settings import Settings
from anchor.transparency.checkpoint import log_note_signer, log_origin
from anchor.transparency.note import NoteSigner


def note_signer_of(domain: Domain, log_key: keys.PrivateKey) -> NoteSigner:
    return log_note_signer(log_origin(domain.chain_id, domain.contract), log_key.to_bytes())


@dataclass(frozen=True)
class AppConfig:
    database_url: str
    domain: Domain
    """Provider signatures and receipts are bound to this chain id and contract."""
    log_key: keys.PrivateKey
    max_merge_delay: int
    policy: RecordPolicy = field(default_factory=RecordPolicy)
    stake_problem: Callable[[str], str | None] | None = None
    """Why a provider may not log now (its stake on chain), or None; unset, stakes are not checked."""

    @property
    def note_signer(self) -> NoteSigner:
        """The key the log's checkpoints are signed with as C2SP notes (derived from the log key)."""
        return note_signer_of(self.domain, self.log_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppConfig:
        return cls(
            database_url=settings.database_url,
            domain=load_domain(settings),
            log_key=load_log_key(settings),
            max_merge_delay=settings.max_merge_delay,
            policy=RecordPolicy(
                settings.record_min_version,
                settings.record_max_tokens,
                settings.record_max_bytes,
                settings.record_allow_engine,
            ),
            stake_problem=provider_stakes(settings).problem if settings.stake_check else None,
        )


def provider_stakes(settings: Settings) -> Any:
    """The deployment's ProviderStakes (anchor.chain.provider_stakes), read through its RPC URL, after
    checking that the contract's unbonding covers what this recorder's receipts promise: the chain must
    answer when the recorder starts (later outages answer 503)."""
    from anchor.chain.client import ToplocAuditClient
    from anchor.chain.connection import connect
    from anchor.chain.deployment import Deployment
    from anchor.chain.provider_stakes import ProviderStakes

    deployment = Deployment.load(settings.deployment_file)
    w3 = connect(settings.rpc_url or deployment.rpc_url)
    deployment.check_on_chain(w3)
    client = ToplocAuditClient(w3, deployment.address)
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
    """The log key from TOPLOC_AUDIT_LOG_KEY, else from <home>/log.key."""
    text = settings.log_key
    source = "TOPLOC_AUDIT_LOG_KEY"
    if text is None:
        source = str(settings.log_key_file)
        if not settings.log_key_file.is_file():
            raise InputError("TOPLOC_AUDIT_LOG_KEY", f"not set, and {source} does not exist")
        text = settings.log_key_file.read_text().strip()
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
        return keys.PrivateKey(raw)
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
