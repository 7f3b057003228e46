// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @notice The economic and timing parameters of a deployment, fixed at construction.
 * Amounts are in wei, durations in seconds (drawDelay in blocks), shares in basis points (1/10,000).
 * docs/contracts.md gives the payoff of every role under every outcome.
 */
struct Parameters {
    /// Wei a challenger locks to open a dispute; an appeal to round r locks bond * 2^r.
    uint256 bond;
    /// Seconds after the first checkpoint covering an entry during which it can be disputed.
    uint64 disputeWindow;
    /// Seconds within which the log promises (in its signed receipts) to anchor an entry.
    uint64 maxMergeDelay;
    /// Seconds a drawn committee has to commit (or abstain).
    uint64 commitPeriod;
    /// Seconds after the commit phase to reveal.
    uint64 revealPeriod;
    /// Seconds after a round ends during which its losing side may appeal.
    uint64 appealPeriod;
    /// Seconds unstaked ether stays slashable: longer than an entry's whole exposure,
    /// maxMergeDelay + disputeWindow + (appealRounds + 1) * (commitPeriod + revealPeriod + appealPeriod).
    uint64 unbondingPeriod;
    /// Blocks between a dispute (or appeal) and the earliest block whose prevrandao draws its committee.
    uint64 drawDelay;
    /// Validators drawn for the first round; round r draws (committeeSize + 1) * 2^r - 1.
    uint8 committeeSize;
    /// Agreeing votes that decide the first round (a strict majority); later rounds keep the ratio.
    uint8 quorum;
    /// How many appeals a dispute may have.
    uint8 appealRounds;
    /// Least active stake of a provider.
    uint256 minProviderStake;
    /// Least active stake with which a validator joins the pool committees are drawn from.
    uint256 minValidatorStake;
    /// Wei taken from a provider found to commit fraud (at most its stake).
    uint256 slashAmount;
    /// Wei taken from a member who revealed a vote against the dispute's outcome.
    uint256 validatorPenalty;
    /// Wei taken from a member who neither revealed nor abstained (silence, or a commit never revealed).
    uint256 absencePenalty;
    /// Wei taken from a member who abstained with a reason; less than absencePenalty.
    uint256 abstentionPenalty;
    /// Share of the slashed stake that rewards the challenger; the rest goes to the majority.
    uint16 challengerRewardBps;
    /// Share of a forfeited challenger bond that goes to the provider; the rest goes to the majority.
    uint16 providerShareBps;
}

/**
 * @title AuditParameters
 * @notice Checks a {Parameters} set before a deployment accepts it.
 */
library AuditParameters {
    /// @notice The largest committee of any round; resolution loops over every round's members.
    uint8 internal constant MAX_ROUND_SIZE = 63;
    uint16 internal constant BPS = 10_000;

    /// @dev `parameter` is invalid: `reason` says which rule it breaks.
    error AuditParametersInvalid(string parameter, string reason);

    /// @notice The committee size of round `round` (0 is the first): (committeeSize + 1) * 2^round - 1.
    function roundSize(uint8 committeeSize, uint256 round) internal pure returns (uint256) {
        return ((uint256(committeeSize) + 1) << round) - 1;
    }

    /// @notice The quorum of a round of `size` members: ceil(size * quorum / committeeSize).
    function roundQuorum(uint8 committeeSize, uint8 quorum, uint256 size) internal pure returns (uint256) {
        return (size * quorum + committeeSize - 1) / committeeSize;
    }

    /// @dev Reverts with {AuditParametersInvalid} naming the first parameter that breaks a rule.
    function validate(Parameters memory p) internal pure {
        if (p.bond == 0) revert AuditParametersInvalid("bond", "must be above zero");
        if (p.disputeWindow == 0) revert AuditParametersInvalid("disputeWindow", "must be above zero");
        if (p.commitPeriod == 0) revert AuditParametersInvalid("commitPeriod", "must be above zero");
        if (p.revealPeriod == 0) revert AuditParametersInvalid("revealPeriod", "must be above zero");
        if (p.appealPeriod == 0) revert AuditParametersInvalid("appealPeriod", "must be above zero");
        uint256 rounds = uint256(p.appealRounds) + 1;
        uint256 exposure = uint256(p.maxMergeDelay) + p.disputeWindow
            + rounds * (uint256(p.commitPeriod) + p.revealPeriod + p.appealPeriod);
        if (p.unbondingPeriod <= exposure) {
            revert AuditParametersInvalid(
                "unbondingPeriod",
                "must exceed maxMergeDelay + disputeWindow + (appealRounds + 1) * (commitPeriod + revealPeriod + appealPeriod)"
            );
        }
        if (p.drawDelay == 0) revert AuditParametersInvalid("drawDelay", "must be at least 1 block");
        if (p.committeeSize == 0) revert AuditParametersInvalid("committeeSize", "must be above zero");
        if (p.quorum <= p.committeeSize / 2 || p.quorum > p.committeeSize) {
            revert AuditParametersInvalid("quorum", "must be a strict majority of committeeSize, at most committeeSize");
        }
        if (p.appealRounds > 5 || roundSize(p.committeeSize, p.appealRounds) > MAX_ROUND_SIZE) {
            revert AuditParametersInvalid("appealRounds", "the last round's committee must be at most 63");
        }
        if (p.minProviderStake == 0) revert AuditParametersInvalid("minProviderStake", "must be above zero");
        if (p.slashAmount == 0) revert AuditParametersInvalid("slashAmount", "must be above zero");
        if (p.absencePenalty == 0) revert AuditParametersInvalid("absencePenalty", "must be above zero");
        if (p.abstentionPenalty >= p.absencePenalty) {
            revert AuditParametersInvalid("abstentionPenalty", "must be below absencePenalty");
        }
        uint256 largest = p.validatorPenalty > p.absencePenalty ? p.validatorPenalty : p.absencePenalty;
        if (p.minValidatorStake <= largest) {
            revert AuditParametersInvalid(
                "minValidatorStake", "must exceed validatorPenalty and absencePenalty (one penalty never evicts)"
            );
        }
        if (p.challengerRewardBps > BPS) revert AuditParametersInvalid("challengerRewardBps", "must be at most 10000");
        if (p.providerShareBps > BPS) revert AuditParametersInvalid("providerShareBps", "must be at most 10000");
        // Amounts are kept in uint128; the last appeal locks bond * 2^appealRounds.
        if (p.bond > type(uint128).max >> (p.appealRounds + 1)) {
            revert AuditParametersInvalid("bond", "bond * 2^appealRounds must fit in 127 bits");
        }
    }
}
