"""The toolchain: the solc wrapper answers py-solc-x like solc, and a fresh compile reproduces the
committed artifacts byte for byte."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import solcx
from click.testing import CliRunner
from solcx.exceptions import SolcError

from anchor.chain import artifacts, solc
from anchor.chain.artifacts import Artifact
from toploc_audit.cli import cli

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh() -> list[Artifact]:
    """Every contract compiled now (a few seconds)."""
    return artifacts.compile_artifacts()


def test_fresh_compile_matches_the_committed_artifacts(fresh: list[Artifact]) -> None:
    committed = {a.name: a for a in artifacts.committed_artifacts()}
    assert (
        sorted(committed)
        == sorted(a.name for a in fresh)
        == [
            "NaiveDigestStore",
            "ReentrantWithdrawer",
            "ToplocAudit",
        ]
    )
    for artifact in fresh:
        old = committed[artifact.name]
        assert old.bytecode == artifact.bytecode, f"{artifact.name}: creation bytecode differs"
        assert old.deployed_bytecode == artifact.deployed_bytecode, (
            f"{artifact.name}: runtime bytecode differs"
        )
        assert old.abi == artifact.abi
        assert old.compiler == artifact.compiler
    assert artifacts.stale_artifacts(fresh) == []
    main = committed["ToplocAudit"]
    assert main.source == "src/ToplocAudit.sol"
    assert main.compiler["version"] == "0.8.37+commit.f401782d"
    assert main.compiler["settings"] == {
        "evmVersion": "osaka",
        "optimizer": {"enabled": True, "runs": 200},
        "viaIR": True,
        "metadata": {"bytecodeHash": "ipfs"},
    }
    # EIP-170: deployable on mainnet-like chains.
    assert len(main.deployed_bytecode) // 2 <= 24_576


def test_stale_artifacts_are_reported(fresh: list[Artifact]) -> None:
    changed = [
        replace(a, deployed_bytecode=a.deployed_bytecode[:-2] + "00") if a.name == "ToplocAudit" else a
        for a in fresh
    ]
    assert artifacts.stale_artifacts(changed) == [
        "ToplocAudit: deployed_bytecode differs from a fresh compile"
    ]
    assert artifacts.stale_artifacts(fresh[1:]) == [f"{fresh[0].name}: committed but no longer compiled"]


def test_write_artifacts_is_stable_json(
    fresh: list[Artifact], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Write into a temporary tree, not over the committed files.
    monkeypatch.setattr(artifacts, "ARTIFACT_DIRS", {"src": tmp_path / "a", "test": tmp_path / "t"})
    paths = artifacts.write_artifacts(fresh)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == [
        "a/ToplocAudit.json",
        "t/NaiveDigestStore.json",
        "t/ReentrantWithdrawer.json",
    ]
    written = (tmp_path / "a" / "ToplocAudit.json").read_text()
    assert written == (REPO_ROOT / "contracts" / "artifacts" / "ToplocAudit.json").read_text()
    assert json.loads(written)["contractName"] == "ToplocAudit"


def test_wrapper_answers_like_solc() -> None:
    assert str(solcx.wrapper.get_solc_version(solc.SOLC_WRAPPER)) == "0.8.37"
    assert solc.compiler_version() == "0.8.37+commit.f401782d"
    bad = subprocess.run([str(solc.SOLC_WRAPPER), "--bin"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("unrecognised option '--bin'")
    with pytest.raises(SolcError) as err:
        solcx.compile_standard(
            {"language": "Solidity", "sources": {"a.sol": {"content": "contract A { function }"}}},
            solc_binary=solc.SOLC_WRAPPER,
        )
    assert "ParserError" in str(err.value)


def test_cli_check_passes_on_the_committed_artifacts() -> None:
    result = CliRunner().invoke(cli, ["contracts", "build", "--check"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("ok: 3 artifacts match a fresh compile")
