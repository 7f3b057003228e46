"""The committee draw of DisputeGame._drawCommittee, in Python: to check a DisputeOpened event.

seed = keccak256(abi.encode(prevrandao, disputeId)); then a partial Fisher-Yates shuffle of the
eligible validators (in contract order): step k swaps position k with
k + uint256(keccak256(abi.encode(seed, k))) mod (n - k); drawn validators other than the provider and
the challenger join, until the committee is full. prevrandao is the mixHash of the dispute's block.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import encode
from eth_utils import keccak

from anchor.errors import VerificationError


def committee_seed(prevrandao: bytes, dispute_id: int) -> int:
    """Requires a 32-byte prevrandao (a block's mixHash)."""
    if len(prevrandao) != 32:
        raise VerificationError(f"prevrandao has {len(prevrandao)} bytes, want 32")
    return int.from_bytes(keccak(encode(["bytes32", "uint256"], [prevrandao, dispute_id])), "big")


def draw_committee(
    seed: int, validators: Sequence[str], committee_size: int, provider: str, challenger: str
) -> list[str]:
    """The committee the contract draws from `validators` (its eligible set, in order) with `seed`."""
    excluded = {provider.lower(), challenger.lower()}
    n = len(validators)
    eligible = sum(1 for v in validators if v.lower() not in excluded)
    if eligible < committee_size:
        raise VerificationError(f"{eligible} eligible validators, want {committee_size}")
    order = list(range(n))
    members: list[str] = []
    k = 0
    while len(members) < committee_size:
        step = int.from_bytes(keccak(encode(["uint256", "uint256"], [seed, k])), "big")
        j = k + step % (n - k)
        order[k], order[j] = order[j], order[k]
        candidate = validators[order[k]]
        if candidate.lower() not in excluded:
            members.append(candidate)
        k += 1
    return members
