"""Token-bucket rate limits of the recorder's writes, per API key and per client address.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; a request takes one, or is
refused with the seconds until one is back (the 429's Retry-After). Buckets live in the process's
memory: with `serve --workers N` each worker process keeps its own, and the kernel spreads connections
over the processes, so a client may reach up to N times the limit (docs/records.md, Limits on a request).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    rate: float
    """tokens (requests) per second; 0 turns the limit off"""
    burst: float
    """most tokens a bucket holds: requests that may come at once after a quiet spell"""

    @classmethod
    def per_second(cls, rate: float) -> Limit:
        """`rate` requests per second, in bursts of up to twice that (at least 1)."""
        return cls(rate, max(1.0, 2 * rate))


class RateLimiter:
    """Buckets by key (a hashable: ("key", hash) or ("address", ip)). Thread-safe.

    At most `max_buckets` are kept (least recently used first out): an evicted bucket comes back full,
    which can only be in the client's favour, and memory stays bounded whatever addresses come."""

    def __init__(
        self, limit: Limit, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000
    ) -> None:
        self.limit = limit
        self.clock = clock
        self.max_buckets = max_buckets
        self._lock = threading.Lock()
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def take(self, key: Hashable) -> int | None:
        """Take one token for `key`: None if allowed, else the whole seconds to wait (>= 1)."""
        if self.limit.rate <= 0:
            return None
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.limit.burst, now))
            tokens = min(self.limit.burst, tokens + (now - at) * self.limit.rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        if allowed:
            return None
        return max(1, math.ceil((1 - tokens) / self.limit.rate))
