"""One error shape for every failure: RFC 9457 problem details (application/problem+json).

Every answer of 400 or more, the framework's own included (unknown route, wrong method, validation),
is an object with the RFC's members `type`, `title`, `status` and `detail`, plus two extension members
the project's clients read: `field` (what was wrong: a JSON path such as `record.toploc.topk`, a query
parameter, a header, or null) and `reason` (why, in words). `detail` is "<field>: <reason>".
https://www.rfc-editor.org/rfc/rfc9457#section-3
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:toploc-audit:problem:"

TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    422: "invalid-input",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}
"""The problem `type` of each status, as `urn:toploc-audit:problem:<slug>` (docs/records.md, Errors)."""


def problem_type(status: int) -> str:
    return TYPE_PREFIX + TYPES.get(status, "error")


def problem_body(status: int, field: str | None, reason: str) -> dict[str, Any]:
    return {
        "type": problem_type(status),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": reason if field is None else f"{field}: {reason}",
        "field": field,
        "reason": reason,
    }


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE


def problem(
    status: int, field: str | None, reason: str, headers: dict[str, str] | None = None
) -> ProblemResponse:
    return ProblemResponse(problem_body(status, field, reason), status_code=status, headers=headers)


SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details, with the field at fault and the reason",
    "required": ["type", "title", "status", "detail", "field", "reason"],
    "properties": {
        "type": {"type": "string", "description": "urn:toploc-audit:problem:<slug>"},
        "title": {"type": "string", "description": "the HTTP status phrase"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "<field>: <reason>"},
        "field": {
            "type": ["string", "null"],
            "description": "what was wrong: a JSON path, a query parameter, a header, or null",
        },
        "reason": {"type": "string"},
    },
}
REF = {"$ref": "#/components/schemas/Problem"}

DESCRIPTIONS = {
    400: "Not JSON, or a malformed header: names the field",
    401: "No API key, or not a key of this log (Authorization: Bearer <key>)",
    403: "The key's provider may not write this record (another provider, not registered, no stake)",
    404: "No such item (or no such route)",
    405: "The route does not take this method",
    409: "The request id was already used for a different record",
    413: "The body is over the limit",
    422: "Bad input: names the field and the reason; nothing was changed",
    429: "Over the rate limit: retry after Retry-After seconds",
    503: "A dependency (database, chain) does not answer: try again later",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these statuses, each an application/problem+json Problem."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {
            "description": DESCRIPTIONS[status],
            "content": {MEDIA_TYPE: {"schema": REF}},
        }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            }
        out[status] = entry
    return out
