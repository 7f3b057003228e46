"""What a verifier process needs, made once per process on first use: the database, the deployment, a
chain client acting as this worker's validator, and the model store.

Made lazily because Celery forks its pool processes after importing the tasks: database engines and
HTTP sessions must be created in the process that uses them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import requests
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker

from anchor.chain.client import ToplocAuditClient
from anchor.chain.connection import connect
from anchor.chain.deployment import Deployment
from anchor.chain.errors import ChainError
from anchor.db import open_database
from anchor.errors import Error, InputError
from anchor.keyfiles import load_account
from anchor.settings import Settings
from verifier.dispatch import Dispatcher
from verifier.events import EventSource
from verifier.model_store import ModelStore
from verifier.watcher import Synced, sync

log = logging.getLogger("toploc_audit.verifier")


class RpcUnavailable(Error):
    """The JSON-RPC node does not answer (an outage): the work is retried."""


load_key = load_account  # the one parser of hex keys (anchor.keyfiles)


def validator_account(settings: Settings) -> LocalAccount | None:
    """The worker's validator (TOPLOC_AUDIT_VALIDATOR_KEY), None when unset (a process that only reads)."""
    if settings.validator_key is None:
        return None
    return load_key(settings.validator_key, "TOPLOC_AUDIT_VALIDATOR_KEY")


@dataclass
class Runtime:
    settings: Settings
    account: LocalAccount | None
    _sessions: sessionmaker[Session] | None = field(default=None, repr=False)
    _deployment: Deployment | None = field(default=None, repr=False)
    _client: ToplocAuditClient | None = field(default=None, repr=False)
    _store: ModelStore | None = field(default=None, repr=False)
    _dispatcher: Dispatcher | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings, validator_account(settings))

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = open_database(self.settings.database_url)
        return self._sessions

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            self._deployment = Deployment.load(self.settings.deployment_file)
        return self._deployment

    @property
    def rpc_url(self) -> str:
        return self.settings.rpc_url or self.deployment.rpc_url

    @property
    def client(self) -> ToplocAuditClient:
        """The contract, acting as this worker's validator. Raises RpcUnavailable while the node is down."""
        if self._client is None:
            try:
                w3 = connect(self.rpc_url)
            except ChainError as exc:
                raise RpcUnavailable(str(exc)) from exc
            self.deployment.check_on_chain(w3)
            self._client = ToplocAuditClient(w3, self.deployment.address, self.account)
        return self._client

    @property
    def validator(self) -> str:
        if self.account is None:
            raise InputError(
                "TOPLOC_AUDIT_VALIDATOR_KEY", "this work needs the validator's key; it is not set"
            )
        return str(self.account.address)

    @property
    def store(self) -> ModelStore:
        if self._store is None:
            settings = self.settings
            self._store = ModelStore(
                settings.models_dir, mode=settings.validation_mode, memory=settings.validator_memory
            )
        return self._store

    def dispatcher(self, app: object) -> Dispatcher:
        if self._dispatcher is None:
            from celery import Celery

            assert isinstance(app, Celery)
            self._dispatcher = Dispatcher(app, self.sessions, self.settings)
        return self._dispatcher

    def watch_pass(self, app: object, crash_at: str | None = None) -> Synced:
        """One watcher pass: sync events, then queue whatever is due. Raises RpcUnavailable when the
        node is down, after queueing what the database alone says is due (validations and votes: a
        broker restart during an RPC outage must not leave them unsent)."""
        try:
            source = EventSource(self.client)
            synced = sync(
                self.sessions,
                source,
                self.deployment.deployment_block,
                self.settings.validators,
                self.settings.watch_confirmations,
                crash_at,
            )
        except (requests.RequestException, RpcUnavailable) as exc:
            self.dispatcher(app).due(None)
            raise RpcUnavailable(f"the JSON-RPC node at {self.rpc_url} does not answer: {exc}") from exc
        self.dispatcher(app).due(synced.head_timestamp, touched=synced.changes.touched_disputes)
        return synced


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """This process's Runtime (made on first use from the environment)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_settings(Settings.from_env())
    return _runtime
