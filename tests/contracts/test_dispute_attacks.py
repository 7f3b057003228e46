"""Attacks on disputes, draws, votes, appeals and resolution: each refused with a named error."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount
from eth_keys import keys

from anchor.chain.client import Checkpoint, Outcome, Phase, Role
from anchor.chain.committee import committee_seed, draw_committee
from anchor.chain.errors import ContractRevert
from anchor.chain.parameters import ETHER
from anchor.records.eip712 import SECP256K1_N
from anchor.signing import sign_record_digest
from tests.contracts.conftest import Game
from tests.contracts.scenario import draw, evidence, finish, open_dispute, play_round, salt, stake

EVIDENCE = b"\x22" * 32


def _attempt(game: Game, record_index: int = 0, **changes: object) -> ContractRevert:
    """Opens a dispute on a record with some arguments changed; returns the revert it must cause."""
    record = game.records[record_index]
    args: dict[str, object] = {
        "leaf_index": record.index,
        "checkpoint": game.log.covering(record.index),
        "provider": record.provider.address,
        "record_digest": record.digest,
        "record": record.canonical,
        "provider_sig": record.signature,
        "proof": game.log.proof(record.index, game.log.covering(record.index)),
    }
    args.update(changes)
    client = game.audit.client()
    before = (client.totals(), client.dispute_count())
    with pytest.raises(ContractRevert) as err:
        game.audit.client(game.challenger).open_dispute(**args)  # type: ignore[arg-type]
    assert (client.totals(), client.dispute_count()) == before
    return err.value


def test_record_bytes_that_are_not_the_disputed_record(game: Game) -> None:
    """openDispute carries the record's bytes for validators: bytes of another record, or the record
    changed by one byte, do not hash to the disputed recordDigest."""
    record, other = game.records[0], game.records[1]
    changed = record.canonical[:-1] + bytes([record.canonical[-1] ^ 1])
    for wrong in (other.canonical, changed, b""):
        err = _attempt(game, record=wrong)
        assert err.name == "DisputeGameRecordMismatch"
        assert err.values == {"recordDigest": record.digest, "actual": hashlib.sha256(wrong).digest()}


def test_wrong_inclusion_proof(game: Game) -> None:
    record = game.records[0]
    proof = game.log.proof(record.index, game.log.covering(record.index))
    tampered = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    for bad in (tampered, proof[:-1], [*proof, proof[0]], list(reversed(proof))):
        err = _attempt(game, proof=bad)
        assert err.name == "DisputeGameInvalidInclusionProof"
        assert err.values == {"leafIndex": record.index, "checkpointId": 1}
    # A genuine proof of another entry does not prove this one.
    other = game.records[1]
    err = _attempt(game, proof=game.log.proof(other.index, game.log.covering(other.index)))
    assert err.name == "DisputeGameInvalidInclusionProof"


def test_forged_signature(game: Game) -> None:
    record = game.records[0]
    d = game.audit.deployment
    forger = game.audit.accounts[7]
    forged = sign_record_digest(forger.key, record.digest, d.chain_id, d.address)
    err = _attempt(game, provider_sig=forged)
    assert err.name == "DisputeGameInvalidSignature"
    assert err.values == {"provider": game.provider.address, "signer": forger.address}
    for garbage in (b"", b"\x01" * 64, record.signature[:-1] + b"\x05"):
        err = _attempt(game, provider_sig=garbage)
        assert err.name == "DisputeGameInvalidSignature"
        assert err.values["signer"] == "0x" + "00" * 20


def test_replayed_signature(game: Game) -> None:
    record, other = game.records[0], game.records[1]
    d = game.audit.deployment
    # The provider's real signature over another record.
    err = _attempt(game, provider_sig=other.signature)
    assert err.name == "DisputeGameInvalidSignature" and err.values["signer"] != game.provider.address
    # Its signature over the same digest for another deployment, or another chain.
    elsewhere = sign_record_digest(
        game.provider.key, record.digest, d.chain_id, game.audit.accounts[9].address
    )
    other_chain = sign_record_digest(game.provider.key, record.digest, d.chain_id + 1, d.address)
    for replayed in (elsewhere, other_chain):
        err = _attempt(game, provider_sig=replayed)
        assert err.name == "DisputeGameInvalidSignature" and err.values["signer"] != game.provider.address
    # The malleable twin (s -> n - s, v flipped) of the genuine signature.
    r, s, v = record.signature[:32], int.from_bytes(record.signature[32:64], "big"), record.signature[64]
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    assert (
        keys.Signature(twin[:64] + bytes([twin[64] - 27]))
        .recover_public_key_from_msg_hash(game.audit.client().record_typed_data_hash(record.digest))
        .to_checksum_address()
        == game.provider.address
    )  # ecrecover alone would accept it
    err = _attempt(game, provider_sig=twin)
    assert err.name == "DisputeGameInvalidSignature" and err.values["signer"] == "0x" + "00" * 20


def test_leaf_outside_its_checkpoint(game: Game) -> None:
    record = game.records[2]  # index 10, first covered by checkpoint 2 = [8, 13)
    first, second = game.log.checkpoints
    proof_at_2 = game.log.proof(record.index, second)
    err = _attempt(game, record_index=2, checkpoint=first, proof=proof_at_2)
    assert err.name == "DisputeGameNotFirstCheckpoint"
    assert err.values == {"leafIndex": 10, "checkpointId": 1, "previousSize": 0, "size": 8}
    # An entry of checkpoint 1 against the later checkpoint 2: not the first covering one.
    early = game.records[0]
    err = _attempt(game, leaf_index=early.index, checkpoint=second, proof=game.log.proof(early.index, second))
    assert err.name == "DisputeGameNotFirstCheckpoint"
    # Beyond the log.
    err = _attempt(game, leaf_index=13, checkpoint=second)
    assert err.name == "DisputeGameNotFirstCheckpoint"
    # A checkpoint struct that was never anchored (its root or sizes changed).
    for forged in (
        replace(second, root=first.root),
        replace(second, previous_size=0),
        Checkpoint(3, 13, 20, second.root, second.timestamp),
    ):
        err = _attempt(game, record_index=2, checkpoint=forged)
        assert err.name == "CheckpointLogUnknownCheckpoint" and err.values == {"id": forged.id}


def test_after_the_window(game: Game) -> None:
    window = game.audit.parameters.disputeWindow
    first = game.log.checkpoints[0]
    late = game.log.append(game.provider)
    game.audit.advance(window // 2)
    third = game.log.anchor()
    game.audit.advance(first.timestamp + window - game.audit.now() + 1)
    err = _attempt(game)  # entry 3, first anchored in checkpoint 1: its window is over
    assert err.name == "DisputeGameWindowClosed"
    # Simulated in the pending block: its timestamp is the latest one's or later.
    assert (err.values["leafIndex"], err.values["windowEnds"]) == (3, first.timestamp + window)
    assert err.values["timestamp"] >= game.audit.now() > first.timestamp + window
    # The late entry was first anchored in checkpoint 3: its window runs from there and is still open.
    assert game.audit.now() <= third.timestamp + window
    dispute_id, _ = open_dispute(game.audit, game.log, late, game.challenger)
    assert dispute_id == 1
    game.audit.advance(third.timestamp + window - game.audit.now() + 1)
    err = _attempt(game, record_index=2)
    assert err.name == "DisputeGameWindowClosed"


def test_dispute_twice(game: Game) -> None:
    dispute_id, _ = open_dispute(game.audit, game.log, game.records[0], game.challenger)
    record = game.records[0]
    with pytest.raises(ContractRevert) as err:
        open_dispute(game.audit, game.log, record, game.audit.accounts[5])
    assert err.value.name == "DisputeGameEntryDisputed"
    assert err.value.values == {"leafIndex": record.index, "disputeId": dispute_id}
    committee, _ = draw(game.audit, dispute_id, game.outsider)
    play_round(game.audit, dispute_id, _members(game, committee), {m: "honest" for m in committee})
    finish(game.audit, dispute_id, game.outsider)
    # Decided honest: the entry cannot be disputed again.
    with pytest.raises(ContractRevert) as err:
        open_dispute(game.audit, game.log, record, game.audit.accounts[5])
    assert err.value.name == "DisputeGameEntrySettled"
    assert err.value.values == {"leafIndex": record.index, "disputeId": dispute_id, "outcome": Outcome.HONEST}


def test_wrong_bond_self_dispute_and_unstaked_provider(game: Game) -> None:
    bond = game.audit.parameters.bond
    for wrong in (0, bond - 1, bond + 1):
        err = _attempt(game, bond=wrong)
        assert err.name == "DisputeGameWrongBond" and err.values == {"sent": wrong, "required": bond}
    record = game.records[0]
    with pytest.raises(ContractRevert) as exc:
        game.audit.client(game.provider).open_dispute(
            record.index,
            game.log.covering(record.index),
            record.provider.address,
            record.digest,
            record.canonical,
            record.signature,
            game.log.proof(record.index, game.log.covering(record.index)),
        )
    assert exc.value.name == "DisputeGameSelfDispute"
    # A record of someone who never staked as a provider.
    stranger = game.audit.accounts[8]
    log = game.log
    stranger_record = log.append(stranger)
    log.anchor()
    with pytest.raises(ContractRevert) as exc:
        open_dispute(game.audit, log, stranger_record, game.challenger)
    assert exc.value.name == "DisputeGameProviderNotStaked" and exc.value.values == {
        "provider": stranger.address
    }


def test_not_enough_validators(game: Game) -> None:
    # The challenger is itself one of the twelve validators: with ten unstaked, one is left besides it.
    challenger = game.validators[0]
    for v in game.validators[1:11]:
        game.audit.client(v).request_unstake(ETHER)
    record = game.records[0]
    with pytest.raises(ContractRevert) as err:
        open_dispute(game.audit, game.log, record, challenger)
    assert err.value.name == "DisputeGameNotEnoughValidators"
    assert err.value.values == {"eligible": 1, "required": 3}


def test_a_pool_that_shrinks_before_the_draw_ends_the_round_without_quorum(game: Game) -> None:
    dispute_id, _ = open_dispute(game.audit, game.log, game.records[0], game.challenger)
    for v in game.validators[2:]:
        game.audit.client(v).request_unstake(ETHER)
    drawn = game.audit.client(game.outsider).draw(dispute_id).event("CommitteeDrawn")
    assert drawn["committee"] == []
    assert game.audit.client().phase(dispute_id) == Phase.RESOLVABLE
    resolved = game.audit.client(game.outsider).resolve(dispute_id).event("DisputeResolved")
    assert (resolved["outcome"], resolved["penalties"]) == (Outcome.NO_QUORUM, 0)
    assert game.audit.client().credits(game.challenger.address) == game.audit.parameters.bond


def _members(game: Game, committee: list[str]) -> dict[str, LocalAccount]:
    return {m: game.validator(m) for m in committee}


def _open_and_draw(game: Game) -> tuple[int, list[str]]:
    dispute_id, _ = open_dispute(game.audit, game.log, game.records[0], game.challenger)
    committee, _ = draw(game.audit, dispute_id, game.outsider)
    return dispute_id, committee


def _commitment(game: Game, dispute_id: int, member: LocalAccount, fraud: bool) -> bytes:
    return game.audit.client().vote_commitment(
        dispute_id, member.address, fraud, evidence(member, dispute_id, fraud), salt(member, dispute_id)
    )


def test_the_committee_is_unknown_when_the_dispute_is_opened(game: Game) -> None:
    """The old seed was the opening block's prevrandao: a challenger could open only in blocks whose
    committee it liked. Now nothing is drawn at opening, not even in the same block, and the committee
    depends on the block that mines the draw."""
    dispute_id, sent = open_dispute(game.audit, game.log, game.records[0], game.challenger)
    assert "committee" not in sent.event("DisputeOpened")
    client = game.audit.client()
    assert client.phase(dispute_id) == Phase.DRAW
    assert client.current_round(dispute_id).committee == ()
    assert client.current_round(dispute_id).draw_block == sent.block_number + game.audit.parameters.drawDelay
    # The seed the old contract used (the opening block's prevrandao) does not fix the committee.
    committees = set()
    for delay in range(4):
        snapshot = game.audit.node.snapshot()
        game.audit.node.mine(delay)
        committee, _drawn = draw(game.audit, dispute_id, game.outsider)  # checks the Python draw too
        committees.add(tuple(committee))
        game.audit.node.revert(snapshot)
    assert len(committees) > 1


def test_a_copied_vote_cannot_be_made_before_reveals(game: Game) -> None:
    dispute_id, committee = _open_and_draw(game)
    honest, lazy = game.validator(committee[0]), game.validator(committee[1])
    commitment = _commitment(game, dispute_id, honest, True)
    game.audit.client(honest).commit_vote(dispute_id, commitment)
    # All the chain shows is a hash; copying it binds the copier to a vote it cannot open: the
    # commitment covers the voter's address and the honest member's secret salt.
    game.audit.client(lazy).commit_vote(dispute_id, commitment)
    game.audit.advance(game.audit.client().current_round(dispute_id).commit_deadline - game.audit.now() + 1)
    fraud_evidence = evidence(honest, dispute_id, True)
    game.audit.client(honest).reveal_vote(dispute_id, True, fraud_evidence, salt(honest, dispute_id))
    for guess in (True, False):
        with pytest.raises(ContractRevert) as err:
            game.audit.client(lazy).reveal_vote(dispute_id, guess, fraud_evidence, salt(honest, dispute_id))
        assert err.value.name == "DisputeGameCommitmentMismatch"
    # Waiting for the reveals to vote is too late: the commit phase is over.
    third = game.validator(committee[2])
    with pytest.raises(ContractRevert) as err:
        game.audit.client(third).commit_vote(dispute_id, _commitment(game, dispute_id, third, True))
    assert err.value.name == "DisputeGameWrongPhase"
    assert err.value.values == {"disputeId": dispute_id, "phase": Phase.REVEAL, "required": Phase.COMMIT}


def test_commit_reveal_abstain_refusals(game: Game) -> None:
    dispute_id, committee = _open_and_draw(game)
    a, b, c = (game.validator(m) for m in committee)
    outsiders = [v for v in game.validators if v.address not in committee]
    for intruder in (outsiders[0], game.provider, game.challenger, game.outsider):
        with pytest.raises(ContractRevert) as err:
            game.audit.client(intruder).commit_vote(dispute_id, b"\x01" * 32)
        assert err.value.name == "DisputeGameNotCommitteeMember"
        assert err.value.values == {"disputeId": dispute_id, "account": intruder.address}
    for call in (
        lambda: game.audit.client(a).commit_vote(dispute_id, b"\x00" * 32),
        lambda: game.audit.client(a).abstain(dispute_id, b"\x00" * 32),
    ):
        with pytest.raises(ContractRevert) as err:
            call()
        assert err.value.name == "DisputeGameZeroHash"
    with pytest.raises(ContractRevert) as err:  # no reveal during the commit phase
        game.audit.client(a).reveal_vote(dispute_id, True, EVIDENCE, salt(a, dispute_id))
    assert err.value.name == "DisputeGameWrongPhase"
    game.audit.client(a).commit_vote(dispute_id, _commitment(game, dispute_id, a, True))
    for call in (
        lambda: game.audit.client(a).commit_vote(dispute_id, b"\x02" * 32),
        lambda: game.audit.client(a).abstain(dispute_id, EVIDENCE),
    ):
        with pytest.raises(ContractRevert) as err:
            call()
        assert err.value.name == "DisputeGameWrongBallot"
        assert err.value.values["state"] == 2  # committed
    game.audit.client(b).abstain(dispute_id, EVIDENCE)
    game.audit.client(c).commit_vote(dispute_id, _commitment(game, dispute_id, c, False))
    # Everyone acted: the reveal phase starts at once.
    assert game.audit.client().phase(dispute_id) == Phase.REVEAL
    with pytest.raises(ContractRevert) as err:  # an abstainer has nothing to reveal
        game.audit.client(b).reveal_vote(dispute_id, True, EVIDENCE, salt(b, dispute_id))
    assert err.value.name == "DisputeGameWrongBallot"
    with pytest.raises(ContractRevert) as err:  # the vote must be the committed one
        game.audit.client(a).reveal_vote(
            dispute_id, False, evidence(a, dispute_id, True), salt(a, dispute_id)
        )
    assert err.value.name == "DisputeGameCommitmentMismatch"
    with pytest.raises(ContractRevert) as err:
        game.audit.client(a).reveal_vote(dispute_id, True, b"\x00" * 32, salt(a, dispute_id))
    assert err.value.name == "DisputeGameZeroHash"
    game.audit.client(a).reveal_vote(dispute_id, True, evidence(a, dispute_id, True), salt(a, dispute_id))
    with pytest.raises(ContractRevert) as err:
        game.audit.client(a).reveal_vote(dispute_id, True, evidence(a, dispute_id, True), salt(a, dispute_id))
    assert err.value.name == "DisputeGameWrongBallot"
    with pytest.raises(ContractRevert) as err:
        game.audit.client(a).commit_vote(99, b"\x01" * 32)
    assert err.value.name == "DisputeGameUnknownDispute"


def test_resolve_and_appeal_refusals(game: Game) -> None:
    dispute_id, _ = open_dispute(game.audit, game.log, game.records[0], game.challenger)
    resolver = game.audit.client(game.outsider)
    with pytest.raises(ContractRevert) as err:
        resolver.resolve(dispute_id)
    assert err.value.name == "DisputeGameWrongPhase" and err.value.values["phase"] == Phase.DRAW
    committee, _ = draw(game.audit, dispute_id, game.outsider)
    with pytest.raises(ContractRevert) as err:  # drawn once only
        resolver.draw(dispute_id)
    assert err.value.name == "DisputeGameWrongPhase"
    play_round(game.audit, dispute_id, _members(game, committee), {m: "fraud" for m in committee})
    assert game.audit.client().phase(dispute_id) == Phase.APPEAL
    with pytest.raises(ContractRevert) as err:  # still appealable
        resolver.resolve(dispute_id)
    assert err.value.values["phase"] == Phase.APPEAL
    # Only the loser (the provider, after a fraud result) may appeal, with exactly bond * 2.
    for wrong in (game.challenger, game.outsider):
        with pytest.raises(ContractRevert) as err:
            game.audit.client(wrong).appeal(dispute_id)
        assert err.value.name == "DisputeGameNotAppellant"
        assert err.value.values == {"disputeId": dispute_id, "loser": game.provider.address}
    bond = game.audit.parameters.appeal_bond(1)
    for value in (game.audit.parameters.bond, bond - 1, bond + 1):
        with pytest.raises(ContractRevert) as err:
            game.audit.client(game.provider).transact("appeal", dispute_id, value=value)
        assert err.value.name == "DisputeGameWrongBond"
    game.audit.client(game.provider).appeal(dispute_id)
    second, _ = draw(game.audit, dispute_id, game.outsider)
    assert len(second) == 7 and not set(second) & set(committee)  # fresh eyes only
    play_round(game.audit, dispute_id, _members(game, second), {m: "fraud" for m in second})
    # The last allowed round: no further appeal, resolvable at once.
    assert game.audit.client().phase(dispute_id) == Phase.RESOLVABLE
    with pytest.raises(ContractRevert) as err:
        game.audit.client(game.provider).appeal(dispute_id)
    assert err.value.name == "DisputeGameWrongPhase"
    totals = game.audit.client().totals()
    assert totals.bonds == game.audit.parameters.bond + bond
    assert resolver.resolve(dispute_id).event("DisputeResolved")["outcome"] == Outcome.FRAUD
    with pytest.raises(ContractRevert) as err:
        resolver.resolve(dispute_id)
    assert err.value.name == "DisputeGameWrongPhase" and err.value.values["phase"] == Phase.RESOLVED
    for unknown in (0, dispute_id + 1):
        with pytest.raises(ContractRevert) as err:
            resolver.resolve(unknown)
        assert err.value.name == "DisputeGameUnknownDispute"


def test_no_quorum_cannot_be_appealed_but_the_entry_can_be_disputed_again(game: Game) -> None:
    dispute_id, committee = _open_and_draw(game)
    play_round(
        game.audit, dispute_id, _members(game, committee), {committee[0]: "fraud", committee[1]: "honest"}
    )
    assert game.audit.client().phase(dispute_id) == Phase.RESOLVABLE
    game.audit.client(game.outsider).resolve(dispute_id)
    again, _ = open_dispute(game.audit, game.log, game.records[0], game.challenger)
    assert again == dispute_id + 1


def test_stake_weighted_draw_frequencies_match_stakes(game: Game) -> None:
    """Chi-square over 1,200 first seats drawn by the contract (previewCommittee: the draw function
    itself) with stakes of 1 to 4 ETH; a uniform draw, as before, is rejected by the same test."""
    client = game.audit.client()
    for i, v in enumerate(game.validators):
        extra = (i % 4) * ETHER
        if extra:
            game.audit.client(v).stake(Role.VALIDATOR, extra)
    pool = client.pool()
    total = sum(w for _, w in pool)
    draws = 1_200
    counts = dict.fromkeys((v for v, _ in pool), 0)
    for seed in range(draws):
        (first,) = client.preview_committee(seed, game.provider.address, game.challenger.address, 1)
        counts[first] += 1
    # df = 11; the 0.1% critical value of chi-square with 11 degrees of freedom is 31.26.
    weighted = sum((counts[v] - draws * w / total) ** 2 / (draws * w / total) for v, w in pool)
    uniform = sum((counts[v] - draws / len(pool)) ** 2 / (draws / len(pool)) for v, _ in pool)
    assert weighted < 31.26 < uniform, (weighted, uniform)
    # The Python draw is the contract's, committee by committee.
    for seed in range(20):
        got = client.preview_committee(seed, game.provider.address, game.challenger.address, 3)
        assert got == draw_committee(seed, pool, 3, {game.provider.address, game.challenger.address})


def test_one_penalty_never_evicts_a_validator_without_notice(game: Game) -> None:
    """A validator at exactly the minimum misses a vote: it stays in the pool with a ValidatorStakeLow
    notice; a second miss before it tops up evicts it (before: the first one did, silently)."""
    client = game.audit.client()
    minimum = game.audit.parameters.minValidatorStake
    for v in game.validators:
        game.audit.client(v).request_unstake(ETHER - minimum)
    dispute_id, committee = _open_and_draw(game)
    absent = committee[2]
    play_round(game.audit, dispute_id, _members(game, committee), {m: "honest" for m in committee[:2]})
    sent = finish(game.audit, dispute_id, game.outsider)
    low = sent.all("ValidatorStakeLow")
    assert low == [
        {"validator": absent, "active": minimum - game.audit.parameters.absencePenalty, "minimum": minimum}
    ]
    assert absent in client.validators()
    record = game.records[1]
    second, _ = open_dispute(game.audit, game.log, record, game.challenger)
    for _attempt_no in range(30):  # draw until the low validator is on the committee again
        snapshot = game.audit.node.snapshot()
        committee, _ = draw(game.audit, second, game.outsider)
        if absent in committee:
            break
        game.audit.node.revert(snapshot)
        game.audit.node.mine()
    assert absent in committee
    play_round(game.audit, second, _members(game, committee), {m: "honest" for m in committee if m != absent})
    sent = finish(game.audit, second, game.outsider)
    assert {"validator": absent, "eligible": False} in sent.all("ValidatorEligibilityChanged")
    assert absent not in client.validators()


def test_slashing_beyond_stake(game: Game) -> None:
    # The provider has 2 ETH; three fraud verdicts at 1 ETH each take 1, 1, then nothing is left.
    ids = []
    for i, challenger in enumerate(game.audit.accounts[3:6]):
        dispute_id, _ = open_dispute(game.audit, game.log, game.records[i], challenger)
        ids.append(dispute_id)
    slashed = []
    for dispute_id in ids:
        committee, _ = draw(game.audit, dispute_id, game.outsider)
        play_round(game.audit, dispute_id, _members(game, committee), {m: "fraud" for m in committee})
        resolved = finish(game.audit, dispute_id, game.outsider).event("DisputeResolved")
        slashed.append(resolved["slashed"])
    assert slashed == [ETHER, ETHER, 0]
    client = game.audit.client()
    assert client.stake_of(game.provider.address).active == 0
    last_challenger = game.audit.accounts[5]
    assert client.credits(last_challenger.address) == game.audit.parameters.bond  # refunded, no reward
    assert client.totals().solvent


def test_unstaking_to_escape_a_pending_dispute(game: Game) -> None:
    dispute_id, committee = _open_and_draw(game)
    provider = game.audit.client(game.provider)
    member = game.audit.client(game.validator(committee[0]))
    provider.request_unstake(2 * ETHER)
    member.request_unstake(ETHER)
    game.audit.advance(game.audit.parameters.unbondingPeriod + 1)
    for who, account in ((provider, game.provider), (member, game.validator(committee[0]))):
        with pytest.raises(ContractRevert) as err:
            who.withdraw_stake()
        assert err.value.name == "StakeRegistryOpenDisputes"
        assert err.value.values == {"account": account.address, "count": 1}
    game.audit.client(game.outsider).resolve(dispute_id)  # past every deadline: nobody voted
    outcome = game.audit.client().dispute(dispute_id).outcome
    assert outcome == Outcome.NO_QUORUM
    assert (
        game.audit.client().stake_of(committee[0]).unbonding == ETHER - game.audit.parameters.absencePenalty
    )
    provider.withdraw_stake()
    assert game.audit.client().credits(game.provider.address) == 2 * ETHER


def test_unbonding_stake_is_still_slashed(game: Game) -> None:
    provider = game.audit.client(game.provider)
    provider.request_unstake(2 * ETHER)  # before any dispute
    dispute_id, committee = _open_and_draw(game)
    play_round(game.audit, dispute_id, _members(game, committee), {m: "fraud" for m in committee})
    finish(game.audit, dispute_id, game.outsider)
    info = game.audit.client().stake_of(game.provider.address)
    assert (info.active, info.unbonding) == (0, ETHER)


def test_a_second_provider_is_unaffected(game: Game) -> None:
    other = game.audit.accounts[3]
    stake(game.audit, other, Role.PROVIDER, ETHER)
    dispute_id, committee = _open_and_draw(game)
    play_round(game.audit, dispute_id, _members(game, committee), {m: "fraud" for m in committee})
    finish(game.audit, dispute_id, game.outsider)
    assert game.audit.client().stake_of(other.address).active == ETHER


def _same_block(game: Game, *calls: tuple[LocalAccount, str, tuple[object, ...], int]) -> list[dict]:
    """Mines the transactions (account, function, args, value) together in one block, in that order;
    returns their receipts."""
    w3, client = game.audit.w3, game.audit.client()
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        hashes = []
        for account, function, args, value in calls:
            data = client.contract.encode_abi(function, args=list(args))
            tx = {
                "from": account.address,
                "to": client.address,
                "data": data,
                "value": value,
                "gas": 3_000_000,
                "gasPrice": 2 * w3.eth.gas_price,
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": w3.eth.chain_id,
            }
            signed = account.sign_transaction(tx)
            hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
        game.audit.node.mine()
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    return [dict(w3.eth.get_transaction_receipt(h)) for h in hashes]


def test_stake_moved_in_the_drawing_block_does_not_steer_the_draw(game: Game) -> None:
    """The next block's prevrandao is known once the current one is out: an attacker could bundle a
    stake change with the draw, trying amounts offline until the committee suited it. Weights are
    those from before the drawing block, and leaving the pool moves nobody's slot, so the committee is
    the one the pool before the block gives, whatever the bundle did."""
    client = game.audit.client()
    dispute_id, _ = open_dispute(game.audit, game.log, game.records[0], game.challenger)
    before = client.pool()
    whale, leaver, newcomer = game.validators[0], game.validators[1], game.audit.accounts[30]
    receipts = _same_block(
        game,
        (whale, "stake", (int(Role.VALIDATOR),), 50 * ETHER),  # 50x its stake
        (leaver, "requestUnstake", (ETHER,), 0),  # out of the pool
        (newcomer, "stake", (int(Role.VALIDATOR),), 10 * ETHER),  # a new slot
        (game.outsider, "draw", (dispute_id,), 0),
    )
    assert [r["status"] for r in receipts] == [1, 1, 1, 1]
    block = game.audit.w3.eth.get_block(receipts[-1]["blockNumber"])
    seed = committee_seed(bytes(block["mixHash"]), dispute_id, 0)
    committee = list(client.current_round(dispute_id).committee)
    excluded = {game.provider.address, game.challenger.address}
    assert committee == draw_committee(seed, before, 3, excluded)
    assert newcomer.address not in committee
    within = dict(client.pool(pending=False))  # what a draw in that block saw
    assert within[whale.address] == ETHER and within[leaver.address] == ETHER
    after = dict(client.pool())  # from the next block on, the changes count
    assert after[whale.address] == 51 * ETHER and after[leaver.address] == 0
    assert [v for v, _ in client.pool()][: len(before)] == [v for v, _ in before]  # nobody moved
