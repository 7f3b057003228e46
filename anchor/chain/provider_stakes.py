"""Whether a provider may log new records: its active stake on chain is at least the minimum.

A record logged now can be disputed until maxMergeDelay + disputeWindow + (appealRounds + 1) x
(commitPeriod + revealPeriod + appealPeriod) from now. The
contract makes unbonding outlast that for stake that was active when the record was logged, so the
recorder refuses records of a provider whose active stake is under the minimum: never staked, unstaking
everything, or slashed below it. Stakes are read from the chain at most `max_age` seconds old; that
staleness adds to the exposure (docs/contracts.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from anchor.chain.client import Role, StakeInfo, ToplocAuditClient
from anchor.chain.errors import ChainError


@dataclass
class ProviderStakes:
    client: ToplocAuditClient
    max_age: float
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[float, StakeInfo]] = field(default_factory=dict, repr=False)
    _minimum: int | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def problem(self, provider: str) -> str | None:
        """Why `provider` may not log a record now, or None. ChainError when the chain does not answer
        and no reading is fresh enough."""
        info, minimum = self._read(provider)
        if info.role != Role.PROVIDER:
            return f"{provider} has no provider stake on chain (stake at least {minimum} wei first)"
        if info.active >= minimum:
            return None
        if info.unbonding:
            return (
                f"{provider} is unstaking: {info.active} wei active, {info.unbonding} unbonding, under the "
                f"minimum {minimum}; records logged now could be disputed after its stake is gone"
            )
        return f"{provider} has {info.active} wei staked, under the minimum {minimum}"

    def _read(self, provider: str) -> tuple[StakeInfo, int]:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(provider)
            if cached is not None and self._minimum is not None and now - cached[0] <= self.max_age:
                return cached[1], self._minimum
        try:
            minimum = self._minimum or int(self.client.call("minProviderStake"))  # immutable, above 0
            info = self.client.stake_of(provider)
        except Exception as exc:  # web3 raises many kinds for a node that is down or slow
            if isinstance(exc, ChainError):
                raise
            raise ChainError(f"could not read {provider}'s stake from the chain: {exc}") from exc
        with self._lock:
            self._minimum = minimum
            self._cache[provider] = (now, info)
        return info, minimum
