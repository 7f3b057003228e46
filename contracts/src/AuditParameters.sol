// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @notice The economic and timing parameters of a deployment, fixed at construction.
 * Amounts are in wei, durations in seconds, shares in basis points (1/10,000).
 */
struct Parameters {
    /// Wei a challenger locks to open a dispute.
    uint256 bond;
    /// Seconds after the first checkpoint covering an entry during which it can be disputed.
    uint64 disputeWindow;
    /// Seconds within which the log promises (in its signed receipts) to anchor an entry.
    uint64 maxMergeDelay;
    /// Seconds from a dispute's opening to its verdict deadline.
    uint64 votingPeriod;
    /// Seconds unstaked ether stays slashable; longer than maxMergeDelay + disputeWindow + votingPeriod,
    /// so an entry logged just before an unstake request can still be disputed and resolved.
    uint64 unbondingPeriod;
    /// Validators drawn per dispute.
    uint8 committeeSize;
    /// Agreeing votes that decide a dispute: a strict majority of the committee.
    uint8 quorum;
    /// Least active stake of a provider.
    uint256 minProviderStake;
    /// Least active stake of a validator that can be drawn.
    uint256 minValidatorStake;
    /// Wei taken from a provider found to commit fraud (at most its stake).
    uint256 slashAmount;
    /// Wei taken from each committee member who did not vote, or voted against the verdict.
    uint256 validatorPenalty;
    /// Share of the slashed stake that rewards the challenger; the rest goes to the majority.
    uint16 challengerRewardBps;
    /// Share of a forfeited bond that goes to the provider; the rest goes to the majority.
    uint16 providerShareBps;
}

/**
 * @title AuditParameters
 * @notice Checks a {Parameters} set before a deployment accepts it.
 */
library AuditParameters {
    /// @notice The largest committee; resolution loops over it.
    uint8 internal constant MAX_COMMITTEE_SIZE = 31;
    uint16 internal constant BPS = 10_000;

    /// @dev `parameter` is invalid: `reason` says which rule it breaks.
    error AuditParametersInvalid(string parameter, string reason);

    /// @dev Reverts with {AuditParametersInvalid} naming the first parameter that breaks a rule.
    function validate(Parameters memory p) internal pure {
        if (p.bond == 0) revert AuditParametersInvalid("bond", "must be above zero");
        if (p.disputeWindow == 0) revert AuditParametersInvalid("disputeWindow", "must be above zero");
        if (p.votingPeriod == 0) revert AuditParametersInvalid("votingPeriod", "must be above zero");
        if (uint256(p.unbondingPeriod) <= uint256(p.maxMergeDelay) + p.disputeWindow + p.votingPeriod) {
            revert AuditParametersInvalid(
                "unbondingPeriod", "must exceed maxMergeDelay + disputeWindow + votingPeriod"
            );
        }
        if (p.committeeSize == 0 || p.committeeSize > MAX_COMMITTEE_SIZE) {
            revert AuditParametersInvalid("committeeSize", "must be 1 to 31");
        }
        if (p.quorum <= p.committeeSize / 2 || p.quorum > p.committeeSize) {
            revert AuditParametersInvalid("quorum", "must be a strict majority of committeeSize, at most committeeSize");
        }
        if (p.minProviderStake == 0) revert AuditParametersInvalid("minProviderStake", "must be above zero");
        if (p.minValidatorStake == 0) revert AuditParametersInvalid("minValidatorStake", "must be above zero");
        if (p.slashAmount == 0) revert AuditParametersInvalid("slashAmount", "must be above zero");
        if (p.validatorPenalty > p.minValidatorStake) {
            revert AuditParametersInvalid("validatorPenalty", "must not exceed minValidatorStake");
        }
        if (p.challengerRewardBps > BPS) revert AuditParametersInvalid("challengerRewardBps", "must be at most 10000");
        if (p.providerShareBps > BPS) revert AuditParametersInvalid("providerShareBps", "must be at most 10000");
        // Amounts are kept in uint128 per stake and uint128 per bond.
        if (p.bond > type(uint128).max) revert AuditParametersInvalid("bond", "must fit in 128 bits");
    }
}
