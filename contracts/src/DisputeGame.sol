// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {Parameters} from "./AuditParameters.sol";
import {Checkpoint, CheckpointLog} from "./CheckpointLog.sol";
import {RecordSignatures} from "./RecordSignatures.sol";
import {RFC9162} from "./RFC9162.sol";
import {StakeRegistry} from "./StakeRegistry.sol";

/**
 * @title DisputeGame
 * @notice Anyone may dispute an anchored entry by locking a bond: the entry must be in the log (an
 * inclusion proof against the first checkpoint that covers it, whose fields the caller passes) and
 * signed by its provider (EIP-712).
 * A committee of staked validators, drawn with prevrandao, recomputes the TOPLOC check off chain and
 * votes; anyone resolves the dispute once every member voted or the deadline passed.
 *
 * Outcomes: fraud (quorum of fraud votes) slashes the provider, refunds and rewards the challenger and
 * rewards the majority; honest (quorum of honest votes) forfeits the bond to the provider and the
 * majority; no quorum refunds the bond. Members who did not vote, or voted against the verdict, lose
 * {validatorPenalty} each, paid to the majority (to the voters, or the challenger, without one).
 * Every payout is a credit (see {PullPayments-withdraw}).
 *
 * NOTE: prevrandao can be biased a little by the block proposer (it may withhold a block); a
 * committee is only as unpredictable as that.
 */
abstract contract DisputeGame is CheckpointLog, StakeRegistry, RecordSignatures {
    /// @notice Outcome of a dispute not resolved yet.
    uint8 public constant OUTCOME_OPEN = 0;
    /// @notice Outcome: a quorum voted fraud; the provider was slashed.
    uint8 public constant OUTCOME_FRAUD = 1;
    /// @notice Outcome: a quorum voted honest; the bond was forfeited.
    uint8 public constant OUTCOME_HONEST = 2;
    /// @notice Outcome: no quorum by the deadline (nobody voted: "expired"); the bond was refunded.
    uint8 public constant OUTCOME_NO_QUORUM = 3;

    /// @notice Ballot of an account that is not on the committee.
    uint8 public constant BALLOT_NOT_MEMBER = 0;
    /// @notice Ballot of a member who has not voted.
    uint8 public constant BALLOT_PENDING = 1;
    /// @notice Ballot of a member who voted fraud.
    uint8 public constant BALLOT_FRAUD = 2;
    /// @notice Ballot of a member who voted honest.
    uint8 public constant BALLOT_HONEST = 3;

    uint16 private constant _BPS = 10_000;

    struct Dispute {
        address provider;
        uint64 leafIndex;
        address challenger;
        uint64 deadline;
        bytes32 recordDigest;
        uint128 bond;
        uint64 checkpointId;
        uint8 outcome;
        uint8 fraudVotes;
        uint8 honestVotes;
        address[] committee;
    }

    /// @notice Wei a challenger locks to open a dispute.
    uint256 public immutable bond;
    /// @notice Seconds after the first checkpoint covering an entry during which it can be disputed.
    uint64 public immutable disputeWindow;
    /// @notice Seconds within which the log promises to anchor an entry (its receipts' maximum merge delay).
    uint64 public immutable maxMergeDelay;
    /// @notice Seconds from a dispute's opening to its verdict deadline.
    uint64 public immutable votingPeriod;
    /// @notice Validators drawn per dispute.
    uint8 public immutable committeeSize;
    /// @notice Agreeing votes that decide a dispute.
    uint8 public immutable quorum;
    /// @notice Wei taken from a provider found to commit fraud (at most its stake).
    uint256 public immutable slashAmount;
    /// @notice Wei taken from each member who did not vote or voted against the verdict.
    uint256 public immutable validatorPenalty;
    /// @notice Share of the slashed stake, in basis points, that rewards the challenger.
    uint16 public immutable challengerRewardBps;
    /// @notice Share of a forfeited bond, in basis points, that goes to the provider.
    uint16 public immutable providerShareBps;

    /// @notice The number of disputes; ids run from 1.
    uint256 public disputeCount;
    /// @notice Sum of the bonds of open disputes: part of the solvency invariant.
    uint256 public totalBonds;
    /// @notice The latest dispute of each entry (0 if none).
    mapping(uint64 leafIndex => uint256) public disputeOfLeaf;

    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(uint256 disputeId => mapping(address validator => uint8)) private _ballots;

    /**
     * @dev Emitted when `challenger` disputes entry `leafIndex`, the record `recordDigest` of
     * `provider`, locking `bond`; `committee` must vote by `deadline`.
     */
    event DisputeOpened(
        uint256 indexed disputeId,
        uint64 indexed leafIndex,
        address indexed provider,
        address challenger,
        bytes32 recordDigest,
        uint256 bond,
        address[] committee,
        uint64 deadline
    );

    /// @dev Emitted when committee member `validator` votes on `disputeId`, with the hash of its evidence.
    event VerdictSubmitted(uint256 indexed disputeId, address indexed validator, bool fraud, bytes32 evidenceHash);

    /**
     * @dev Emitted when `disputeId` is resolved with `outcome` (1 fraud, 2 honest, 3 no quorum); the
     * provider lost `slashed` wei and the committee `penalties` wei.
     */
    event DisputeResolved(
        uint256 indexed disputeId,
        uint8 outcome,
        uint8 fraudVotes,
        uint8 honestVotes,
        uint256 slashed,
        uint256 penalties
    );

    /// @dev The bond must be exactly `required` wei; `sent` was sent.
    error DisputeGameWrongBond(uint256 sent, uint256 required);

    /// @dev A provider cannot dispute its own record.
    error DisputeGameSelfDispute(address provider);

    /// @dev `provider` has no stake as a provider.
    error DisputeGameProviderNotStaked(address provider);

    /// @dev Checkpoint `checkpointId` is not the first covering `leafIndex`: it covers [previousSize, size).
    error DisputeGameNotFirstCheckpoint(uint64 leafIndex, uint256 checkpointId, uint64 previousSize, uint64 size);

    /// @dev Entry `leafIndex` could be disputed until `windowEnds`; it is `timestamp`.
    error DisputeGameWindowClosed(uint64 leafIndex, uint64 windowEnds, uint64 timestamp);

    /// @dev Entry `leafIndex` already has the open dispute `disputeId`.
    error DisputeGameEntryDisputed(uint64 leafIndex, uint256 disputeId);

    /// @dev Entry `leafIndex` was decided by dispute `disputeId` with `outcome`.
    error DisputeGameEntrySettled(uint64 leafIndex, uint256 disputeId, uint8 outcome);

    /// @dev The signature over the record is not `provider`'s; it recovers to `signer` (0 if malformed).
    error DisputeGameInvalidSignature(address provider, address signer);

    /// @dev The record bytes given hash (SHA-256) to `actual`, not to the disputed `recordDigest`.
    error DisputeGameRecordMismatch(bytes32 recordDigest, bytes32 actual);

    /// @dev The inclusion proof does not put the record at `leafIndex` of checkpoint `checkpointId`.
    error DisputeGameInvalidInclusionProof(uint64 leafIndex, uint256 checkpointId);

    /// @dev Only `eligible` validators can be drawn, fewer than the committee size `required`.
    error DisputeGameNotEnoughValidators(uint256 eligible, uint256 required);

    /// @dev There is no dispute `disputeId`.
    error DisputeGameUnknownDispute(uint256 disputeId);

    /// @dev Dispute `disputeId` is already resolved with `outcome`.
    error DisputeGameNotOpen(uint256 disputeId, uint8 outcome);

    /// @dev Voting on `disputeId` closed at `deadline`; it is `timestamp`.
    error DisputeGameVotingClosed(uint256 disputeId, uint64 deadline, uint64 timestamp);

    /// @dev `account` is not on the committee of `disputeId`.
    error DisputeGameNotCommitteeMember(uint256 disputeId, address account);

    /// @dev `validator` already voted on `disputeId`.
    error DisputeGameAlreadyVoted(uint256 disputeId, address validator);

    /// @dev A verdict needs a non-zero evidence hash.
    error DisputeGameMissingEvidence(uint256 disputeId);

    /// @dev `disputeId` can be resolved once every member voted or after `deadline`; it is `timestamp`.
    error DisputeGameNotResolvable(uint256 disputeId, uint64 deadline, uint64 timestamp);

    /// @dev Requires `p` checked by {AuditParameters-validate}.
    constructor(Parameters memory p) {
        bond = p.bond;
        disputeWindow = p.disputeWindow;
        maxMergeDelay = p.maxMergeDelay;
        votingPeriod = p.votingPeriod;
        committeeSize = p.committeeSize;
        quorum = p.quorum;
        slashAmount = p.slashAmount;
        validatorPenalty = p.validatorPenalty;
        challengerRewardBps = p.challengerRewardBps;
        providerShareBps = p.providerShareBps;
    }

    /**
     * @notice Disputes entry `leafIndex` of the log: the record `recordDigest` of `provider`. Send
     * exactly {bond} wei. Returns the new dispute's id.
     *
     * Requirements, checked in this order:
     * 1. the bond is exactly {bond};
     * 2. `provider` has stake as a provider and is not the caller;
     * 3. `checkpoint` holds the fields of anchored checkpoint `checkpointId` (its {CheckpointAnchored}
     *    event), the first one covering the entry (previousSize <= leafIndex < size), and its dispute
     *    window ({disputeWindow} after its timestamp) is open;
     * 4. the entry has no open dispute and no decided one (after no quorum it can be disputed again);
     * 5. `record` (the record's canonical bytes) hashes with SHA-256 to `recordDigest`: the disputed
     *    record travels in the calldata, so validators can judge it even if the log's operator withholds
     *    or changes its copy;
     * 6. `providerSig` is `provider`'s EIP-712 signature over `recordDigest` (see {RecordSignatures});
     * 7. `proof` is the inclusion proof of leaf SHA-256(0x00 || provider || recordDigest) at
     *    `leafIndex` in that checkpoint;
     * 8. enough eligible validators besides the provider and the caller to draw {committeeSize}.
     *
     * Emits a {DisputeOpened} event.
     */
    function openDispute(
        uint64 leafIndex,
        uint256 checkpointId,
        Checkpoint calldata checkpoint,
        address provider,
        bytes32 recordDigest,
        bytes calldata record,
        bytes calldata providerSig,
        bytes32[] calldata proof
    ) external payable returns (uint256 disputeId) {
        if (msg.value != bond) revert DisputeGameWrongBond(msg.value, bond);
        if (provider == msg.sender) revert DisputeGameSelfDispute(provider);
        if (_role(provider) != ROLE_PROVIDER || _slashable(provider) == 0) revert DisputeGameProviderNotStaked(provider);

        _requireCheckpoint(checkpointId, checkpoint);
        if (leafIndex < checkpoint.previousSize || leafIndex >= checkpoint.size) {
            revert DisputeGameNotFirstCheckpoint(leafIndex, checkpointId, checkpoint.previousSize, checkpoint.size);
        }
        uint64 timestamp = uint64(block.timestamp);
        uint64 windowEnds = _windowEndsAt(checkpoint.timestamp);
        if (timestamp > windowEnds) revert DisputeGameWindowClosed(leafIndex, windowEnds, timestamp);

        uint256 previous = disputeOfLeaf[leafIndex];
        if (previous != 0) {
            uint8 previousOutcome = _disputes[previous].outcome;
            if (previousOutcome == OUTCOME_OPEN) revert DisputeGameEntryDisputed(leafIndex, previous);
            if (previousOutcome != OUTCOME_NO_QUORUM) revert DisputeGameEntrySettled(leafIndex, previous, previousOutcome);
        }

        bytes32 actual = sha256(record);
        if (actual != recordDigest) revert DisputeGameRecordMismatch(recordDigest, actual);
        address signer = _recordSigner(recordDigest, providerSig);
        if (signer != provider) revert DisputeGameInvalidSignature(provider, signer);
        bytes32 leafHash = recordLeafHash(provider, recordDigest);
        if (!RFC9162.verifyInclusion(leafIndex, checkpoint.size, leafHash, proof, checkpoint.root)) {
            revert DisputeGameInvalidInclusionProof(leafIndex, checkpointId);
        }

        disputeId = disputeCount + 1;
        address[] memory committee = _drawCommittee(committeeSeed(block.prevrandao, disputeId), provider, msg.sender);
        uint64 deadline = _deadlineAt(timestamp);

        disputeCount = disputeId;
        Dispute storage d = _disputes[disputeId];
        d.provider = provider;
        d.leafIndex = leafIndex;
        d.challenger = msg.sender;
        d.deadline = deadline;
        d.recordDigest = recordDigest;
        d.bond = SafeCast.toUint128(msg.value);
        d.checkpointId = SafeCast.toUint64(checkpointId);
        d.committee = committee;
        for (uint256 i; i < committee.length; ++i) {
            _ballots[disputeId][committee[i]] = BALLOT_PENDING;
            _addOpenDispute(committee[i]);
        }
        _addOpenDispute(provider);
        disputeOfLeaf[leafIndex] = disputeId;
        totalBonds += msg.value;
        emit DisputeOpened(disputeId, leafIndex, provider, msg.sender, recordDigest, msg.value, committee, deadline);
    }

    /**
     * @notice Votes on `disputeId`: `fraud` if the record fails the TOPLOC check, with the hash of the
     * evidence (kept off chain).
     *
     * Requirements: the dispute is open, its deadline has not passed, the caller is on its committee
     * and has not voted, and `evidenceHash` is not zero.
     *
     * Emits a {VerdictSubmitted} event.
     */
    function submitVerdict(uint256 disputeId, bool fraud, bytes32 evidenceHash) external {
        Dispute storage d = _openDispute(disputeId);
        uint64 timestamp = uint64(block.timestamp);
        if (!_votingOpen(d.deadline, timestamp)) revert DisputeGameVotingClosed(disputeId, d.deadline, timestamp);
        uint8 ballot = _ballots[disputeId][msg.sender];
        if (ballot == BALLOT_NOT_MEMBER) revert DisputeGameNotCommitteeMember(disputeId, msg.sender);
        if (ballot != BALLOT_PENDING) revert DisputeGameAlreadyVoted(disputeId, msg.sender);
        if (evidenceHash == bytes32(0)) revert DisputeGameMissingEvidence(disputeId);

        _ballots[disputeId][msg.sender] = fraud ? BALLOT_FRAUD : BALLOT_HONEST;
        if (fraud) d.fraudVotes += 1;
        else d.honestVotes += 1;
        emit VerdictSubmitted(disputeId, msg.sender, fraud, evidenceHash);
    }

    /**
     * @notice Resolves `disputeId` and credits everyone what it is owed; anyone may call it.
     *
     * Requirements: the dispute is open, and every member voted or the deadline passed.
     *
     * Emits {Slashed} and {Credited} events as stake moves, then a {DisputeResolved} event.
     */
    function resolve(uint256 disputeId) external returns (uint8 outcome) {
        Dispute storage d = _openDispute(disputeId);
        uint64 timestamp = uint64(block.timestamp);
        uint256 votes = uint256(d.fraudVotes) + d.honestVotes;
        if (!_resolvable(votes, d.committee.length, d.deadline, timestamp)) {
            revert DisputeGameNotResolvable(disputeId, d.deadline, timestamp);
        }
        outcome = _outcome(d.fraudVotes, d.honestVotes);
        d.outcome = outcome;
        totalBonds -= d.bond;

        address[] memory committee = d.committee;
        uint8 winning = outcome == OUTCOME_FRAUD ? BALLOT_FRAUD : outcome == OUTCOME_HONEST ? BALLOT_HONEST : 0;
        uint256 penalties = 0;
        _removeOpenDispute(d.provider);
        for (uint256 i; i < committee.length; ++i) {
            _removeOpenDispute(committee[i]);
            uint8 ballot = _ballots[disputeId][committee[i]];
            if (ballot == BALLOT_PENDING || (winning != 0 && ballot != winning)) {
                penalties += _slash(committee[i], validatorPenalty, disputeId);
            }
        }

        uint256 slashed = 0;
        if (outcome == OUTCOME_FRAUD) {
            slashed = _slash(d.provider, slashAmount, disputeId);
            uint256 reward = (slashed * challengerRewardBps) / _BPS;
            uint256 remainder = _payVoters(disputeId, committee, winning, slashed - reward + penalties, d.fraudVotes);
            _credit(d.challenger, d.bond + reward + remainder, disputeId);
        } else if (outcome == OUTCOME_HONEST) {
            uint256 providerShare = (uint256(d.bond) * providerShareBps) / _BPS;
            uint256 remainder =
                _payVoters(disputeId, committee, winning, d.bond - providerShare + penalties, d.honestVotes);
            _credit(d.provider, providerShare + remainder, disputeId);
        } else {
            // No verdict: the bond goes back; penalties of absent members go to those who voted.
            uint256 remainder = _payVoters(disputeId, committee, 0, penalties, votes);
            _credit(d.challenger, d.bond + remainder, disputeId);
        }
        emit DisputeResolved(disputeId, outcome, d.fraudVotes, d.honestVotes, slashed, penalties);
    }

    /// @notice Dispute `disputeId`, committee included.
    function disputes(uint256 disputeId) external view returns (Dispute memory) {
        if (disputeId == 0 || disputeId > disputeCount) revert DisputeGameUnknownDispute(disputeId);
        return _disputes[disputeId];
    }

    /// @notice The ballot of `validator` on `disputeId`: 0 not a member, 1 pending, 2 fraud, 3 honest.
    function ballotOf(uint256 disputeId, address validator) external view returns (uint8) {
        return _ballots[disputeId][validator];
    }

    /// @notice The leaf hash of a record in the log: SHA-256(0x00 || provider || recordDigest).
    function recordLeafHash(address provider, bytes32 recordDigest) public pure returns (bytes32) {
        return RFC9162.hashLeaf(abi.encodePacked(provider, recordDigest));
    }

    /// @notice The seed of a committee draw: keccak256(abi.encode(prevrandao, disputeId)).
    function committeeSeed(uint256 prevrandao, uint256 disputeId) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(prevrandao, disputeId)));
    }

    /**
     * @dev Draws {committeeSize} distinct eligible validators other than `provider` and `challenger`:
     * a partial Fisher-Yates shuffle of the validator set, step k swapping position k with
     * k + keccak256(abi.encode(seed, k)) mod (n - k). The permutation is kept in memory (index + 1,
     * 0 for untouched), so only the drawn members are read from storage.
     */
    function _drawCommittee(uint256 seed, address provider, address challenger)
        private
        view
        returns (address[] memory members)
    {
        uint256 n = validatorCount();
        uint256 excluded = (isEligibleValidator(provider) ? 1 : 0) + (isEligibleValidator(challenger) ? 1 : 0);
        if (n - excluded < committeeSize) revert DisputeGameNotEnoughValidators(n - excluded, committeeSize);
        members = new address[](committeeSize);
        uint256[] memory permutation = new uint256[](n);
        uint256 chosen = 0;
        for (uint256 k; chosen < committeeSize; ++k) {
            uint256 j = k + uint256(keccak256(abi.encode(seed, k))) % (n - k);
            uint256 pick = permutation[j] == 0 ? j : permutation[j] - 1;
            permutation[j] = permutation[k] == 0 ? k + 1 : permutation[k];
            address candidate = validatorAt(pick);
            if (candidate == provider || candidate == challenger) continue;
            members[chosen++] = candidate;
        }
    }

    /// @dev Credits `pool / count` to every member whose ballot is `ballot` (any vote when 0); returns the rest.
    function _payVoters(uint256 disputeId, address[] memory committee, uint8 ballot, uint256 pool, uint256 count)
        private
        returns (uint256 remainder)
    {
        if (count == 0) return pool;
        uint256 share = pool / count;
        for (uint256 i; i < committee.length; ++i) {
            uint8 cast = _ballots[disputeId][committee[i]];
            bool voted = cast == BALLOT_FRAUD || cast == BALLOT_HONEST;
            if (ballot == 0 ? voted : cast == ballot) _credit(committee[i], share, disputeId);
        }
        return pool - share * count;
    }

    function _openDispute(uint256 disputeId) private view returns (Dispute storage d) {
        if (disputeId == 0 || disputeId > disputeCount) revert DisputeGameUnknownDispute(disputeId);
        d = _disputes[disputeId];
        if (d.outcome != OUTCOME_OPEN) revert DisputeGameNotOpen(disputeId, d.outcome);
    }

    function _outcome(uint8 fraudVotes, uint8 honestVotes) private view returns (uint8) {
        // quorum is a strict majority of the committee, so at most one side reaches it.
        if (fraudVotes >= quorum) return OUTCOME_FRAUD;
        if (honestVotes >= quorum) return OUTCOME_HONEST;
        return OUTCOME_NO_QUORUM;
    }

    function _windowEndsAt(uint64 anchoredAt) private view returns (uint64) {
        return anchoredAt + disputeWindow;
    }

    function _deadlineAt(uint64 openedAt) private view returns (uint64) {
        return openedAt + votingPeriod;
    }

    function _votingOpen(uint64 deadline, uint64 timestamp) private pure returns (bool) {
        return timestamp <= deadline;
    }

    function _resolvable(uint256 votes, uint256 members, uint64 deadline, uint64 timestamp)
        private
        pure
        returns (bool)
    {
        return votes == members || timestamp > deadline;
    }
}
