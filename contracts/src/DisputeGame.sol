// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {AuditParameters, Parameters} from "./AuditParameters.sol";
import {Checkpoint, CheckpointLog} from "./CheckpointLog.sol";
import {RecordSignatures} from "./RecordSignatures.sol";
import {RFC9162} from "./RFC9162.sol";
import {StakeRegistry} from "./StakeRegistry.sol";

/**
 * @title DisputeGame
 * @notice Anyone may dispute an anchored entry by locking a bond: the entry must be in the log (an
 * inclusion proof against the first checkpoint that covers it) and signed by its provider (EIP-712);
 * the record's bytes travel in the calldata.
 *
 * A dispute runs in rounds. Each round:
 * 1. draw: from {drawDelay} blocks after the dispute (or appeal) was filed, anyone calls {draw}; the
 *    prevrandao of the block that mines it draws the committee, weighted by active stake, from the
 *    validator pool less the provider, the challenger and every member of an earlier round;
 * 2. commit: members commit to a vote ({commitVote}, a hash of it) or abstain with a reason
 *    ({abstain}) within {commitPeriod};
 * 3. reveal: members open their commitments ({revealVote}) within {revealPeriod};
 * 4. appeal: for {appealPeriod} after the round, the side that lost it may appeal ({appeal}) with
 *    bond * 2^(round + 1); the next round's committee is (committeeSize + 1) * 2^round - 1.
 * A phase ends early once every member has acted. {resolve} then settles the dispute on its outcome:
 * the result of the last round that reached its quorum (no quorum if none did). Only that outcome
 * moves stakes and bonds; every member of every round is judged against it. docs/contracts.md has the
 * payoff table.
 *
 * Every payout is a credit (see {PullPayments-withdraw}); wei that nobody earned (integer remainders,
 * penalties of a dispute where nobody revealed) go to the reserve, which no one can withdraw.
 */
abstract contract DisputeGame is CheckpointLog, StakeRegistry, RecordSignatures {
    /// @notice Outcome of a dispute not resolved yet.
    uint8 public constant OUTCOME_OPEN = 0;
    /// @notice Outcome: the deciding round found fraud; the provider was slashed.
    uint8 public constant OUTCOME_FRAUD = 1;
    /// @notice Outcome: the deciding round found the record honest; the challenger's bonds were forfeited.
    uint8 public constant OUTCOME_HONEST = 2;
    /// @notice Outcome: no round reached its quorum; the bond was refunded.
    uint8 public constant OUTCOME_NO_QUORUM = 3;

    /// @notice Phase: resolved.
    uint8 public constant PHASE_RESOLVED = 0;
    /// @notice Phase: the current round's committee is not drawn yet.
    uint8 public constant PHASE_DRAW = 1;
    /// @notice Phase: members commit or abstain.
    uint8 public constant PHASE_COMMIT = 2;
    /// @notice Phase: members reveal.
    uint8 public constant PHASE_REVEAL = 3;
    /// @notice Phase: the round is over and its losing side may appeal.
    uint8 public constant PHASE_APPEAL = 4;
    /// @notice Phase: nothing is left but {resolve}.
    uint8 public constant PHASE_RESOLVABLE = 5;

    /// @notice Ballot of an account that is on no committee of the dispute.
    uint8 public constant BALLOT_NOT_MEMBER = 0;
    /// @notice Ballot of a member who has done nothing yet.
    uint8 public constant BALLOT_PENDING = 1;
    /// @notice Ballot of a member who committed and has not revealed.
    uint8 public constant BALLOT_COMMITTED = 2;
    /// @notice Ballot of a member who revealed a fraud vote.
    uint8 public constant BALLOT_FRAUD = 3;
    /// @notice Ballot of a member who revealed an honest vote.
    uint8 public constant BALLOT_HONEST = 4;
    /// @notice Ballot of a member who abstained with a reason.
    uint8 public constant BALLOT_ABSTAINED = 5;

    uint16 private constant _BPS = 10_000;

    struct Dispute {
        address provider;
        uint64 leafIndex;
        uint8 outcome;
        uint8 rounds;
        address challenger;
        uint64 checkpointId;
        bytes32 recordDigest;
    }

    struct Round {
        address appellant;
        uint64 drawBlock;
        uint8 size;
        uint8 quorum;
        uint8 commits;
        uint8 reveals;
        uint8 fraudVotes;
        uint8 honestVotes;
        uint8 abstentions;
        bool drawn;
        uint128 bond;
        uint64 commitDeadline;
        uint64 revealDeadline;
        uint256 seed;
        address[] committee;
    }

    struct Ballot {
        uint8 round;
        uint8 state;
        bytes32 commitment;
    }

    /// @notice Wei a challenger locks to open a dispute.
    uint256 public immutable bond;
    /// @notice Seconds after the first checkpoint covering an entry during which it can be disputed.
    uint64 public immutable disputeWindow;
    /// @notice Seconds within which the log promises to anchor an entry (its receipts' maximum merge delay).
    uint64 public immutable maxMergeDelay;
    /// @notice Seconds a drawn committee has to commit or abstain.
    uint64 public immutable commitPeriod;
    /// @notice Seconds after the commit phase to reveal.
    uint64 public immutable revealPeriod;
    /// @notice Seconds after a round during which its losing side may appeal.
    uint64 public immutable appealPeriod;
    /// @notice Blocks from a filing to the first block that may draw its committee.
    uint64 public immutable drawDelay;
    /// @notice Validators drawn for the first round.
    uint8 public immutable committeeSize;
    /// @notice Agreeing votes that decide the first round.
    uint8 public immutable quorum;
    /// @notice Appeals a dispute may have.
    uint8 public immutable appealRounds;
    /// @notice Wei taken from a provider found to commit fraud (at most its stake).
    uint256 public immutable slashAmount;
    /// @notice Wei taken from a member whose revealed vote is against the outcome.
    uint256 public immutable validatorPenalty;
    /// @notice Wei taken from a member who neither revealed nor abstained.
    uint256 public immutable absencePenalty;
    /// @notice Wei taken from a member who abstained with a reason.
    uint256 public immutable abstentionPenalty;
    /// @notice Share of the slashed stake, in basis points, that rewards the challenger.
    uint16 public immutable challengerRewardBps;
    /// @notice Share of a forfeited challenger bond, in basis points, that goes to the provider.
    uint16 public immutable providerShareBps;

    /// @notice The number of disputes; ids run from 1.
    uint256 public disputeCount;
    /// @notice Sum of the bonds of open disputes: part of the solvency invariant.
    uint256 public totalBonds;
    /// @notice Wei nobody earned (see the contract's notice): part of the solvency invariant.
    uint256 public totalReserve;
    /// @notice The latest dispute of each entry (0 if none).
    mapping(uint64 leafIndex => uint256) public disputeOfLeaf;

    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(uint256 disputeId => mapping(uint256 round => Round)) private _rounds;
    mapping(uint256 disputeId => mapping(address validator => Ballot)) private _ballots;

    /**
     * @dev Emitted when `challenger` disputes entry `leafIndex`, the record `recordDigest` of
     * `provider`, locking `bond`; the committee can be drawn from block `drawBlock`.
     */
    event DisputeOpened(
        uint256 indexed disputeId,
        uint64 indexed leafIndex,
        address indexed provider,
        address challenger,
        bytes32 recordDigest,
        uint256 bond,
        uint64 drawBlock
    );

    /**
     * @dev Emitted when round `round` of `disputeId` draws `committee` with `seed` (empty when the pool
     * was too small); commits close at `commitDeadline`, reveals at `revealDeadline`.
     */
    event CommitteeDrawn(
        uint256 indexed disputeId,
        uint8 indexed round,
        address[] committee,
        uint256 seed,
        uint8 quorum,
        uint64 commitDeadline,
        uint64 revealDeadline
    );

    /// @dev Emitted when member `validator` of round `round` commits to a hidden vote.
    event VoteCommitted(uint256 indexed disputeId, uint8 indexed round, address indexed validator, bytes32 commitment);

    /// @dev Emitted when `validator` reveals its vote, bound to the SHA-256 of its evidence report.
    event VoteRevealed(
        uint256 indexed disputeId, uint8 indexed round, address indexed validator, bool fraud, bytes32 evidenceHash
    );

    /// @dev Emitted when `validator` abstains, bound to the SHA-256 of its report giving the reason.
    event VoteAbstained(uint256 indexed disputeId, uint8 indexed round, address indexed validator, bytes32 reasonHash);

    /// @dev Emitted when `appellant` appeals round `round - 1`, locking `bond` for round `round`.
    event DisputeAppealed(
        uint256 indexed disputeId, uint8 indexed round, address indexed appellant, uint256 bond, uint64 drawBlock
    );

    /**
     * @dev Emitted when `disputeId` is resolved with `outcome` (1 fraud, 2 honest, 3 no quorum) decided
     * in round `decidingRound`; the provider lost `slashed` wei, the committees `penalties` wei, and
     * `reserved` wei went to the reserve.
     */
    event DisputeResolved(
        uint256 indexed disputeId, uint8 outcome, uint8 decidingRound, uint256 slashed, uint256 penalties, uint256 reserved
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

    /// @dev Dispute `disputeId` is in phase `phase`, not `required` (see the PHASE_ constants).
    error DisputeGameWrongPhase(uint256 disputeId, uint8 phase, uint8 required);

    /// @dev The committee of `disputeId` can be drawn from block `drawBlock`; this is block `blockNumber`.
    error DisputeGameTooEarlyToDraw(uint256 disputeId, uint64 drawBlock, uint256 blockNumber);

    /// @dev `account` is not on the current committee of `disputeId`.
    error DisputeGameNotCommitteeMember(uint256 disputeId, address account);

    /// @dev `validator`'s ballot on `disputeId` is `state`, not `required` (see the BALLOT_ constants).
    error DisputeGameWrongBallot(uint256 disputeId, address validator, uint8 state, uint8 required);

    /// @dev A commitment, evidence hash or reason hash of zero.
    error DisputeGameZeroHash(uint256 disputeId);

    /// @dev The revealed vote does not hash to `validator`'s commitment.
    error DisputeGameCommitmentMismatch(uint256 disputeId, address validator);

    /// @dev Only `loser`, the side that lost the round, may appeal it.
    error DisputeGameNotAppellant(uint256 disputeId, address loser);

    /// @dev Requires `p` checked by {AuditParameters-validate}.
    constructor(Parameters memory p) {
        bond = p.bond;
        disputeWindow = p.disputeWindow;
        maxMergeDelay = p.maxMergeDelay;
        commitPeriod = p.commitPeriod;
        revealPeriod = p.revealPeriod;
        appealPeriod = p.appealPeriod;
        drawDelay = p.drawDelay;
        committeeSize = p.committeeSize;
        quorum = p.quorum;
        appealRounds = p.appealRounds;
        slashAmount = p.slashAmount;
        validatorPenalty = p.validatorPenalty;
        absencePenalty = p.absencePenalty;
        abstentionPenalty = p.abstentionPenalty;
        challengerRewardBps = p.challengerRewardBps;
        providerShareBps = p.providerShareBps;
    }

    /**
     * @notice Disputes entry `leafIndex` of the log: the record `recordDigest` of `provider`. Send
     * exactly {bond} wei. Returns the new dispute's id; its committee is drawn later ({draw}).
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
     * 8. the pool holds at least {committeeSize} validators besides the provider and the caller.
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
        uint64 windowEnds = checkpoint.timestamp + disputeWindow;
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
        _requirePool(provider, msg.sender, 0, committeeSize);

        disputeId = disputeCount + 1;
        disputeCount = disputeId;
        Dispute storage d = _disputes[disputeId];
        d.provider = provider;
        d.leafIndex = leafIndex;
        d.challenger = msg.sender;
        d.checkpointId = SafeCast.toUint64(checkpointId);
        d.recordDigest = recordDigest;
        uint64 drawBlock = _newRound(disputeId, d, address(0), msg.value);
        _addOpenDispute(provider);
        disputeOfLeaf[leafIndex] = disputeId;
        emit DisputeOpened(disputeId, leafIndex, provider, msg.sender, recordDigest, msg.value, drawBlock);
    }

    /**
     * @notice Draws the current round's committee of `disputeId`; anyone may call it, from the round's
     * drawBlock on. The seed is keccak256(abi.encode(block.prevrandao, disputeId, round)) of the block
     * that mines this call, so nobody knew it when the dispute or appeal was filed. If the pool has
     * become too small, the committee is empty and the round ends without a quorum.
     *
     * Emits a {CommitteeDrawn} event.
     */
    function draw(uint256 disputeId) external {
        (Dispute storage d, Round storage r, uint8 phase) = _current(disputeId);
        if (phase != PHASE_DRAW) revert DisputeGameWrongPhase(disputeId, phase, PHASE_DRAW);
        if (block.number < r.drawBlock) revert DisputeGameTooEarlyToDraw(disputeId, r.drawBlock, block.number);
        uint8 round = d.rounds - 1;
        uint256 seed = committeeSeed(block.prevrandao, disputeId, round);
        address[] memory committee = _drawCommittee(seed, disputeId, round > 0, d.provider, d.challenger, r.size);
        uint64 timestamp = uint64(block.timestamp);

        r.drawn = true;
        r.seed = seed;
        r.committee = committee;
        r.commitDeadline = timestamp + commitPeriod;
        r.revealDeadline = timestamp + commitPeriod + revealPeriod;
        for (uint256 i; i < committee.length; ++i) {
            _ballots[disputeId][committee[i]] = Ballot(round, BALLOT_PENDING, bytes32(0));
            _addOpenDispute(committee[i]);
        }
        if (committee.length == 0) {
            r.size = 0; // nobody to wait for: the round ends without a quorum
            _endEarly(r, timestamp);
        }
        emit CommitteeDrawn(disputeId, round, committee, seed, r.quorum, r.commitDeadline, r.revealDeadline);
    }

    /**
     * @notice Commits the caller's hidden vote on `disputeId`:
     * `commitment` = keccak256(abi.encode(disputeId, voter, fraud, evidenceHash, salt)).
     *
     * Requirements: the commit phase of the current round, the caller is a member of it with nothing
     * done yet, and the commitment is not zero.
     *
     * Emits a {VoteCommitted} event.
     */
    function commitVote(uint256 disputeId, bytes32 commitment) external {
        (Dispute storage d, Round storage r, Ballot storage b) = _member(disputeId, PHASE_COMMIT, BALLOT_PENDING);
        if (commitment == bytes32(0)) revert DisputeGameZeroHash(disputeId);
        b.state = BALLOT_COMMITTED;
        b.commitment = commitment;
        r.commits += 1;
        emit VoteCommitted(disputeId, d.rounds - 1, msg.sender, commitment);
    }

    /**
     * @notice Abstains on `disputeId` instead of committing, with the SHA-256 of a report giving the
     * reason (such as the model not being held). Costs {abstentionPenalty}, less than silence.
     *
     * Requirements: as {commitVote}; `reasonHash` is not zero.
     *
     * Emits a {VoteAbstained} event.
     */
    function abstain(uint256 disputeId, bytes32 reasonHash) external {
        (Dispute storage d, Round storage r, Ballot storage b) = _member(disputeId, PHASE_COMMIT, BALLOT_PENDING);
        if (reasonHash == bytes32(0)) revert DisputeGameZeroHash(disputeId);
        b.state = BALLOT_ABSTAINED;
        r.abstentions += 1;
        if (uint256(r.reveals) + r.abstentions == r.size) _endEarly(r, uint64(block.timestamp));
        emit VoteAbstained(disputeId, d.rounds - 1, msg.sender, reasonHash);
    }

    /**
     * @notice Reveals the caller's committed vote on `disputeId`: `fraud` if the record fails the
     * TOPLOC check, bound to `evidenceHash`, the SHA-256 of the evidence report it publishes.
     *
     * Requirements: the reveal phase of the current round (after the commit deadline, or once every
     * member committed or abstained), the caller committed, `evidenceHash` is not zero and
     * keccak256(abi.encode(disputeId, caller, fraud, evidenceHash, salt)) is its commitment.
     *
     * Emits a {VoteRevealed} event.
     */
    function revealVote(uint256 disputeId, bool fraud, bytes32 evidenceHash, bytes32 salt) external {
        (Dispute storage d, Round storage r, Ballot storage b) = _member(disputeId, PHASE_REVEAL, BALLOT_COMMITTED);
        if (evidenceHash == bytes32(0)) revert DisputeGameZeroHash(disputeId);
        if (voteCommitment(disputeId, msg.sender, fraud, evidenceHash, salt) != b.commitment) {
            revert DisputeGameCommitmentMismatch(disputeId, msg.sender);
        }
        b.state = fraud ? BALLOT_FRAUD : BALLOT_HONEST;
        r.reveals += 1;
        if (fraud) r.fraudVotes += 1;
        else r.honestVotes += 1;
        if (uint256(r.reveals) + r.abstentions == r.size) _endEarly(r, uint64(block.timestamp));
        emit VoteRevealed(disputeId, d.rounds - 1, msg.sender, fraud, evidenceHash);
    }

    /**
     * @notice Appeals the current round of `disputeId`, which reached a quorum: the provider may appeal a
     * fraud result, the challenger an honest one. Send exactly {appealBond} of the next round. A larger
     * committee, none of whose members sat on an earlier round, is drawn from {drawDelay} blocks on.
     *
     * Requirements: the appeal phase, a round below the last allowed, the caller the losing side, the
     * exact bond, and a pool large enough for the next committee.
     *
     * Emits a {DisputeAppealed} event.
     */
    function appeal(uint256 disputeId) external payable {
        (Dispute storage d, Round storage r, uint8 phase) = _current(disputeId);
        if (phase != PHASE_APPEAL) revert DisputeGameWrongPhase(disputeId, phase, PHASE_APPEAL);
        uint8 result = _result(r);
        address loser = result == OUTCOME_FRAUD ? d.provider : d.challenger;
        if (msg.sender != loser) revert DisputeGameNotAppellant(disputeId, loser);
        uint8 next = d.rounds;
        uint256 required = appealBond(next);
        if (msg.value != required) revert DisputeGameWrongBond(msg.value, required);
        _requirePool(d.provider, d.challenger, _seated(disputeId, next), AuditParameters.roundSize(committeeSize, next));

        uint64 drawBlock = _newRound(disputeId, d, msg.sender, msg.value);
        emit DisputeAppealed(disputeId, next, msg.sender, msg.value, drawBlock);
    }

    /**
     * @notice Settles `disputeId` on its outcome and credits everyone what it is owed; anyone may call
     * it once the last round is over and cannot be appealed any more.
     *
     * Emits {Slashed}, {Credited} and {ValidatorEligibilityChanged} events as stake moves, then a
     * {DisputeResolved} event.
     */
    function resolve(uint256 disputeId) external returns (uint8 outcome) {
        (Dispute storage d,, uint8 phase) = _current(disputeId);
        if (phase != PHASE_RESOLVABLE) revert DisputeGameWrongPhase(disputeId, phase, PHASE_RESOLVABLE);
        uint8 deciding;
        (outcome, deciding) = _outcomeOf(disputeId, d.rounds);
        d.outcome = outcome;

        uint256 locked = _locked(disputeId, d.rounds);
        totalBonds -= locked;
        (uint256 challengerBonds, uint256 providerBonds) = _bonds(disputeId, d);
        _removeOpenDispute(d.provider);
        (uint256 penalties, uint256 winners) = _judgeMembers(disputeId, d.rounds, outcome);

        uint256 slashed = 0;
        uint256 pool = penalties;
        if (outcome == OUTCOME_FRAUD) {
            slashed = _slash(d.provider, slashAmount, disputeId);
            uint256 reward = (slashed * challengerRewardBps) / _BPS;
            pool += slashed - reward + providerBonds;
            _credit(d.challenger, challengerBonds + reward, disputeId);
        } else if (outcome == OUTCOME_HONEST) {
            uint256 providerShare = (challengerBonds * providerShareBps) / _BPS;
            pool += challengerBonds - providerShare;
            _credit(d.provider, providerBonds + providerShare, disputeId);
        } else {
            // No round decided (so there was no appeal): the bond goes back; penalties go to those who
            // revealed, never to the challenger.
            _credit(d.challenger, challengerBonds, disputeId);
        }
        uint256 reserved = _payWinners(disputeId, d.rounds, outcome, pool, winners);
        totalReserve += reserved;
        emit DisputeResolved(disputeId, outcome, deciding, slashed, penalties, reserved);
    }

    /// @notice Dispute `disputeId` (its rounds through {rounds}).
    function disputes(uint256 disputeId) external view returns (Dispute memory) {
        return _dispute(disputeId);
    }

    /// @notice Round `round` of `disputeId`, committee included.
    function rounds(uint256 disputeId, uint8 round) external view returns (Round memory) {
        Dispute storage d = _dispute(disputeId);
        if (round >= d.rounds) revert DisputeGameUnknownDispute(disputeId);
        return _rounds[disputeId][round];
    }

    /// @notice The phase of `disputeId` now (see the PHASE_ constants).
    function phaseOf(uint256 disputeId) external view returns (uint8 phase) {
        (,, phase) = _current(disputeId);
    }

    /// @notice The ballot of `validator` on `disputeId`: its round and state (see the BALLOT_ constants).
    function ballotOf(uint256 disputeId, address validator) external view returns (uint8 round, uint8 state) {
        Ballot storage b = _ballots[disputeId][validator];
        return (b.round, b.state);
    }

    /// @notice The bond that opens round `round`: {bond} * 2^round (round 0 is the dispute itself).
    function appealBond(uint8 round) public view returns (uint256) {
        return bond << round;
    }

    /// @notice The commitment of a vote: keccak256(abi.encode(disputeId, voter, fraud, evidenceHash, salt)).
    function voteCommitment(uint256 disputeId, address voter, bool fraud, bytes32 evidenceHash, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(disputeId, voter, fraud, evidenceHash, salt));
    }

    /// @notice The leaf hash of a record in the log: SHA-256(0x00 || provider || recordDigest).
    function recordLeafHash(address provider, bytes32 recordDigest) public pure returns (bytes32) {
        return RFC9162.hashLeaf(abi.encodePacked(provider, recordDigest));
    }

    /// @notice The seed of a committee draw: keccak256(abi.encode(prevrandao, disputeId, round)).
    function committeeSeed(uint256 prevrandao, uint256 disputeId, uint8 round) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(prevrandao, disputeId, round)));
    }

    /**
     * @notice The committee of `size` that `seed` draws from the pool as it stands, `provider` and
     * `challenger` excluded (what {draw} does, before the exclusion of earlier rounds' members).
     */
    function previewCommittee(uint256 seed, address provider, address challenger, uint8 size)
        external
        view
        returns (address[] memory)
    {
        return _drawCommittee(seed, 0, false, provider, challenger, size);
    }

    // -- rounds -----------------------------------------------------------------------------------

    function _newRound(uint256 disputeId, Dispute storage d, address appellant, uint256 value)
        private
        returns (uint64 drawBlock)
    {
        uint8 round = d.rounds;
        uint256 size = AuditParameters.roundSize(committeeSize, round);
        Round storage r = _rounds[disputeId][round];
        drawBlock = SafeCast.toUint64(block.number + drawDelay);
        r.appellant = appellant;
        r.drawBlock = drawBlock;
        r.size = uint8(size);
        r.quorum = uint8(AuditParameters.roundQuorum(committeeSize, quorum, size));
        r.bond = SafeCast.toUint128(value);
        d.rounds = round + 1;
        totalBonds += value;
    }

    /// @dev Marks round `r` over now: every member acted, or nobody could be drawn.
    function _endEarly(Round storage r, uint64 timestamp) private {
        if (r.commitDeadline > timestamp) r.commitDeadline = timestamp;
        r.revealDeadline = timestamp;
    }

    function _dispute(uint256 disputeId) private view returns (Dispute storage d) {
        if (disputeId == 0 || disputeId > disputeCount) revert DisputeGameUnknownDispute(disputeId);
        d = _disputes[disputeId];
    }

    /// @dev The dispute, its current round and its phase now.
    function _current(uint256 disputeId) private view returns (Dispute storage d, Round storage r, uint8 phase) {
        d = _dispute(disputeId);
        r = _rounds[disputeId][d.rounds - 1];
        phase = _phase(d, r, uint64(block.timestamp));
    }

    function _phase(Dispute storage d, Round storage r, uint64 timestamp) private view returns (uint8) {
        if (d.outcome != OUTCOME_OPEN) return PHASE_RESOLVED;
        if (!r.drawn) return PHASE_DRAW;
        bool allActed = uint256(r.commits) + r.abstentions == r.size;
        if (timestamp <= r.commitDeadline && !allActed) return PHASE_COMMIT;
        // Reveals are awaited only while a commitment is still closed.
        if (timestamp <= r.revealDeadline && r.reveals < r.commits) return PHASE_REVEAL;
        uint8 result = _result(r);
        bool appealable = result != OUTCOME_NO_QUORUM && d.rounds <= appealRounds;
        if (appealable && timestamp <= uint256(r.revealDeadline) + appealPeriod) return PHASE_APPEAL;
        return PHASE_RESOLVABLE;
    }

    function _member(uint256 disputeId, uint8 phaseRequired, uint8 stateRequired)
        private
        view
        returns (Dispute storage d, Round storage r, Ballot storage b)
    {
        uint8 phase;
        (d, r, phase) = _current(disputeId);
        if (phase != phaseRequired) revert DisputeGameWrongPhase(disputeId, phase, phaseRequired);
        b = _ballots[disputeId][msg.sender];
        if (b.state == BALLOT_NOT_MEMBER || b.round != d.rounds - 1) {
            revert DisputeGameNotCommitteeMember(disputeId, msg.sender);
        }
        if (b.state != stateRequired) revert DisputeGameWrongBallot(disputeId, msg.sender, b.state, stateRequired);
    }

    function _result(Round storage r) private view returns (uint8) {
        // Each round's quorum is a strict majority of its committee, so at most one side reaches it.
        if (r.size == 0) return OUTCOME_NO_QUORUM;
        if (r.fraudVotes >= r.quorum) return OUTCOME_FRAUD;
        if (r.honestVotes >= r.quorum) return OUTCOME_HONEST;
        return OUTCOME_NO_QUORUM;
    }

    /// @dev The result of the last round that reached its quorum, and that round.
    function _outcomeOf(uint256 disputeId, uint8 count) private view returns (uint8, uint8) {
        for (uint256 i = count; i > 0; --i) {
            uint8 result = _result(_rounds[disputeId][i - 1]);
            if (result != OUTCOME_NO_QUORUM) return (result, uint8(i - 1));
        }
        return (OUTCOME_NO_QUORUM, 0);
    }

    /// @dev The bonds each side stakes on the outcome: the challenger's (the dispute, its appeals) and
    /// the provider's; an appeal whose committee could not be drawn (the pool shrank) is refunded now.
    function _bonds(uint256 disputeId, Dispute storage d) private returns (uint256 challenger, uint256 provider) {
        for (uint256 i; i < d.rounds; ++i) {
            Round storage r = _rounds[disputeId][i];
            if (i > 0 && r.size == 0) _credit(r.appellant, r.bond, disputeId);
            else if (r.appellant == d.provider) provider += r.bond;
            else challenger += r.bond;
        }
    }

    function _locked(uint256 disputeId, uint8 count) private view returns (uint256 locked) {
        for (uint256 i; i < count; ++i) {
            locked += _rounds[disputeId][i].bond;
        }
    }

    /// @dev Members of rounds before `round` still in the pool: drawn already, so not drawable again.
    function _seated(uint256 disputeId, uint8 round) private view returns (uint256 seated) {
        for (uint256 i; i < round; ++i) {
            address[] storage committee = _rounds[disputeId][i].committee;
            for (uint256 j; j < committee.length; ++j) {
                if (isEligibleValidator(committee[j])) ++seated;
            }
        }
    }

    /// @dev Reverts unless the pool, less the two parties and `seated` earlier members, can seat `size`.
    function _requirePool(address provider, address challenger, uint256 seated, uint256 size) private view {
        uint256 excluded = (isEligibleValidator(provider) ? 1 : 0) + (isEligibleValidator(challenger) ? 1 : 0) + seated;
        uint256 n = eligibleValidatorCount;
        uint256 eligible = n > excluded ? n - excluded : 0;
        if (eligible < size) revert DisputeGameNotEnoughValidators(eligible, size);
    }

    // -- the draw ---------------------------------------------------------------------------------

    /**
     * @dev Draws `size` distinct validators without replacement, each seat with probability
     * proportional to draw weight ({drawWeightOf}: active stake before this block) among those left:
     * seat k takes the validator whose weight interval, in pool order, holds
     * keccak256(abi.encode(seed, k)) mod (weight left). The provider, the challenger and, when
     * `seatedBefore`, members of earlier rounds of `disputeId` weigh nothing. Returns an empty committee when fewer
     * than `size` validators can be drawn.
     */
    function _drawCommittee(
        uint256 seed,
        uint256 disputeId,
        bool seatedBefore,
        address provider,
        address challenger,
        uint256 size
    ) private view returns (address[] memory members) {
        uint256 n = validatorCount();
        address[] memory pool = new address[](n);
        uint256[] memory weights = new uint256[](n);
        uint256 total = 0;
        uint256 drawable = 0;
        for (uint256 i; i < n; ++i) {
            address v = validatorAt(i);
            pool[i] = v;
            uint256 weight = drawWeightOf(v);
            // Earlier rounds' members hold ballots; a first round (or a preview) has none to read.
            if (weight == 0 || v == provider || v == challenger) continue;
            if (seatedBefore && _ballots[disputeId][v].state != BALLOT_NOT_MEMBER) continue;
            weights[i] = weight;
            total += weight;
            ++drawable;
        }
        if (drawable < size) return new address[](0);
        members = new address[](size);
        for (uint256 k; k < size; ++k) {
            uint256 point = uint256(keccak256(abi.encode(seed, k))) % total;
            uint256 i = 0;
            while (point >= weights[i]) {
                point -= weights[i];
                ++i;
            }
            members[k] = pool[i];
            total -= weights[i];
            weights[i] = 0;
        }
    }

    // -- settlement -------------------------------------------------------------------------------

    /**
     * @dev Penalises every member of every round against `outcome` (absent, abstained, or revealed
     * against a decided outcome) and releases them; returns the penalties taken and how many members
     * earned a share: revealed with a decided outcome, or revealed at all when nothing was decided.
     */
    function _judgeMembers(uint256 disputeId, uint8 count, uint8 outcome)
        private
        returns (uint256 penalties, uint256 winners)
    {
        uint8 winning = _winningBallot(outcome);
        for (uint256 i; i < count; ++i) {
            address[] storage committee = _rounds[disputeId][i].committee;
            for (uint256 j; j < committee.length; ++j) {
                address member = committee[j];
                uint8 state = _ballots[disputeId][member].state;
                _removeOpenDispute(member);
                uint256 penalty = 0;
                if (state == BALLOT_PENDING || state == BALLOT_COMMITTED) penalty = absencePenalty;
                else if (state == BALLOT_ABSTAINED) penalty = abstentionPenalty;
                else if (winning != 0 && state != winning) penalty = validatorPenalty;
                else ++winners;
                if (penalty != 0) penalties += _slash(member, penalty, disputeId);
            }
        }
    }

    /// @dev Credits `pool / winners` to each winner; returns what is left for the reserve.
    function _payWinners(uint256 disputeId, uint8 count, uint8 outcome, uint256 pool, uint256 winners)
        private
        returns (uint256 reserved)
    {
        if (winners == 0) return pool;
        uint256 share = pool / winners;
        uint8 winning = _winningBallot(outcome);
        for (uint256 i; i < count; ++i) {
            address[] storage committee = _rounds[disputeId][i].committee;
            for (uint256 j; j < committee.length; ++j) {
                uint8 state = _ballots[disputeId][committee[j]].state;
                bool won = winning != 0 ? state == winning : (state == BALLOT_FRAUD || state == BALLOT_HONEST);
                if (won) _credit(committee[j], share, disputeId);
            }
        }
        return pool - share * winners;
    }

    function _winningBallot(uint8 outcome) private pure returns (uint8) {
        if (outcome == OUTCOME_FRAUD) return BALLOT_FRAUD;
        if (outcome == OUTCOME_HONEST) return BALLOT_HONEST;
        return 0;
    }
}
