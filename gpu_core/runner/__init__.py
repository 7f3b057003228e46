"""The model runner: load a local HF causal LM, fingerprint it, generate with TOPLOC proofs, validate
records by one batched prefill, and judge them. See docs/models.md."""
