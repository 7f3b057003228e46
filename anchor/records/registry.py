"""Who may write and which models records may name: providers (address, optional API key) and models."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path

from eth_utils import is_hex_address, to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor.db.models import Model, Provider
from anchor.errors import InputError
from anchor.records.record import _FINGERPRINT


def hash_api_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def new_api_key() -> str:
    return "tak_" + secrets.token_urlsafe(24)


def register_provider(session: Session, address: str, name: str = "", api_key: str | None = None) -> Provider:
    """Add (or re-activate and update) a provider. Requires a hex address."""
    if not is_hex_address(address):
        raise InputError("address", f"{address!r} is not a 20-byte hex address")
    checksum = to_checksum_address(address)
    provider = session.scalars(select(Provider).where(Provider.address == checksum)).first()
    if provider is None:
        provider = Provider(address=checksum, created_at=int(time.time()))
        session.add(provider)
    provider.name = name or provider.name or ""
    provider.active = True
    if api_key is not None:
        provider.api_key_hash = hash_api_key(api_key)
    session.flush()
    return provider


def deactivate_provider(session: Session, address: str) -> None:
    provider = session.scalars(
        select(Provider).where(Provider.address == to_checksum_address(address))
    ).first()
    if provider is None:
        raise InputError("address", f"{address} is not a registered provider")
    provider.active = False


def declare_model(session: Session, name: str, fingerprint: str, vocab_size: int) -> Model:
    """Declare a model records may name. Idempotent; a different vocab_size for the same model is an error."""
    fingerprint = fingerprint.lower().removeprefix("0x")
    if not name or len(name) > 200:
        raise InputError("name", "must be 1-200 characters")
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise InputError("fingerprint", "must be 64 hex digits (a SHA-256)")
    if not 0 < vocab_size < 2**31:
        raise InputError("vocab_size", f"{vocab_size} must be a positive integer")
    model = session.scalars(select(Model).where(Model.name == name, Model.fingerprint == fingerprint)).first()
    if model is not None:
        if model.vocab_size != vocab_size:
            raise InputError("vocab_size", f"model already declared with vocab_size {model.vocab_size}")
        return model
    model = Model(name=name, fingerprint=fingerprint, vocab_size=vocab_size, created_at=int(time.time()))
    session.add(model)
    session.flush()
    return model


def vocab_size_from_folder(folder: Path) -> int:
    """vocab_size from a Hugging Face checkpoint folder's config.json."""
    config = folder / "config.json"
    try:
        value = json.loads(config.read_text())["vocab_size"]
    except FileNotFoundError:
        raise InputError("folder", f"{config} does not exist") from None
    except (KeyError, json.JSONDecodeError) as exc:
        raise InputError("folder", f"{config} has no vocab_size ({exc})") from None
    if type(value) is not int:
        raise InputError("folder", f"{config}: vocab_size is not an integer")
    return value
