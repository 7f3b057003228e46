"""Valid signed records for tests: random token ids and proofs of the right shapes."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from eth_account import Account
from eth_keys import keys

from anchor.records import ModelRef, Record, Sampling, ToplocParams, proof_count, proof_length
from anchor.records.eip712 import Domain, sign_digest

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337
DOMAIN = Domain.of(CHAIN_ID, CONTRACT)
MODEL = ModelRef("tiny-llama", hashlib.sha256(b"tiny-llama").hexdigest())
VOCAB = 1000
PROVIDER_KEY = keys.PrivateKey(hashlib.sha256(b"provider").digest())
PROVIDER = PROVIDER_KEY.public_key.to_checksum_address()
LOG_KEY = keys.PrivateKey(hashlib.sha256(b"log").digest())


def make_record(
    request_id: str,
    rng: random.Random | None = None,
    provider: str = PROVIDER,
    n_prompt: int = 20,
    n_output: int = 40,
    topk: int = 8,
    dbs: int = 16,
    time: int = 1_700_000_000,
    max_new_tokens: int | None = None,
) -> Record:
    """A valid record; max_new_tokens defaults to max(64, n_output)."""
    rng = rng or random.Random(request_id)
    proofs = []
    for _ in range(proof_count(n_output, dbs)):
        modulus = rng.randint(max(topk, 60000), 65497).to_bytes(2, "big")
        proofs.append(modulus + rng.randbytes(proof_length(topk) - 2))
    return Record(
        provider=provider,
        model=MODEL,
        dtype="bfloat16",
        toploc=ToplocParams(topk, dbs),
        prompt_tokens=tuple(rng.randrange(VOCAB) for _ in range(n_prompt)),
        output_tokens=tuple(rng.randrange(VOCAB) for _ in range(n_output)),
        sampling=Sampling(
            temperature=0.7,
            top_p=0.95,
            top_k=50,
            seed=rng.randrange(1 << 32),
            max_new_tokens=max(64, n_output) if max_new_tokens is None else max_new_tokens,
        ),
        proofs=tuple(proofs),
        request_id=request_id,
        time=time,
    )


def entry(record: Record, key: keys.PrivateKey = PROVIDER_KEY, domain: Domain = DOMAIN) -> dict[str, Any]:
    """The JSON body of POST /v1/records for `record`, signed by `key`."""
    sig = sign_digest(key, domain.record_digest(record.digest()))
    return {"record": record.to_json(), "signature": "0x" + sig.hex()}


def other_key(seed: str) -> keys.PrivateKey:
    return keys.PrivateKey(hashlib.sha256(seed.encode()).digest())


__all__ = ["CONTRACT", "DOMAIN", "LOG_KEY", "MODEL", "PROVIDER", "PROVIDER_KEY", "VOCAB", "Account", "entry"]
