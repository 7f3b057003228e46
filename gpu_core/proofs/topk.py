"""Top-k selection by magnitude: exactly the set torch.topk picks, ties included, batched over chunks.

Which of several equal magnitudes at the k-th place a proof commits to decides its bytes, so the set
must be torch.topk's. On CUDA we call torch.topk (its radix select). On the CPU torch.topk runs, per row,
`std::partial_sort` when k * 64 <= n (ATen/native/TopKImpl.h), i.e. libstdc++'s heap select: a heap
of the first k elements, then each later element replaces the heap's minimum iff it is strictly
greater. An element that never enters the heap changes nothing, so torch.topk on any order-preserving
subsequence that keeps the first k elements and every element that enters (and stays long enough for
the partial sort) picks the same set. We keep:

  - the head: the first 64k elements, verbatim (so the subsequence still takes the partial-sort path);
  - from the rest, only values above a lower bound of the heap's minimum at their time: the k-th
    largest of a subset of the prefix before them (a few segments of doubling length, pruned by
    64-element block maxima first).

For 5120 x 32 bf16 chunks and k = 128 that is ~9k of 164k values: one torch.topk call on the kept
values of all chunks at once. Magnitudes are compared as integer keys (the bits without the sign),
which order non-negative floats exactly as their values; chunks holding a NaN take the plain path.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch

from gpu_core.proofs.parallel import map_threads, rows_per_task

_PARTIAL_SORT_FACTOR = 64  # ATen's CPU topk uses a partial sort iff k * 64 <= n
_BLOCK = 64  # values per block maximum (a reduction torch vectorises well)
_SUB = 8  # values per sub-block, the second pruning level
_GROWTH = 1.5  # each segment (sharing one bound) is this much longer than the prefix before it, minus 1
_MAX_KEPT_FRACTION = 4  # keep more than n / 4 (adversarial orders) -> the plain call is cheaper
_KEYS_PER_CALL = 1 << 22  # keys per pruning call: an 8 MiB buffer stays below glibc's mmap threshold
# and is recycled without fresh page faults (measured: 32 MiB buffers cost more in faults than in work)

_KEYS = {
    # dtype: (integer view, magnitude mask, key of +inf; larger keys are NaNs)
    torch.bfloat16: (torch.int16, 0x7FFF, 0x7F80),
    torch.float16: (torch.int16, 0x7FFF, 0x7C00),
    torch.float32: (torch.int32, 0x7FFFFFFF, 0x7F800000),
}


def select_topk(rows: torch.Tensor, k: int) -> torch.Tensor:
    """(C, n) chunks -> (C, k) int64 indices of the k largest |values| of each row: torch.topk's set
    (on the rows' device), in unspecified order. Requires 1 <= k <= n."""
    return select_topk_blocks([rows], k)[0]


def select_topk_blocks(blocks: Sequence[torch.Tensor], k: int) -> list[torch.Tensor]:
    """select_topk of many (C_i, n_i) blocks. CPU rows of one length and dtype are pruned together in
    batches of rows (so a call's fixed cost is paid per batch, not per chunk), the batches spread over
    the CPU workers (parallel.py). Requires 1 <= k <= every n_i."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(blocks)
    head = k * _PARTIAL_SORT_FACTOR
    groups: dict[tuple[int, torch.dtype], list[int]] = {}
    for i, rows in enumerate(blocks):
        layout = _KEYS.get(rows.dtype)
        if rows.device.type != "cpu" or layout is None:
            out[i] = rows.abs().topk(k, dim=1).indices
        elif rows.shape[1] < 2 * head:  # too short to prune: the partial sort or nth_element as is
            keys = rows.view(layout[0]) & layout[1]
            exact = int(keys.max()) <= layout[2]
            out[i] = keys.topk(k, dim=1).indices if exact else rows.abs().topk(k, dim=1).indices
        else:
            groups.setdefault((rows.shape[1], rows.dtype), []).append(i)
    for (n, dtype), members in groups.items():
        per = rows_per_task(sum(blocks[i].shape[0] for i in members), max(1, _KEYS_PER_CALL // n))
        tasks: list[list[torch.Tensor]] = [[]]
        filled = 0
        for i in members:  # row slices (views) of the blocks, `per` rows to a task
            start = 0
            while start < blocks[i].shape[0]:
                if filled == per:
                    tasks.append([])
                    filled = 0
                take = min(per - filled, blocks[i].shape[0] - start)
                tasks[-1].append(blocks[i][start : start + take])
                filled, start = filled + take, start + take
        chosen = map_threads(partial(_select_rows, k=k, head=head, layout=_KEYS[dtype]), tasks)
        parts = torch.cat(chosen).split([blocks[i].shape[0] for i in members])
        for i, indices in zip(members, parts, strict=True):
            out[i] = indices
    return out


def _select_rows(
    pieces: list[torch.Tensor], k: int, head: int, layout: tuple[torch.dtype, int, int]
) -> torch.Tensor:
    """Prune and select rows of one length and dtype together: the pieces' rows, in order."""
    view, mask, infinity = layout
    sizes = [piece.shape[0] for piece in pieces]
    keys = torch.empty((sum(sizes), pieces[0].shape[1]), dtype=view)
    for piece, part in zip(pieces, keys.split(sizes), strict=True):
        torch.bitwise_and(piece.view(view), mask, out=part)
    chosen = _pruned_topk(keys, k, head)
    if int(keys.max()) > infinity:  # torch ranks all NaNs equal and above everything: plain call
        rows = torch.cat(pieces)
        nan_rows = (keys.amax(dim=1) > infinity).nonzero().flatten()
        chosen[nan_rows] = rows[nan_rows].abs().topk(k, dim=1).indices
    return chosen


def _pack(rows: torch.Tensor, values: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter values into a (count, width) table row by row, padding with -1 (below every key).

    Requires `rows` ascending. Returns the table and each value's column in it.
    """
    per_row = torch.bincount(rows, minlength=count)
    width = int(per_row.max()) if rows.numel() else 0
    column = torch.arange(rows.numel(), device=rows.device) - (per_row.cumsum(0) - per_row)[rows]
    table = torch.full((count, width), -1, dtype=values.dtype, device=values.device)
    table[rows, column] = values
    return table, column


def _block_bounds(keys: torch.Tensor, maxima: torch.Tensor, k: int, head: int) -> torch.Tensor:
    """(C, blocks) lower bounds of the heap's minimum when each block after the head starts.

    Any k values of the prefix bound its k-th largest from below: after the head, the k-th largest of
    its sub-block maxima; then the k-th largest of those and all block maxima before the segment,
    kept as a running top k (segments grow geometrically, so a bound is at most one segment stale).
    """
    count, blocks = maxima.shape
    # Strided groups of _SUB (one fast reduction over a non-contiguous dimension); any groups will do.
    top = keys[:, :head].view(count, _SUB, -1).amax(dim=1).topk(k, dim=1, sorted=False).values
    bounds = torch.empty_like(maxima)
    start = head // _BLOCK
    while start < blocks:
        end = min(blocks, start + max(1, int(start * (_GROWTH - 1))))
        bounds[:, start:end] = top.amin(dim=1, keepdim=True)
        top = torch.cat([top, maxima[:, start:end]], dim=1).topk(k, dim=1, sorted=False).values
        start = end
    return bounds


def _pruned_topk(keys: torch.Tensor, k: int, head: int) -> torch.Tensor:
    """torch.topk(keys, k).indices as a set, from the head and the entering candidates (see above).

    Requires non-negative contiguous keys, head = 64k (a multiple of _BLOCK) and n >= 2 * head.
    """
    count, n = keys.shape
    flat = keys.view(-1)
    whole = n // _BLOCK * _BLOCK
    first = head // _BLOCK
    maxima = keys[:, :whole].view(count, -1, _BLOCK).amax(dim=-1)
    bounds = _block_bounds(keys, maxima, k, head)[:, first:]

    # Blocks above their bound, then their sub-blocks above it, then values: all in position order
    # (row-major), so each row's candidates keep the original order with no sort.
    row, block = (maxima[:, first:] > bounds).nonzero(as_tuple=True)
    limit = bounds[row, block]
    start = row * n + (block + first) * _BLOCK
    values = flat.unfold(0, _BLOCK, 1).index_select(0, start)  # (m, 64)
    hit, sub = (values.view(-1, _BLOCK // _SUB, _SUB).amax(dim=-1) > limit.unsqueeze(1)).nonzero(
        as_tuple=True
    )
    row, limit, start = row[hit], limit[hit], start[hit] + sub * _SUB
    values = flat.unfold(0, _SUB, 1).index_select(0, start)  # (m', 8)
    hit, column = (values > limit.unsqueeze(1)).nonzero(as_tuple=True)
    row = row[hit]
    table, slot = _pack(row, values[hit, column], count)
    origin = torch.zeros_like(table, dtype=torch.int64)
    origin[row, slot] = start[hit] + column - row * n

    tables, origins = (
        [keys[:, :head], table],
        [torch.arange(head, device=keys.device).expand(count, -1), origin],
    )
    if whole < n:  # the last few values, too few for a block, are kept
        tables.append(keys[:, whole:])
        origins.append(torch.arange(whole, n, device=keys.device).expand(count, -1))
    subsequence = torch.cat(tables, dim=1)  # padding (-1) never enters the heap: every key is >= 0
    if subsequence.shape[1] * _MAX_KEPT_FRACTION > n:  # adversarial orders: nothing to save
        return keys.topk(k, dim=1).indices
    return torch.cat(origins, dim=1).gather(1, subsequence.topk(k, dim=1).indices)
