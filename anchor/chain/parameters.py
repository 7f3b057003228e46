"""The deployment parameters of ToplocAudit (contracts/src/AuditParameters.sol), checked before deploying.

Field names are the contract's (camelCase), in struct order, so the deployment file, the CLI's
`--set name=value` and the ABI agree. The rules are the contract's; checking them here first gives
the user an InputError naming the field instead of a failed transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from anchor.errors import InputError

ETHER = 10**18
MAX_ROUND_SIZE = 63
MAX_APPEAL_ROUNDS = 5
BPS = 10_000

# ABI integer widths of each field, in struct order.
_BITS = {
    "bond": 128,
    "disputeWindow": 64,
    "maxMergeDelay": 64,
    "commitPeriod": 64,
    "revealPeriod": 64,
    "appealPeriod": 64,
    "unbondingPeriod": 64,
    "drawDelay": 64,
    "committeeSize": 8,
    "quorum": 8,
    "appealRounds": 8,
    "minProviderStake": 256,
    "minValidatorStake": 256,
    "slashAmount": 256,
    "validatorPenalty": 256,
    "absencePenalty": 256,
    "abstentionPenalty": 256,
    "challengerRewardBps": 16,
    "providerShareBps": 16,
}


@dataclass(frozen=True)
class Parameters:
    """Amounts in wei, durations in seconds, shares in basis points. See docs/contracts.md."""

    bond: int = ETHER // 10
    disputeWindow: int = 24 * 3600
    maxMergeDelay: int = 3600
    commitPeriod: int = 1800
    revealPeriod: int = 1800
    appealPeriod: int = 3600
    unbondingPeriod: int = 3 * 24 * 3600
    drawDelay: int = 2
    committeeSize: int = 3
    quorum: int = 2
    appealRounds: int = 2
    minProviderStake: int = ETHER
    minValidatorStake: int = ETHER // 2
    slashAmount: int = ETHER
    validatorPenalty: int = ETHER // 100
    absencePenalty: int = ETHER // 50
    abstentionPenalty: int = ETHER // 200
    challengerRewardBps: int = 5_000
    providerShareBps: int = 5_000

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises InputError(field, reason) for the first field that breaks a rule of the contract."""
        for name, bits in _BITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(name, f"must be an integer, got {value!r}")
            if not 0 <= value < 1 << bits:
                raise InputError(name, f"must be in [0, 2^{bits}), got {value}")
        above_zero = (
            "bond",
            "disputeWindow",
            "commitPeriod",
            "revealPeriod",
            "appealPeriod",
            "minProviderStake",
            "slashAmount",
            "absencePenalty",
        )
        for name in above_zero:
            if getattr(self, name) == 0:
                raise InputError(name, "must be above zero")
        exposure = self.exposure
        if self.unbondingPeriod <= exposure:
            raise InputError(
                "unbondingPeriod",
                "must exceed maxMergeDelay + disputeWindow + (appealRounds + 1) * (commitPeriod + "
                f"revealPeriod + appealPeriod) ({exposure} s), got {self.unbondingPeriod}",
            )
        if self.drawDelay == 0:
            raise InputError("drawDelay", "must be at least 1 block")
        if self.committeeSize == 0:
            raise InputError("committeeSize", "must be above zero")
        if not self.committeeSize // 2 < self.quorum <= self.committeeSize:
            raise InputError(
                "quorum",
                f"must be a strict majority of committeeSize {self.committeeSize} "
                f"({self.committeeSize // 2 + 1} to {self.committeeSize}), got {self.quorum}",
            )
        if self.appealRounds > MAX_APPEAL_ROUNDS or self.round_size(self.appealRounds) > MAX_ROUND_SIZE:
            raise InputError(
                "appealRounds",
                f"the last round's committee ({self.committeeSize} + 1) * 2^{self.appealRounds} - 1 "
                f"must be at most {MAX_ROUND_SIZE}",
            )
        if self.bond > ((1 << 128) - 1) >> (self.appealRounds + 1):
            raise InputError("bond", "bond * 2^appealRounds must fit in 127 bits")
        if self.abstentionPenalty >= self.absencePenalty:
            raise InputError(
                "abstentionPenalty", "must be below absencePenalty (abstaining costs less than silence)"
            )
        if self.minValidatorStake <= max(self.validatorPenalty, self.absencePenalty):
            raise InputError(
                "minValidatorStake",
                "must exceed validatorPenalty and absencePenalty (one penalty never evicts a validator)",
            )
        for name in ("challengerRewardBps", "providerShareBps"):
            if getattr(self, name) > BPS:
                raise InputError(name, f"must be at most {BPS}, got {getattr(self, name)}")

    @property
    def exposure(self) -> int:
        """Seconds an entry can still be disputed and settled after it was logged: maxMergeDelay +
        disputeWindow + every round's commit, reveal and appeal periods."""
        rounds = self.appealRounds + 1
        return (
            self.maxMergeDelay
            + self.disputeWindow
            + rounds * (self.commitPeriod + self.revealPeriod + self.appealPeriod)
        )

    def round_size(self, round_: int) -> int:
        """The committee of round `round_` (0 first): (committeeSize + 1) * 2^round - 1."""
        return ((self.committeeSize + 1) << round_) - 1

    def round_quorum(self, round_: int) -> int:
        """Agreeing votes that decide round `round_`: ceil(size * quorum / committeeSize)."""
        size = self.round_size(round_)
        return -(-size * self.quorum // self.committeeSize)

    def appeal_bond(self, round_: int) -> int:
        """The bond that opens round `round_`: bond * 2^round."""
        return self.bond << round_

    def to_abi(self) -> tuple[int, ...]:
        """The struct as the ABI takes it (field order)."""
        return tuple(getattr(self, f.name) for f in fields(self))

    @classmethod
    def from_abi(cls, values: tuple[int, ...] | list[int]) -> Parameters:
        return cls(**dict(zip([f.name for f in fields(cls)], values, strict=True)))

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Parameters:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise InputError(sorted(unknown)[0], "is not a parameter")
        return cls(**data)

    def with_overrides(self, assignments: list[str]) -> Parameters:
        """A copy with `name=value` assignments applied; values are integers or amounts like 0.5ether."""
        changes: dict[str, int] = {}
        names = {f.name for f in fields(self)}
        for assignment in assignments:
            name, sep, raw = assignment.partition("=")
            name = name.strip()
            if not sep:
                raise InputError("set", f"{assignment!r} is not name=value")
            if name not in names:
                raise InputError(name, f"is not a parameter (one of {', '.join(sorted(names))})")
            changes[name] = parse_amount(name, raw.strip())
        return replace(self, **changes)


def parse_positive_amount(field: str, raw: str) -> int:
    """parse_amount, and above zero (a stake, an unstake, a bond); InputError naming `field`."""
    amount = parse_amount(field, raw)
    if amount <= 0:
        raise InputError(field, f"must be above zero, got {raw}")
    return amount


def parse_amount(field: str, raw: str) -> int:
    """An integer, or a decimal amount with a unit: `0.5ether`, `2gwei`, `100wei`. Raises InputError."""
    from decimal import Decimal, InvalidOperation

    units = {"ether": 10**18, "gwei": 10**9, "wei": 1}
    for unit, scale in units.items():
        if raw.endswith(unit):
            number, multiplier = raw[: -len(unit)].strip(), scale
            break
    else:
        number, multiplier = raw, 1
    try:
        value = Decimal(number) * multiplier
    except InvalidOperation:
        raise InputError(field, f"{raw!r} is not a number (an integer, or e.g. 0.5ether)") from None
    if value != value.to_integral_value():
        raise InputError(field, f"{raw!r} is not a whole number of wei")
    return int(value)
