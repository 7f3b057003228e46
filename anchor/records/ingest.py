"""The recorder: check submitted records, append them to the log and answer signed receipts.

One call handles a batch in one database transaction, in these steps:
1. parse and validate each entry (no database): fields, proof shapes (a modulus below topk included),
   the decode spec and stop reason (what needs no tokenizer), the record policy (version, size),
   canonical bytes, recordDigest, the provider's EIP-712 signature and the leaf hash;
2. take the log's append lock, then load the providers and models the batch names (one query each);
3. authorise: every provider registered and active, and its API key presented if it has one;
4. check each record against its declared model (vocabulary, hidden size, positions, tokenizer):
   everything a validator would refuse as malformed is refused here, so no logged record is
   uncheckable;
5. idempotency: an entry whose (provider, request id) is already logged gets its original receipt back
   (a different record under a used request id is a conflict);
6. append the new leaves, sign their receipts, insert the records (COPY on PostgreSQL), commit.
Any failure raises before commit, so a rejected batch changes nothing.

Step 1 is most of the CPU (JSON, canonical bytes, SHA-256, signature recovery) and needs no lock, so
concurrent requests (threads or server processes) do it in parallel. Steps 2-6 hold the lock; a receipt
names its log index, so receipts can only be signed once the lock has fixed the indexes. The lock is the
transaction's first statement even though steps 2-4 only read: on SQLite (WAL), a transaction that has
read cannot take the write lock after another writer committed; it fails at once instead of waiting.
"""

from __future__ import annotations

import dataclasses
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from eth_keys import keys
from eth_utils import to_checksum_address
from psycopg.rows import namedtuple_row
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from anchor.db.bulk import insert_rows, one_of
from anchor.db.engine import is_postgresql, transaction
from anchor.db.models import Model, Provider
from anchor.db.models import Record as RecordRow
from anchor.errors import InputError, VerificationError
from anchor.leaf import leaf_hash
from anchor.log.store import LogStore
from anchor.receipts import Receipt
from anchor.records.eip712 import Domain, recover_address
from anchor.records.record import VERSION, Record, check_proof_values
from anchor.records.registry import hash_api_key, model_limits

MAX_BATCH = 10_000
RECORD_COLUMNS = (
    "log_index",
    "record_digest",
    "provider_id",
    "model_id",
    "request_id",
    "dtype",
    "record_time",
    "canonical",
    "signature",
    "logged_at",
    "max_merge_delay",
    "receipt_signature",
)
"""The columns `submit` writes, in the order of its row tuples."""


class ApiKeyError(InputError):
    """The provider requires an API key and none, or a wrong one, was presented (HTTP 401)."""


class NotRegisteredError(InputError):
    """The record's provider may not write to this log (HTTP 403)."""


class ConflictError(InputError):
    """The request id was already used for a different record (HTTP 409)."""


MAX_RECORD_BYTES = 400_000
"""The most record bytes one openDispute can carry: about 40 gas per byte of calldata (EIP-7623's
floor) within one transaction's cap of 2^24 gas (EIP-7825). The default policy stays under 128 KiB,
the transaction size public nodes relay."""


@dataclass(frozen=True)
class RecordPolicy:
    """What the recorder accepts beyond a record's own rules (settings: TOPLOC_AUDIT_RECORD_*).

    `min_version`: version 1 records bind no decode spec (their tokens cannot be replayed), so by
    default only version 2 is accepted; `max_tokens` bounds prompt + output tokens and `max_bytes` the
    canonical bytes of one record: openDispute carries them in its calldata (about 40 gas a byte), so a
    larger record could never be disputed on chain (MAX_RECORD_BYTES)."""

    min_version: int = VERSION
    max_tokens: int = 32768
    max_bytes: int = 120 << 10
    allow_engine: bool = False
    """Accept sampled records of the `engine` sampler, which validators cannot replay (only a weak
    likelihood test applies: docs/sampler.md). Off by default: a provider could otherwise opt out of
    the replay."""
    clock_skew: int = 300
    """Seconds a record's `time` may be ahead of `clock` (TOPLOC_AUDIT_RECORD_CLOCK_SKEW)."""
    max_age: int = 0
    """Seconds a record's `time` may be behind `clock`; 0: no bound (TOPLOC_AUDIT_RECORD_MAX_AGE)."""
    clock: Callable[[], float] = time.time

    def check(self, record: Record, field: str) -> None:
        prefix = f"{field}." if field else ""
        if record.decode is not None and not record.decode.replayable and not self.allow_engine:
            raise InputError(
                f"{prefix}record.decode.sampler",
                f"{record.decode.sampler!r} at temperature > 0 cannot be replayed by a validator; this log "
                "accepts replayable decoding only (TOPLOC_AUDIT_RECORD_ALLOW_ENGINE)",
            )
        if record.version < self.min_version:
            raise InputError(
                f"{prefix}record.version",
                f"version {record.version} is no longer accepted (at least {self.min_version}, which binds "
                "the decoding)",
            )
        self._check_time(record, prefix)
        if record.version == 1:  # its parser keeps the old, lenient rule for records already logged
            check_proof_values(record.proofs, record.toploc.topk, f"{prefix}record.proofs")
        tokens = len(record.prompt_tokens) + len(record.output_tokens)
        if tokens > self.max_tokens:
            raise InputError(
                f"{prefix}record.output_tokens",
                f"prompt + output are {tokens} tokens, at most {self.max_tokens}",
            )
        size = len(record.canonical_bytes())
        if size > self.max_bytes:
            raise InputError(f"{prefix}record", f"{size} canonical bytes, at most {self.max_bytes}")

    def _check_time(self, record: Record, prefix: str) -> None:
        """The inference ran before it was logged (give or take the clocks' skew), and not long before
        when max_age is set: a time in the year 14970 is refused here, never stored."""
        now = int(self.clock())
        if record.time > now + self.clock_skew:
            raise InputError(
                f"{prefix}record.time",
                f"{record.time} is {record.time - now} s ahead of the recorder's clock ({now}); at most "
                f"{self.clock_skew} s of clock skew is allowed",
            )
        if self.max_age and record.time < now - self.max_age:
            raise InputError(
                f"{prefix}record.time",
                f"{record.time} is {now - record.time} s before the recorder's clock ({now}); at most "
                f"{self.max_age} s old",
            )


@dataclass(frozen=True)
class Submission:
    """A record and its provider's signature, checked against each other (step 1)."""

    record: Record
    signature: bytes
    digest: bytes
    field: str
    leaf_hash: bytes
    """leaf(provider, recordDigest): what the log appends for this record."""

    @classmethod
    def from_json(
        cls, obj: Any, domain: Domain, field: str = "", policy: RecordPolicy | None = None
    ) -> Submission:
        """Parse {"record": {...}, "signature": "0x<65 bytes>"}; raises InputError naming the field."""
        prefix = f"{field}." if field else ""
        if not isinstance(obj, dict):
            raise InputError(field or "body", "must be an object with record and signature")
        extra = sorted(set(obj) - {"record", "signature"})
        if extra:
            raise InputError(f"{prefix}{extra[0]}", "unknown field")
        if "signature" not in obj:
            raise InputError(f"{prefix}signature", "missing")
        record = Record.from_json(obj.get("record"), f"{prefix}record")
        (policy or RecordPolicy()).check(record, field)
        sig_text = obj["signature"]
        try:
            if not isinstance(sig_text, str) or not sig_text.startswith("0x"):
                raise ValueError
            signature = bytes.fromhex(sig_text[2:])
        except ValueError:
            raise InputError(f"{prefix}signature", "must be a 0x-prefixed hex string") from None
        digest = record.digest()
        try:
            signer = recover_address(domain.record_digest(digest), signature)
        except VerificationError as exc:
            raise InputError(f"{prefix}signature", str(exc)) from None
        if signer != bytes.fromhex(record.provider[2:]):
            raise InputError(
                f"{prefix}signature",
                f"signed by {to_checksum_address(signer)}, want the record's provider {record.provider} "
                f"(EIP-712 domain chainId {domain.chain_id}, contract {domain.contract})",
            )
        return cls(record, signature, digest, field, leaf_hash(signer, digest))


@dataclass(frozen=True)
class Accepted:
    receipt: Receipt
    signature: bytes
    """The log key's signature over the receipt."""
    created: bool
    """False when the record was already logged (an idempotent replay)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "receipt": self.receipt.to_json(),
            "signature": "0x" + self.signature.hex(),
            "created": self.created,
        }


class Recorder:
    """Accepts records into the log. Thread-safe: all state is in the database."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        domain: Domain,
        receipt_key: keys.PrivateKey,
        max_merge_delay: int,
        clock: Callable[[], float] = time.time,
        policy: RecordPolicy | None = None,
        stake_problem: Callable[[str], str | None] | None = None,
    ) -> None:
        """`stake_problem(provider)` says why a provider may not log now (its stake on chain, e.g.
        anchor.chain.provider_stakes), or None; unset, stakes are not checked."""
        self.sessions = sessions
        self.domain = domain
        self.receipt_key = receipt_key  # the contract's receiptSigner, not the operator
        self.max_merge_delay = max_merge_delay
        self.clock = clock
        self.policy = policy or RecordPolicy()
        self.stake_problem = stake_problem

    def parse(self, obj: Any, field: str = "") -> Submission:
        return Submission.from_json(obj, self.domain, field, self.policy)

    def parse_batch(self, body: Any) -> list[Submission]:
        if not isinstance(body, dict) or set(body) != {"entries"}:
            raise InputError("body", 'must be an object {"entries": [...]}')
        entries = body["entries"]
        if not isinstance(entries, list) or not 0 < len(entries) <= MAX_BATCH:
            raise InputError("entries", f"must be an array of 1 to {MAX_BATCH} entries")
        return [self.parse(e, f"entries[{i}]") for i, e in enumerate(entries)]

    def submit(self, subs: Sequence[Submission], api_key: str | None = None) -> list[Accepted]:
        """Steps 2-6 for parsed submissions; one transaction; answers in input order."""
        seen: dict[tuple[str, str], Submission] = {}
        for sub in subs:
            key = (sub.record.provider, sub.record.request_id)
            first = seen.setdefault(key, sub)
            if first.digest != sub.digest:
                raise ConflictError(
                    f"{_p(sub)}record.request_id", f"{key[1]!r} appears twice with different records"
                )
        if self.stake_problem is not None:
            self._check_stakes(subs, api_key)
        try:
            answers = self._append(subs, seen, api_key)
        except psycopg.errors.UniqueViolation as exc:
            # A request id already logged with another record (the digest lookup cannot see it): find
            # which, in a fresh transaction, to answer the ConflictError naming the entry.
            if exc.diag.constraint_name != "uq_records_provider_request":
                raise
            with self.sessions() as s:
                self._existing(s, subs, self._providers(s, subs, api_key))
            raise
        out = []
        for sub in subs:  # a record repeated in one batch was created once: its repeats are replays
            key = (sub.record.provider, sub.record.request_id)
            out.append(answers[key] if seen[key] is sub else dataclasses.replace(answers[key], created=False))
        return out

    def _append(
        self, subs: Sequence[Submission], seen: dict[tuple[str, str], Submission], api_key: str | None
    ) -> dict[tuple[str, str], Accepted]:
        """Steps 2-6 in one transaction: the answer for each (provider, request id) of `seen`."""
        with transaction(self.sessions) as s:
            log = LogStore(s)
            log.lock()
            providers = self._providers(s, subs, api_key)
            models = self._models(s, subs)
            existing = self._logged(s, subs, providers)
            new = [sub for key, sub in seen.items() if key not in existing]
            now = int(self.clock())
            first_index = log.append([sub.leaf_hash for sub in new])
            rows, answers = [], dict(existing)
            for index, sub in enumerate(new, start=first_index):
                rec = sub.record
                receipt = Receipt(index, sub.digest, now, self.max_merge_delay)
                sig = receipt.sign(self.receipt_key, self.domain)
                answers[(rec.provider, rec.request_id)] = Accepted(receipt, sig, True)
                model_id = models[(rec.model.name, rec.model.fingerprint)].id
                rows.append(
                    (
                        index,
                        sub.digest,
                        providers[rec.provider].id,
                        model_id,
                        rec.request_id,
                        rec.dtype,
                        rec.time,
                        rec.canonical_bytes(),
                        sub.signature,
                        now,
                        self.max_merge_delay,
                        sig,
                    )
                )
            insert_rows(s, RecordRow.__table__, RECORD_COLUMNS, rows)
        return answers

    def _check_stakes(self, subs: Sequence[Submission], api_key: str | None) -> None:
        """Each provider's stake, read outside the log's transaction (it may ask the chain); the
        registry is checked first so that its errors keep precedence, and a record already logged is
        answered with its receipt whatever the stake is now (a retry is not a new record). On
        PostgreSQL a request id reused for another record is not caught here (`_logged`): under a
        stake that is too low it is refused for the stake, else as a conflict in the transaction."""
        assert self.stake_problem is not None
        with self.sessions() as s:
            logged = self._logged(s, subs, self._providers(s, subs, api_key))
        checked: set[str] = set()
        for sub in subs:
            provider = sub.record.provider
            if provider in checked or (provider, sub.record.request_id) in logged:
                continue
            checked.add(provider)
            problem = self.stake_problem(provider)
            if problem is not None:
                raise NotRegisteredError(f"{_p(sub)}record.provider", problem)

    def _providers(self, s: Session, subs: Sequence[Submission], api_key: str | None) -> dict[str, Provider]:
        addresses = {sub.record.provider for sub in subs}
        found = {p.address: p for p in s.scalars(select(Provider).where(Provider.address.in_(addresses)))}
        key_hash = None if api_key is None else hash_api_key(api_key)
        for sub in subs:
            p = found.get(sub.record.provider)
            if p is None or not p.active:
                raise NotRegisteredError(
                    f"{_p(sub)}record.provider",
                    f"{sub.record.provider} is not a registered provider of this log",
                )
            if p.api_key_hash is not None and not hmac.compare_digest(p.api_key_hash, key_hash or b""):
                raise ApiKeyError(
                    "authorization",
                    f"provider {p.address} requires its API key (Authorization: Bearer <key>)"
                    + ("" if key_hash is None else "; the key given is not it"),
                )
        return found

    def _models(self, s: Session, subs: Sequence[Submission]) -> dict[tuple[str, str], Model]:
        pairs = {(sub.record.model.name, sub.record.model.fingerprint) for sub in subs}
        found = {
            (m.name, m.fingerprint): m
            for m in s.scalars(select(Model).where(tuple_(Model.name, Model.fingerprint).in_(pairs)))
        }
        limits_of = {key: model_limits(m) for key, m in found.items()}  # once per model, not per record
        for sub in subs:
            m = found.get((sub.record.model.name, sub.record.model.fingerprint))
            if m is None:
                raise InputError(
                    f"{_p(sub)}record.model",
                    f"{sub.record.model.name} (fingerprint {sub.record.model.fingerprint}) is not declared",
                )
            limits = limits_of[(m.name, m.fingerprint)]
            if limits is None:
                raise InputError(
                    f"{_p(sub)}record.model",
                    f"{m.name} was declared before its limits were kept: declare it again "
                    "(`toploc-audit provider declare-model NAME --folder DIR`)",
                )
            sub.record.check_model(limits, f"{_p(sub)}record")
        return found

    def _logged(
        self, s: Session, subs: Sequence[Submission], providers: dict[str, Provider]
    ) -> dict[tuple[str, str], Accepted]:
        """The receipts of the records already logged, for idempotent replays.

        On PostgreSQL by recordDigest (it binds the provider and the request id), one probe of its
        unique index per digest (LATERAL ... LIMIT 1 cannot become a join over the whole table), and
        planned afresh each time (not prepared): a generic plan cached while the table was small, and
        never analysed, kept scanning every row against the batch's 1000 values: O(table x batch).
        Looking up (provider_id, request_id) so cost about 350 us of PostgreSQL's CPU a record at
        20,000 records (bench/bench_ingest.py): the planner, without statistics, took
        ix_records_provider_log_index for selective and filtered every row of the provider; `=
        ANY(digests)` prepared fell back to a sequential scan the same way (about 150 us). A request
        id logged with another record is not found here; the unique constraint refuses it at the
        insert, and `submit` then words the conflict.
        Elsewhere (SQLite): `_existing`, which also finds conflicts."""
        if not is_postgresql(s):
            return self._existing(s, subs, providers)
        by_digest = {sub.digest: sub for sub in subs}
        conn = s.connection().connection.driver_connection
        assert conn is not None
        rows = conn.cursor(row_factory=namedtuple_row).execute(
            "SELECT r.* FROM unnest(%s::bytea[]) AS q(digest) CROSS JOIN LATERAL (SELECT log_index,"
            " record_digest, logged_at, max_merge_delay, receipt_signature FROM records"
            " WHERE record_digest = q.digest LIMIT 1) r",
            (list(by_digest),),
            prepare=False,
        )
        out = {}
        for row in rows:
            sub = by_digest[row.record_digest]
            out[(sub.record.provider, sub.record.request_id)] = Accepted(
                receipt_of(row), row.receipt_signature, False
            )
        return out

    def _existing(
        self, s: Session, subs: Sequence[Submission], providers: dict[str, Provider]
    ) -> dict[tuple[str, str], Accepted]:
        by_key = {(providers[sub.record.provider].id, sub.record.request_id): sub for sub in subs}
        request_ids: dict[int, set[str]] = {}
        for provider_id, request_id in by_key:
            request_ids.setdefault(provider_id, set()).add(request_id)
        cols = (
            RecordRow.provider_id,
            RecordRow.request_id,
            RecordRow.record_digest,
            RecordRow.log_index,
            RecordRow.logged_at,
            RecordRow.max_merge_delay,
            RecordRow.receipt_signature,
        )
        out = {}
        for provider_id, ids in request_ids.items():  # usually one provider per batch
            rows = s.execute(
                select(*cols).where(
                    RecordRow.provider_id == provider_id, one_of(s, RecordRow.request_id, ids)
                )
            )
            for row in rows:
                sub = by_key[(row.provider_id, row.request_id)]
                if row.record_digest != sub.digest:
                    raise ConflictError(
                        f"{_p(sub)}record.request_id",
                        f"{row.request_id!r} was already used for a different record "
                        f"(log index {row.log_index})",
                    )
                out[(sub.record.provider, row.request_id)] = Accepted(
                    receipt_of(row), row.receipt_signature, False
                )
        return out


def check_key_provider(body: Any, provider: str, batch: bool) -> None:
    """Before parsing: every entry of a request body (one entry, or {"entries": [...]}) names as its
    record's provider the one its API key identifies; else NotRegisteredError (403) naming the entry's
    record.provider. Reads only the raw provider strings, so a request for another provider costs no
    parsing and no signature recovery; what is malformed is left to the parser."""
    entries = body.get("entries") if batch and isinstance(body, dict) else [body]
    if not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        record = entry.get("record") if isinstance(entry, dict) else None
        named = record.get("provider") if isinstance(record, dict) else None
        if isinstance(named, str) and named.lower() != provider.lower():
            field = f"entries[{i}].record.provider" if batch else "record.provider"
            raise NotRegisteredError(
                field, f"{named[:42]} is not the provider of the API key given ({provider})"
            )


def receipt_of(row: Any) -> Receipt:
    """The receipt of a records row (or a row with its log_index, digest and receipt columns)."""
    return Receipt(row.log_index, row.record_digest, row.logged_at, row.max_merge_delay)


def _p(sub: Submission) -> str:
    return f"{sub.field}." if sub.field else ""
