"""Configuration from environment variables, one place for all of them (the README lists each).

Everything has an embedded default under the state folder, so `make demo` needs no configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Settings:
    home: Path
    """TOPLOC_AUDIT_HOME: the state folder (models, SQLite, deployment, keys). Default ./.toploc-audit"""
    database_url: str
    """TOPLOC_AUDIT_DATABASE_URL: SQLAlchemy URL. Default sqlite:///<home>/audit.sqlite3"""
    broker_url: str
    """TOPLOC_AUDIT_BROKER_URL: Celery broker. Default sqla+sqlite:///<home>/broker.sqlite3 (kombu)"""
    models_dir: Path
    """TOPLOC_AUDIT_MODELS: the local model store (HF folders). Default <home>/models"""
    deployment_file: Path
    """TOPLOC_AUDIT_DEPLOYMENT: written by `chain up/deploy`. Default <home>/deployment.json"""
    rpc_url: str | None
    """TOPLOC_AUDIT_RPC_URL: JSON-RPC endpoint. Default: the one recorded in the deployment file"""
    log_key: str | None
    """TOPLOC_AUDIT_LOG_KEY: hex secp256k1 key of the log operator: signs the anchor transactions (the
    contract's operator; it pays gas, so it holds ETH). Default: read from <home>/log.key"""
    max_merge_delay: int
    """TOPLOC_AUDIT_MAX_MERGE_DELAY: seconds within which a receipt promises anchoring. Default 3600"""
    anchor_every_entries: int
    """TOPLOC_AUDIT_ANCHOR_ENTRIES: the anchor loop checkpoints once this many entries wait. Default 1000"""
    anchor_every_seconds: float
    """TOPLOC_AUDIT_ANCHOR_SECONDS: ... or once the oldest waiting entry is this old. Default 60"""
    anchor_confirmations: int
    """TOPLOC_AUDIT_ANCHOR_CONFIRMATIONS: blocks (the including one counts) before an anchor is final.
    Default 3"""
    anchor_crash_at: str | None
    """TOPLOC_AUDIT_ANCHOR_CRASH_AT: test hook: the anchor loop SIGKILLs itself at this step
    (before-send, after-send, after-confirm). Unset in production"""
    api_host: str
    """TOPLOC_AUDIT_API_HOST: address `serve` listens on. Default 127.0.0.1"""
    api_port: int
    """TOPLOC_AUDIT_API_PORT: port `serve` listens on. Default 8470"""
    test_postgres_url: str
    """TOPLOC_AUDIT_TEST_POSTGRES_URL: server the test suite creates (and drops) its own databases on.
    Default postgresql://postgres@127.0.0.1:5432/postgres"""
    validators: tuple[str, ...] = ()
    """TOPLOC_AUDIT_VALIDATORS: comma-separated addresses of the validators this deployment runs (the
    watcher queues validation work for these committee members only). Default: the names of the key
    files <home>/validators/<address>.key"""
    validator_key: str | None = None
    """TOPLOC_AUDIT_VALIDATOR_KEY: hex secp256k1 key of the validator a worker votes as (`toploc-audit
    worker --key-file` sets it for its own process). Unset: the worker must be given a key file"""
    provider_key: str | None = None
    """TOPLOC_AUDIT_PROVIDER_KEY: hex key `generate --record` signs records with. Default:
    <home>/provider.key"""
    challenger_key: str | None = None
    """TOPLOC_AUDIT_CHALLENGER_KEY: hex key `dispute file` sends openDispute from. Default:
    <home>/challenger.key"""
    receipt_key: str | None = None
    """TOPLOC_AUDIT_RECEIPT_KEY: hex secp256k1 key the recorder signs receipts with (the contract's
    receiptSigner) and derives the checkpoint note key from; it sends no transaction, so the recorder
    never holds the operator's key. Default: read from <home>/receipt.key"""
    chain_block_time: float = 2.0
    """TOPLOC_AUDIT_CHAIN_BLOCK_TIME: seconds between the blocks `chain up`'s Anvil mines on its own
    (it still mines every transaction at once), so confirmations arrive on an idle chain; 0 mines on
    transactions only. Default 2"""
    recorder_url: str = ""
    """TOPLOC_AUDIT_RECORDER_URL: the recorder API `generate --record` posts to. Default
    http://<api_host>:<api_port>"""
    queue_prefix: str = ""
    """TOPLOC_AUDIT_QUEUE_PREFIX: prefixed to every Celery queue name, so deployments (or test sessions)
    can share one broker. Default empty"""
    broker_poll_seconds: float = 0.1
    """TOPLOC_AUDIT_BROKER_POLL: seconds between polls of a polling broker (the SQLite one). Default 0.1"""
    broker_visibility_timeout: int = 3600
    """TOPLOC_AUDIT_BROKER_VISIBILITY_TIMEOUT: seconds after which Redis hands an unacknowledged task
    (its worker vanished) to another worker. Default 3600"""
    watch_confirmations: int = 6
    """TOPLOC_AUDIT_WATCH_CONFIRMATIONS: the watcher re-reads this many blocks below its last synced block
    on every pass (recent blocks may still be reorganised). Default 6"""
    watch_seconds: float = 2.0
    """TOPLOC_AUDIT_WATCH_SECONDS: seconds between watcher passes (`watch` and the beat task). Default 2"""
    requeue_seconds: float = 120.0
    """TOPLOC_AUDIT_REQUEUE_SECONDS: work queued this long ago and still not done is queued again (a
    broker restart may have lost the message; tasks are idempotent). Default 120"""
    validate_retries: int = 3
    """TOPLOC_AUDIT_VALIDATE_RETRIES: retries of a validation that could not check (model missing, crash,
    time limit) before the validator abstains. Default 3"""
    retry_seconds: float = 10.0
    """TOPLOC_AUDIT_RETRY_SECONDS: delay before the first retry of a failed task; doubles each time.
    Default 10"""
    validation_lease: int = 1800
    """TOPLOC_AUDIT_VALIDATION_LEASE: seconds a claimed validation stays with the task that claimed it;
    after that another task may take it over. Default 1800"""
    validate_batch: int = 64
    """TOPLOC_AUDIT_VALIDATE_BATCH: most records of one model validated in one batched prefill call.
    Default 64"""
    validate_time_limit: int = 1800
    """TOPLOC_AUDIT_VALIDATE_TIME_LIMIT: soft time limit (seconds) of one validation task. Default 1800"""
    watch_crash_at: str | None = None
    """TOPLOC_AUDIT_WATCH_CRASH_AT: test hook: the watcher SIGKILLs itself at this step of a pass
    (after-fetch, after-apply). Unset in production"""
    validate_hold_dir: Path | None = None
    """TOPLOC_AUDIT_VALIDATE_HOLD_DIR: test hook: while <dir>/hold-<disputeId> exists, a validation of that
    dispute writes <dir>/running-<disputeId>-<validator> (its pid) and waits. Unset in production"""
    api_workers: int = 1
    """TOPLOC_AUDIT_API_WORKERS: server processes `serve` runs (appends stay serialised by the database;
    parsing and signature checks run in parallel). Default 1"""
    record_min_version: int = 2
    """TOPLOC_AUDIT_RECORD_MIN_VERSION: oldest record version the recorder accepts. Version 1 binds no
    decode spec, so its tokens cannot be replayed. Default 2"""
    record_max_tokens: int = 32768
    """TOPLOC_AUDIT_RECORD_MAX_TOKENS: most prompt + output tokens of one record. Default 32768"""
    record_max_bytes: int = 120 << 10
    """TOPLOC_AUDIT_RECORD_MAX_BYTES: most canonical bytes of one record, at most 400000: openDispute
    carries the record in its calldata, so a larger one could not be disputed. Default 122880 (120 KiB,
    under the 128 KiB transaction size public nodes relay; a 4,096-token SmolLM2 record is 69 KB)"""
    record_allow_engine: bool = False
    """TOPLOC_AUDIT_RECORD_ALLOW_ENGINE: accept sampled records of the `engine` sampler (not replayable:
    a weak likelihood test only). Default false"""
    stake_check: bool = True
    """TOPLOC_AUDIT_STAKE_CHECK: the recorder refuses records of a provider whose active stake on chain
    is under the minimum (never staked, unstaking, slashed below it). Default true"""
    stake_cache_seconds: float = 30.0
    """TOPLOC_AUDIT_STAKE_CACHE_SECONDS: how old a stake read from the chain may be; it adds to the
    exposure unbondingPeriod must cover (docs/contracts.md). Default 30"""
    require_api_key: bool = True
    """TOPLOC_AUDIT_REQUIRE_API_KEY: writes of records need a provider's API key (Authorization: Bearer
    <key> or X-Api-Key), checked before the body is read. `demo` turns it off for its keyless provider.
    Default true"""
    rate_per_key: float = 100.0
    """TOPLOC_AUDIT_RATE_PER_KEY: record writes per second one API key may make (bursts of twice that),
    per server process; 0 = no limit. Default 100"""
    rate_per_address: float = 200.0
    """TOPLOC_AUDIT_RATE_PER_ADDRESS: writes (records, evidence) per second from one client address
    (bursts of twice that), per server process; 0 = no limit. Default 200"""
    record_clock_skew: int = 300
    """TOPLOC_AUDIT_RECORD_CLOCK_SKEW: seconds a record's `time` may be ahead of the recorder's clock.
    Default 300"""
    record_max_age: int = 7 * 86400
    """TOPLOC_AUDIT_RECORD_MAX_AGE: seconds a record's `time` may be behind the recorder's clock; 0 = no
    bound. Default 604800 (7 days)"""
    audit_rate: float = 0.05
    """TOPLOC_AUDIT_AUDIT_RATE: share of anchored entries `toploc-audit audit` checks (0..1). Default 0.05"""
    audit_delay_blocks: int = 2
    """TOPLOC_AUDIT_AUDIT_DELAY_BLOCKS: the auditor's seed is the hash of the block this many blocks after
    the one that anchored a checkpoint. Default 2"""
    audit_max_open: int = 10
    """TOPLOC_AUDIT_AUDIT_MAX_OPEN: most disputes the auditor keeps open at once (its bond budget: that
    many bonds locked); failing entries beyond it are reported, not disputed. Default 10"""
    validation_mode: str = "auto"
    """TOPLOC_AUDIT_VALIDATION_MODE: how a worker loads models: `reference` (float32 plus a copy in the
    claimed dtype: 6 bytes per parameter, the finer checks), `claimed` (the records' dtype only: 2 bytes
    per parameter) or `auto` (reference when it fits TOPLOC_AUDIT_VALIDATOR_MEMORY). Default auto"""
    validator_memory: int = 0
    """TOPLOC_AUDIT_VALIDATOR_MEMORY: bytes of weights a worker may hold in reference mode (auto).
    Default 0: half of the GPU's memory, or of the machine's RAM without a GPU"""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("TOPLOC_AUDIT_HOME", ".toploc-audit")).expanduser().resolve()
        return cls(
            home=home,
            database_url=env.get("TOPLOC_AUDIT_DATABASE_URL", f"sqlite:///{home / 'audit.sqlite3'}"),
            broker_url=env.get("TOPLOC_AUDIT_BROKER_URL", f"sqla+sqlite:///{home / 'broker.sqlite3'}"),
            models_dir=Path(env.get("TOPLOC_AUDIT_MODELS", str(home / "models"))).expanduser().resolve(),
            deployment_file=Path(
                env.get("TOPLOC_AUDIT_DEPLOYMENT", str(home / "deployment.json"))
            ).expanduser(),
            rpc_url=env.get("TOPLOC_AUDIT_RPC_URL") or None,
            log_key=env.get("TOPLOC_AUDIT_LOG_KEY") or None,
            max_merge_delay=_number(env, "TOPLOC_AUDIT_MAX_MERGE_DELAY", 3600, int, 1),
            anchor_every_entries=_number(env, "TOPLOC_AUDIT_ANCHOR_ENTRIES", 1000, int, 1),
            anchor_every_seconds=_number(env, "TOPLOC_AUDIT_ANCHOR_SECONDS", 60.0, float, 0),
            anchor_confirmations=_number(env, "TOPLOC_AUDIT_ANCHOR_CONFIRMATIONS", 3, int, 1),
            anchor_crash_at=env.get("TOPLOC_AUDIT_ANCHOR_CRASH_AT") or None,
            api_host=env.get("TOPLOC_AUDIT_API_HOST", "127.0.0.1"),
            api_port=_at_most(
                "TOPLOC_AUDIT_API_PORT", _number(env, "TOPLOC_AUDIT_API_PORT", 8470, int, 1), 65535
            ),
            test_postgres_url=env.get(
                "TOPLOC_AUDIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
            ),
            api_workers=_number(env, "TOPLOC_AUDIT_API_WORKERS", 1, int, 1),
            record_min_version=_number(env, "TOPLOC_AUDIT_RECORD_MIN_VERSION", 2, int, 1),
            record_max_tokens=_number(env, "TOPLOC_AUDIT_RECORD_MAX_TOKENS", 32768, int, 2),
            record_max_bytes=_at_most(
                "TOPLOC_AUDIT_RECORD_MAX_BYTES",
                _number(env, "TOPLOC_AUDIT_RECORD_MAX_BYTES", 120 << 10, int, 1024),
                400_000,  # anchor.records.ingest.MAX_RECORD_BYTES: what one openDispute can carry
            ),
            record_allow_engine=_flag(env, "TOPLOC_AUDIT_RECORD_ALLOW_ENGINE"),
            stake_check=_flag(env, "TOPLOC_AUDIT_STAKE_CHECK", default=True),
            require_api_key=_flag(env, "TOPLOC_AUDIT_REQUIRE_API_KEY", default=True),
            rate_per_key=_number(env, "TOPLOC_AUDIT_RATE_PER_KEY", 100.0, float, 0),
            rate_per_address=_number(env, "TOPLOC_AUDIT_RATE_PER_ADDRESS", 200.0, float, 0),
            record_clock_skew=_at_most(
                "TOPLOC_AUDIT_RECORD_CLOCK_SKEW",
                _number(env, "TOPLOC_AUDIT_RECORD_CLOCK_SKEW", 300, int, 0),
                86400,
            ),
            record_max_age=_number(env, "TOPLOC_AUDIT_RECORD_MAX_AGE", 7 * 86400, int, 0),
            audit_rate=_number(env, "TOPLOC_AUDIT_AUDIT_RATE", 0.05, float, 0),
            audit_delay_blocks=_number(env, "TOPLOC_AUDIT_AUDIT_DELAY_BLOCKS", 2, int, 1),
            audit_max_open=_number(env, "TOPLOC_AUDIT_AUDIT_MAX_OPEN", 10, int, 0),
            stake_cache_seconds=_number(env, "TOPLOC_AUDIT_STAKE_CACHE_SECONDS", 30.0, float, 0),
            **_verifier_settings(env, home),
        )

    @property
    def log_key_file(self) -> Path:
        """Where the log key is read from when TOPLOC_AUDIT_LOG_KEY is unset."""
        return self.home / "log.key"

    @property
    def receipt_key_file(self) -> Path:
        """Where the receipt key is read from when TOPLOC_AUDIT_RECEIPT_KEY is unset."""
        return self.home / "receipt.key"

    @property
    def validator_keys_dir(self) -> Path:
        """Key files of the validators this deployment runs, one <address>.key each (hex key)."""
        return self.home / "validators"

    @property
    def provider_key_file(self) -> Path:
        """Where `generate --record` reads the provider key when TOPLOC_AUDIT_PROVIDER_KEY is unset."""
        return self.home / "provider.key"

    @property
    def challenger_key_file(self) -> Path:
        """Where `dispute file` reads the challenger key when TOPLOC_AUDIT_CHALLENGER_KEY is unset."""
        return self.home / "challenger.key"


ENV_PREFIX = "TOPLOC_AUDIT_"


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment without any TOPLOC_AUDIT_* variable, plus `settings`: what a child
    process (a worker, a CLI run by a test) gets so that only the caller's choices configure it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings)
    return env


def _number(env: Mapping[str, str], name: str, default: N, kind: type[N], minimum: N) -> N:
    """Parse a numeric variable; a bad value is an InputError naming it (and nothing starts)."""
    from anchor.errors import InputError

    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise InputError(name, f"{raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    if value < minimum:
        raise InputError(name, f"{value} is below the minimum {minimum}")
    return value


def _at_most(name: str, value: N, maximum: N) -> N:
    """`value` (parsed from `name`) unless it exceeds `maximum`: an InputError naming the variable."""
    from anchor.errors import InputError

    if value > maximum:
        raise InputError(name, f"{value} is above the maximum {maximum}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A boolean variable: true/1/yes or false/0/no (unset: `default`); anything else names the variable."""
    from anchor.errors import InputError

    raw = (env.get(name) or str(default)).strip().lower()
    if raw not in ("true", "1", "yes", "false", "0", "no"):
        raise InputError(name, f"{raw!r} is not true or false")
    return raw in ("true", "1", "yes")


def _verifier_settings(env: Mapping[str, str], home: Path) -> dict[str, object]:
    """The variables of disputes, validators and workers (verifier/ and its commands)."""
    from anchor.errors import InputError

    validators = tuple(v.strip() for v in env.get("TOPLOC_AUDIT_VALIDATORS", "").split(",") if v.strip())
    for i, address in enumerate(validators):
        if not (address.startswith("0x") and len(address) == 42):
            raise InputError(f"TOPLOC_AUDIT_VALIDATORS[{i}]", f"{address!r} is not a 0x address")
    if not validators and (home / "validators").is_dir():
        validators = tuple(sorted(p.stem for p in (home / "validators").glob("0x*.key")))
    hold = env.get("TOPLOC_AUDIT_VALIDATE_HOLD_DIR") or None
    mode = env.get("TOPLOC_AUDIT_VALIDATION_MODE") or "auto"
    if mode not in ("auto", "reference", "claimed"):
        raise InputError("TOPLOC_AUDIT_VALIDATION_MODE", f"{mode!r} is not one of auto, reference, claimed")
    api = f"http://{env.get('TOPLOC_AUDIT_API_HOST', '127.0.0.1')}:{env.get('TOPLOC_AUDIT_API_PORT', '8470')}"
    return {
        "validators": validators,
        "validator_key": env.get("TOPLOC_AUDIT_VALIDATOR_KEY") or None,
        "provider_key": env.get("TOPLOC_AUDIT_PROVIDER_KEY") or None,
        "receipt_key": env.get("TOPLOC_AUDIT_RECEIPT_KEY") or None,
        "chain_block_time": _number(env, "TOPLOC_AUDIT_CHAIN_BLOCK_TIME", 2.0, float, 0),
        "challenger_key": env.get("TOPLOC_AUDIT_CHALLENGER_KEY") or None,
        "recorder_url": env.get("TOPLOC_AUDIT_RECORDER_URL") or api,
        "queue_prefix": env.get("TOPLOC_AUDIT_QUEUE_PREFIX", ""),
        "broker_poll_seconds": _number(env, "TOPLOC_AUDIT_BROKER_POLL", 0.1, float, 0.001),
        "broker_visibility_timeout": _number(env, "TOPLOC_AUDIT_BROKER_VISIBILITY_TIMEOUT", 3600, int, 1),
        "watch_confirmations": _number(env, "TOPLOC_AUDIT_WATCH_CONFIRMATIONS", 6, int, 1),
        "watch_seconds": _number(env, "TOPLOC_AUDIT_WATCH_SECONDS", 2.0, float, 0.01),
        "requeue_seconds": _number(env, "TOPLOC_AUDIT_REQUEUE_SECONDS", 120.0, float, 0.1),
        "validate_retries": _number(env, "TOPLOC_AUDIT_VALIDATE_RETRIES", 3, int, 0),
        "retry_seconds": _number(env, "TOPLOC_AUDIT_RETRY_SECONDS", 10.0, float, 0),
        "validation_lease": _number(env, "TOPLOC_AUDIT_VALIDATION_LEASE", 1800, int, 1),
        "validate_batch": _number(env, "TOPLOC_AUDIT_VALIDATE_BATCH", 64, int, 1),
        "validate_time_limit": _number(env, "TOPLOC_AUDIT_VALIDATE_TIME_LIMIT", 1800, int, 1),
        "watch_crash_at": env.get("TOPLOC_AUDIT_WATCH_CRASH_AT") or None,
        "validate_hold_dir": None if hold is None else Path(hold).expanduser().resolve(),
        "validation_mode": mode,
        "validator_memory": _number(env, "TOPLOC_AUDIT_VALIDATOR_MEMORY", 0, int, 0),
    }
