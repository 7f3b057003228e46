"""gpu_core: TOPLOC proofs (gpu_core.proofs) and the model runner (gpu_core.runner). Pure compute:
no database, no chain, no settings; CPU or CUDA tensors. Errors derive from gpu_core.errors.ToplocError.
"""

from gpu_core.errors import ToplocError
from gpu_core.proofs import (
    THRESHOLDS,
    ProofPoly,
    Thresholds,
    Verdict,
    VerificationResult,
    build_proofs,
    build_proofs_base64,
    build_proofs_batch,
    build_proofs_bytes,
    judge,
    thresholds_for,
    verify_proofs,
    verify_proofs_base64,
    verify_proofs_batch,
    verify_proofs_bytes,
)

__all__ = [
    "THRESHOLDS",
    "ProofPoly",
    "Thresholds",
    "ToplocError",
    "Verdict",
    "VerificationResult",
    "build_proofs",
    "build_proofs_base64",
    "build_proofs_batch",
    "build_proofs_bytes",
    "judge",
    "thresholds_for",
    "verify_proofs",
    "verify_proofs_base64",
    "verify_proofs_batch",
    "verify_proofs_bytes",
]
