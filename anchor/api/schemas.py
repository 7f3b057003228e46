"""JSON Schemas of the request bodies, for the OpenAPI document (validation itself is Record.from_json)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from anchor.records.canonical import MAX_SAFE_INTEGER
from anchor.records.record import (
    DTYPES,
    MAX_DECODE_BATCHING_SIZE,
    MAX_TOKENS,
    MAX_TOPK,
    RECORD_FIELDS,
    RECORD_FIELDS_V1,
)
from gpu_core.runner.decoding import STOP_REASONS, DecodeSpec

_INT = {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
_SHA256 = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
_COMMON: dict[str, Any] = {
    "provider": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
    "dtype": {"enum": list(DTYPES)},
    "toploc": {
        "type": "object",
        "additionalProperties": False,
        "required": ["topk", "decode_batching_size"],
        "properties": {
            "topk": {"type": "integer", "minimum": 1, "maximum": MAX_TOPK},
            "decode_batching_size": {"type": "integer", "minimum": 1, "maximum": MAX_DECODE_BATCHING_SIZE},
        },
    },
    "prompt_tokens": {"type": "array", "items": _INT, "minItems": 1, "maxItems": MAX_TOKENS},
    "output_tokens": {"type": "array", "items": _INT, "minItems": 1, "maxItems": MAX_TOKENS},
    "proofs": {
        "type": "array",
        "description": "1 + ceil(len(output_tokens) / decode_batching_size) proofs of 2 + 2*topk bytes",
        "items": {"type": "string", "contentEncoding": "base64"},
    },
    "request_id": {"type": "string", "pattern": "^[A-Za-z0-9._:/@+=-]{1,128}$"},
    "time": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_SAFE_INTEGER,
        "description": "Unix seconds; within TOPLOC_AUDIT_RECORD_CLOCK_SKEW ahead of / RECORD_MAX_AGE behind "
        "the recorder's clock",
    },
}
_NUMBER = {"type": "number"}
RECORD_V2: dict[str, Any] = {
    "type": "object",
    "description": "An inference record, version 2 (docs/records.md): binds the decode spec.",
    "additionalProperties": False,
    "required": list(RECORD_FIELDS),
    "properties": {
        "version": {"const": 2},
        "model": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "fingerprint", "tokenizer"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "fingerprint": _SHA256,
                "tokenizer": {"oneOf": [_SHA256, {"type": "null"}]},
            },
        },
        "decode": {
            "type": "object",
            "additionalProperties": False,
            "required": [f.name for f in fields(DecodeSpec)],
            "properties": {
                "sampler": {"enum": ["toploc-audit/gumbel-max", "engine"]},
                "sampler_version": {"const": 1},
                "temperature": {"type": "number", "minimum": 0, "maximum": 100},
                "top_k": _INT,
                "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "min_p": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                "repetition_penalty": {"type": "number", "minimum": 0.5, "maximum": 2},
                "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
                "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
                "seed": {"oneOf": [_INT, {"type": "null"}]},
                "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER},
                "stop_token_ids": {"type": "array", "items": _INT},
                "stop": {"type": "array", "items": {"type": "string"}, "maxItems": 16},
            },
        },
        "stop_reason": {"enum": list(STOP_REASONS)},
        **_COMMON,
    },
}
RECORD_V1: dict[str, Any] = {
    "type": "object",
    "description": "An inference record, version 1 (no decode spec; refused unless "
    "TOPLOC_AUDIT_RECORD_MIN_VERSION=1).",
    "additionalProperties": False,
    "required": list(RECORD_FIELDS_V1),
    "properties": {
        "version": {"const": 1},
        "model": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "fingerprint"],
            "properties": {"name": {"type": "string"}, "fingerprint": _SHA256},
        },
        "sampling": {
            "type": "object",
            "additionalProperties": False,
            "required": ["temperature", "top_p", "top_k", "seed", "max_new_tokens"],
            "properties": {
                "temperature": {"type": "number", "minimum": 0, "maximum": 100},
                "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "top_k": _INT,
                "seed": {"oneOf": [_INT, {"type": "null"}]},
                "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER},
            },
        },
        **_COMMON,
    },
}
RECORD: dict[str, Any] = {"oneOf": [RECORD_V2, RECORD_V1]}
ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["record", "signature"],
    "properties": {
        "record": RECORD,
        "signature": {
            "type": "string",
            "description": "EIP-712 signature (65 bytes, 0x hex) over recordDigest",
        },
    },
}
BATCH: dict[str, Any] = {
    "type": "object",
    "required": ["entries"],
    "properties": {"entries": {"type": "array", "items": ENTRY, "minItems": 1, "maxItems": 10000}},
}

# Answers (what the routes return), so the OpenAPI document types them and the fuzz test checks them.
_HASH = {"type": "string", "pattern": "^0x[0-9a-f]{64}$"}
_UINT = {"type": "integer", "minimum": 0}
RECEIPT_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["receipt", "signature", "created"],
    "properties": {
        "receipt": {
            "type": "object",
            "required": ["logIndex", "recordDigest", "timestamp", "maximumMergeDelay"],
            "properties": {
                "logIndex": _UINT,
                "recordDigest": _HASH,
                "timestamp": _UINT,
                "maximumMergeDelay": _UINT,
            },
        },
        "signature": {"type": "string", "pattern": "^0x[0-9a-f]{130}$", "description": "the log key's"},
        "created": {"type": "boolean", "description": "false: already logged (an idempotent replay)"},
    },
}
BATCH_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["receipts"],
    "properties": {"receipts": {"type": "array", "items": RECEIPT_ANSWER}},
}
CHECKPOINT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "size", "root", "status", "createdAt", "chainCheckpointId", "anchoredAt"],
    "properties": {
        "id": _UINT,
        "size": _UINT,
        "root": _HASH,
        "status": {"type": "string"},
        "createdAt": _UINT,
        "chainCheckpointId": {"type": ["integer", "null"]},
        "anchoredAt": {"type": ["integer", "null"]},
    },
}
LOG: dict[str, Any] = {
    "type": "object",
    "required": ["size", "root", "latestCheckpoint", "latestAnchored", "chainId", "contract"],
    "properties": {
        "size": _UINT,
        "root": _HASH,
        "latestCheckpoint": {"oneOf": [CHECKPOINT, {"type": "null"}]},
        "latestAnchored": {"oneOf": [CHECKPOINT, {"type": "null"}]},
        "chainId": _UINT,
        "contract": {"type": "string"},
        "maximumMergeDelay": _UINT,
        "origin": {"type": "string"},
        "checkpointKey": {"type": "string"},
    },
}
INCLUSION: dict[str, Any] = {
    "type": "object",
    "required": ["index", "size", "leafHash", "proof"],
    "properties": {
        "index": _UINT,
        "size": _UINT,
        "leafHash": _HASH,
        "proof": {"type": "array", "items": _HASH},
    },
}
CONSISTENCY: dict[str, Any] = {
    "type": "object",
    "required": ["size1", "size2", "proof"],
    "properties": {"size1": _UINT, "size2": _UINT, "proof": {"type": "array", "items": _HASH}},
}
RECORDS_PAGE: dict[str, Any] = {
    "type": "object",
    "required": ["items", "next"],
    "properties": {
        "items": {
            "type": "array",
            "items": {"type": "object", "required": ["logIndex"], "properties": {"logIndex": _UINT}},
        },
        "next": {"type": ["integer", "null"], "description": "pass as `after` for the next page"},
    },
}
RECORD_DETAIL: dict[str, Any] = {
    "type": "object",
    "required": ["logIndex", "record", "status"],
    "properties": {"logIndex": _UINT, "record": {"type": "object"}, "status": {"type": "string"}},
}
HEALTH: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"const": "ok"}},
}
READY: dict[str, Any] = {
    "type": "object",
    "required": ["status", "database", "chain", "size"],
    "properties": {
        "status": {"const": "ready"},
        "database": {"const": "ok"},
        "chain": {"enum": ["ok", "not probed"]},
        "size": _UINT,
    },
}
EVIDENCE_HASH: dict[str, Any] = {
    "type": "object",
    "required": ["evidenceHash"],
    "properties": {"evidenceHash": _HASH},
}


def answer(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    """An OpenAPI response entry: application/json of this schema."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}
