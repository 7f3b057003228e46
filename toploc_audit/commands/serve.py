"""`toploc-audit serve`: run the recorder's HTTP API (uvicorn)."""

from __future__ import annotations

import click

from anchor.settings import Settings


@click.command()
@click.option("--host", default=None, help="Listen address (default TOPLOC_AUDIT_API_HOST or 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port, 1-65535 (default TOPLOC_AUDIT_API_PORT or 8470).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Server processes (default TOPLOC_AUDIT_API_WORKERS or 1); about one per CPU core.",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API: POST /v1/records, /v1/records:batch; GET /v1/records..., /v1/log...; docs at /docs.

    Needs the database at the current schema (`toploc-audit db upgrade`), the deployment file (chain id
    and contract for signatures) and the log key (TOPLOC_AUDIT_LOG_KEY or <home>/log.key). With several
    workers, appends are still serialised by the database; parsing and signature checks run in parallel.
    """
    import uvicorn

    from anchor.api import AppConfig
    from anchor.db import check_schema, make_engine

    settings = Settings.from_env()
    config = AppConfig.from_settings(settings)  # fail here, once, with a clear message
    engine = make_engine(config.database_url)
    check_schema(engine)
    engine.dispose()
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    workers = workers or settings.api_workers
    if workers > 1:
        _metrics_dir(settings)
    click.echo(f"serving on http://{host}:{port} with {workers} worker(s) (docs at /docs)", err=True)
    # Each worker process builds its own app (and database pool) from the same environment.
    uvicorn.run(
        "anchor.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def _metrics_dir(settings: Settings) -> None:
    """Several worker processes: prometheus_client's multiprocess mode, so that a scrape of /metrics,
    whichever worker answers it, sums the counters of all of them (anchor/api/metrics.py). The folder
    (<home>/metrics-<pid>) is this server's alone and starts empty; the workers inherit the variable."""
    import os
    import shutil

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return  # the operator's own choice of folder
    folder = settings.home / f"metrics-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
