"""The stored RFC 9162 log: incremental appends, proofs from stored nodes, checkpoints, fsck."""

from anchor.log.compact import Frontier, fold
from anchor.log.fsck import FsckReport, fsck
from anchor.log.plan import NodeId, consistency_ranges, inclusion_ranges, range_nodes
from anchor.log.store import LogStore

__all__ = [
    "Frontier",
    "FsckReport",
    "LogStore",
    "NodeId",
    "consistency_ranges",
    "fold",
    "fsck",
    "inclusion_ranges",
    "range_nodes",
]
