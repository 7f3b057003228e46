"""`toploc-audit demo` (what `make demo` runs) end to end in a subprocess: every record gets the outcome
the story promises, and the contract stays solvent. It broke once unnoticed (a cheat built with an
unresolved decode spec); this test is what notices now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anchor.settings import child_env
from tests.fixtures.celery import REPO_ROOT

pytestmark = pytest.mark.slow


def test_the_demo_tells_the_whole_story(smollm2_dir: Path, tmp_path: Path) -> None:
    env = child_env(TOPLOC_AUDIT_HOME=str(tmp_path / "home"), TOPLOC_AUDIT_MODELS=str(smollm2_dir.parent))
    run = subprocess.run(
        [sys.executable, "-m", "toploc_audit", "demo", "--tokens", "16"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    out = " ".join(run.stdout.split())  # the table wraps its cells; compare words
    assert "contract balance" in out and "= stakes + bonds + credits + reserve: True" in out
    assert "0/3 │ honest" in out  # the honest disputed record
    assert out.count("3/0 │ fraud") == 4  # another model's weights, a changed token, fp32, cheap tokens
    assert "cheap" in out and "prefill" in out
