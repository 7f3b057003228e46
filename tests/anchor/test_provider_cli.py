"""`toploc-audit provider ...` as an operator runs it: a real process on a SQLite database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from anchor.settings import child_env
from gpu_core.runner.fingerprint import fingerprint_model
from tests.fixtures.celery import REPO_ROOT

ADDRESS = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toploc_audit", *args],
        cwd=REPO_ROOT,
        env=child_env(TOPLOC_AUDIT_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_register_a_provider_and_declare_a_model_from_its_folder(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    assert _cli(tmp_path, "db", "upgrade").returncode == 0
    added = _cli(tmp_path, "provider", "add", ADDRESS, "--name", "p1")
    assert added.returncode == 0, added.stderr
    declared = _cli(tmp_path, "provider", "declare-model", "tiny", "--folder", str(tiny_llama_dir))
    assert declared.returncode == 0, declared.stderr
    listed = _cli(tmp_path, "provider", "models").stdout
    assert f"tiny  {fingerprint_model(tiny_llama_dir)}  vocab 1024" in listed
    assert ADDRESS in _cli(tmp_path, "provider", "list").stdout


def test_declaring_a_model_without_a_fingerprint_names_the_missing_field(tmp_path: Path) -> None:
    assert _cli(tmp_path, "db", "upgrade").returncode == 0
    refused = _cli(tmp_path, "provider", "declare-model", "m", "--vocab-size", "10")
    assert refused.returncode == 1
    assert "fingerprint" in refused.stderr and "Traceback" not in refused.stderr
    assert _cli(tmp_path, "provider", "models").stdout.strip() == ""
