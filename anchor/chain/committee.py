"""The committee draw of DisputeGame (draw, previewCommittee), in Python: to check a CommitteeDrawn event
and to reason about draw frequencies.

seed = keccak256(abi.encode(prevrandao, disputeId, round)), prevrandao being that of the block that
mined the draw (its mixHash). Seats are drawn without replacement: seat k takes the validator whose
stake interval, in pool order, holds keccak256(abi.encode(seed, k)) mod (the stake left); excluded
validators (the provider, the challenger, earlier rounds' members) weigh nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from eth_abi import encode
from eth_utils import keccak

from anchor.errors import VerificationError


def committee_seed(prevrandao: bytes, dispute_id: int, round_: int) -> int:
    """Requires a 32-byte prevrandao (a block's mixHash)."""
    if len(prevrandao) != 32:
        raise VerificationError(f"prevrandao has {len(prevrandao)} bytes, want 32")
    return int.from_bytes(
        keccak(encode(["bytes32", "uint256", "uint8"], [prevrandao, dispute_id, round_])), "big"
    )


def draw_committee(
    seed: int, pool: Sequence[tuple[str, int]], size: int, excluded: Collection[str]
) -> list[str]:
    """The committee the contract draws from `pool` ((validator, draw weight) per slot, in contract
    order); empty when fewer than `size` validators weigh anything."""
    out = {e.lower() for e in excluded}
    weights = [0 if v.lower() in out else w for v, w in pool]
    if sum(1 for w in weights if w > 0) < size:  # slots that weigh nothing cannot be drawn
        return []
    total = sum(weights)
    members: list[str] = []
    for k in range(size):
        point = int.from_bytes(keccak(encode(["uint256", "uint256"], [seed, k])), "big") % total
        i = 0
        while point >= weights[i]:
            point -= weights[i]
            i += 1
        members.append(pool[i][0])
        total -= weights[i]
        weights[i] = 0
    return members
