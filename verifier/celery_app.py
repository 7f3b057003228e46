"""The Celery app of the validators, configured from anchor.settings (TOPLOC_AUDIT_* variables).

Broker: TOPLOC_AUDIT_BROKER_URL; Redis in production, and by default the kombu SQLAlchemy transport on a
SQLite file in the state folder (no server to run). Results go to the database (validations, votes,
disputes), never to a Celery result backend.

Queues (each name prefixed with TOPLOC_AUDIT_QUEUE_PREFIX):
- `validate.<validator>`: GPU work of one validator (its worker consumes it with prefetch 1);
- `chain.<validator>`: transactions signed with that validator's key (its votes);
- `chain`: work any worker may do (watcher passes, resolving disputes).
Each validator has its own queues because only its worker holds its key, and because a committee's
members must each recompute the verdict themselves.

Delivery: tasks are acknowledged after they finish (acks_late) and handed to another worker when the
one running them dies (reject_on_worker_lost); every task is idempotent, keyed on (dispute, validator)
in the database, so a redelivery repeats nothing that was done.

`celery -A verifier.celery_app worker` works too; `toploc-audit worker` sets the queues and the key.
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from anchor.settings import Settings
from verifier.broker import use_shared_sqlite_channel

VALIDATE = "validate"
CHAIN = "chain"


def validate_queue(settings: Settings, validator: str) -> str:
    """The GPU queue of `validator` (an address; case does not matter)."""
    return f"{settings.queue_prefix}{VALIDATE}.{validator.lower()}"


def chain_queue(settings: Settings, validator: str | None = None) -> str:
    """The transaction queue of `validator`, or the shared one when None."""
    suffix = "" if validator is None else f".{validator.lower()}"
    return f"{settings.queue_prefix}{CHAIN}{suffix}"


def _transport_options(settings: Settings) -> dict[str, object]:
    url = settings.broker_url
    if url.startswith(("redis://", "rediss://", "unix://")):
        # A task whose worker vanished without a word goes back to the queue after this long.
        options: dict[str, object] = {"visibility_timeout": settings.broker_visibility_timeout}
        if settings.queue_prefix:
            # Every key (queues, bindings, the unacked set) under the prefix: deployments sharing a
            # Redis never restore or consume each other's messages.
            options["global_keyprefix"] = settings.queue_prefix
        return options
    if url.startswith("sqla+"):
        from kombu.transport import sqlalchemy as sqla_transport

        # NOTES.md: a polling_interval transport option reaches create_engine and crashes the worker;
        # the transport class attribute is the way to set it.
        sqla_transport.Transport.polling_interval = settings.broker_poll_seconds
        if url.startswith("sqla+sqlite:///"):
            Path(url.removeprefix("sqla+sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            use_shared_sqlite_channel()  # several workers share the file (verifier/broker.py)
            # Several workers poll one file: wait for its lock instead of failing at once.
            return {"connect_args": {"timeout": 60}}
    return {}


def make_app(settings: Settings) -> Celery:
    """The app for `settings`: broker, queues, delivery guarantees, the beat schedule."""
    app = Celery("toploc_audit", include=["verifier.tasks"])
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker outlives a broker restart
        task_default_queue=chain_queue(settings),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        beat_schedule_filename=str(settings.home / "celerybeat-schedule"),
        beat_schedule={
            "watch": {
                "task": "verifier.watch",
                "schedule": settings.watch_seconds,
                "options": {"queue": chain_queue(settings), "expires": max(settings.watch_seconds * 5, 10)},
            }
        },
    )
    return app


app = make_app(Settings.from_env())
