r"""The model fingerprint: which exact weights a record claims, as one SHA-256 (docs/models.md).

Definition (version 1), reproducible with coreutils:

    cd FOLDER && ls | grep -E '^config\.json$|\.(safetensors|bin)$|\.index\.json$' | LC_ALL=C sort \
        | xargs sha256sum | sha256sum

that is, SHA-256 over the `sha256sum` lines ("<hex digest>  <name>\n") of config.json and every weight
file in the folder (names ending .safetensors, .bin or .index.json, top level only), sorted by the
bytes of their names. Tokenizer and generation files are left out: they do not change activations.

The tokenizer fingerprint (version 1) is the same construction over the tokenizer's files
(TOKENIZER_FILES, those present): what decides how stop strings match the output (records of
version 2 name it). A folder with none of them has no tokenizer fingerprint (None).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from gpu_core.runner.errors import RunnerInputError

_WEIGHT_NAME = re.compile(r"\.(safetensors|bin)$|\.index\.json$")
_CHUNK = 1 << 20
TOKENIZER_FILES = (
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "merges.txt",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
)
"""Files that define a Hugging Face tokenizer (the tokenizer fingerprint covers those present)."""


def fingerprinted_files(folder: Path) -> list[Path]:
    """The files the fingerprint covers, in hashing order.

    Requires `folder` to be a directory holding config.json and at least one weight file; otherwise
    raises RunnerInputError naming `folder`.
    """
    if not folder.is_dir():
        raise RunnerInputError("folder", f"{folder} is not a directory")
    if not (folder / "config.json").is_file():
        raise RunnerInputError("folder", f"{folder} has no config.json (not a Hugging Face model folder)")
    weights = [p for p in folder.iterdir() if p.is_file() and _WEIGHT_NAME.search(p.name)]
    if not any(p.suffix in (".safetensors", ".bin") for p in weights):
        raise RunnerInputError("folder", f"{folder} has no weight files (*.safetensors or *.bin)")
    return sorted([folder / "config.json", *weights], key=lambda p: p.name.encode())


def file_sha256(path: Path) -> str:
    """Lowercase hex SHA-256 of a file, read in 1 MiB blocks (weights never sit in memory twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _manifest_hash(files: list[Path]) -> str:
    manifest = "".join(f"{file_sha256(p)}  {p.name}\n" for p in files)
    return hashlib.sha256(manifest.encode()).hexdigest()


def fingerprint_model(folder: str | Path) -> str:
    """Lowercase hex SHA-256 fingerprint of the model in `folder` (see the module docstring)."""
    return _manifest_hash(fingerprinted_files(Path(folder)))


def fingerprint_tokenizer(folder: str | Path) -> str | None:
    """Lowercase hex SHA-256 of the tokenizer files in `folder` (module docstring), None if it has none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunnerInputError("folder", f"{folder} is not a directory")
    files = sorted(
        (folder / n for n in TOKENIZER_FILES if (folder / n).is_file()), key=lambda p: p.name.encode()
    )
    return _manifest_hash(files) if files else None
