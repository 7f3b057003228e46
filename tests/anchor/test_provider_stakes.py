"""The recorder refuses records of providers whose stake on chain is under the minimum (real Anvil):
never staked, unstaking everything; readings are cached for a bounded time; a chain that does not
answer is a 503, not an acceptance."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from web3 import Web3

from anchor.api import AppConfig, create_app
from anchor.chain.client import Role, ToplocAuditClient
from anchor.chain.parameters import ETHER
from anchor.chain.provider_stakes import ProviderStakes
from anchor.errors import InputError
from anchor.settings import Settings
from tests.anchor.conftest import KEYLESS, MAX_MERGE_DELAY, field_reason, seed_registry
from tests.anchor.factory import DOMAIN, PROVIDER, PROVIDER_KEY, RECEIPT_KEY, entry, make_record, other_key
from tests.fixtures.chain import RECEIPT_SIGNER, AuditChain


def _log_size(client: TestClient) -> int:
    return int(client.get("/v1/log").json()["size"])


def test_records_of_providers_without_stake_are_refused(audit: AuditChain, database_url: str) -> None:
    seed_registry(database_url)
    now = [0.0]
    stakes = ProviderStakes(audit.client(), max_age=30, clock=lambda: now[0])
    config = AppConfig(
        database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, stake_problem=stakes.problem, access=KEYLESS
    )
    app = create_app(config)
    minimum = audit.parameters.minProviderStake
    with TestClient(app) as client:
        r = client.post("/v1/records", json=entry(make_record("s-0")))
        assert r.status_code == 403, r.text
        assert field_reason(r) == {
            "field": "record.provider",
            "reason": f"{PROVIDER} has no provider stake on chain (stake at least {minimum} wei first)",
        }
        assert _log_size(client) == 0

        # A stranger is still told it is not registered (the registry's answer comes first).
        stranger = other_key("stranger")
        body = entry(make_record("s-x", provider=stranger.public_key.to_checksum_address()), stranger)
        r = client.post("/v1/records", json=body)
        assert r.status_code == 403 and "is not a registered provider" in r.json()["reason"]

        provider = Account.from_key(PROVIDER_KEY.to_bytes())
        audit.node.rpc("anvil_setBalance", [PROVIDER, hex(10 * ETHER)])
        acting = audit.client(provider)
        acting.stake(Role.PROVIDER, minimum)
        assert client.post("/v1/records", json=entry(make_record("s-1"))).status_code == 403  # cached
        now[0] += 31
        assert client.post("/v1/records", json=entry(make_record("s-1"))).status_code == 201

        acting.request_unstake(minimum)
        # Within the cache's age the old reading stands: the staleness bound docs/contracts.md counts.
        assert client.post("/v1/records", json=entry(make_record("s-2"))).status_code == 201
        now[0] += 31
        r = client.post("/v1/records", json=entry(make_record("s-3")))
        assert r.status_code == 403
        assert r.json()["reason"] == (
            f"{PROVIDER} is unstaking: 0 wei active, {minimum} unbonding, under the minimum {minimum}; "
            "records logged now could be disputed after its stake is gone"
        )
        assert _log_size(client) == 2
        # A retry of a record logged while the stake stood still gets its receipt.
        again = client.post("/v1/records", json=entry(make_record("s-1")))
        assert again.status_code == 200 and again.json()["created"] is False, again.text
    app.state.engine.dispose()


def test_a_chain_that_does_not_answer_is_a_503(audit: AuditChain, database_url: str) -> None:
    seed_registry(database_url)
    down = ToplocAuditClient(Web3(Web3.HTTPProvider("http://127.0.0.1:9")), audit.deployment.address)
    stakes = ProviderStakes(down, max_age=30)
    app = create_app(
        AppConfig(
            database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, stake_problem=stakes.problem, access=KEYLESS
        )
    )
    with TestClient(app) as client:
        r = client.post("/v1/records", json=entry(make_record("d-0")))
        assert r.status_code == 503, r.text
        assert r.json()["reason"].startswith(f"could not read {PROVIDER}'s stake from the chain")
        assert _log_size(client) == 0
    app.state.engine.dispose()


def test_settings_turn_the_check_on_by_default_and_pass_the_record_policy(
    audit: AuditChain, tmp_path: Path
) -> None:
    audit.deployment.save(tmp_path / "deployment.json")
    base = {
        "TOPLOC_AUDIT_HOME": str(tmp_path),
        "TOPLOC_AUDIT_RECEIPT_KEY": RECEIPT_SIGNER.key.hex(),
        "TOPLOC_AUDIT_MAX_MERGE_DELAY": str(audit.parameters.maxMergeDelay),
    }
    config = AppConfig.from_settings(Settings.from_env(base | {"TOPLOC_AUDIT_RECORD_ALLOW_ENGINE": "yes"}))
    assert config.policy.allow_engine  # was dropped before: the variable had no effect on the server
    assert config.stake_problem is not None and "no provider stake" in (config.stake_problem(PROVIDER) or "")
    off = AppConfig.from_settings(Settings.from_env(base | {"TOPLOC_AUDIT_STAKE_CHECK": "false"}))
    assert off.stake_problem is None and not off.policy.allow_engine
    with pytest.raises(InputError) as bad:
        Settings.from_env(base | {"TOPLOC_AUDIT_STAKE_CHECK": "maybe"})
    assert bad.value.field == "TOPLOC_AUDIT_STAKE_CHECK"
    # A receipt key the contract does not publish (here the operator's): the recorder will not start.
    wrong = base | {"TOPLOC_AUDIT_RECEIPT_KEY": audit.operator.key.hex()}
    with pytest.raises(InputError) as bad:
        AppConfig.from_settings(Settings.from_env(wrong))
    assert (bad.value.field, bad.value.reason) == (
        "TOPLOC_AUDIT_RECEIPT_KEY",
        f"is the key of {audit.operator.address}, but the contract's receiptSigner is "
        f"{RECEIPT_SIGNER.address}: no receipt it signed would verify",
    )
    # Receipts promising later anchoring than the contract's unbonding covers: the recorder will not start.
    late = base | {"TOPLOC_AUDIT_MAX_MERGE_DELAY": str(audit.parameters.maxMergeDelay + 1)}
    with pytest.raises(InputError) as bad:
        AppConfig.from_settings(Settings.from_env(late))
    assert bad.value.field == "TOPLOC_AUDIT_MAX_MERGE_DELAY"
    stale = base | {"TOPLOC_AUDIT_STAKE_CACHE_SECONDS": str(audit.parameters.unbondingPeriod)}
    with pytest.raises(InputError) as bad:
        AppConfig.from_settings(Settings.from_env(stale))
    assert bad.value.field == "TOPLOC_AUDIT_STAKE_CACHE_SECONDS"
