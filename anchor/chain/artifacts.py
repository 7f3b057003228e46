"""Compiled contracts as committed files: contracts/artifacts/<Name>.json (and contracts/test/artifacts/).

Each artifact holds the ABI, the creation and runtime bytecode, and the compiler version and settings
that produced them. Only deployable contracts get one (not abstract contracts, libraries, interfaces).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchor.chain import solc
from anchor.chain.errors import ChainError

# Source folder -> its artifacts folder: test-only contracts keep theirs apart.
ARTIFACT_DIRS = {"src": solc.CONTRACTS_DIR / "artifacts", "test": solc.CONTRACTS_DIR / "test" / "artifacts"}


@dataclass(frozen=True)
class Artifact:
    """One deployable contract. Bytecodes are lowercase hex without 0x."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(
            name=data["contractName"],
            source=data["sourceName"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            compiler=data["compiler"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "contractName": self.name,
            "sourceName": self.source,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "compiler": self.compiler,
        }


def _deployable(output: dict[str, Any], source: str) -> set[str]:
    """Names of the non-abstract contracts defined in `source`, read from its AST."""
    names = set()
    for node in output["sources"][source]["ast"]["nodes"]:
        is_contract = node.get("nodeType") == "ContractDefinition" and node["contractKind"] == "contract"
        if is_contract and not node.get("abstract", False):
            names.add(node["name"])
    return names


def artifacts_from_output(output: dict[str, Any], version: str) -> list[Artifact]:
    """The deployable contracts of a compiler output, sorted by source then name."""
    compiler = {"version": version, "settings": solc.COMPILER_SETTINGS}
    found = []
    for source in sorted(output["contracts"]):
        for name in sorted(_deployable(output, source)):
            evm = output["contracts"][source][name]["evm"]
            found.append(
                Artifact(
                    name=name,
                    source=source,
                    abi=output["contracts"][source][name]["abi"],
                    bytecode=evm["bytecode"]["object"],
                    deployed_bytecode=evm["deployedBytecode"]["object"],
                    compiler=compiler,
                )
            )
    return found


def compile_artifacts() -> list[Artifact]:
    """Compiles every source now (a few seconds) and returns the deployable contracts."""
    return artifacts_from_output(solc.compile_contracts(), solc.compiler_version())


def artifact_path(artifact: Artifact) -> Path:
    return ARTIFACT_DIRS[artifact.source.split("/", 1)[0]] / f"{artifact.name}.json"


def write_artifacts(artifacts: list[Artifact]) -> list[Path]:
    """Writes each artifact (stable JSON: sorted keys, two-space indent), atomically; returns the paths."""
    paths = []
    for artifact in artifacts:
        path = artifact_path(artifact)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(artifact.to_json(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def load_artifact(name: str) -> Artifact:
    """The committed artifact of contract `name` (e.g. "ToplocAudit"); raises ChainError if missing."""
    for folder in ARTIFACT_DIRS.values():
        path = folder / f"{name}.json"
        if path.is_file():
            return Artifact.from_json(json.loads(path.read_text()))
    raise ChainError(f"no artifact for contract {name!r}: run `toploc-audit contracts build`")


def committed_artifacts() -> list[Artifact]:
    """Every committed artifact."""
    return [
        Artifact.from_json(json.loads(path.read_text()))
        for folder in ARTIFACT_DIRS.values()
        for path in sorted(folder.glob("*.json"))
    ]


def stale_artifacts(fresh: list[Artifact]) -> list[str]:
    """What differs between a fresh compile and the committed artifacts, one line per difference."""
    committed = {a.name: a for a in committed_artifacts()}
    problems = []
    for artifact in fresh:
        old = committed.pop(artifact.name, None)
        if old is None:
            problems.append(f"{artifact.name}: not committed")
            continue
        for field in ("abi", "bytecode", "deployed_bytecode", "compiler", "source"):
            if getattr(old, field) != getattr(artifact, field):
                problems.append(f"{artifact.name}: {field} differs from a fresh compile")
    problems.extend(f"{name}: committed but no longer compiled" for name in sorted(committed))
    return problems
