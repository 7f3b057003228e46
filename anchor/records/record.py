"""The inference record: its fields, its canonical bytes and its recordDigest.

This is the single definition every package uses: providers build records with it
(`Record.from_generation`, `to_json`), the recorder parses them (`Record.from_json`), validators
recompute `digest()`.

Version 2 (what providers write) binds the whole decode specification (gpu_core.runner.decoding:
sampler, temperature, top-k/p, min-p, penalties, seed, max_new_tokens, stop ids and strings), the stop
reason and the tokenizer's fingerprint, so a validator can replay the sampler. Version 1 (a `sampling`
object, no stop reason) still parses, for records already logged; its tokens are checked by TOPLOC
alone.

Canonical form (docs/records.md): canonical bytes = RFC 8785 JSON of `to_json()`; recordDigest =
SHA-256 of those bytes. Values are normalised before hashing (checksummed provider address, lowercase
fingerprint, standard padded base64 proofs), so two spellings of one record have one digest.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NewType

from eth_utils import is_hex_address, to_checksum_address

from anchor.errors import InputError
from anchor.records.canonical import MAX_SAFE_INTEGER, canonical_json
from gpu_core.runner.decoding import STOP_REASONS, DecodeSpec, spec_problem, stop_problem
from gpu_core.runner.errors import RunnerInputError

RecordDigest = NewType("RecordDigest", bytes)

VERSION = 2
VERSIONS = (1, 2)
DTYPES = ("bfloat16", "float16", "float32")
MAX_TOPK = 8192

_TOKENS_AND_MODEL = ("version", "provider", "model", "dtype", "toploc", "prompt_tokens", "output_tokens")
_PROOFS_AND_ID = ("proofs", "request_id", "time")
RECORD_FIELDS_V1 = (*_TOKENS_AND_MODEL, "sampling", *_PROOFS_AND_ID)
"""The top-level fields of a version 1 record, every one required (docs/records.md)."""
RECORD_FIELDS = (*_TOKENS_AND_MODEL, "decode", "stop_reason", *_PROOFS_AND_ID)
"""The top-level fields of a version 2 record, every one required (docs/records.md)."""
MAX_DECODE_BATCHING_SIZE = 65536
MAX_TOKENS = 1 << 20
MAX_MODULUS = 65497  # TOPLOC's field: GF(65497)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/@+=-]{1,128}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_INT_ONLY = {int}  # type(True) is bool, so JSON booleans fail this check
_OUT_OF_FIELD = re.compile(rb"\xff[\xd9-\xff]")
assert MAX_MODULUS == 0xFFD9


def proof_count(output_len: int, decode_batching_size: int) -> int:
    """1 prefill proof + one per `decode_batching_size` output tokens (docs/architecture.md)."""
    return 1 + math.ceil(output_len / decode_batching_size)


def proof_length(topk: int, dtype: str = "bfloat16") -> int:
    """2-byte modulus + 2-byte coefficients: topk of them, 2 * topk for float32 (gpu_core's two planes)."""
    return 2 + 2 * topk * (2 if dtype == "float32" else 1)


@dataclass(frozen=True)
class ModelRef:
    name: str
    fingerprint: str
    """Lowercase hex SHA-256 of the model (gpu_core's fingerprint)."""
    tokenizer: str | None = None
    """Lowercase hex SHA-256 of the tokenizer files (gpu_core's tokenizer fingerprint); None for a
    model without a tokenizer. Version 2 only."""


@dataclass(frozen=True)
class ToplocParams:
    topk: int = 128
    decode_batching_size: int = 32


@dataclass(frozen=True)
class Sampling:
    """Version 1: how the output was sampled; temperature 0 is greedy decoding, top_k 0 means no
    top-k cut. Not replayable (no sampler is named)."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    max_new_tokens: int = 256


@dataclass(frozen=True)
class Record:
    """One inference, as a provider commits to it. Construct via `from_json` to validate untrusted input.

    Requires (checked by `from_json`): the shapes described in docs/records.md, and
    len(proofs) == proof_count(len(output_tokens), toploc.decode_batching_size), each of
    proof_length(topk, dtype) bytes with a modulus >= topk. Version 2 has `decode` and `stop_reason`
    (and `sampling` None), version 1 the reverse. Token ids and the decode spec are checked against a
    declared model by `check_model`.
    """

    provider: str
    model: ModelRef
    dtype: str
    toploc: ToplocParams
    prompt_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    proofs: tuple[bytes, ...]
    request_id: str
    time: int
    decode: DecodeSpec | None = None
    stop_reason: str | None = None
    sampling: Sampling | None = None
    version: int = VERSION
    _canonical: bytes = field(default=b"", init=False, repr=False, compare=False)

    @property
    def max_new_tokens(self) -> int:
        if self.decode is not None:
            return self.decode.max_new_tokens
        assert self.sampling is not None
        return self.sampling.max_new_tokens

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the record (proofs in standard padded base64)."""
        model: dict[str, Any] = {"name": self.model.name, "fingerprint": self.model.fingerprint}
        out: dict[str, Any] = {
            "version": self.version,
            "provider": self.provider,
            "model": model,
            "dtype": self.dtype,
            "toploc": {"topk": self.toploc.topk, "decode_batching_size": self.toploc.decode_batching_size},
            "prompt_tokens": list(self.prompt_tokens),
            "output_tokens": list(self.output_tokens),
        }
        if self.version == 1:
            assert self.sampling is not None
            out["sampling"] = {
                "temperature": self.sampling.temperature,
                "top_p": self.sampling.top_p,
                "top_k": self.sampling.top_k,
                "seed": self.sampling.seed,
                "max_new_tokens": self.sampling.max_new_tokens,
            }
        else:
            assert self.decode is not None
            model["tokenizer"] = self.model.tokenizer
            out["decode"] = self.decode.to_dict()
            out["stop_reason"] = self.stop_reason
        out["proofs"] = [base64.b64encode(p).decode("ascii") for p in self.proofs]
        out["request_id"] = self.request_id
        out["time"] = self.time
        return out

    def canonical_bytes(self) -> bytes:
        """RFC 8785 JSON of `to_json()` (cached: a record is immutable)."""
        if not self._canonical:
            object.__setattr__(self, "_canonical", canonical_json(self.to_json()))
        return self._canonical

    def digest(self) -> RecordDigest:
        """recordDigest = SHA-256(canonical bytes)."""
        return RecordDigest(hashlib.sha256(self.canonical_bytes()).digest())

    @classmethod
    def from_canonical(cls, data: bytes) -> Record:
        """Parse stored canonical bytes (as trusted as the store; still fully validated)."""
        import json

        return cls.from_json(json.loads(data))

    @classmethod
    def from_json(cls, obj: Any, field: str = "record") -> Record:
        """Validate and parse a record's JSON object; raises InputError naming the first bad field."""
        if not isinstance(obj, dict):
            raise InputError(field, f"must be an object, got {_kind(obj)}")
        if "version" not in obj:
            raise InputError(f"{field}.version", "missing")
        version = _int(obj["version"], f"{field}.version", 0, MAX_SAFE_INTEGER)
        if version not in VERSIONS:
            raise InputError(f"{field}.version", f"unsupported version {version}, want one of {VERSIONS}")
        o = _object(obj, field, RECORD_FIELDS if version == 2 else RECORD_FIELDS_V1)
        provider = o["provider"]
        if not isinstance(provider, str) or not is_hex_address(provider):
            raise InputError(f"{field}.provider", "not a 20-byte hex address")
        model = _model(o["model"], f"{field}.model", version)
        dtype = o["dtype"]
        if dtype not in DTYPES:
            raise InputError(f"{field}.dtype", f"{dtype!r} is not one of {', '.join(DTYPES)}")
        t = _object(o["toploc"], f"{field}.toploc", ("topk", "decode_batching_size"))
        topk = _int(t["topk"], f"{field}.toploc.topk", 1, MAX_TOPK)
        dbs = _int(
            t["decode_batching_size"], f"{field}.toploc.decode_batching_size", 1, MAX_DECODE_BATCHING_SIZE
        )
        prompt = _tokens(o["prompt_tokens"], f"{field}.prompt_tokens")
        output = _tokens(o["output_tokens"], f"{field}.output_tokens")
        decode = stop_reason = sampling = None
        if version == 2:
            try:
                decode = DecodeSpec.from_dict(o["decode"])
            except RunnerInputError as exc:
                raise InputError(f"{field}.{exc.field}", exc.reason) from None
            if not decode.is_resolved:
                raise InputError(
                    f"{field}.decode.seed", f"the {decode.sampler} sampler at temperature > 0 needs its seed"
                )
            stop_reason = o["stop_reason"]
            if stop_reason not in STOP_REASONS:
                raise InputError(
                    f"{field}.stop_reason", f"{stop_reason!r} is not one of {', '.join(STOP_REASONS)}"
                )
            _check_stop(decode, stop_reason, output, field)
            max_new_tokens = decode.max_new_tokens
        else:
            sampling = _sampling_v1(o["sampling"], f"{field}.sampling")
            max_new_tokens = sampling.max_new_tokens
        if len(output) > max_new_tokens:
            where = "decode" if version == 2 else "sampling"
            raise InputError(
                f"{field}.output_tokens",
                f"{len(output)} tokens exceed {where}.max_new_tokens = {max_new_tokens}",
            )
        proofs = _proofs(o["proofs"], f"{field}.proofs", len(output), topk, dbs, dtype, strict=version >= 2)
        return cls(
            version=version,
            provider=_checksum(provider),
            model=model,
            dtype=dtype,
            toploc=ToplocParams(topk, dbs),
            prompt_tokens=prompt,
            output_tokens=output,
            decode=decode,
            stop_reason=stop_reason,
            sampling=sampling,
            proofs=proofs,
            request_id=_request_id(o["request_id"], f"{field}.request_id"),
            time=_int(o["time"], f"{field}.time", 0, MAX_SAFE_INTEGER),
        )

    def check_vocabulary(self, vocab_size: int, field: str = "record") -> None:
        """Raise InputError unless every token id is < vocab_size (the declared model's vocabulary)."""
        for name, tokens in (("prompt_tokens", self.prompt_tokens), ("output_tokens", self.output_tokens)):
            if tokens and max(tokens) >= vocab_size:
                i = next(i for i, t in enumerate(tokens) if t >= vocab_size)
                raise InputError(
                    f"{field}.{name}[{i}]",
                    f"token id {tokens[i]} is outside the vocabulary of {self.model.name} ({vocab_size} ids)",
                )

    def check_model(self, limits: ModelLimits, field: str = "record") -> None:
        """Raise InputError unless the record fits the declared model: token ids in its vocabulary,
        topk within its hidden size, prompt + max_new_tokens within its positions, the tokenizer it
        was declared with. What a validator would refuse is refused here first."""
        self.check_vocabulary(limits.vocab_size, field)
        if self.decode is not None:
            problem = spec_problem(
                self.decode, limits.vocab_size, limits.max_positions, len(self.prompt_tokens)
            )
            if problem is not None:
                raise InputError(f"{field}.decode.{problem[0]}", f"{problem[1]} of {self.model.name}")
        if self.toploc.topk > limits.hidden_size:
            raise InputError(
                f"{field}.toploc.topk",
                f"{self.toploc.topk} exceeds the hidden size of {self.model.name} ({limits.hidden_size})",
            )
        total = len(self.prompt_tokens) + self.max_new_tokens
        if total > limits.max_positions:
            raise InputError(
                f"{field}.{'decode' if self.decode is not None else 'sampling'}.max_new_tokens",
                f"prompt ({len(self.prompt_tokens)}) + {self.max_new_tokens} exceeds the "
                f"{limits.max_positions} positions of {self.model.name}",
            )
        if self.decode is not None and self.decode.stop and limits.tokenizer is None:
            raise InputError(
                f"{field}.decode.stop",
                f"{self.model.name} was declared without a tokenizer: no validator could match stop strings",
            )
        if self.version >= 2 and self.model.tokenizer != limits.tokenizer:
            raise InputError(
                f"{field}.model.tokenizer",
                f"{self.model.tokenizer} is not the tokenizer {self.model.name} was declared with "
                f"({limits.tokenizer})",
            )

    @classmethod
    def from_generation(
        cls,
        generation: Any,
        provider: str,
        model_name: str,
        tokenizer: str | None,
        request_id: str,
        when: int | None = None,
    ) -> Record:
        """The version 2 record of a gpu_core Generation, as `provider` commits to it (validated as the
        recorder would parse it). `tokenizer` is the tokenizer fingerprint (None without one)."""
        import time as time_module

        record = cls(
            provider=provider,
            model=ModelRef(model_name, generation.fingerprint, tokenizer),
            dtype=generation.dtype,
            toploc=ToplocParams(generation.topk, generation.decode_batching_size),
            prompt_tokens=tuple(generation.prompt_ids),
            output_tokens=tuple(generation.output_ids),
            decode=generation.spec,
            stop_reason=generation.stop_reason,
            proofs=tuple(generation.proofs),
            request_id=request_id,
            time=int(time_module.time()) if when is None else when,
        )
        return cls.from_json(record.to_json())


@dataclass(frozen=True)
class ModelLimits:
    """What the recorder knows of a declared model, to refuse records no validator could accept."""

    vocab_size: int
    hidden_size: int
    max_positions: int
    tokenizer: str | None


def _model(obj: Any, field: str, version: int) -> ModelRef:
    keys = ("name", "fingerprint", "tokenizer") if version >= 2 else ("name", "fingerprint")
    m = _object(obj, field, keys)
    name = _string(m["name"], f"{field}.name", 200)
    fingerprint = _fingerprint(m["fingerprint"], f"{field}.fingerprint")
    tokenizer = None
    if version >= 2 and m["tokenizer"] is not None:
        tokenizer = _fingerprint(m["tokenizer"], f"{field}.tokenizer")
    return ModelRef(name, fingerprint, tokenizer)


def _fingerprint(value: Any, field: str) -> str:
    text = _string(value, field, 64).lower()
    if not _FINGERPRINT.fullmatch(text):
        raise InputError(field, "not 64 hex digits (a SHA-256)")
    return text


def _sampling_v1(obj: Any, field: str) -> Sampling:
    s = _object(obj, field, ("temperature", "top_p", "top_k", "seed", "max_new_tokens"))
    return Sampling(
        temperature=_number(s["temperature"], f"{field}.temperature", 0.0, 100.0),
        top_p=_number(s["top_p"], f"{field}.top_p", 0.0, 1.0, open_low=True),
        top_k=_int(s["top_k"], f"{field}.top_k", 0, MAX_TOKENS),
        seed=None if s["seed"] is None else _int(s["seed"], f"{field}.seed", 0, MAX_SAFE_INTEGER),
        max_new_tokens=_int(s["max_new_tokens"], f"{field}.max_new_tokens", 1, MAX_TOKENS),
    )


def _check_stop(decode: DecodeSpec, stop_reason: str, output: Sequence[int], field: str) -> None:
    """The stop reason's rules that need no tokenizer (gpu_core.runner.decoding.stop_problem)."""
    problem = stop_problem(decode, stop_reason, output, None)
    if problem is not None:
        where = "stop_reason" if problem.position is None else f"output_tokens[{problem.position}]"
        raise InputError(f"{field}.{where}", problem.detail)


@functools.lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    """EIP-55 costs a keccak; providers repeat, so remember them."""
    return str(to_checksum_address(address))


def _object(obj: Any, field: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise InputError(field, f"must be an object, got {_kind(obj)}")
    for k in keys:
        if k not in obj:
            raise InputError(f"{field}.{k}", "missing")
    if len(obj) != len(keys):
        extra = sorted(set(obj) - set(keys))
        raise InputError(f"{field}.{extra[0]}", "unknown field")
    return obj


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _int(value: Any, field: str, low: int, high: int) -> int:
    if type(value) is not int:  # bool is an int subclass; JSON true is not a number
        raise InputError(field, f"must be an integer, got {_kind(value)}")
    if not low <= value <= high:
        raise InputError(field, f"{value} is outside [{low}, {high}]")
    return value


def _number(value: Any, field: str, low: float, high: float, open_low: bool = False) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise InputError(field, f"must be a finite number, got {_kind(value)}")
    if not (low < value if open_low else low <= value) or value > high:
        raise InputError(field, f"{value} is outside {'(' if open_low else '['}{low}, {high}]")
    return float(value)


def _string(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise InputError(field, f"must be a string, got {_kind(value)}")
    if not 0 < len(value) <= max_len:
        raise InputError(field, f"length {len(value)} is outside [1, {max_len}]")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(field, "is not valid Unicode (lone surrogate)") from None
    return value


def _request_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise InputError(field, "must be 1-128 characters of A-Z a-z 0-9 . _ : / @ + = -")
    return value


def _tokens(value: Any, field: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise InputError(field, f"must be an array of token ids, got {_kind(value)}")
    if not 0 < len(value) <= MAX_TOKENS:
        raise InputError(field, f"has {len(value)} tokens, want 1 to {MAX_TOKENS}")
    # Fast path first: the whole list at C speed; find the culprit only when something is wrong.
    if set(map(type, value)) == _INT_ONLY and min(value) >= 0 and max(value) <= 2**31 - 1:
        return tuple(value)
    for i, t in enumerate(value):
        if type(t) is not int:
            raise InputError(f"{field}[{i}]", f"must be an integer token id, got {_kind(t)}")
        if not 0 <= t <= 2**31 - 1:
            raise InputError(f"{field}[{i}]", f"token id {t} is negative or too large")
    raise AssertionError("unreachable")


def _proofs(
    value: Any, field: str, output_len: int, topk: int, dbs: int, dtype: str, strict: bool
) -> tuple[bytes, ...]:
    """The proofs' shape always; with `strict` (version 2) also their values (check_proof_values).
    Version 1 records keep their old parse rule (modulus >= 1, any coefficient) so that one already
    logged still parses and a validator judges its proofs malformed: fraud, as before; the recorder
    applies the values check to new version 1 records (RecordPolicy)."""
    if not isinstance(value, list):
        raise InputError(field, f"must be an array of base64 strings, got {_kind(value)}")
    want = proof_count(output_len, dbs)
    if len(value) != want:
        raise InputError(
            field,
            f"has {len(value)} proofs, want {want} (1 prefill + ceil({output_len} output tokens / "
            f"decode_batching_size {dbs}))",
        )
    size = proof_length(topk, dtype)
    out = []
    for i, s in enumerate(value):
        if not isinstance(s, str):
            raise InputError(f"{field}[{i}]", f"must be a base64 string, got {_kind(s)}")
        try:
            raw = binascii.a2b_base64(s, strict_mode=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{field}[{i}]", "is not valid base64") from None
        if len(raw) != size:
            raise InputError(f"{field}[{i}]", f"has {len(raw)} bytes, want {size} (topk {topk}, {dtype})")
        # Strict decoding still accepts nonzero unused bits in the last character; equal re-encoding
        # is what makes the string canonical (the form the canonical bytes hold).
        if binascii.b2a_base64(raw, newline=False) != s.encode("ascii"):
            raise InputError(f"{field}[{i}]", "is not canonical base64 (standard alphabet, padded)")
        modulus = int.from_bytes(raw[:2], "big")
        if not 1 <= modulus <= MAX_MODULUS:  # 0: the reference prover's "null proof" after a failed build
            raise InputError(f"{field}[{i}]", f"modulus {modulus} is outside [1, {MAX_MODULUS}]")
        out.append(raw)
    if strict:
        check_proof_values(out, topk, field)
    return tuple(out)


def check_proof_values(proofs: Sequence[bytes], topk: int, field: str = "record.proofs") -> None:
    """Raise InputError unless every proof (of one record, well-formed) could be verified: its modulus
    at least topk (below it, k indices cannot have k distinct residues, so no honest prover makes one
    and no validator could check it) and every coefficient an element of GF(65497)."""
    for i, raw in enumerate(proofs):
        modulus = int.from_bytes(raw[:2], "big")
        if not topk <= modulus <= MAX_MODULUS:
            raise InputError(f"{field}[{i}]", f"modulus {modulus} is outside [topk {topk}, {MAX_MODULUS}]")
    # A coefficient >= 65497 (0xFFD9) is a big-endian pair 0xFF, 0xD9..0xFF at an even offset. The
    # regex finds candidates at C speed (honest proofs have about one odd-offset candidate a record);
    # numpy on ~1000 big-endian values cost more. Coefficient planes have even lengths, so one buffer
    # keeps every coefficient at an even offset.
    coefficients = b"".join(raw[2:] for raw in proofs)
    m = _OUT_OF_FIELD.search(coefficients)
    while m is not None and m.start() % 2:
        m = _OUT_OF_FIELD.search(coefficients, m.start() + 1)
    if m is not None:
        proof, position = divmod(m.start() // 2, (len(proofs[0]) - 2) // 2)
        value = int.from_bytes(coefficients[m.start() : m.start() + 2], "big")
        raise InputError(
            f"{field}[{proof}]", f"coefficient {position} is {value}, want 0 <= c < {MAX_MODULUS}"
        )
