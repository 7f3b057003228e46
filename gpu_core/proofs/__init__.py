"""TOPLOC proofs (arXiv 2501.16007), a drop-in for toploc 0.1.6 plus batched entry points.

Build: `build_proofs*` (one record) and `build_proofs_batch` (many records x many chunks per call).
Verify: `verify_proofs*` and `verify_proofs_batch`, giving one VerificationResult per chunk; accept or
reject with `judge(results, thresholds_for(dtype, topk))`. See docs/toploc.md.
"""

from gpu_core.proofs.build import build_proofs, build_proofs_base64, build_proofs_batch, build_proofs_bytes
from gpu_core.proofs.chunks import chunk_count
from gpu_core.proofs.encoding import ENCODINGS, encoding_for
from gpu_core.proofs.field import PRIME
from gpu_core.proofs.format import ProofPoly
from gpu_core.proofs.thresholds import (
    THRESHOLDS,
    Thresholds,
    Verdict,
    VerificationResult,
    judge,
    thresholds_for,
)
from gpu_core.proofs.verify import (
    verify_proofs,
    verify_proofs_base64,
    verify_proofs_batch,
    verify_proofs_bytes,
)

__all__ = [
    "ENCODINGS",
    "PRIME",
    "THRESHOLDS",
    "ProofPoly",
    "Thresholds",
    "Verdict",
    "VerificationResult",
    "build_proofs",
    "build_proofs_base64",
    "build_proofs_batch",
    "build_proofs_bytes",
    "chunk_count",
    "encoding_for",
    "judge",
    "thresholds_for",
    "verify_proofs",
    "verify_proofs_base64",
    "verify_proofs_batch",
    "verify_proofs_bytes",
]
