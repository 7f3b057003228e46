"""CPU work split across threads, the way the reference's C++ verify splits chunks across cores.

Each worker thread runs its share with one intra-op thread (OpenMP's thread count is per thread), so
the cores work on different chunks instead of meeting at a barrier after every small tensor op, which
on a busy machine costs far more than the op itself. The caller's torch.get_num_threads() is the
number of workers; 1 runs inline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def workers() -> int:
    """How many CPU workers a call may use: the caller's intra-op thread count."""
    return max(1, torch.get_num_threads())


def map_threads(fn: Callable[[T], R], items: Sequence[T], device: torch.device | None = None) -> list[R]:
    """[fn(item) for item in items], on up to workers() threads (inline for a non-CPU device, whose
    work is queued asynchronously anyway). Requires fn to be thread-safe (pure tensor work is: torch
    releases the GIL inside ops)."""
    count = min(workers(), len(items)) if device is None or device.type == "cpu" else 1
    if count <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(count, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        return list(pool.map(fn, items))


def rows_per_task(total: int, limit: int) -> int:
    """Rows per task for `total` rows: at most `limit`, and few enough that every worker gets a share."""
    return max(1, min(limit, -(-total // workers())))
