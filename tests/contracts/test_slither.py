"""Slither (every detector) over the contracts as deployed: no High or Medium finding without its
explanation in contracts/slither-triage.json, and no explanation left for a finding that is gone.

Slither runs in its own environment, .venv/slither (its web3<8 conflicts with the project's); `make
test` installs it from requirements-slither.lock."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from anchor.chain import solc

SLITHER_PYTHON = solc.REPO_ROOT / ".venv" / "slither" / "bin" / "python"
TRIAGE = solc.CONTRACTS_DIR / "slither-triage.json"


def _element(finding: dict[str, object]) -> str:
    return str(finding["description"]).split(" (", 1)[0]


def test_every_high_and_medium_finding_is_explained(tmp_path: Path) -> None:
    assert SLITHER_PYTHON.is_file(), f"{SLITHER_PYTHON} is missing: `make test` installs it"
    standard = tmp_path / "input.json"
    standard.write_text(json.dumps(solc.standard_input(solc.with_imports(solc.source_files()))))
    run = subprocess.run(
        [str(SLITHER_PYTHON), "slither_check.py", str(standard), str(solc.SOLC_WRAPPER)],
        cwd=solc.CONTRACTS_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    findings = json.loads(run.stdout)
    assert len(findings) > 10  # Slither analysed the contracts (informational findings are many)
    serious = {(f["check"], _element(f)) for f in findings if f["impact"] in ("High", "Medium")}
    explained = {(t["check"], t["element"]) for t in json.loads(TRIAGE.read_text())["findings"]}
    unexplained = sorted(serious - explained)
    assert unexplained == [], f"explain or fix these in {TRIAGE.name}: {unexplained}"
    stale = sorted(explained - serious)
    assert stale == [], f"{TRIAGE.name} explains findings Slither no longer reports: {stale}"
    # Only library code has a High finding (OpenZeppelin's mulDiv, explained); none is ours.
    ours = [f for f in findings if f["impact"] == "High" and any(p.startswith("src/") for p in f["files"])]
    assert ours == []
