"""Model folders: fingerprint, preparation (SmolLM2 conversion, tiny model), loading, the `model` CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from anchor.settings import child_env
from gpu_core.errors import ToplocError
from gpu_core.runner.errors import RunnerError, RunnerInputError
from gpu_core.runner.fingerprint import fingerprint_model, fingerprinted_files
from gpu_core.runner.folders import build_folder_once
from gpu_core.runner.loading import load_model, load_tokenizer
from gpu_core.runner.smollm2 import GGUF_NAME, gguf_path
from gpu_core.runner.tiny import prepare_tiny_llama
from toploc_audit.cli import cli

REPO_ROOT = Path(__file__).resolve().parents[2]


# ---- fingerprint -------------------------------------------------------------------------------------


def test_fingerprint_matches_the_documented_coreutils_pipeline(tiny_llama_dir: Path) -> None:
    # The pipeline of docs/models.md, run by the real sha256sum, is the known answer.
    pipeline = (
        r"ls | grep -E '^config\.json$|\.(safetensors|bin)$|\.index\.json$' | LC_ALL=C sort"
        r" | xargs sha256sum | sha256sum"
    )
    out = subprocess.run(
        ["sh", "-c", pipeline], cwd=tiny_llama_dir, capture_output=True, text=True, check=True
    )
    assert fingerprint_model(tiny_llama_dir) == out.stdout.split()[0]


def test_fingerprint_covers_config_and_weights_but_not_tokenizer_files(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_llama_dir, folder)
    base = fingerprint_model(folder)
    assert [p.name for p in fingerprinted_files(folder)] == ["config.json", "model.safetensors"]

    (folder / "tokenizer.json").write_text("{}")
    (folder / "generation_config.json").write_text("{}")
    assert fingerprint_model(folder) == base

    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    changed = fingerprint_model(folder)
    assert changed != base

    config = json.loads((folder / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5
    (folder / "config.json").write_text(json.dumps(config))
    assert fingerprint_model(folder) not in (base, changed)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda p: None, "is not a directory"),
        (lambda p: p.mkdir(), "has no config.json"),
        (lambda p: (p.mkdir(), (p / "config.json").write_text("{}")), "has no weight files"),
    ],
)
def test_fingerprint_rejects_what_is_not_a_model_folder(tmp_path: Path, setup, reason: str) -> None:
    folder = tmp_path / "x"
    setup(folder)
    with pytest.raises(RunnerInputError, match=reason) as info:
        fingerprint_model(folder)
    assert info.value.field == "folder"


# ---- preparation --------------------------------------------------------------------------------------


def test_build_folder_once_is_idempotent_and_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "store" / "model"
    calls: list[Path] = []

    def crash(tmp: Path) -> None:
        (tmp / "half-written").write_text("x")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        build_folder_once(target, crash)
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == [".model.lock"]

    # A leftover of a run killed with -9 (no cleanup ran) is removed by the next run.
    stale = target.parent / ".model.partial-killed"
    stale.mkdir()
    assert build_folder_once(target, lambda tmp: (calls.append(tmp), (tmp / "w").write_text("done")))
    assert (target / "w").read_text() == "done"
    assert not stale.exists()
    assert not build_folder_once(target, lambda tmp: calls.append(tmp))  # second run: found, no work
    assert len(calls) == 1


def test_tiny_llama_is_reproducible_from_its_seed(tmp_path: Path, tiny_llama_dir: Path) -> None:
    again, built = prepare_tiny_llama(tmp_path)
    assert built
    assert fingerprint_model(again) == fingerprint_model(tiny_llama_dir)
    other, _ = prepare_tiny_llama(tmp_path, seed=1)
    assert fingerprint_model(other) != fingerprint_model(tiny_llama_dir)


def test_smollm2_folder_is_a_complete_hf_checkpoint(smollm2_dir: Path) -> None:
    assert gguf_path().name == GGUF_NAME
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert (config["model_type"], config["num_hidden_layers"], config["hidden_size"]) == ("llama", 30, 576)
    assert "quantization_config" not in config
    provenance = json.loads((smollm2_dir / "toploc-audit-source.json").read_text())
    assert provenance["source_sha256"] == hashlib.sha256(gguf_path().read_bytes()).hexdigest()

    tokenizer = load_tokenizer(smollm2_dir)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    text = tokenizer.decode(prompt if isinstance(prompt, list) else prompt["input_ids"])
    assert "<|im_start|>user\nHi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_smollm2_prepare_again_is_instant_and_changes_nothing(smollm2_dir: Path) -> None:
    from gpu_core.runner.smollm2 import prepare_smollm2

    before = fingerprint_model(smollm2_dir)
    folder, built = prepare_smollm2(smollm2_dir.parent)
    assert (folder, built) == (smollm2_dir, False)
    assert fingerprint_model(folder) == before


# ---- loading ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_load_model_in_each_dtype(tiny_llama_dir: Path, dtype: str) -> None:
    loaded = load_model(tiny_llama_dir, dtype)
    assert loaded.dtype == dtype
    assert {p.dtype for p in loaded.model.parameters()} == {loaded.torch_dtype}
    assert loaded.fingerprint == fingerprint_model(tiny_llama_dir)
    assert loaded.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_variant_computes_like_a_model_loaded_that_way(tiny_llama_dir: Path, attention: str) -> None:
    reference = load_model(tiny_llama_dir, "float32", device="cpu", attn_implementation="eager")
    direct = load_model(tiny_llama_dir, "bfloat16", device="cpu", attn_implementation=attention)
    copy = reference.variant("bfloat16", attention)
    assert copy is reference.variant("bfloat16", attention)  # cached
    assert reference.variant("float32", "eager") is reference
    assert (copy.dtype, copy.attn_implementation, copy.fingerprint) == (
        "bfloat16",
        attention,
        reference.fingerprint,
    )
    ids = torch.arange(3, 40).unsqueeze(0)
    with torch.inference_mode():
        want = direct.model.model(ids).last_hidden_state
        got = copy.model.model(ids).last_hidden_state
    assert torch.equal(got, want)
    assert next(reference.model.parameters()).dtype == torch.float32  # the reference is untouched


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"dtype": "int8"}, "dtype", "'int8' is not one of bfloat16, float16, float32"),
        (
            {"dtype": "bfloat16", "attn_implementation": "flash"},
            "attn_implementation",
            "'flash' is not one of",
        ),
    ],
)
def test_load_model_rejects_bad_arguments(
    tiny_llama_dir: Path, kwargs: dict, field: str, reason: str
) -> None:
    with pytest.raises(RunnerInputError, match=reason) as info:
        load_model(tiny_llama_dir, **kwargs)
    assert info.value.field == field


def test_load_model_reports_a_broken_checkpoint(tmp_path: Path, tiny_llama_dir: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(tiny_llama_dir, folder)
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(RunnerError, match="folder: cannot load a causal LM") as info:
        load_model(folder, "bfloat16")
    assert isinstance(info.value, ToplocError)


def test_load_model_never_contacts_the_hub(tiny_llama_dir: Path) -> None:
    # A name that is not a folder would be a hub id: it must fail as a bad folder, without network.
    with pytest.raises(RunnerInputError, match="is not a directory"):
        load_model("HuggingFaceTB/SmolLM2-135M-Instruct", "bfloat16")


# ---- CLI ----------------------------------------------------------------------------------------------


def test_model_cli_prepare_list_fingerprint(tmp_path: Path) -> None:
    env = {"TOPLOC_AUDIT_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    first = runner.invoke(cli, ["model", "prepare", "tiny-random-llama"], env=env)
    assert first.exit_code == 0, first.output
    folder, fingerprint = first.stdout.strip().split("\t")
    assert Path(folder) == tmp_path / "home" / "models" / "tiny-random-llama"
    assert fingerprint == fingerprint_model(folder)

    again = runner.invoke(cli, ["model", "prepare", "tiny-random-llama"], env=env)
    assert again.exit_code == 0 and again.stdout == first.stdout

    listed = runner.invoke(cli, ["model", "list"], env=env)
    assert listed.exit_code == 0
    assert listed.stdout.startswith(f"tiny-random-llama\t{fingerprint}\t")

    by_name = runner.invoke(cli, ["model", "fingerprint", "tiny-random-llama"], env=env)
    by_path = runner.invoke(cli, ["model", "fingerprint", folder], env=env)
    assert by_name.stdout.strip() == by_path.stdout.strip() == fingerprint


def test_model_cli_errors_name_the_field(tmp_path: Path) -> None:
    env = {**_clean_env(), "TOPLOC_AUDIT_HOME": str(tmp_path)}
    (tmp_path / "empty").mkdir()
    cases = [
        (["model", "fingerprint", str(tmp_path / "nope")], "error: model: "),
        (["model", "fingerprint", str(tmp_path / "empty")], "error: folder: "),
    ]
    for args, message in cases:
        done = subprocess.run(
            [sys.executable, "-m", "toploc_audit", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1
        assert done.stderr.startswith(message) and "Traceback" not in done.stderr
    bad = CliRunner().invoke(cli, ["model", "prepare", "gpt-5"], env=env)
    assert bad.exit_code == 2 and "'gpt-5' is not one of" in bad.output


def test_model_cli_help_on_every_command() -> None:
    for args in (["model"], ["model", "prepare"], ["model", "fingerprint"], ["model", "list"]):
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output and len(result.output.splitlines()) > 4


def _clean_env() -> dict[str, str]:
    return child_env()
