"""How a record's activations are cut into chunks, one proof each (toploc 0.1.6 semantics).

Activations are a list of tensors or one tensor (its rows are the items). Unless skip_prefill, item 0
is the prefill chunk (all prompt positions, flattened); the remaining items are grouped by
decode_batching_size, each group flattened and concatenated into one chunk. So a record has
`1 + ceil((n - 1) / decode_batching_size)` chunks (`ceil(n / decode_batching_size)` with skip_prefill).

Chunks of equal length come back stacked as the rows of a 2-D "block", a view of the input where the
layout allows (a tensor's full decode groups), so many chunks are processed by one tensor call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gpu_core.errors import ActivationError, ParameterError
from gpu_core.proofs.encoding import Encoding, encoding_for
from gpu_core.proofs.field import PRIME

Activations = torch.Tensor | Sequence[torch.Tensor]
"""One record's activations: a list of tensors, or one tensor whose rows are the items."""


@dataclass(frozen=True)
class Block:
    """Chunks of equal length: rows[i] is chunk number first + i of its record, flattened."""

    rows: torch.Tensor
    first: int


def check_parameters(decode_batching_size: int, topk: int) -> None:
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= PRIME:
        raise ParameterError("topk", f"is {topk!r}, want an int in [1, {PRIME}]")
    if isinstance(decode_batching_size, bool) or not isinstance(decode_batching_size, int):
        raise ParameterError("decode_batching_size", f"is {decode_batching_size!r}, want an int >= 1")
    if decode_batching_size < 1:
        raise ParameterError("decode_batching_size", f"is {decode_batching_size}, want an int >= 1")


def chunk_count(items: int, decode_batching_size: int, skip_prefill: bool) -> int:
    """Number of chunks (and proofs) for `items` activation items."""
    decode = items if skip_prefill else items - 1
    return (0 if skip_prefill else 1) + -(-decode // decode_batching_size)


def _items(activations: Activations, field: str) -> list[torch.Tensor] | torch.Tensor:
    if isinstance(activations, torch.Tensor):
        if activations.dim() == 0:
            raise ActivationError(field, "is a 0-d tensor, want items along dimension 0")
        return activations
    if isinstance(activations, str | bytes) or not isinstance(activations, Sequence):
        raise ActivationError(field, f"is a {type(activations).__name__}, want a tensor or a list of them")
    items = list(activations)
    for position, item in enumerate(items):
        if not isinstance(item, torch.Tensor):
            raise ActivationError(f"{field}[{position}]", f"is a {type(item).__name__}, want a tensor")
    return items


def is_empty(activations: Activations) -> bool:
    """True for a record with no items (an empty list, or a tensor with no rows). With skip_prefill it
    has no chunk and no proof, as toploc 0.1.6's tests expect; without, it lacks its prefill item."""
    if isinstance(activations, torch.Tensor):
        return activations.dim() > 0 and activations.shape[0] == 0
    return (
        isinstance(activations, Sequence)
        and not isinstance(activations, str | bytes)
        and len(activations) == 0
    )


def encoding_of(activations: Activations, field: str = "activations") -> Encoding:
    """The one encoding of a record's activations (all items share dtype and device), checked."""
    items = _items(activations, field)
    if len(items) == 0:
        raise ActivationError(field, "is empty")
    first = items[0]
    if isinstance(items, list):
        for position, item in enumerate(items):
            if item.dtype != first.dtype:
                raise ActivationError(
                    f"{field}[{position}]", f"dtype {item.dtype} differs from {first.dtype}"
                )
            if item.device != first.device:
                raise ActivationError(
                    f"{field}[{position}]", f"device {item.device} differs from {first.device}"
                )
    try:
        return encoding_for(first.dtype)
    except ActivationError as exc:
        raise ActivationError(field, exc.reason) from None


def chunk_blocks(
    activations: Activations,
    decode_batching_size: int,
    topk: int,
    skip_prefill: bool,
    field: str = "activations",
) -> tuple[int, list[Block]]:
    """Cut one record into chunks: (number of chunks, blocks covering them in order).

    Requires checked parameters and a checked encoding (encoding_of). Every chunk must hold at least
    topk values, else ActivationError naming the chunk.
    """
    items = _items(activations, field)
    blocks: list[Block] = []
    start = 0
    if not skip_prefill:
        blocks.append(Block(items[0].reshape(1, -1), 0))
        start = 1
    decode = len(items) - start
    full = decode // decode_batching_size
    if isinstance(items, torch.Tensor):
        if full:
            end = start + full * decode_batching_size
            blocks.append(Block(items[start:end].reshape(full, -1), _next_chunk(blocks)))
        if decode % decode_batching_size:
            blocks.append(
                Block(items[start + full * decode_batching_size :].reshape(1, -1), _next_chunk(blocks))
            )
    else:
        _list_blocks(items[start:], decode_batching_size, blocks)
    count = chunk_count(len(items), decode_batching_size, skip_prefill)
    for block in blocks:
        if block.rows.shape[1] < topk:
            raise ActivationError(
                f"{field} chunk {block.first}", f"has {block.rows.shape[1]} values, fewer than topk {topk}"
            )
    return count, blocks


def _next_chunk(blocks: list[Block]) -> int:
    return sum(block.rows.shape[0] for block in blocks)


def _list_blocks(items: list[torch.Tensor], size: int, blocks: list[Block]) -> None:
    """Decode chunks of a list: one concatenation, viewed as rows when all chunks are equally long."""
    if not items:
        return
    flat = torch.cat([item.reshape(-1) for item in items])
    lengths = [sum(item.numel() for item in items[i : i + size]) for i in range(0, len(items), size)]
    offset = 0
    position = 0
    while position < len(lengths):
        run = position
        while run < len(lengths) and lengths[run] == lengths[position]:
            run += 1
        width = lengths[position]
        count = run - position
        blocks.append(Block(flat[offset : offset + count * width].view(count, width), _next_chunk(blocks)))
        offset += count * width
        position = run
