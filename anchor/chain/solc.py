"""Compiles contracts/ with solc 0.8.37 from npm (solcjs) through py-solc-x's `compile_standard`.

py-solc-x runs a `solc` binary; none exists in the registries we can use, so `contracts/solc.js`
plays one, answering `--version` and `--standard-json`. Every compiler setting that changes the
bytecode is pinned here, so a rebuild reproduces the committed artifacts byte for byte.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from pathlib import Path
from typing import Any

from anchor.chain.errors import ChainError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
SOLC_WRAPPER = CONTRACTS_DIR / "solc.js"
SOLC_VERSION = "0.8.37"

# Bytecode-relevant settings: change them only together with a rebuild of the artifacts.
COMPILER_SETTINGS: dict[str, Any] = {
    "evmVersion": "osaka",  # Anvil 1.7's default hardfork; EIP-1153 transient storage needs >= cancun
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    "metadata": {"bytecodeHash": "ipfs"},
}
# Source folders under contracts/, each with its artifacts folder.
SOURCE_DIRS = ("src", "test")
# Libraries imported by package name, read from node_modules (pinned in package-lock.json).
LIBRARIES = ("@openzeppelin/contracts/",)
_IMPORT = re.compile(r"""^\s*import\s+(?:[^"';]*?\sfrom\s+)?["']([^"']+)["']""", re.MULTILINE)


def source_files() -> dict[str, Path]:
    """Every Solidity source, keyed by its name in the compiler input (`src/ToplocAudit.sol`)."""
    files: dict[str, Path] = {}
    for folder in SOURCE_DIRS:
        for path in sorted((CONTRACTS_DIR / folder).glob("*.sol")):
            files[f"{folder}/{path.name}"] = path
    return files


def with_imports(sources: dict[str, Path]) -> dict[str, Path]:
    """`sources` and every library file they import, transitively, keyed by the import's unit name
    (`@openzeppelin/contracts/utils/cryptography/ECDSA.sol`; relative imports resolved against the
    importing unit, as solc does). Raises ChainError for a library file that is not installed."""
    found = dict(sources)
    pending = list(sources)
    while pending:
        unit = pending.pop()
        for target in _IMPORT.findall(found[unit].read_text()):
            name = (
                posixpath.normpath(posixpath.join(posixpath.dirname(unit), target))
                if target.startswith(".")
                else target
            )
            if name in found:
                continue
            if not name.startswith(LIBRARIES):
                raise ChainError(f"{unit} imports {target!r}: not a contracts/ source or a known library")
            path = REPO_ROOT / "node_modules" / name
            if not path.is_file():
                raise ChainError(f"{unit} imports {target!r}: {path} is missing (run `make setup`: npm ci)")
            found[name] = path
            pending.append(name)
    return found


def standard_input(sources: dict[str, Path]) -> dict[str, Any]:
    """The Standard JSON input: sources inline (imports resolve among them) and the pinned settings."""
    return {
        "language": "Solidity",
        "sources": {name: {"content": path.read_text()} for name, path in sources.items()},
        "settings": {
            **COMPILER_SETTINGS,
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"], "": ["ast"]},
            },
        },
    }


def compile_contracts() -> dict[str, Any]:
    """Runs solc over contracts/src and contracts/test; returns its Standard JSON output.

    Requires node on PATH and npm's `solc` installed (`make setup`). Raises ChainError with the
    compiler's messages when it reports an error.
    """
    import solcx
    from solcx.exceptions import SolcError

    if shutil.which("node") is None:
        raise ChainError("node is not on PATH: the solc wrapper contracts/solc.js needs it")
    if not (REPO_ROOT / "node_modules" / "solc").is_dir():
        raise ChainError("npm package solc is missing: run `make setup` (npm ci)")
    try:
        output: dict[str, Any] = solcx.compile_standard(
            standard_input(with_imports(source_files())), solc_binary=SOLC_WRAPPER
        )
    except SolcError as exc:
        raise ChainError(f"solc failed: {exc.message}") from exc
    return output


def compiler_version() -> str:
    """The wrapper's solc version with its commit, e.g. 0.8.37+commit.f401782d."""
    from solcx.wrapper import get_version_str_from_solc_binary

    return get_version_str_from_solc_binary(SOLC_WRAPPER)
