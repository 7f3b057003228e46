"""`toploc-audit trail RECORD`: the audit trail of one record as a readable timeline (or JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from anchor.db import open_database
from anchor.settings import Settings
from anchor.trail import detail, find
from toploc_audit.remote import checked_trail, open_remote, recorder_option


def _when(ts: int | None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        # Past year 9999: a record logged before times were bounded may hold any integer below 2^53.
        return f"{ts} (Unix seconds)"


def _decoding(record: dict[str, Any]) -> str:
    """How the record says its tokens were chosen (version 2), or that it does not say (version 1)."""
    decode = record.get("decode")
    if decode is None:
        return "decoding not bound (record version 1): its tokens are checked by TOPLOC alone"
    if decode["temperature"] == 0:
        how = "greedy"
    else:
        filters = [
            f"{k} {decode[k]:g}" for k, off in (("top_k", 0), ("top_p", 1), ("min_p", 0)) if decode[k] != off
        ]
        seed = f", seed {decode['seed']}" if decode["seed"] is not None else ""
        how = f"{decode['sampler']} at temperature {decode['temperature']:g}{seed}" + "".join(
            f", {f}" for f in filters
        )
    return f"decoding: {how}; max {decode['max_new_tokens']} tokens; stopped by {record['stop_reason']}"


def timeline(d: dict[str, Any]) -> list[str]:
    """The trail as lines, oldest first."""
    r = d["receipt"]
    lines = [
        f"record {d['logIndex']}  recordDigest {d['recordDigest']}",
        f"  provider {d['provider']}  model {d['model']['name']} ({d['model']['fingerprint'][:16]}...)"
        f"  dtype {d['dtype']}  request {d['requestId']}",
        f"  {len(d['record']['prompt_tokens'])} prompt tokens, {len(d['record']['output_tokens'])} output"
        f" tokens, {len(d['record']['proofs'])} TOPLOC proofs",
        f"  {_decoding(d['record'])}",
        f"{_when(d['time'])}  inference done (the record's time)",
        f"{_when(r['timestamp'])}  logged at index {r['logIndex']}; receipt promises anchoring within "
        f"{r['maximumMergeDelay']} s",
    ]
    first = d["firstCheckpoint"]
    if first is None:
        lines.append(f"{'':22}not anchored yet")
    else:
        late = (
            first["anchoredAt"] is not None and first["anchoredAt"] > r["timestamp"] + r["maximumMergeDelay"]
        )
        lines.append(
            f"{_when(first['anchoredAt'])}  anchored in checkpoint {first['checkpointId']}"
            f" (size {first['treeSize']}) tx {first['txHash']} block {first['blockNumber']}"
            f" chain {first['chainId']} contract {first['contract']}"
            + ("  LATE: after the maximum merge delay" if late else "")
        )
    if d["anchor"] is not None:
        a = d["anchor"]
        lines.append(
            f"{'':22}inclusion proof ({len(d['inclusion']['proof'])} hashes) against checkpoint"
            f" {a['checkpointId']} (size {a['treeSize']}, root {a['root']})"
        )
    for disp in d["disputes"]:
        lines.append(
            f"block {disp['openedBlock']}  dispute {disp['disputeId']} opened by {disp['challenger']} "
            f"(bond {disp['bond']} wei, committee of {len(disp['committee'])},"
            f" deadline {_when(disp['deadline'])})"
        )
        for v in disp["votes"]:
            lines.append(
                f"block {v['blockNumber']}  {v['validator']} voted {'FRAUD' if v['fraud'] else 'honest'}"
            )
        if disp["resolvedBlock"] is not None:
            lines.append(
                f"block {disp['resolvedBlock']}  dispute {disp['disputeId']} resolved: {disp['outcome']}"
            )
        for p in disp["payouts"]:
            lines.append(f"block {p['blockNumber']}  credited {p['amount']} wei to {p['account']}")
    lines.append(f"status: {d['status']}" + (f", outcome {d['outcome']}" if d["outcome"] else ""))
    return lines


@click.command()
@click.argument("record")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the full trail as JSON (same as GET /v1/records/ID)."
)
@recorder_option
@click.option(
    "--rpc",
    "rpc_url",
    metavar="URL",
    help="With --recorder: the chain to check against [default: the deployment's].",
)
def trail(record: str, as_json: bool, recorder_url: str | None, rpc_url: str | None) -> None:
    """Show RECORD's audit trail (RECORD: log index or 0x recordDigest): logged, anchored, disputes, votes,
    outcome. From the database, or with --recorder from any recorder over HTTP, every part checked
    against the chain first (the record's digest and signature, the receipt's signer, the inclusion
    proof against the on-chain root, the disputes the chain has); a failed check exits 1 naming it.

    \b
    Examples:
      toploc-audit trail 12
      toploc-audit trail 0x3f...e1 --json
      toploc-audit trail 12 --recorder http://127.0.0.1:8470 --rpc http://127.0.0.1:8545
    """
    passed: list[str] = []
    if recorder_url is None:
        sessions = open_database(Settings.from_env().database_url)
        with sessions() as s:
            d = detail(s, find(s, record))
    else:
        d, _, passed = checked_trail(open_remote(recorder_url, rpc_url), record)
    if as_json:
        click.echo(json.dumps(d, indent=2))
    else:
        click.echo("\n".join(timeline(d)))
        for line in passed:
            click.echo(f"ok  {line}")
