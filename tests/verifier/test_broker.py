"""The embedded SQLite broker shared by processes that start together (verifier/broker.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from anchor.settings import child_env
from tests.fixtures.celery import REPO_ROOT

DECLARE = """
import sys, time
from anchor.settings import Settings
from verifier.celery_app import make_app

start = float(sys.argv[1])
with make_app(Settings.from_env()).connection_for_write() as connection:
    channel = connection.default_channel
    while time.time() < start:  # every process reaches the broker at the same moment
        pass
    for queue in ("chain", "validate.0xabc", "chain.0xabc"):
        channel.queue_declare(queue)
"""


def test_processes_declaring_queues_at_once_on_a_fresh_broker_all_succeed(tmp_path: Path) -> None:
    # Before the shared channel, 12 of 20 such processes died ("table kombu_queue already exists" or
    # a UNIQUE failure on kombu_queue.name), as a demo worker once did.
    for round_ in range(3):
        env = child_env(TOPLOC_AUDIT_HOME=str(tmp_path / f"home-{round_}"))
        start = time.time() + 4  # after every interpreter has started
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", DECLARE, str(start)],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for process in processes:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err[-2000:]
