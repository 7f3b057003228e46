"""The whole story with a real trained model (SmolLM2-135M-Instruct), real Anvil, PostgreSQL, Redis and
three Celery worker processes: an honest record and each kind of dishonest one are logged, anchored and
disputed; the workers draw the committees, the validators recompute TOPLOC, commit and reveal their votes;
the contract pays and slashes; balances are exact.

Dishonest kinds: another model's weights (1% weight noise, a sibling of the declared model), an output
token changed after generation, and float32 arithmetic declared as bfloat16.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from anchor.chain.client import Outcome
from anchor.db.models import Payout
from anchor.records import Record
from gpu_core.runner import tampering
from gpu_core.runner.loading import load_model, load_tokenizer
from tests.verifier.stack import (
    CHALLENGER,
    PARAMETERS,
    PROVIDER,
    VALIDATORS,
    Stack,
    build_stack,
    make_record,
    running,
)
from verifier.models import VOTED, Validation

pytestmark = pytest.mark.slow

BPS = 10_000
OUTPUT_TOKENS = 32
PROMPTS = (
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Name three primary colours.",
)


@dataclass
class Case:
    kind: str
    record: Record
    fraud: bool
    log_index: int = -1
    dispute_id: int = -1


@pytest.fixture(scope="module")
def cases(smollm2_dir: Path) -> list[Case]:
    """Records as providers would log them: generated before any worker starts (the CPU is theirs)."""
    tokenizer = load_tokenizer(smollm2_dir)
    prompts = []
    for text in PROMPTS:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
        prompts.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    bf16 = load_model(smollm2_dir, "bfloat16")
    honest = make_record(bf16, "e2e-honest", prompts[0], OUTPUT_TOKENS, OUTPUT_TOKENS)
    other = make_record(
        tampering.perturb_weights(bf16, 0.01), "e2e-other-weights", prompts[1], OUTPUT_TOKENS, 32
    )
    output = list(honest.output_tokens)
    output[len(output) // 2] = (output[len(output) // 2] + 1) % 49_152
    changed = replace(honest, output_tokens=tuple(output), request_id="e2e-changed-token")
    fp32 = tampering.with_claimed_dtype(load_model(smollm2_dir, "float32"), "bfloat16")
    as_bf16 = make_record(fp32, "e2e-fp32-as-bf16", prompts[2], OUTPUT_TOKENS, OUTPUT_TOKENS)
    assert as_bf16.dtype == "bfloat16" and as_bf16.model == honest.model  # what the cheat claims
    return [
        Case("honest", honest, fraud=False),
        Case("another model's weights", other, fraud=True),
        Case("an output token changed", changed, fraud=True),
        Case("fp32 computed, bf16 declared", as_bf16, fraud=True),
    ]


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    _postgres_databases: Any,
    redis_broker_url: str,
    queue_prefix: str,
    smollm2_dir: Path,
    cases: list[Case],
) -> Iterator[Stack]:
    name = _postgres_databases.fresh()
    model = load_model(smollm2_dir, "bfloat16")
    s = build_stack(
        tmp_path_factory.mktemp("e2e"), _postgres_databases.url(name), redis_broker_url, queue_prefix, model
    )
    with running(s):
        for validator in VALIDATORS:
            s.give_models(validator, [smollm2_dir])
        s.start_workers()
        s.start_watcher()
        yield s
    _postgres_databases.drop(name)


def test_disputes_of_honest_and_dishonest_records_end_with_exact_payouts(
    stack: Stack, cases: list[Case]
) -> None:
    for case in cases:
        case.log_index = stack.log_record(case.record)
    stack.anchor()
    client = stack.client()
    before = {a.address: client.credits(a.address) for a in (PROVIDER, CHALLENGER, *VALIDATORS)}
    reserve_before = client.totals().reserve
    stake_before = client.stake_of(PROVIDER.address).active
    for case in cases:
        case.dispute_id = stack.dispute(case.log_index).dispute_id

    for case in cases:  # every member reveals, so each dispute resolves without waiting for a deadline
        want = Outcome.FRAUD if case.fraud else Outcome.HONEST
        assert stack.wait_resolved(case.dispute_id, timeout=600) == want, case.kind
        with stack.sessions() as s:
            rows = s.scalars(select(Validation).where(Validation.dispute_id == case.dispute_id)).all()
        assert [(v.status, v.fraud) for v in rows] == [(VOTED, case.fraud)] * 3, case.kind

    bond, slash = PARAMETERS.bond, PARAMETERS.slashAmount
    # Honest: half the bond to the provider, the rest split by the three voters (the remainder of the
    # split goes to the reserve).
    provider_share = bond * PARAMETERS.providerShareBps // BPS
    honest_voter = (bond - provider_share) // 3
    honest_provider = provider_share
    # Fraud: the provider loses slashAmount; half rewards the challenger (with its bond back), the other
    # half is split by the three voters.
    reward = slash * PARAMETERS.challengerRewardBps // BPS
    fraud_voter = (slash - reward) // 3
    fraud_challenger = bond + reward
    frauds = sum(case.fraud for case in cases)
    reserved = (bond - provider_share - 3 * honest_voter) + frauds * (slash - reward - 3 * fraud_voter)

    after = {a.address: client.credits(a.address) for a in (PROVIDER, CHALLENGER, *VALIDATORS)}
    assert after[PROVIDER.address] - before[PROVIDER.address] == honest_provider
    assert (
        after[CHALLENGER.address] - before[CHALLENGER.address] == frauds * fraud_challenger
    )  # honest: bond lost
    for validator in VALIDATORS:
        assert after[validator.address] - before[validator.address] == honest_voter + frauds * fraud_voter
    assert client.stake_of(PROVIDER.address).active == stake_before - frauds * slash
    assert client.totals().solvent
    assert client.totals().reserve - reserve_before == reserved

    # The database holds the same payouts, per dispute, as the watcher copied them from the chain.
    with stack.sessions() as s:
        for case in cases:
            payouts = {
                p.account: p.amount
                for p in s.scalars(select(Payout).where(Payout.dispute_id == case.dispute_id))
            }
            if case.fraud:
                want = {CHALLENGER.address: fraud_challenger} | {v.address: fraud_voter for v in VALIDATORS}
            else:
                want = {PROVIDER.address: honest_provider} | {v.address: honest_voter for v in VALIDATORS}
            assert payouts == want, case.kind
