"""A web3 connection to a JSON-RPC URL, checked before use."""

from __future__ import annotations

from web3 import Web3

from anchor.chain.errors import ChainError
from anchor.errors import InputError


def connect(url: str, timeout_s: float = 30.0) -> Web3:
    """A Web3 on `url`; raises InputError for a non-HTTP URL and ChainError if nothing answers there."""
    if not url.startswith(("http://", "https://")):
        raise InputError("rpc_url", f"{url!r} is not an http(s) URL")
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout_s}))
    try:
        w3.eth.chain_id  # noqa: B018 (a request: fails fast when the node is down)
    except Exception as exc:  # requests and web3 raise several types for a dead endpoint
        raise ChainError(f"no Ethereum JSON-RPC node answers at {url}: {exc}") from exc
    return w3
