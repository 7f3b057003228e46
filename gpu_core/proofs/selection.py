"""From records' activations to each chunk's top-k indices and raw value bits, shared by build and
verify. Records are grouped by (dtype, device) so each group is computed by batched tensor calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gpu_core.proofs.chunks import Activations, Block, chunk_blocks, encoding_of, is_empty
from gpu_core.proofs.encoding import Encoding
from gpu_core.proofs.topk import select_topk_blocks


@dataclass(frozen=True)
class Selection:
    """The top-k of every chunk of some records: rows follow (record, chunk) order."""

    encoding: Encoding
    records: list[int]  # positions in the caller's list of records
    counts: list[int]  # chunks per record
    indices: torch.Tensor  # (N, k) int64, N = sum(counts)
    bits: torch.Tensor  # (N, k) int64 raw bit patterns of the selected values


def _field(records: int, position: int) -> str:
    return "activations" if records == 1 else f"records[{position}]"


def select_records(
    records: Sequence[Activations], decode_batching_size: int, topk: int, skip_prefill: bool
) -> list[Selection]:
    """Cut every record into chunks and select each chunk's top-k. Requires checked parameters.

    Raises ActivationError (naming the record and chunk) before any heavy work if a record is bad.
    """
    groups: dict[tuple[str, torch.device], list[int]] = {}
    cut: list[tuple[Encoding, int, list[Block]] | None] = []
    for position, activations in enumerate(records):
        field = _field(len(records), position)
        if skip_prefill and is_empty(activations):
            cut.append(None)  # no chunk, no proof: in no group
            continue
        encoding = encoding_of(activations, field)
        count, record_blocks = chunk_blocks(activations, decode_batching_size, topk, skip_prefill, field)
        groups.setdefault((encoding.name, record_blocks[0].rows.device), []).append(position)
        cut.append((encoding, count, record_blocks))
    selections = []
    for positions in groups.values():
        records_cut = [cut[position] for position in positions]
        assert all(c is not None for c in records_cut)
        encoding = records_cut[0][0]  # type: ignore[index]
        rows = [block.rows for c in records_cut for block in c[2]]  # type: ignore[index]
        indices = select_topk_blocks(rows, topk)
        bits = [encoding.bits(r.gather(1, chosen)) for r, chosen in zip(rows, indices, strict=True)]
        counts = [c[1] for c in records_cut]  # type: ignore[index]
        selections.append(Selection(encoding, positions, counts, torch.cat(indices), torch.cat(bits)))
    return selections
