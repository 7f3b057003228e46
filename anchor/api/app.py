"""The HTTP API: FastAPI routes over anchor.records (writes) and anchor.trail / anchor.log (reads).

Writes need a registered provider (its EIP-712 signature on each record, and its API key when it has
one); reads are public. Errors map from the project's own kinds: InputError -> 422 naming the field
(401 API key, 403 provider not registered, 404 unknown record, 409 request id reused), bad JSON -> 400.
OpenAPI document at /openapi.json, interactive docs at /docs.

Single POSTs that arrive together share a transaction (anchor.records.group_commit); a batch POST is one
transaction of its own. Either way each record is answered as if it had been sent alone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from anchor.api import schemas
from anchor.api.config import AppConfig
from anchor.api.jsonio import FastJSONResponse, loads
from anchor.chain.errors import ChainError
from anchor.db import check_schema, make_engine, session_factory
from anchor.db.engine import transaction
from anchor.db.models import Checkpoint
from anchor.errors import Error, InputError
from anchor.evidence import EvidenceNotFound, find_report, parse_hash, publish
from anchor.log import checkpoints
from anchor.log.store import LogStore
from anchor.log.tiles import TileNotFound, read_tile
from anchor.records.group_commit import GroupCommit
from anchor.records.ingest import ApiKeyError, ConflictError, NotRegisteredError, Recorder
from anchor.settings import Settings
from anchor.trail import NotFoundError, detail, find, list_records, receipt_file
from anchor.transparency.checkpoint import Checkpoint as NoteCheckpoint
from anchor.transparency.tiles import parse_tile_path


class BadBodyError(InputError):
    """The body is not JSON (HTTP 400)."""


class BodyTooLargeError(BadBodyError):
    """The body is over MAX_BODY (HTTP 413); refused before it is read whole."""


STATUS = {
    BodyTooLargeError: 413,
    BadBodyError: 400,
    ApiKeyError: 401,
    NotRegisteredError: 403,
    NotFoundError: 404,
    EvidenceNotFound: 404,
    TileNotFound: 404,
    ConflictError: 409,
}
MAX_BODY = 64 << 20
INT64_MAX = 2**63 - 1
# Every integer a route takes fits the database's BIGINT: a larger one is a 422, never an overflow (500).
Uint = Annotated[int, Query(ge=0, le=INT64_MAX)]


def _uint(description: str) -> Any:
    return Query(ge=0, le=INT64_MAX, description=description)


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def create_app(config: AppConfig) -> FastAPI:
    """Build the app; refuses (SchemaBehindError) a database whose schema is not at head."""
    engine = make_engine(config.database_url)
    check_schema(engine)
    sessions = session_factory(engine)
    recorder = Recorder(
        sessions,
        config.domain,
        config.receipt_key,
        config.max_merge_delay,
        policy=config.policy,
        stake_problem=config.stake_problem,
    )
    singles = GroupCommit(recorder)  # concurrent single POSTs share transactions
    note_signer = config.note_signer
    app = FastAPI(
        title="toploc-audit recorder",
        version="1",
        description="Append-only, chain-anchored log of LLM inference records with TOPLOC proofs.",
    )
    app.state.engine = engine

    @app.exception_handler(InputError)
    async def _input_error(_: Request, exc: InputError) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 422)
        return JSONResponse({"error": {"field": exc.field, "reason": exc.reason}}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None  # ("query", "size") -> "size"
        return JSONResponse({"error": {"field": field, "reason": first.get("msg")}}, status_code=422)

    @app.exception_handler(Error)
    async def _error(_: Request, exc: Error) -> JSONResponse:
        status = 503 if isinstance(exc, ChainError) else 500  # the chain is down: try again later
        return JSONResponse({"error": {"field": None, "reason": str(exc)}}, status_code=status)

    async def _body(request: Request) -> bytes:
        """The request body, refused on its Content-Length or, without one, as soon as the bytes read
        pass the limit: an oversized body is never held in memory."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isascii() or not declared.isdigit()):
            raise BadBodyError("content-length", f"{declared[:40]!r} is not a byte count")
        if declared is not None and int(declared) > MAX_BODY:
            raise BodyTooLargeError("body", f"{declared} bytes exceed the limit of {MAX_BODY}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise BodyTooLargeError("body", f"more than the limit of {MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _json(body: bytes) -> Any:
        try:
            return loads(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise BadBodyError("body", f"not JSON: {exc}") from None

    def _api_key(authorization: str | None, x_api_key: str | None) -> str | None:
        if authorization and authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        return x_api_key

    @app.post(
        "/v1/records",
        tags=["write"],
        summary="Append one signed record; answers its signed receipt (201; 200 for a replayed request id).",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": schemas.ENTRY}}}
        },
        responses={422: schemas.ERROR, 401: schemas.ERROR, 403: schemas.ERROR, 409: schemas.ERROR},
    )
    async def post_record(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        body = await _body(request)
        api_key = _api_key(authorization, x_api_key)
        accepted = await run_in_threadpool(lambda: singles.submit(recorder.parse(_json(body)), api_key))
        return FastJSONResponse(accepted.to_json(), status_code=201 if accepted.created else 200)

    @app.post(
        "/v1/records:batch",
        tags=["write"],
        summary="Append many signed records in one transaction (all or nothing); answers one receipt each.",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": schemas.BATCH}}}
        },
        responses={422: schemas.ERROR, 401: schemas.ERROR, 403: schemas.ERROR, 409: schemas.ERROR},
    )
    async def post_batch(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        body = await _body(request)
        # Parsing (JSON, canonical bytes, signature recovery) is most of the work and needs no lock, so
        # it runs in a worker thread too: the event loop keeps reading other requests meanwhile.
        subs = await run_in_threadpool(lambda: recorder.parse_batch(_json(body)))
        accepted = await run_in_threadpool(recorder.submit, subs, _api_key(authorization, x_api_key))
        created = any(a.created for a in accepted)
        return FastJSONResponse(
            {"receipts": [a.to_json() for a in accepted]}, status_code=201 if created else 200
        )

    @app.get(
        "/v1/records", tags=["read"], summary="List records in log order, filtered, paginated by `after`."
    )
    def get_records(
        provider: str | None = None,
        model: Annotated[str | None, Query(description="model name or fingerprint")] = None,
        since: Annotated[int | None, _uint("logged at or after (Unix seconds)")] = None,
        until: Annotated[int | None, _uint("logged before (Unix seconds)")] = None,
        status: Annotated[str | None, Query(description="pending, anchored, disputed, fraud, honest")] = None,
        after: Annotated[int | None, _uint("the `next` of the previous page")] = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        with sessions() as s:
            return list_records(s, provider, model, since, until, status, after, limit)

    @app.get(
        "/v1/records/{ref}",
        tags=["read"],
        summary="One record by log index or recordDigest: receipt, inclusion proof, anchor, disputes, votes.",
        responses={404: schemas.ERROR},
    )
    def get_record(ref: str) -> dict[str, Any]:
        with sessions() as s:
            return detail(s, find(s, ref))

    @app.get(
        "/v1/records/{ref}/receipt",
        tags=["read"],
        summary="A record's proof bundle (receipt, entry, inclusion proof, checkpoint note, anchor tx): "
        "what `toploc-audit verify-receipt` checks, offline and against the chain.",
        responses={404: schemas.ERROR},
    )
    def get_receipt(ref: str) -> dict[str, Any]:
        with sessions() as s:
            return receipt_file(s, find(s, ref), config.domain, note_signer).to_json()

    @app.get("/v1/log", tags=["log"], summary="The log's size and root, and its latest checkpoints.")
    def get_log() -> dict[str, Any]:
        with sessions() as s:
            log = LogStore(s)
            size = log.size()
            latest, anchored = checkpoints.latest(s), checkpoints.latest_anchored(s)
            return {
                "size": size,
                "root": _hex(log.root(size)),
                "latestCheckpoint": None if latest is None else _checkpoint(latest),
                "latestAnchored": None if anchored is None else _checkpoint(anchored),
                "chainId": config.domain.chain_id,
                "contract": config.domain.contract,
                "maximumMergeDelay": config.max_merge_delay,
                "origin": note_signer.name,
                "checkpointKey": note_signer.verifier.encode(),
            }

    @app.get("/healthz", tags=["health"], summary="The process answers (liveness).")
    def get_healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz", tags=["health"], summary="The database answers with the log (readiness); 503 otherwise."
    )
    def get_readyz() -> JSONResponse:
        try:
            with sessions() as s:
                size = LogStore(s).size()
        except SQLAlchemyError as exc:
            reason = f"the database does not answer: {type(exc).__name__}"
            return JSONResponse({"error": {"field": "database", "reason": reason}}, status_code=503)
        return JSONResponse({"status": "ready", "database": "ok", "size": size})

    @app.get(
        "/checkpoint",
        tags=["log"],
        summary="The latest checkpoint as a C2SP tlog-checkpoint signed note (Ed25519, text/plain).",
    )
    def get_checkpoint() -> Response:
        with sessions() as s:
            latest = checkpoints.latest(s)
            size, root = (0, LogStore(s).root(0)) if latest is None else (latest.size, latest.root)
        note = NoteCheckpoint(note_signer.name, size, root).sign(note_signer)
        return Response(note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})

    @app.get(
        "/tile/{path:path}",
        tags=["log"],
        summary="C2SP tlog-tiles: hash tiles tile/<L>/<N>[.p/<W>], entry bundles tile/entries/<N>[.p/<W>].",
    )
    def get_tile(path: str) -> Response:
        tile = parse_tile_path(f"tile/{path}")
        with sessions() as s:
            data = read_tile(s, tile)
        # A tile's bytes are fixed by its path (a partial one names its width), so every tile is immutable.
        cache = "public, max-age=31536000, immutable"
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})

    @app.get(
        "/v1/log/inclusion", tags=["log"], summary="Inclusion proof of leaf `index` in the tree of `size`."
    )
    def get_inclusion(index: Uint, size: Uint) -> dict[str, Any]:
        with sessions() as s:
            log = LogStore(s)
            proof = log.inclusion_proof(index, size)
            return {
                "index": index,
                "size": size,
                "leafHash": _hex(log.leaf_hash(index)),
                "proof": [_hex(p) for p in proof],
            }

    @app.get(
        "/v1/log/consistency", tags=["log"], summary="Consistency proof between tree sizes size1 <= size2."
    )
    def get_consistency(size1: Uint, size2: Uint) -> dict[str, Any]:
        with sessions() as s:
            return {
                "size1": size1,
                "size2": size2,
                "proof": [_hex(p) for p in LogStore(s).consistency_proof(size1, size2)],
            }

    @app.post(
        "/v1/evidence",
        tags=["evidence"],
        status_code=201,
        summary="Publish a validator's evidence report (a JSON object); answers its SHA-256, the hash its "
        "reveal binds on chain.",
        responses={400: schemas.ERROR, 422: schemas.ERROR},
    )
    async def post_evidence(request: Request) -> dict[str, Any]:
        body = await _body(request)

        def store() -> bytes:
            with transaction(sessions) as s:
                return publish(s, body)

        return {"evidenceHash": _hex(await run_in_threadpool(store))}

    @app.get(
        "/v1/evidence/{evidence_hash}",
        tags=["evidence"],
        summary="A published evidence report, byte for byte (SHA-256 of the body is the hash).",
        responses={404: schemas.ERROR},
    )
    def get_evidence(evidence_hash: str) -> Response:
        digest = parse_hash(evidence_hash)
        with sessions() as s:
            return Response(find_report(s, digest), media_type="application/json")

    @app.get("/v1/checkpoints", tags=["log"], summary="Checkpoints, newest first.")
    def get_checkpoints(limit: int = 100) -> list[dict[str, Any]]:
        if not 0 < limit <= 1000:
            raise InputError("limit", f"{limit} is outside [1, 1000]")
        with sessions() as s:
            rows = s.scalars(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(limit))
            return [_checkpoint(c) for c in rows]

    return app


def app_from_env() -> FastAPI:
    """The app configured from TOPLOC_AUDIT_* variables: the factory each `serve` worker process calls."""
    return create_app(AppConfig.from_settings(Settings.from_env()))


def _checkpoint(c: Checkpoint) -> dict[str, Any]:
    return {
        "id": c.id,
        "size": c.size,
        "root": _hex(c.root),
        "status": c.status,
        "createdAt": c.created_at,
        "chainCheckpointId": c.chain_checkpoint_id,
        "anchoredAt": c.anchored_at,
    }
