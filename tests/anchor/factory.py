"""Valid signed records for tests: random token ids and proofs of the right shapes."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from eth_account import Account
from eth_keys import keys

from anchor.records import ModelRef, Record, Sampling, ToplocParams, proof_count, proof_length
from anchor.records.eip712 import Domain, sign_digest
from anchor.records.record import ModelLimits
from gpu_core.runner.decoding import DecodeSpec

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337
DOMAIN = Domain.of(CHAIN_ID, CONTRACT)
MODEL = ModelRef("tiny-llama", hashlib.sha256(b"tiny-llama").hexdigest())
VOCAB = 1000
EOS = VOCAB - 1
"""The stop token of the factory's records (random tokens are drawn below it)."""
LIMITS = ModelLimits(vocab_size=VOCAB, hidden_size=256, max_positions=4096, tokenizer=None)
"""What the recorder knows of MODEL."""
PROVIDER_KEY = keys.PrivateKey(hashlib.sha256(b"provider").digest())
PROVIDER = PROVIDER_KEY.public_key.to_checksum_address()
RECEIPT_KEY = keys.PrivateKey(hashlib.sha256(b"log").digest())
"""The recorder's receipt key (the contract's receiptSigner) in tests without a chain."""


def _proofs(rng: random.Random, n_output: int, topk: int, dbs: int) -> tuple[bytes, ...]:
    proofs = []
    for _ in range(proof_count(n_output, dbs)):
        modulus = rng.randint(max(topk, 60000), 65497).to_bytes(2, "big")
        coefficients = b"".join(
            rng.randrange(65497).to_bytes(2, "big") for _ in range(proof_length(topk) // 2 - 1)
        )
        proofs.append(modulus + coefficients)
    return tuple(proofs)


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
    """A valid version 2 record of random tokens; max_new_tokens defaults to max(64, n_output). Shorter
    outputs end with the stop token EOS (stop reason eos), full ones with stop reason length."""
    rng = rng or random.Random(request_id)
    max_new_tokens = max(64, n_output) if max_new_tokens is None else max_new_tokens
    output = [rng.randrange(EOS) for _ in range(n_output)]
    if n_output < max_new_tokens:
        output[-1] = EOS
    return Record(
        provider=provider,
        model=MODEL,
        dtype="bfloat16",
        toploc=ToplocParams(topk, dbs),
        prompt_tokens=tuple(rng.randrange(VOCAB) for _ in range(n_prompt)),
        output_tokens=tuple(output),
        decode=DecodeSpec(
            temperature=0.7,
            top_p=0.95,
            top_k=50,
            seed=rng.randrange(1 << 32),
            max_new_tokens=max_new_tokens,
            stop_token_ids=(EOS,),
        ),
        stop_reason="eos" if n_output < max_new_tokens else "length",
        proofs=_proofs(rng, n_output, topk, dbs),
        request_id=request_id,
        time=time,
    )


def make_record_v1(request_id: str, n_output: int = 40, topk: int = 8, dbs: int = 16) -> Record:
    """A valid version 1 record (a `sampling` object, no decode spec) of random tokens."""
    rng = random.Random(request_id)
    return Record(
        provider=PROVIDER,
        model=MODEL,
        dtype="bfloat16",
        toploc=ToplocParams(topk, dbs),
        prompt_tokens=tuple(rng.randrange(VOCAB) for _ in range(20)),
        output_tokens=tuple(rng.randrange(VOCAB) for _ in range(n_output)),
        sampling=Sampling(temperature=0.7, top_p=0.95, top_k=50, seed=7, max_new_tokens=max(64, n_output)),
        proofs=_proofs(rng, n_output, topk, dbs),
        request_id=request_id,
        time=1_700_000_000,
        version=1,
    )


def entry(record: Record, key: keys.PrivateKey = PROVIDER_KEY, domain: Domain = DOMAIN) -> dict[str, Any]:
    """The JSON body of POST /v1/records for `record`, signed by `key`."""
    sig = sign_digest(key, domain.record_digest(record.digest()))
    return {"record": record.to_json(), "signature": "0x" + sig.hex()}


def other_key(seed: str) -> keys.PrivateKey:
    return keys.PrivateKey(hashlib.sha256(seed.encode()).digest())


__all__ = [
    "CONTRACT",
    "DOMAIN",
    "EOS",
    "LIMITS",
    "MODEL",
    "PROVIDER",
    "PROVIDER_KEY",
    "RECEIPT_KEY",
    "VOCAB",
    "Account",
    "entry",
]
