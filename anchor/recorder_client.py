"""Reading a recorder over HTTP, as a third party does: fetching only, nothing checked here.

What comes back is the recorder's word; the commands that use this (`trail`, `receipt`, `dispute file`,
`verify-receipt` with `--recorder URL`) check all of it against the chain before they rely on it
(anchor.remote_checks). Errors: RecorderError naming the route, with the recorder's own field and
reason when it answered with one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from anchor.errors import Error
from anchor.transparency.tiles import TileRef

MAX_ANSWER = 64 << 20  # no answer of these routes is near this: a larger one is refused unread


class RecorderError(Error):
    """The recorder did not answer, or answered with an error."""

    def __init__(self, route: str, reason: str, status: int | None = None, field: str | None = None) -> None:
        where = f" ({field})" if field else ""
        super().__init__(f"recorder {route}: {reason}{where}")
        self.route, self.reason, self.status, self.field = route, reason, status, field


class RecorderClient:
    """GETs from the recorder at `url` (e.g. http://127.0.0.1:8470); `http` overrides the transport."""

    def __init__(self, url: str, http: httpx.Client | None = None, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise RecorderError("url", f"{url!r} is not an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.http = http or httpx.Client(base_url=self.url, timeout=timeout)

    def _get(self, route: str) -> bytes:
        try:
            with self.http.stream("GET", route) as r:
                declared = r.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > MAX_ANSWER:
                    raise RecorderError(route, f"answer of {declared} bytes is over {MAX_ANSWER}")
                chunks, size = [], 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > MAX_ANSWER:
                        raise RecorderError(route, f"answer is over {MAX_ANSWER} bytes")
                    chunks.append(chunk)
                body, status = b"".join(chunks), r.status_code
        except httpx.HTTPError as exc:
            raise RecorderError(route, f"no answer from {self.url}: {type(exc).__name__}: {exc}") from None
        if status != 200:
            raise _error(route, status, body)
        return body

    def _json(self, route: str) -> Any:
        body = self._get(route)
        try:
            return httpx.Response(200, content=body).json()
        except ValueError:
            raise RecorderError(route, "the answer is not JSON") from None

    def log(self) -> dict[str, Any]:
        """GET /v1/log: size, root, latest checkpoints, chain id, contract, origin, checkpoint key."""
        return _object(self._json("/v1/log"), "/v1/log")

    def record(self, ref: str) -> dict[str, Any]:
        """GET /v1/records/{ref}: the record's trail as the recorder tells it."""
        route = f"/v1/records/{quote(ref, safe='')}"
        return _object(self._json(route), route)

    def receipt(self, ref: str) -> str:
        """GET /v1/records/{ref}/receipt: the proof bundle, as text (anchor.receipts.ReceiptFile.loads)."""
        route = f"/v1/records/{quote(ref, safe='')}/receipt"
        body = self._get(route)
        try:
            return body.decode()
        except UnicodeDecodeError:
            raise RecorderError(route, "the answer is not UTF-8") from None

    def tile(self, tile: TileRef) -> bytes:
        """GET /tile/...: a hash tile or an entry bundle (anchor.transparency.tile_proofs reads them)."""
        return self._get("/" + tile.path())


def _object(value: Any, route: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecorderError(route, "the answer is not a JSON object")
    return value


def _error(route: str, status: int, body: bytes) -> RecorderError:
    """The recorder's error, in its own words when it gave them (the project's shape or RFC 9457)."""
    try:
        obj = httpx.Response(status, content=body).json()
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        error = obj.get("error")
        inner: dict[str, Any] = error if isinstance(error, dict) else obj
        reason = inner.get("reason") or inner.get("detail") or inner.get("title")
        field = inner.get("field")
        if isinstance(reason, str):
            return RecorderError(
                route, f"HTTP {status}: {reason}", status, field if isinstance(field, str) else None
            )
    return RecorderError(route, f"HTTP {status}", status)
