"""The HTTP API: FastAPI routes over anchor.records (writes) and anchor.trail / anchor.log (reads).

Writes need a registered provider: its API key (required unless TOPLOC_AUDIT_REQUIRE_API_KEY is off),
checked with the rate limits before the body is read, and its EIP-712 signature on each record; reads
are public. Every failure is an RFC 9457 problem (anchor/api/problems.py) naming the field: InputError
-> 422 (401 API key, 403 provider not allowed, 404 unknown, 409 request id reused, 413 body too large,
429 rate limit), bad JSON -> 400, the framework's own errors (unknown route, method, validation) alike.
OpenAPI document at /openapi.json, interactive docs at /docs (served from the fastapi-swagger package:
no CDN), Prometheus metrics at /metrics, one access log line per request (logger anchor.api.access).

Single POSTs that arrive together share a transaction (anchor.records.group_commit); a batch POST is one
transaction of its own. Either way each record is answered as if it had been sent alone.
"""

from __future__ import annotations

import logging
import sys
import time
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anchor.api import problems, schemas
from anchor.api.config import AppConfig
from anchor.api.jsonio import FastJSONResponse, loads
from anchor.api.metrics import ACCESS_LOG, CONTENT_TYPE, Metrics
from anchor.api.problems import problem
from anchor.api.ratelimit import Limit, RateLimiter
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
from anchor.records.ingest import (
    ApiKeyError,
    ConflictError,
    NotRegisteredError,
    Recorder,
    check_key_provider,
)
from anchor.records.registry import provider_of_api_key
from anchor.settings import Settings
from anchor.trail import MAX_PAGE, NotFoundError, detail, find, list_records, receipt_file
from anchor.transparency.checkpoint import Checkpoint as NoteCheckpoint
from anchor.transparency.tiles import parse_tile_path


class BadBodyError(InputError):
    """The body is not JSON (HTTP 400)."""


class BodyTooLargeError(BadBodyError):
    """The body is over MAX_BODY (HTTP 413); refused before it is read whole."""


class RateLimitedError(InputError):
    """Over a rate limit (HTTP 429 with Retry-After)."""

    def __init__(self, field: str, reason: str, retry_after: int) -> None:
        super().__init__(field, reason)
        self.retry_after = retry_after


STATUS = {
    BodyTooLargeError: 413,
    BadBodyError: 400,
    ApiKeyError: 401,
    NotRegisteredError: 403,
    NotFoundError: 404,
    EvidenceNotFound: 404,
    TileNotFound: 404,
    ConflictError: 409,
    RateLimitedError: 429,
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
    metrics = Metrics(sessions)
    per_key = RateLimiter(Limit.per_second(config.access.rate_per_key))
    per_address = RateLimiter(Limit.per_second(config.access.rate_per_address))
    app = FastAPI(
        title="toploc-audit recorder",
        version="1",
        description="Append-only, chain-anchored log of LLM inference records with TOPLOC proofs.",
        docs_url=None,  # served below from local assets: FastAPI's own page loads swagger-ui from a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.engine = engine
    app.state.metrics = metrics
    app.add_middleware(AccessLog, metrics=metrics)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 422)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimitedError) else None
        if request.method == "POST" and request.url.path.startswith("/v1/records"):
            metrics.refuse(status, exc.field)
        return problem(status, exc.field, exc.reason, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None  # ("query", "size") -> "size"
        return problem(422, field, str(first.get("msg")))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The framework's own: no route (404), another method (405, with its Allow header).
        field = {404: "path", 405: "method"}.get(exc.status_code)
        reason = {
            404: f"no route {request.url.path[:200]!r} in this API (GET /openapi.json lists them)",
            405: f"{request.method} is not a method of {request.url.path[:200]!r}",
        }.get(exc.status_code, str(exc.detail))
        return problem(exc.status_code, field, reason, dict(exc.headers or {}))

    @app.exception_handler(Error)
    async def _error(_: Request, exc: Error) -> JSONResponse:
        status = 503 if isinstance(exc, ChainError) else 500  # the chain is down: try again later
        return problem(status, "chain" if status == 503 else None, str(exc))

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, exc: OperationalError) -> JSONResponse:
        # The database does not answer (or has lost its tables): try again later, as /readyz says.
        return problem(503, "database", f"the database does not answer: {type(exc.orig).__name__}")

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        # A bug: answered in the same shape (the traceback goes to the server's log, not the client).
        return problem(500, None, f"internal error ({type(exc).__name__})")

    def _client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def _take(limiter: RateLimiter, key: tuple[str, Any], field: str, what: str) -> None:
        wait = limiter.take(key)
        if wait is not None:
            rate = limiter.limit.rate
            raise RateLimitedError(field, f"{what} is over {rate:g} writes/s; retry in {wait} s", wait)

    async def _writer(request: Request, api_key: str | None) -> tuple[int, str] | None:
        """Authorise a record write before its body is read: the client address's rate limit, then the
        API key (it must identify an active provider; required unless the access policy says not),
        then the key's rate limit. Answers (provider id, address), or None for no key where none is
        required (the recorder still asks the keys of providers registered with one)."""
        _take(per_address, ("address", _client(request)), "address", f"address {_client(request)}")
        if api_key is None:
            if config.access.require_api_key:
                raise ApiKeyError(
                    "authorization", "an API key is required (Authorization: Bearer <key>, or X-Api-Key)"
                )
            return None

        def lookup() -> tuple[int, str, bool] | None:
            with sessions() as s:
                p = provider_of_api_key(s, api_key)
                return None if p is None else (p.id, p.address, p.active)

        found = await run_in_threadpool(lookup)
        if found is None:
            raise ApiKeyError("authorization", "the API key given is not a key of this log")
        provider_id, address, active = found
        if not active:
            raise NotRegisteredError("authorization", f"the key's provider {address} is deactivated")
        _take(per_key, ("key", provider_id), "authorization", f"the API key of {address}")
        return provider_id, address

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
        responses={
            200: schemas.answer(schemas.RECEIPT_ANSWER, "Already logged: its receipt again"),
            201: schemas.answer(schemas.RECEIPT_ANSWER, "Logged: its signed receipt"),
            **problems.responses(400, 401, 403, 409, 413, 422, 429, 503),
        },
        status_code=201,
    )
    async def post_record(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        api_key = _api_key(authorization, x_api_key)
        writer = await _writer(request, api_key)  # before the body is read: a refusal costs no work
        body = await _body(request)

        def parse_and_submit() -> Any:
            obj = _json(body)
            if writer is not None:
                check_key_provider(obj, writer[1], batch=False)
            return singles.submit(recorder.parse(obj), api_key)

        accepted = await run_in_threadpool(parse_and_submit)
        metrics.ingested.labels("created" if accepted.created else "replayed").inc()
        return FastJSONResponse(accepted.to_json(), status_code=201 if accepted.created else 200)

    @app.post(
        "/v1/records:batch",
        tags=["write"],
        summary="Append many signed records in one transaction (all or nothing); answers one receipt each.",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": schemas.BATCH}}}
        },
        responses={
            200: schemas.answer(schemas.BATCH_ANSWER, "Every entry was already logged"),
            201: schemas.answer(schemas.BATCH_ANSWER, "Logged: one signed receipt per entry, in order"),
            **problems.responses(400, 401, 403, 409, 413, 422, 429, 503),
        },
        status_code=201,
    )
    async def post_batch(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        api_key = _api_key(authorization, x_api_key)
        writer = await _writer(request, api_key)
        body = await _body(request)

        # Parsing (JSON, canonical bytes, signature recovery) is most of the work and needs no lock, so
        # it runs in a worker thread too: the event loop keeps reading other requests meanwhile.
        def parse() -> Any:
            obj = _json(body)
            if writer is not None:
                check_key_provider(obj, writer[1], batch=True)
            return recorder.parse_batch(obj)

        subs = await run_in_threadpool(parse)
        accepted = await run_in_threadpool(recorder.submit, subs, api_key)
        created = sum(a.created for a in accepted)
        metrics.ingested.labels("created").inc(created)
        metrics.ingested.labels("replayed").inc(len(accepted) - created)
        return FastJSONResponse(
            {"receipts": [a.to_json() for a in accepted]}, status_code=201 if created else 200
        )

    @app.get(
        "/v1/records",
        tags=["read"],
        summary="List records in log order, filtered, paginated by `after`.",
        responses={200: schemas.answer(schemas.RECORDS_PAGE), **problems.responses(422)},
    )
    def get_records(
        provider: str | None = None,
        model: Annotated[str | None, Query(description="model name or fingerprint")] = None,
        since: Annotated[int | None, _uint("logged at or after (Unix seconds)")] = None,
        until: Annotated[int | None, _uint("logged before (Unix seconds)")] = None,
        status: Annotated[str | None, Query(description="pending, anchored, disputed, fraud, honest")] = None,
        after: Annotated[int | None, _uint("the `next` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")] = 100,
    ) -> dict[str, Any]:
        with sessions() as s:
            return list_records(s, provider, model, since, until, status, after, limit)

    @app.get(
        "/v1/records/{ref}",
        tags=["read"],
        summary="One record by log index or recordDigest: receipt, inclusion proof, anchor, disputes, votes.",
        responses={200: schemas.answer(schemas.RECORD_DETAIL), **problems.responses(404, 422)},
    )
    def get_record(ref: str) -> dict[str, Any]:
        with sessions() as s:
            return detail(s, find(s, ref))

    @app.get(
        "/v1/records/{ref}/receipt",
        tags=["read"],
        summary="A record's proof bundle (receipt, entry, inclusion proof, checkpoint note, anchor tx): "
        "what `toploc-audit verify-receipt` checks, offline and against the chain.",
        responses=problems.responses(404, 422),
    )
    def get_receipt(ref: str) -> dict[str, Any]:
        with sessions() as s:
            return receipt_file(s, find(s, ref), config.domain, note_signer).to_json()

    @app.get(
        "/v1/log",
        tags=["log"],
        summary="The log's size and root, and its latest checkpoints.",
        responses={200: schemas.answer(schemas.LOG)},
    )
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

    @app.get(
        "/healthz",
        tags=["health"],
        summary="The process answers (liveness).",
        responses={200: schemas.answer(schemas.HEALTH)},
    )
    def get_healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The database answers with the log and the chain with its id (readiness); 503 naming "
        "which does not.",
        responses={200: schemas.answer(schemas.READY), **problems.responses(503)},
    )
    def get_readyz() -> JSONResponse:
        try:
            with sessions() as s:
                size = LogStore(s).size()
        except SQLAlchemyError as exc:
            return problem(503, "database", f"the database does not answer: {type(exc).__name__}")
        chain = "not probed"
        if config.chain_probe is not None:
            try:
                config.chain_probe()
            except ChainError as exc:
                return problem(503, "chain", str(exc))
            chain = "ok"
        return JSONResponse({"status": "ready", "database": "ok", "chain": chain, "size": size})

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (text format): records ingested and refused, latency, log size, "
        "entries waiting for an anchor, anchor lag.",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def get_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    swagger = resources.files("fastapi_swagger") / "resources"
    assets = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}

    @app.get("/docs", include_in_schema=False)
    def get_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon-32x32.png",
        )

    @app.get("/docs/{asset}", include_in_schema=False)
    def get_docs_asset(asset: str) -> Response:
        if asset == "favicon-32x32.png":
            return Response((swagger / asset).read_bytes(), media_type="image/png")
        if asset not in assets:
            raise NotFoundError("asset", f"{asset[:80]!r} is not one of {sorted(assets)}")
        cache = {"Cache-Control": "public, max-age=86400"}
        return Response((swagger / asset).read_bytes(), media_type=assets[asset], headers=cache)

    def openapi() -> dict[str, Any]:
        # The problem schema every 4xx/5xx answer refers to (anchor/api/problems.py).
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = problems.SCHEMA
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get(
        "/checkpoint",
        tags=["log"],
        summary="The latest checkpoint as a C2SP tlog-checkpoint signed note (Ed25519, text/plain).",
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
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
        responses={
            200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
            **problems.responses(404, 422),
        },
    )
    def get_tile(path: str) -> Response:
        tile = parse_tile_path(f"tile/{path}")
        with sessions() as s:
            data = read_tile(s, tile)
        # A tile's bytes are fixed by its path (a partial one names its width), so every tile is immutable.
        cache = "public, max-age=31536000, immutable"
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})

    @app.get(
        "/v1/log/inclusion",
        tags=["log"],
        summary="Inclusion proof of leaf `index` in the tree of `size`.",
        responses={200: schemas.answer(schemas.INCLUSION), **problems.responses(422)},
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
        "/v1/log/consistency",
        tags=["log"],
        summary="Consistency proof between tree sizes size1 <= size2.",
        responses={200: schemas.answer(schemas.CONSISTENCY), **problems.responses(422)},
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
        responses={201: schemas.answer(schemas.EVIDENCE_HASH), **problems.responses(400, 413, 422, 429)},
    )
    async def post_evidence(request: Request) -> dict[str, Any]:
        _take(per_address, ("address", _client(request)), "address", f"address {_client(request)}")
        body = await _body(request)

        def store() -> bytes:
            with transaction(sessions) as s:
                return publish(s, body)

        return {"evidenceHash": _hex(await run_in_threadpool(store))}

    @app.get(
        "/v1/evidence/{evidence_hash}",
        tags=["evidence"],
        summary="A published evidence report, byte for byte (SHA-256 of the body is the hash).",
        responses={
            200: {"content": {"application/json": {"schema": {"type": "object"}}}},
            **problems.responses(404, 422),
        },
    )
    def get_evidence(evidence_hash: str) -> Response:
        digest = parse_hash(evidence_hash)
        with sessions() as s:
            return Response(find_report(s, digest), media_type="application/json")

    @app.get(
        "/v1/checkpoints",
        tags=["log"],
        summary="Checkpoints, newest first.",
        responses={
            200: schemas.answer({"type": "array", "items": schemas.CHECKPOINT}),
            **problems.responses(422),
        },
    )
    def get_checkpoints(
        limit: Annotated[int, Query(ge=1, le=1000, description="most checkpoints")] = 100,
    ) -> list[dict[str, Any]]:
        with sessions() as s:
            rows = s.scalars(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(limit))
            return [_checkpoint(c) for c in rows]

    return app


class AccessLog:
    """One access log line per request (logger anchor.api.access, INFO: client, method, path, status,
    milliseconds) and the latency histogram by route template (a raw path would make a label per tile).
    A plain ASGI middleware: it sees the status of every answer, the framework's errors included."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless an answer starts: an exception escaped every handler

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(seconds)
            client = scope.get("client")
            ACCESS_LOG.info(
                '%s "%s %s" %d %.1fms',
                client[0] if client else "-",
                scope["method"],
                scope["path"][:500],
                status,
                seconds * 1000,
            )


def app_from_env() -> FastAPI:
    """The app configured from TOPLOC_AUDIT_* variables: the factory each `serve` worker process calls.
    The access log goes to stderr unless logging was configured otherwise."""
    if not ACCESS_LOG.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(message)s"))
        ACCESS_LOG.addHandler(handler)
        ACCESS_LOG.setLevel(logging.INFO)
        ACCESS_LOG.propagate = False
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
