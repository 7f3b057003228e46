"""The recorder's HTTP API (FastAPI): thin routes over anchor.records, anchor.log and anchor.trail."""

from anchor.api.app import create_app
from anchor.api.config import AppConfig

__all__ = ["AppConfig", "create_app"]
