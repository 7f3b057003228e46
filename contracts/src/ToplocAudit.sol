// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AuditParameters, Parameters} from "./AuditParameters.sol";
import {CheckpointLog} from "./CheckpointLog.sol";
import {DisputeGame} from "./DisputeGame.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {StakeRegistry} from "./StakeRegistry.sol";

/**
 * @title ToplocAudit
 * @notice The on-chain half of toploc-audit for one log: anchored checkpoints ({CheckpointLog}),
 * provider and validator stakes ({StakeRegistry}), declared models ({ModelRegistry}), disputes with
 * committee verdicts ({DisputeGame}) and pull payments ({PullPayments}).
 *
 * One contract holds every wei, so solvency is one equation:
 * balance == {totalStaked} + {totalUnbonding} + {totalBonds} + {totalCredits} + {totalReserve}.
 * It accepts ether only through {stake}, {openDispute} and {appeal}.
 */
contract ToplocAudit is DisputeGame, ModelRegistry {
    /**
     * @dev `operator_` anchors the log; `receiptSigner_` is the key the log signs its receipts with
     * (see {CheckpointLog-receiptSigner}); `p` fixes every economic and timing parameter for good.
     * Reverts with {AuditParameters-AuditParametersInvalid} naming a parameter that breaks a rule.
     */
    constructor(address operator_, address receiptSigner_, Parameters memory p)
        CheckpointLog(operator_, receiptSigner_)
        StakeRegistry(p.unbondingPeriod, p.minProviderStake, p.minValidatorStake, _validatorFloor(p))
        DisputeGame(p)
    {
        AuditParameters.validate(p);
    }

    /// @notice The parameters this deployment was made with.
    function parameters() external view returns (Parameters memory) {
        return Parameters({
            bond: bond,
            disputeWindow: disputeWindow,
            maxMergeDelay: maxMergeDelay,
            commitPeriod: commitPeriod,
            revealPeriod: revealPeriod,
            appealPeriod: appealPeriod,
            unbondingPeriod: unbondingPeriod,
            drawDelay: drawDelay,
            committeeSize: committeeSize,
            quorum: quorum,
            appealRounds: appealRounds,
            minProviderStake: minProviderStake,
            minValidatorStake: minValidatorStake,
            slashAmount: slashAmount,
            validatorPenalty: validatorPenalty,
            absencePenalty: absencePenalty,
            abstentionPenalty: abstentionPenalty,
            challengerRewardBps: challengerRewardBps,
            providerShareBps: providerShareBps
        });
    }

    /// @dev minValidatorStake less the largest single penalty (0 for parameters that `validate` refuses).
    function _validatorFloor(Parameters memory p) private pure returns (uint256) {
        uint256 largest = p.validatorPenalty > p.absencePenalty ? p.validatorPenalty : p.absencePenalty;
        return p.minValidatorStake > largest ? p.minValidatorStake - largest : 0;
    }
}
