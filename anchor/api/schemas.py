"""JSON Schemas of the request bodies, for the OpenAPI document (validation itself is Record.from_json)."""

from __future__ import annotations

from typing import Any

from anchor.records.record import DTYPES, MAX_TOPK, RECORD_FIELDS

_INT = {"type": "integer", "minimum": 0}
RECORD: dict[str, Any] = {
    "type": "object",
    "description": "An inference record, version 1 (docs/records.md).",
    "additionalProperties": False,
    "required": list(RECORD_FIELDS),
    "properties": {
        "version": {"const": 1},
        "provider": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
        "model": {
            "type": "object",
            "required": ["name", "fingerprint"],
            "properties": {
                "name": {"type": "string"},
                "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
        },
        "dtype": {"enum": list(DTYPES)},
        "toploc": {
            "type": "object",
            "required": ["topk", "decode_batching_size"],
            "properties": {
                "topk": {"type": "integer", "minimum": 1, "maximum": MAX_TOPK},
                "decode_batching_size": {"type": "integer", "minimum": 1},
            },
        },
        "prompt_tokens": {"type": "array", "items": _INT, "minItems": 1},
        "output_tokens": {"type": "array", "items": _INT, "minItems": 1},
        "sampling": {
            "type": "object",
            "required": ["temperature", "top_p", "top_k", "seed", "max_new_tokens"],
            "properties": {
                "temperature": {"type": "number", "minimum": 0},
                "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "top_k": _INT,
                "seed": {"type": ["integer", "null"], "minimum": 0},
                "max_new_tokens": {"type": "integer", "minimum": 1},
            },
        },
        "proofs": {
            "type": "array",
            "description": "1 + ceil(len(output_tokens) / decode_batching_size) proofs of 2 + 2*topk bytes",
            "items": {"type": "string", "contentEncoding": "base64"},
        },
        "request_id": {"type": "string", "pattern": "^[A-Za-z0-9._:/@+=-]{1,128}$"},
        "time": {"type": "integer", "minimum": 0, "description": "Unix seconds"},
    },
}
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
