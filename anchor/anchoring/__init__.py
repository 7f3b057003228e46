"""The anchor loop: checkpoints of the log anchored on chain, crash-safe and reorg-aware."""

from anchor.anchoring.chain import AuditContract, OnChainCheckpoint
from anchor.anchoring.loop import CRASH_STEPS, Anchorer, AnchorError, LoopConfig

__all__ = ["CRASH_STEPS", "AnchorError", "Anchorer", "AuditContract", "LoopConfig", "OnChainCheckpoint"]
