"""The local model store: Hugging Face folders under TOPLOC_AUDIT_MODELS, found by fingerprint.

A validator never downloads anything: a record's model is the folder whose fingerprint (gpu_core's
definition) equals the record's. Fingerprints are cached per process, keyed on the size and mtime of
the files they cover, so a folder is hashed again only when its files change. Loaded models and
tokenizers are cached too (a worker validates many records of few models).

Which dtype a model is loaded in decides the validation mode (gpu_core.runner.validate): float32 for
the reference mode (the float32 weights plus a copy in the claimed dtype: about 6 bytes per
parameter), the records' own dtype for the claimed mode (2 bytes per parameter). `mode` "auto" takes
the reference mode when it fits `memory` bytes (default: half the GPU's memory, or of the RAM).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from gpu_core.runner.errors import RunnerInputError
from gpu_core.runner.fingerprint import fingerprint_model, fingerprinted_files

Signature = tuple[tuple[str, int, int], ...]


class ModelStore:
    """Folders directly under `root` (hidden ones and unfinished preparations skipped)."""

    def __init__(self, root: Path, max_loaded: int = 2, mode: str = "auto", memory: int = 0) -> None:
        self.root = root
        self.max_loaded = max_loaded
        self.mode = mode
        self.memory = memory
        self._fingerprints: dict[Path, tuple[Signature, str]] = {}
        self._loaded: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._tokenizers: dict[Path, Any] = {}

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def fingerprint(self, folder: Path) -> str | None:
        """The folder's fingerprint, None if it is not a model folder."""
        try:
            files = fingerprinted_files(folder)
        except RunnerInputError:
            return None
        signature = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        cached = self._fingerprints.get(folder)
        if cached is not None and cached[0] == signature:
            return cached[1]
        value = fingerprint_model(folder)
        self._fingerprints[folder] = (signature, value)
        return value

    def find(self, fingerprint: str) -> Path | None:
        """The folder holding the model with `fingerprint` (lowercase hex), None if there is none."""
        for folder in self._folders():
            if self.fingerprint(folder) == fingerprint:
                return folder
        return None

    def dtype_for(self, folder: Path, claimed: str) -> str:
        """The dtype to load `folder` in to validate records that claim `claimed` (module docstring)."""
        if self.mode == "reference" or claimed == "float32":
            return "float32"
        if self.mode == "claimed":
            return claimed
        weights = sum(p.stat().st_size for p in fingerprinted_files(folder) if p.name != "config.json")
        parameters = weights // 2  # checkpoints are stored in 16 bits; a float32 one is over-counted
        return "float32" if parameters * 6 <= (self.memory or _default_budget()) else claimed

    def tokenizer(self, folder: Path) -> tuple[Any, str | None]:
        """The folder's tokenizer and its fingerprint (cached), (None, None) if it has none."""
        if folder not in self._tokenizers:
            from gpu_core.runner.fingerprint import fingerprint_tokenizer
            from gpu_core.runner.loading import load_tokenizer

            fingerprint = fingerprint_tokenizer(folder)
            self._tokenizers[folder] = (load_tokenizer(folder) if fingerprint else None, fingerprint)
        return self._tokenizers[folder]

    def load(self, folder: Path, dtype: str) -> Any:
        """gpu_core's LoadedModel for `folder` in `dtype` on the default device (cached, least recently
        used dropped first)."""
        from gpu_core.runner.loading import load_model

        key = (str(folder), dtype)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        while len(self._loaded) >= self.max_loaded:
            self._loaded.popitem(last=False)
        loaded = load_model(folder, dtype)
        self._loaded[key] = loaded
        return loaded


def _default_budget() -> int:
    """Half of the GPU's memory, or of the machine's RAM without one."""
    import os

    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(0).total_memory) // 2
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 2
