"""Build and verify throughput of gpu_core's TOPLOC proofs, against baselines timed in the same run.

Workload: records of `--rows` x `--hidden` bfloat16 decode activations (default 1000 x 5120), proved as
one tensor with skip_prefill (chunks of decode_batching_size 32 rows, topk 128): one record alone, and
a batch of `--records` (default 64). Implementations:

- python: the straightforward pure-Python implementation below (torch.topk per chunk for the selection,
  then Python integers for the modulus, Newton interpolation, Horner evaluation and statistics). It is
  slow, so it runs on `--baseline-records` records and its throughput is per record.
- toploc: the reference, toploc 0.1.6, when it imports (one call per record; its batch is a loop).
- gpu_core: build_proofs_bytes / verify_proofs_bytes for one record, build_proofs_batch /
  verify_proofs_batch for the batch.

Times are the best of `--repeats` rounds, the implementations interleaved within each round (the
machine may be shared). Wall-clock is the measure; CPU time of the process (all threads: toploc's
verify runs one thread per core) is printed too, as it is steadier on a shared machine. CUDA is used
when available (all three get CUDA tensors). Every proof is also checked byte for byte against the
other implementations.

    .venv/bin/python bench/bench_proofs.py [--records 64] [--repeats 3] [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_core import build_proofs_batch, build_proofs_bytes, verify_proofs_batch, verify_proofs_bytes

DECODE_BATCHING_SIZE = 32
TOPK = 128


# --- The pure-Python baseline (not the package's code: a straightforward reading of the reference) ---

PRIME = 65497


def _py_modulus(indices: list[int]) -> int:
    for m in range(PRIME, 0, -1):
        if len({i % m for i in indices}) == len(indices):
            return m
    raise ValueError("no injective modulus")


def _py_newton(xs: list[int], ys: list[int]) -> list[int]:
    """Monomial coefficients of the interpolating polynomial: divided differences, then expansion."""
    n = len(xs)
    dd = [y % PRIME for y in ys]
    for k in range(1, n):
        for i in range(n - 1, k - 1, -1):
            dd[i] = (dd[i] - dd[i - 1]) * pow((xs[i] - xs[i - k]) % PRIME, -1, PRIME) % PRIME
    coeffs = [0] * n
    factor = [1] + [0] * n
    for i in range(n):
        for j in range(i + 1):
            coeffs[j] = (coeffs[j] + dd[i] * factor[j]) % PRIME
        factor = [((factor[j - 1] if j else 0) - xs[i] * factor[j]) % PRIME for j in range(n + 1)]
    return coeffs


def _py_chunks(record: torch.Tensor) -> list[torch.Tensor]:
    return [
        record[i : i + DECODE_BATCHING_SIZE].reshape(-1) for i in range(0, len(record), DECODE_BATCHING_SIZE)
    ]


def _py_top(chunk: torch.Tensor) -> tuple[list[int], list[int]]:
    indices = chunk.abs().topk(TOPK).indices
    bits = (chunk[indices].view(torch.int16).to(torch.int64) & 0xFFFF).tolist()
    return indices.tolist(), bits


def python_build(record: torch.Tensor) -> list[bytes]:
    proofs = []
    for chunk in _py_chunks(record):
        indices, bits = _py_top(chunk)
        modulus = _py_modulus(indices)
        coeffs = _py_newton([i % modulus for i in indices], bits)
        proofs.append(b"".join(v.to_bytes(2, "big") for v in [modulus, *coeffs]))
    return proofs


def python_verify(record: torch.Tensor, proofs: list[bytes]) -> list[tuple[int, float, float]]:
    results = []
    for chunk, proof in zip(_py_chunks(record), proofs, strict=True):
        modulus = int.from_bytes(proof[:2], "big")
        coeffs = [int.from_bytes(proof[i : i + 2], "big") for i in range(2, len(proof), 2)]
        indices, bits = _py_top(chunk)
        mismatches, errors = 0, []
        for index, own in zip(indices, bits, strict=True):
            x, committed = index % modulus, 0
            for c in reversed(coeffs):
                committed = (committed * x + c) % PRIME
            if (committed >> 7) & 0xFF != (own >> 7) & 0xFF:
                mismatches += 1
            else:
                errors.append(abs((committed & 0x7F) - (own & 0x7F)))
        errors.sort()
        mean = statistics.fmean(errors) if errors else float(2**64)
        results.append((mismatches, mean, float(errors[len(errors) // 2]) if errors else float(2**64)))
    return results


# --- Timing ---


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(
    rounds: dict[str, list[tuple[float, float]]], name: str, fn: Callable[[], object], device: torch.device
) -> object:
    """Run fn once; record (wall seconds, CPU seconds of this process, all its threads)."""
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    rounds.setdefault(name, []).append((time.perf_counter() - start, time.process_time() - cpu))
    return out


def _results(results: list) -> list[tuple[int, float, float]]:
    return [(r.exp_mismatches, r.mant_err_mean, r.mant_err_median) for r in results]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=64, help="records in the batch (default 64)")
    parser.add_argument("--rows", type=int, default=1000, help="activation rows per record (default 1000)")
    parser.add_argument("--hidden", type=int, default=5120, help="hidden size (default 5120)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the best counts (default 3)")
    parser.add_argument("--baseline-records", type=int, default=2, help="records the Python baseline runs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        import toploc

        reference = toploc
    except Exception as exc:  # the PyPI wheel fails to import with torch 2.13; see NOTES
        reference = None
        print(f"toploc 0.1.6 not importable ({type(exc).__name__}): comparing with the baseline only")

    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a shared machine skews wall-clock)"
    )
    print(
        f"device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f", torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
        f"{args.records} records of {args.rows} x {args.hidden} bfloat16, k={TOPK}, "
        f"decode_batching_size={DECODE_BATCHING_SIZE}, skip_prefill"
    )
    print("generating activations ...", flush=True)
    g = torch.Generator().manual_seed(0)
    records = [
        torch.randn(args.rows, args.hidden, generator=g).to(torch.bfloat16).to(device)
        for _ in range(args.records)
    ]
    one = records[0]
    args_ = (DECODE_BATCHING_SIZE, TOPK, True)

    # Correctness first: every implementation must produce the same bytes and results.
    print("checking that the implementations agree ...", flush=True)
    ours = build_proofs_batch(records, *args_)
    assert ours[0] == build_proofs_bytes(one, *args_)
    baseline_records = records[: args.baseline_records]
    for record, proofs in zip(baseline_records, ours, strict=False):
        assert python_build(record.cpu()) == proofs, "gpu_core and the Python baseline disagree"
        assert _results(verify_proofs_bytes(record, proofs, *args_)) == python_verify(record.cpu(), proofs)
    if reference is not None:
        assert reference.build_proofs_bytes(one, *args_) == ours[0], "gpu_core and toploc disagree"
        want = _results(reference.verify_proofs_bytes(one, ours[0], DECODE_BATCHING_SIZE, TOPK, True))
        assert _results(verify_proofs_bytes(one, ours[0], *args_)) == want

    rounds: dict[str, list[tuple[float, float]]] = {}
    for repeat in range(args.repeats):
        print(f"round {repeat + 1}/{args.repeats} ...", flush=True)
        if repeat == 0:  # the baseline is slow and steady: one round
            for record, proofs in zip(baseline_records, ours, strict=False):
                host: torch.Tensor = record.cpu()
                _best(rounds, "python build 1", partial(python_build, host), device)
                _best(rounds, "python verify 1", partial(python_verify, host, proofs), device)
        _best(rounds, "gpu_core build 1", lambda: build_proofs_bytes(one, *args_), device)
        _best(rounds, "gpu_core verify 1", lambda: verify_proofs_bytes(one, ours[0], *args_), device)
        _best(rounds, "gpu_core build batch", lambda: build_proofs_batch(records, *args_), device)
        _best(rounds, "gpu_core verify batch", lambda: verify_proofs_batch(records, ours, *args_), device)
        if reference is not None:
            _best(rounds, "toploc build 1", lambda: reference.build_proofs_bytes(one, *args_), device)
            _best(
                rounds, "toploc verify 1", lambda: reference.verify_proofs_bytes(one, ours[0], *args_), device
            )
            _best(
                rounds,
                "toploc build batch",
                lambda: [reference.build_proofs_bytes(r, *args_) for r in records],
                device,
            )
            _best(
                rounds,
                "toploc verify batch",
                lambda: [
                    reference.verify_proofs_bytes(r, p, *args_) for r, p in zip(records, ours, strict=True)
                ],
                device,
            )

    def per_record(name: str, count: int, column: int = 0) -> float:
        """Seconds per record (wall: column 0, CPU: 1): the best round; the baseline's median record."""
        times = [t[column] for t in rounds[name]]
        return statistics.median(times) if name.startswith("python") else min(times) / count

    print()
    header = ("workload", "implementation", "s/record", "records/s", "vs python", "vs toploc", "CPU s/rec")
    print(f"{header[0]:<22}{header[1]:<16}" + "".join(f"{h:>11}" for h in header[2:]))
    verdicts = []
    for op in ("build", "verify"):
        for label, suffix, count in (
            ("1 record", "1", 1),
            (f"{args.records} records", "batch", args.records),
        ):
            base = per_record(f"python {op} 1", 1)
            ref = per_record(f"toploc {op} {suffix}", count) if reference is not None else None
            for impl in ("python", "toploc", "gpu_core"):
                name = f"{impl} {op} {'1' if impl == 'python' else suffix}"
                if name not in rounds:
                    continue
                t = per_record(name, 1 if impl == "python" else count)
                vs_ref = f"{ref / t:>10.2f}x" if ref is not None else f"{'-':>11}"
                cpu_seconds = per_record(name, 1 if impl == "python" else count, 1)
                row = f"{op + ' ' + label:<22}{impl:<16}{t:>11.4f}{1 / t:>11.1f}{base / t:>10.1f}x"
                print(f"{row}{vs_ref}{cpu_seconds:>11.4f}")
            if ref is not None and suffix == "batch":
                ratio = ref / per_record(f"gpu_core {op} batch", count)
                cpu_ratio = per_record(f"toploc {op} batch", count, 1) / per_record(
                    f"gpu_core {op} batch", count, 1
                )
                target = 30.0 if device.type == "cuda" else 2.0
                verdicts.append(
                    f"{op} batch vs toploc: {ratio:.2f}x wall-clock (target {target:g}x on {device.type}): "
                    + ("met" if ratio >= target else "MISSED")
                    + f"; {cpu_ratio:.2f}x in CPU time"
                )
    print()
    for line in verdicts:
        print(line)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
