"""Issue 10, hardened API, on both databases: API keys before any work, rate limits, bounded record times,
RFC 9457 problems for every failure (the framework's too), /docs offline, /readyz with the chain,
/metrics and the access log."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import jsonschema_rs
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from anchor.api import AppConfig, create_app
from anchor.api.config import AccessPolicy, rpc_probe
from anchor.api.ratelimit import Limit, RateLimiter
from anchor.chain.anvil import free_port
from anchor.db import make_engine, session_factory, transaction
from anchor.records.ingest import RecordPolicy
from anchor.records.registry import deactivate_provider, register_provider
from tests.anchor.conftest import KEYLESS, MAX_MERGE_DELAY, field_reason, seed_registry
from tests.anchor.factory import DOMAIN, PROVIDER, RECEIPT_KEY, entry, make_record, other_key

KEY = "tak_secret-of-the-provider"
STRANGER = other_key("b")
STRANGER_ADDRESS = STRANGER.public_key.to_checksum_address()


def _register(database_url: str, address: str, api_key: str | None = None) -> None:
    engine = make_engine(database_url)
    with transaction(session_factory(engine)) as s:
        register_provider(s, address, "", api_key)
    engine.dispose()


@pytest.fixture
def keyed(database_url: str) -> Iterator[TestClient]:
    """The default access policy (keys required), the provider registered with KEY and a second
    provider, B, registered without one."""
    seed_registry(database_url, api_key=KEY)
    _register(database_url, STRANGER_ADDRESS)
    app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY))
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


def _size(client: TestClient) -> int:
    return int(client.get("/v1/log").json()["size"])


BEARER = {"Authorization": f"Bearer {KEY}"}


def test_no_key_or_a_wrong_key_is_refused_before_the_body_is_parsed(keyed: TestClient) -> None:
    """Attack: make the recorder parse and recover signatures for nothing. Before, a keyless request
    was parsed first: bad JSON answered 400 and a bad signature 422; now both are a 401."""
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"X-Api-Key": "wrong"},
        {"Authorization": "Basic x"},
    ):
        r = keyed.post("/v1/records", content=b"{not json", headers=headers)
        assert r.status_code == 401 and r.json()["field"] == "authorization", (headers, r.text)
        bad_signature = {**entry(make_record("k-0")), "signature": "0x" + "11" * 65}
        r = keyed.post("/v1/records:batch", json={"entries": [bad_signature]}, headers=headers)
        assert r.status_code == 401 and r.json()["field"] == "authorization", (headers, r.text)
    r = keyed.post("/v1/records", json=entry(make_record("k-0")))
    assert field_reason(r) == {
        "field": "authorization",
        "reason": "an API key is required (Authorization: Bearer <key>, or X-Api-Key)",
    }
    r = keyed.post("/v1/records", json=entry(make_record("k-0")), headers={"Authorization": "Bearer nope"})
    assert r.json()["reason"] == "the API key given is not a key of this log"
    assert _size(keyed) == 0
    assert keyed.post("/v1/records", json=entry(make_record("k-0")), headers=BEARER).status_code == 201
    assert (
        keyed.post("/v1/records", json=entry(make_record("k-1")), headers={"X-Api-Key": KEY}).status_code
        == 201
    )


def test_a_key_writes_only_its_own_providers_records(keyed: TestClient) -> None:
    """Attack: provider A's key carrying records signed by provider B (registered without a key).
    Before, the recorder only asked a key of providers that had one, so B's records went in under A's
    key (and keyless B could write with no key at all); now the key names the provider: 403."""
    theirs = entry(make_record("b-0", provider=STRANGER_ADDRESS), STRANGER)
    r = keyed.post("/v1/records", json=theirs, headers=BEARER)
    assert r.status_code == 403 and field_reason(r) == {
        "field": "record.provider",
        "reason": f"{STRANGER_ADDRESS} is not the provider of the API key given ({PROVIDER})",
    }
    batch = {"entries": [entry(make_record("a-0")), theirs]}
    r = keyed.post("/v1/records:batch", json=batch, headers=BEARER)
    assert r.status_code == 403 and r.json()["field"] == "entries[1].record.provider"
    assert keyed.post("/v1/records", json=theirs).status_code == 401  # keyless B: no key, no write
    lower = {**theirs, "record": {**theirs["record"], "provider": STRANGER_ADDRESS.lower()}}
    assert keyed.post("/v1/records", json=lower, headers=BEARER).status_code == 403  # any spelling
    assert _size(keyed) == 0


def test_a_deactivated_providers_key_is_refused(database_url: str, keyed: TestClient) -> None:
    engine = make_engine(database_url)
    with transaction(session_factory(engine)) as s:
        deactivate_provider(s, PROVIDER)
    engine.dispose()
    r = keyed.post("/v1/records", json=entry(make_record("d-0")), headers=BEARER)
    assert r.status_code == 403 and field_reason(r) == {
        "field": "authorization",
        "reason": f"the key's provider {PROVIDER} is deactivated",
    }


def test_keyless_providers_write_only_where_keys_are_not_required(database_url: str) -> None:
    seed_registry(database_url)
    app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY))  # the default: required
    with TestClient(app) as c:
        assert c.post("/v1/records", json=entry(make_record("n-0"))).status_code == 401
    app.state.engine.dispose()
    app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, access=KEYLESS))
    with TestClient(app) as c:
        assert c.post("/v1/records", json=entry(make_record("n-0"))).status_code == 201
    app.state.engine.dispose()


def test_rate_limits_answer_429_with_retry_after_before_the_body_is_read(database_url: str) -> None:
    seed_registry(database_url, api_key=KEY)
    # One request per 1000 s (a bucket of 1): no refill can happen while the test runs.
    for access, field, what in [
        (AccessPolicy(rate_per_key=0.001), "authorization", f"the API key of {PROVIDER}"),
        (AccessPolicy(rate_per_address=0.001), "address", "address testclient"),
    ]:
        app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, access=access))
        with TestClient(app) as c:
            rid = f"r-{field}"
            assert c.post("/v1/records", json=entry(make_record(rid)), headers=BEARER).status_code in (
                200,
                201,
            )
            r = c.post("/v1/records", content=b"{not json", headers=BEARER)  # refused before it is read
            assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json", r.text
            assert 990 <= int(r.headers["retry-after"]) <= 1000
            assert r.json()["field"] == field
            assert re.fullmatch(
                f"{what} is over 0.001 writes/s; retry in {r.headers['retry-after']} s", r.json()["reason"]
            )
            evidence = c.post("/v1/evidence", content=b'{"a": 1}')
            assert evidence.status_code == (429 if field == "address" else 201)  # evidence: per address
            assert c.get("/v1/log").status_code == 200  # reads are not limited
        app.state.engine.dispose()


def test_a_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(Limit.per_second(2), clock=lambda: now[0], max_buckets=2)
    assert [limiter.take("a") for _ in range(5)] == [None, None, None, None, 1]
    now[0] = 0.5  # one token back
    assert limiter.take("a") is None and limiter.take("a") == 1
    assert limiter.take("b") is None and limiter.take("c") is None  # "a" evicted: it comes back full
    assert [limiter.take("a") for _ in range(5)] == [None, None, None, None, 1]
    assert RateLimiter(Limit.per_second(0)).take("a") is None  # 0: no limit


YEAR_14970 = 409_983_264_000  # 14970-01-01


def test_record_times_are_bounded_by_the_clock(database_url: str) -> None:
    """A record of the year 14970 was accepted and then broke `trail`; now it is a 422 naming
    record.time, and times within the allowed skew pass."""
    seed_registry(database_url)
    now = 1_700_000_000
    policy = RecordPolicy(clock_skew=300, max_age=86400, clock=lambda: now)
    app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, policy, access=KEYLESS))
    with TestClient(app) as c:
        r = c.post("/v1/records", json=entry(make_record("t-far", time=YEAR_14970)))
        assert r.status_code == 422 and field_reason(r) == {
            "field": "record.time",
            "reason": f"{YEAR_14970} is {YEAR_14970 - now} s ahead of the recorder's clock ({now}); at most "
            "300 s of clock skew is allowed",
        }
        r = c.post("/v1/records:batch", json={"entries": [entry(make_record("t-301", time=now + 301))]})
        assert r.status_code == 422 and r.json()["field"] == "entries[0].record.time"
        r = c.post("/v1/records", json=entry(make_record("t-old", time=now - 86401)))
        assert r.status_code == 422 and r.json()["reason"].endswith("at most 86400 s old")
        assert c.post("/v1/records", json=entry(make_record("t-skew", time=now + 300))).status_code == 201
        assert c.post("/v1/records", json=entry(make_record("t-day", time=now - 86400))).status_code == 201
    app.state.engine.dispose()


def test_trail_shows_any_stored_time(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log written before times were bounded may hold any time below 2^53: `trail` prints it."""
    from toploc_audit.commands.trail import trail

    seed_registry(database_url)
    policy = RecordPolicy(clock_skew=2**53, clock=lambda: 0)  # the old recorder: no bound
    app = create_app(AppConfig(database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, policy, access=KEYLESS))
    with TestClient(app) as c:
        for i, when in enumerate((YEAR_14970, 2**53 - 1)):
            assert c.post("/v1/records", json=entry(make_record(f"old-{i}", time=when))).status_code == 201
        assert c.get("/v1/records/1").json()["time"] == 2**53 - 1
    app.state.engine.dispose()
    monkeypatch.setenv("TOPLOC_AUDIT_DATABASE_URL", database_url)
    for index, when in ((0, YEAR_14970), (1, 2**53 - 1)):
        result = CliRunner().invoke(trail, [str(index)])
        assert result.exit_code == 0, result.output
        assert f"{when} (Unix seconds)  inference done" in result.output


PROBLEM_KEYS = {"type", "title", "status", "detail", "field", "reason"}


@pytest.mark.parametrize(
    ("method", "path", "status", "field"),
    [
        ("GET", "/nowhere", 404, "path"),
        ("DELETE", "/v1/log", 405, "method"),
        ("GET", "/v1/log/inclusion?index=x&size=1", 422, "index"),
        ("GET", "/v1/records?limit=0", 422, "limit"),
        ("GET", "/v1/records?limit=1001", 422, "limit"),
        ("GET", "/v1/checkpoints?limit=99999999999999999999999", 422, "limit"),
        ("GET", "/v1/records/99", 404, "record"),
        ("POST", "/v1/records", 400, "body"),
        ("GET", "/docs/nothing.js", 404, "asset"),
    ],
)
def test_every_failure_is_an_rfc9457_problem(client, method: str, path: str, status: int, field: str) -> None:
    r = client.request(method, path, content=b"{not json")
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert set(body) == PROBLEM_KEYS and body["status"] == status and body["field"] == field
    assert (
        body["type"].startswith("urn:toploc-audit:problem:")
        and body["detail"] == f"{field}: {body['reason']}"
    )
    if status == 405:
        assert r.headers["allow"] == "GET"


def test_the_openapi_document_lists_problem_answers(client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["schemas"]["Problem"]["required"] == sorted(
        PROBLEM_KEYS, key=list(["type", "title", "status", "detail", "field", "reason"]).index
    )
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # FastAPI's own shape is gone
    body = doc["paths"]["/v1/records"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    good = entry(make_record("schema-0"))
    assert jsonschema_rs.validator_for(body).is_valid(good)  # the document describes real records
    assert not jsonschema_rs.validator_for(body).is_valid(
        {**good, "record": {**good["record"], "version": 3}}
    )
    post = doc["paths"]["/v1/records"]["post"]["responses"]
    assert {"400", "401", "403", "409", "413", "422", "429"} <= set(post)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")):
                    media = answer["content"]
                    assert list(media) == ["application/problem+json"], (method, path, status)
                    assert media["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/Problem"
                    }
            has_input = op.get("parameters") or op.get("requestBody")
            assert not has_input or "422" in op["responses"], (method, path)


def test_docs_work_offline(client) -> None:
    """The page loads swagger-ui from this server (fastapi-swagger's copy), not from a CDN."""
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert len(urls) == 4 and all(u.startswith("/") for u in urls), urls
    assert "http" not in page.text
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200 and asset.content, url
    bundle = client.get("/docs/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "fastapi.tiangolo.com", "cdnjs"):
        assert cdn not in page.text + bundle + client.get("/docs/swagger-ui.css").text


def test_readiness_asks_the_chain(database_url: str, anvil) -> None:  # type: ignore[no-untyped-def]
    seed_registry(database_url)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for url, chain_id, status, reason in [
        (anvil.url, 31337, 200, None),
        (dead, 31337, 503, f"the chain does not answer at {dead}: ConnectError"),
        (anvil.url, 1, 503, f"the node at {anvil.url} is on chain 31337, want 1"),
    ]:
        probe = rpc_probe(url, chain_id)
        config = AppConfig(
            database_url, DOMAIN, RECEIPT_KEY, MAX_MERGE_DELAY, access=KEYLESS, chain_probe=probe
        )
        app = create_app(config)
        with TestClient(app) as c:
            r = c.get("/readyz")
            assert r.status_code == status, r.text
            if reason is None:
                assert r.json() == {"status": "ready", "database": "ok", "chain": "ok", "size": 0}
            else:
                assert field_reason(r) == {"field": "chain", "reason": reason}
        app.state.engine.dispose()


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_count_records_refusals_latency_and_the_log(client) -> None:
    batch = {"entries": [entry(make_record(f"m-{i}")) for i in range(3)]}
    assert client.post("/v1/records:batch", json=batch).status_code == 201
    assert client.post("/v1/records", json=entry(make_record("m-0"))).status_code == 200  # a replay
    bad = entry(make_record("m-bad"))
    bad["record"]["toploc"]["topk"] = 0
    assert client.post("/v1/records", json=bad).status_code == 422
    unknown = entry(make_record("m-unknown"))
    unknown["record"]["x" * 30] = 1  # a field name of the client's choosing: not a label of its own
    assert client.post("/v1/records:batch", json={"entries": [unknown]}).status_code == 422
    client.get("/tile/0/000.p/3")
    m = _samples(client)
    assert m[("toploc_audit_records_ingested_total", (("outcome", "created"),))] == 3
    assert m[("toploc_audit_records_ingested_total", (("outcome", "replayed"),))] == 1
    assert (
        m[("toploc_audit_records_refused_total", (("field", "record.toploc.topk"), ("status", "422")))] == 1
    )
    assert m[("toploc_audit_records_refused_total", (("field", "other"), ("status", "422")))] == 1
    assert m[("toploc_audit_log_size", ())] == 3
    assert m[("toploc_audit_entries_unanchored", ())] == 3
    assert 0 <= m[("toploc_audit_anchor_lag_seconds", ())] < 600
    tile = (("method", "GET"), ("route", "/tile/{path:path}"), ("status", "200"))
    assert m[("toploc_audit_request_seconds_count", tile)] == 1  # by route template, not by path


def test_metrics_of_an_empty_log(client) -> None:
    m = _samples(client)
    assert m[("toploc_audit_log_size", ())] == 0
    assert m[("toploc_audit_entries_unanchored", ())] == 0 and m[("toploc_audit_anchor_lag_seconds", ())] == 0


def test_one_access_log_line_per_request(client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="anchor.api.access"):
        client.get("/healthz")
        client.get("/nowhere")
        client.post("/v1/records", content=b"{")
    lines = [r.getMessage() for r in caplog.records if r.name == "anchor.api.access"]
    assert len(lines) == 3, lines
    assert re.fullmatch(r'testclient "GET /healthz" 200 \d+\.\dms', lines[0])
    assert '"GET /nowhere" 404 ' in lines[1] and '"POST /v1/records" 400 ' in lines[2]


def test_metrics_of_several_server_processes_add_up(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`serve --workers 2`: whichever process answers /metrics, it counts the requests of both."""
    import json
    import subprocess
    import sys

    import httpx

    from anchor.db.migrate import upgrade
    from anchor.settings import child_env
    from tests.fixtures.celery import wait_for

    upgrade(sqlite_url)
    deployment = tmp_path / "deployment.json"
    deployment.write_text(
        json.dumps({"chainId": DOMAIN.chain_id, "addresses": {"ToplocAudit": DOMAIN.contract}})
    )
    port = free_port()
    env = child_env(
        TOPLOC_AUDIT_HOME=str(tmp_path / "home"),
        TOPLOC_AUDIT_DATABASE_URL=sqlite_url,
        TOPLOC_AUDIT_RECEIPT_KEY=RECEIPT_KEY.to_hex(),
        TOPLOC_AUDIT_DEPLOYMENT=str(deployment),
        TOPLOC_AUDIT_STAKE_CHECK="false",
        TOPLOC_AUDIT_REQUIRE_API_KEY="false",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [sys.executable, "-m", "toploc_audit", "serve", "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=out)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def posts() -> list[str]:  # the access log lines of the refused POSTs, from both processes
        return [line for line in log.read_text().splitlines() if '"POST /v1/records" 400' in line]

    try:
        wait_for(up, 120, "serve --workers 2")
        sent = 0
        # A new connection each: the kernel spreads them over the processes; go on until both have
        # answered some (the access log's third column is the process id), so the sum means something.
        while sent < 12 or len({line.split()[2] for line in posts()}) < 2:
            assert sent < 500, "every request went to one process"
            assert httpx.post(f"{url}/v1/records", content=b"{", timeout=10).status_code == 400
            sent += 1
        wait_for(lambda: len(posts()) == sent, 10, "the access log lines")
        for _ in range(6):
            text = httpx.get(f"{url}/metrics", timeout=10).text
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            refused = samples[("toploc_audit_records_refused_total", (("field", "body"), ("status", "400")))]
            assert refused == sent
    finally:
        server.terminate()
        server.wait(30)
