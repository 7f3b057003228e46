// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @dev The parts of ToplocAudit the attacker calls.
interface IToplocAuditPayments {
    function stake(uint8 role) external payable;
    function requestUnstake(uint256 amount) external;
    function withdrawStake() external;
    function withdraw() external;
}

/**
 * @title ReentrantWithdrawer
 * @notice TEST ONLY. A staker that calls {withdraw} again from its `receive` hook, like
 * OpenZeppelin's ReentrancyAttack mock. With `swallow` false the re-entry's revert bubbles up and
 * fails the outer withdrawal; with `swallow` true it is caught, so the outer withdrawal completes and
 * the test can check that the re-entry paid nothing.
 */
contract ReentrantWithdrawer {
    IToplocAuditPayments public immutable target;
    bool public swallow;
    uint256 public reentries;
    bool public reentrySucceeded;

    constructor(address target_, bool swallow_) {
        target = IToplocAuditPayments(target_);
        swallow = swallow_;
    }

    function stakeAsValidator() external payable {
        target.stake{value: msg.value}(2);
    }

    function requestUnstake(uint256 amount) external {
        target.requestUnstake(amount);
    }

    function withdrawStake() external {
        target.withdrawStake();
    }

    function attack() external {
        target.withdraw();
    }

    receive() external payable {
        if (reentries != 0) return;
        reentries = 1;
        if (swallow) {
            try target.withdraw() {
                reentrySucceeded = true;
            } catch {}
        } else {
            target.withdraw();
        }
    }
}
