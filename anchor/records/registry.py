"""Who may write and which models records may name: providers (address, optional API key) and models."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

from eth_utils import is_hex_address, to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from anchor.db.models import Model, Provider
from anchor.errors import InputError
from anchor.records.record import _FINGERPRINT, ModelLimits


def hash_api_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def provider_of_api_key(session: Session, api_key: str) -> Provider | None:
    """The provider this API key identifies, or None. The lookup is by the key's SHA-256, so what a
    timing difference could reveal is a prefix of a hash no one can invert; the row found is compared
    again in constant time all the same."""
    key_hash = hash_api_key(api_key)
    for provider in session.scalars(select(Provider).where(Provider.api_key_hash == key_hash)):
        if provider.api_key_hash is not None and hmac.compare_digest(provider.api_key_hash, key_hash):
            return provider
    return None


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


def declare_model(session: Session, name: str, fingerprint: str, limits: ModelLimits) -> Model:
    """Declare a model records may name, with what the recorder checks records against (vocabulary,
    hidden size, positions, tokenizer). Idempotent for the same limits; other limits for a declared
    model are an error naming the field, except that a model declared before its limits were kept
    (hidden_size NULL) gets them."""
    fingerprint = fingerprint.lower().removeprefix("0x")
    if not name or len(name) > 200:
        raise InputError("name", "must be 1-200 characters")
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise InputError("fingerprint", "must be 64 hex digits (a SHA-256)")
    for field, value in (
        ("vocab_size", limits.vocab_size),
        ("hidden_size", limits.hidden_size),
        ("max_positions", limits.max_positions),
    ):
        if type(value) is not int or not 0 < value < 2**31:
            raise InputError(field, f"{value!r} must be a positive integer")
    tokenizer = None if limits.tokenizer is None else limits.tokenizer.lower()
    if tokenizer is not None and not _FINGERPRINT.fullmatch(tokenizer):
        raise InputError("tokenizer", "must be 64 hex digits (a SHA-256) or absent")
    model = session.scalars(select(Model).where(Model.name == name, Model.fingerprint == fingerprint)).first()
    if model is None:
        model = Model(
            name=name, fingerprint=fingerprint, vocab_size=limits.vocab_size, created_at=int(time.time())
        )
        session.add(model)
    elif model.hidden_size is not None:
        for field, had, want in (
            ("vocab_size", model.vocab_size, limits.vocab_size),
            ("hidden_size", model.hidden_size, limits.hidden_size),
            ("max_positions", model.max_positions, limits.max_positions),
            ("tokenizer", model.tokenizer_fingerprint, tokenizer),
        ):
            if had != want:
                raise InputError(field, f"model already declared with {field} {had}")
        return model
    elif model.vocab_size != limits.vocab_size:
        raise InputError("vocab_size", f"model already declared with vocab_size {model.vocab_size}")
    model.hidden_size = limits.hidden_size
    model.max_positions = limits.max_positions
    model.tokenizer_fingerprint = tokenizer
    session.flush()
    return model


def model_limits(model: Model) -> ModelLimits | None:
    """A declared model's limits, None if it was declared before limits were kept."""
    if model.hidden_size is None or model.max_positions is None:
        return None
    return ModelLimits(model.vocab_size, model.hidden_size, model.max_positions, model.tokenizer_fingerprint)


_CONFIG_KEYS = {
    "vocab_size": ("vocab_size",),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "max_positions": ("max_position_embeddings", "n_positions", "max_seq_len"),
}


def limits_from_folder(folder: Path) -> ModelLimits:
    """A Hugging Face checkpoint folder's limits: vocab_size, hidden size and positions from its
    config.json, the tokenizer fingerprint of its tokenizer files (gpu_core's definition)."""
    from gpu_core.runner.fingerprint import fingerprint_tokenizer

    config = folder / "config.json"
    try:
        data = json.loads(config.read_text())
    except FileNotFoundError:
        raise InputError("folder", f"{config} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("folder", f"{config} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("folder", f"{config} is not a JSON object")
    values: dict[str, int] = {}
    for field, keys in _CONFIG_KEYS.items():
        found = next((data[k] for k in keys if k in data), None)
        if type(found) is not int:
            raise InputError("folder", f"{config} has no integer {' / '.join(keys)}")
        values[field] = found
    return ModelLimits(
        values["vocab_size"], values["hidden_size"], values["max_positions"], fingerprint_tokenizer(folder)
    )
