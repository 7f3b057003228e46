"""Stop strings: generation ends at the first output token after which the decoded output contains one
of the spec's `stop` strings. One definition for the provider (generate.py) and the validator
(replay.py): the text of output tokens is `tokenizer.decode(ids, skip_special_tokens=True,
clean_up_tokenization_spaces=False)`, which a tokenizer fingerprint pins (fingerprint.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gpu_core.runner.errors import RunnerInputError


def output_text(tokenizer: Any, output_ids: Sequence[int]) -> str:
    """The text stop strings are matched against."""
    text: str = tokenizer.decode(
        list(output_ids), skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    return text


def contains_stop(tokenizer: Any, output_ids: Sequence[int], stop: Sequence[str]) -> bool:
    """True when the decoded output contains one of `stop` (False when there are none)."""
    if not stop:
        return False
    if tokenizer is None:
        raise RunnerInputError("tokenizer", "stop strings need the model's tokenizer")
    text = output_text(tokenizer, output_ids)
    return any(s in text for s in stop)
