"""gpu_core: TOPLOC proofs (gpu_core.proofs) and the model runner (gpu_core.runner). Pure compute:
no database, no chain, no settings; CPU or CUDA tensors. Errors derive from gpu_core.errors.ToplocError.

The proof functions are re-exported lazily, so importing a torch-free module such as
gpu_core.runner.decoding (what the recorder checks records with) does not load torch.
"""

from __future__ import annotations

from typing import Any

from gpu_core.errors import ToplocError

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


def __getattr__(name: str) -> Any:
    if name in __all__:
        import gpu_core.proofs

        return getattr(gpu_core.proofs, name)
    raise AttributeError(f"module 'gpu_core' has no attribute {name!r}")
