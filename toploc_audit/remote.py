"""`--recorder URL` for the commands that read the log (`trail`, `receipt`, `dispute file`,
`verify-receipt`): HTTP and the chain only, no database. Fetching lives here; what is fetched is checked
by anchor.remote_checks and anchor.receipts against the chain before anything relies on it.

What is trusted comes from the deployment file when there is one (TOPLOC_AUDIT_DEPLOYMENT: chain id,
contract, its code on chain, the RPC URL): a third party keeps the file the operator published. Without
one, the chain id and contract are the recorder's word (said on stderr) and the RPC URL must be given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from anchor.errors import InputError
from anchor.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def recorder_option(f: F) -> F:
    return click.option(
        "--recorder",
        "recorder_url",
        metavar="URL",
        help="Read the log from this recorder over HTTP (e.g. http://127.0.0.1:8470) instead of the "
        "database, checking what it answers against the chain.",
    )(f)


@dataclass(frozen=True)
class Remote:
    """A recorder to read from and the chain to check it against."""

    recorder: Any  # anchor.recorder_client.RecorderClient (imported lazily: --help stays fast)
    chain: Any  # anchor.chain.client.ToplocAuditClient, reading only
    rpc_url: str

    @property
    def domain(self) -> Any:
        from anchor.records.eip712 import Domain

        return Domain.of(int(self.chain.w3.eth.chain_id), self.chain.address)


def open_remote(url: str, rpc_url: str | None = None) -> Remote:
    """The recorder at `url` and the pinned chain (see the module docstring)."""
    from anchor.chain.client import ToplocAuditClient
    from anchor.chain.connection import connect
    from anchor.chain.deployment import Deployment
    from anchor.recorder_client import RecorderClient

    settings = Settings.from_env()
    recorder = RecorderClient(url)
    if settings.deployment_file.is_file():
        deployment = Deployment.load(settings.deployment_file)
        rpc = rpc_url or settings.rpc_url or deployment.rpc_url
        w3 = connect(rpc)
        deployment.check_on_chain(w3)
        return Remote(recorder, ToplocAuditClient(w3, deployment.address), rpc)
    given = rpc_url or settings.rpc_url
    if given is None:
        raise InputError("rpc", "no deployment file to pin the chain: give --rpc URL or TOPLOC_AUDIT_RPC_URL")
    rpc = given
    log = recorder.log()
    contract = log.get("contract")
    if not isinstance(contract, str):
        raise InputError("recorder", "its /v1/log names no contract")
    click.echo(
        f"note: contract {contract} is the recorder's word (no deployment file at "
        f"{settings.deployment_file}: set TOPLOC_AUDIT_DEPLOYMENT to pin it)",
        err=True,
    )
    w3 = connect(rpc)
    if int(w3.eth.chain_id) != log.get("chainId"):
        raise InputError(
            "recorder", f"it names chain {log.get('chainId')}, the node at {rpc} is on {w3.eth.chain_id}"
        )
    return Remote(recorder, ToplocAuditClient(w3, contract), rpc)


def checked_trail(remote: Remote, ref: str) -> tuple[dict[str, Any], Any, list[str]]:
    """RECORD's trail from the recorder, every part checked against the chain: (the answer, its Entry,
    the checks passed). Raises the first failed check (RemoteCheckError or ReceiptError)."""
    from anchor.receipts import ReceiptError, fetch_chain_view, verify_receipt
    from anchor.remote_checks import (
        ChainDispute,
        check_disputes,
        check_first_checkpoint,
        entry_from_trail,
        receipt_file_of_trail,
    )

    d = remote.recorder.record(ref)
    domain = remote.domain
    entry = entry_from_trail(d, domain, ref)
    passed = [f"record {entry.log_index}: valid, hashes to its recordDigest, signed by its provider"]
    rf = receipt_file_of_trail(d, domain, entry)
    view = fetch_chain_view(rf, remote.rpc_url)
    try:
        passed += verify_receipt(rf, view)
    except ReceiptError as exc:
        if (exc.step, exc.field) != ("inclusion proof", "inclusion"):
            raise
        passed += [*exc.passed, "not anchored yet: no inclusion proof to check"]
    passed += check_first_checkpoint(d, view.first_covering)
    latest = remote.chain.dispute_of_leaf(entry.log_index)
    listed = [x for x in d.get("disputes", []) if isinstance(x, dict) and type(x.get("disputeId")) is int]
    voters = {x["disputeId"]: _voters(x) for x in listed}
    chain = {}
    for i in set(voters) | ({latest} if latest else set()):
        if 1 <= i <= remote.chain.dispute_count():
            c = remote.chain.dispute(i)
            ballots = {v: remote.chain.ballot_of(i, v).state.name.lower() for v in voters.get(i, [])}
            chain[i] = ChainDispute(i, c.leaf_index, c.challenger, _outcome(int(c.outcome)), ballots)
    passed += check_disputes(d, latest, chain)
    return d, entry, passed


def _voters(dispute: dict[str, Any]) -> list[str]:
    from eth_utils import is_hex_address

    votes = dispute.get("votes")
    if not isinstance(votes, list):
        return []
    return [v["validator"] for v in votes if isinstance(v, dict) and is_hex_address(v.get("validator"))]


def _outcome(value: int) -> str:
    from anchor.remote_checks import OUTCOMES

    return OUTCOMES.get(value, str(value))
