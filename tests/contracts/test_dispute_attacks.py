"""Attacks on disputes, votes and resolution: each refused with a named error, nothing changed."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from eth_keys import keys

from anchor.chain.client import Checkpoint, Outcome, Role
from anchor.chain.errors import ContractRevert
from anchor.chain.parameters import ETHER
from anchor.records.eip712 import SECP256K1_N
from anchor.signing import sign_record_digest
from tests.contracts.conftest import Game
from tests.contracts.scenario import open_dispute, stake

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
    assert err.values == {
        "leafIndex": 3,
        "windowEnds": first.timestamp + window,
        "timestamp": game.audit.now(),
    }
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
    committee = game.audit.client().dispute(dispute_id).committee
    for member in committee[:2]:
        game.audit.client(game.validator(member)).submit_verdict(dispute_id, False, EVIDENCE)
    game.audit.advance(game.audit.parameters.votingPeriod + 1)
    game.audit.client(game.outsider).resolve(dispute_id)
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
    # The challenger is itself one of the five validators: with three unstaked, one is left besides it.
    challenger = game.validators[0]
    for v in game.validators[1:4]:
        game.audit.client(v).request_unstake(ETHER)
    record = game.records[0]
    with pytest.raises(ContractRevert) as err:
        open_dispute(game.audit, game.log, record, challenger)
    assert err.value.name == "DisputeGameNotEnoughValidators"
    assert err.value.values == {"eligible": 1, "required": 3}


def _open_and_committee(game: Game) -> tuple[int, list[str]]:
    dispute_id, _ = open_dispute(game.audit, game.log, game.records[0], game.challenger)
    return dispute_id, list(game.audit.client().dispute(dispute_id).committee)


def test_votes_by_non_members_twice_late_and_without_evidence(game: Game) -> None:
    dispute_id, committee = _open_and_committee(game)
    outsiders = [v for v in game.validators if v.address not in committee]
    for intruder in (outsiders[0], game.provider, game.challenger, game.outsider):
        with pytest.raises(ContractRevert) as err:
            game.audit.client(intruder).submit_verdict(dispute_id, True, EVIDENCE)
        assert err.value.name == "DisputeGameNotCommitteeMember"
        assert err.value.values == {"disputeId": dispute_id, "account": intruder.address}
    member = game.validator(committee[0])
    with pytest.raises(ContractRevert) as err:
        game.audit.client(member).submit_verdict(dispute_id, True, b"\x00" * 32)
    assert err.value.name == "DisputeGameMissingEvidence"
    game.audit.client(member).submit_verdict(dispute_id, True, EVIDENCE)
    for again in (True, False):
        with pytest.raises(ContractRevert) as err:
            game.audit.client(member).submit_verdict(dispute_id, again, EVIDENCE)
        assert err.value.name == "DisputeGameAlreadyVoted"
    deadline = game.audit.client().dispute(dispute_id).deadline
    game.audit.advance(deadline - game.audit.now() + 1)
    with pytest.raises(ContractRevert) as err:
        game.audit.client(game.validator(committee[1])).submit_verdict(dispute_id, True, EVIDENCE)
    assert err.value.name == "DisputeGameVotingClosed"
    assert err.value.values["deadline"] == deadline
    d = game.audit.client().dispute(dispute_id)
    assert (d.fraud_votes, d.honest_votes) == (1, 0)
    with pytest.raises(ContractRevert) as err:
        game.audit.client(member).submit_verdict(99, True, EVIDENCE)
    assert err.value.name == "DisputeGameUnknownDispute"


def test_resolve_early_twice_and_unknown(game: Game) -> None:
    dispute_id, committee = _open_and_committee(game)
    resolver = game.audit.client(game.outsider)
    with pytest.raises(ContractRevert) as err:
        resolver.resolve(dispute_id)
    assert err.value.name == "DisputeGameNotResolvable"
    for member in committee[:2]:
        game.audit.client(game.validator(member)).submit_verdict(dispute_id, True, EVIDENCE)
    with pytest.raises(ContractRevert) as err:  # a quorum, but one member may still vote
        resolver.resolve(dispute_id)
    assert err.value.name == "DisputeGameNotResolvable"
    deadline = game.audit.client().dispute(dispute_id).deadline
    game.audit.advance(deadline - game.audit.now())  # at the deadline voting is still open
    with pytest.raises(ContractRevert):
        resolver.resolve(dispute_id)
    game.audit.advance(1)
    assert resolver.resolve(dispute_id).event("DisputeResolved")["outcome"] == Outcome.FRAUD
    totals = game.audit.client().totals()
    with pytest.raises(ContractRevert) as err:
        resolver.resolve(dispute_id)
    assert err.value.name == "DisputeGameNotOpen"
    assert err.value.values == {"disputeId": dispute_id, "outcome": Outcome.FRAUD}
    assert game.audit.client().totals() == totals
    for unknown in (0, dispute_id + 1):
        with pytest.raises(ContractRevert) as err:
            resolver.resolve(unknown)
        assert err.value.name == "DisputeGameUnknownDispute"


def test_slashing_beyond_stake(game: Game) -> None:
    # The provider has 2 ETH; three fraud verdicts at 1 ETH each take 1, 1, then nothing is left.
    ids = []
    for i, challenger in enumerate(game.audit.accounts[3:6]):
        dispute_id, _ = open_dispute(game.audit, game.log, game.records[i], challenger)
        ids.append(dispute_id)
    slashed = []
    for dispute_id in ids:
        for member in game.audit.client().dispute(dispute_id).committee:
            game.audit.client(game.validator(member)).submit_verdict(dispute_id, True, EVIDENCE)
        slashed.append(
            game.audit.client(game.outsider).resolve(dispute_id).event("DisputeResolved")["slashed"]
        )
    assert slashed == [ETHER, ETHER, 0]
    client = game.audit.client()
    assert client.stake_of(game.provider.address).active == 0
    last_challenger = game.audit.accounts[5]
    assert client.credits(last_challenger.address) == game.audit.parameters.bond  # refunded, no reward
    assert client.totals().solvent


def test_unstaking_to_escape_a_pending_dispute(game: Game) -> None:
    dispute_id, committee = _open_and_committee(game)
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
    game.audit.client(game.outsider).resolve(dispute_id)  # past the deadline: nobody voted
    outcome = game.audit.client().dispute(dispute_id).outcome
    assert outcome == Outcome.NO_QUORUM
    assert (
        game.audit.client().stake_of(committee[0]).unbonding == ETHER - game.audit.parameters.validatorPenalty
    )
    provider.withdraw_stake()
    assert game.audit.client().credits(game.provider.address) == 2 * ETHER


def test_unbonding_stake_is_still_slashed(game: Game) -> None:
    provider = game.audit.client(game.provider)
    provider.request_unstake(2 * ETHER)  # before any dispute
    dispute_id, committee = _open_and_committee(game)
    for member in committee:
        game.audit.client(game.validator(member)).submit_verdict(dispute_id, True, EVIDENCE)
    game.audit.client(game.outsider).resolve(dispute_id)
    info = game.audit.client().stake_of(game.provider.address)
    assert (info.active, info.unbonding) == (0, ETHER)


def test_a_second_provider_is_unaffected(game: Game) -> None:
    other = game.audit.accounts[3]
    stake(game.audit, other, Role.PROVIDER, ETHER)
    dispute_id, committee = _open_and_committee(game)
    for member in committee:
        game.audit.client(game.validator(member)).submit_verdict(dispute_id, True, EVIDENCE)
    game.audit.client(game.outsider).resolve(dispute_id)
    assert game.audit.client().stake_of(other.address).active == ETHER
