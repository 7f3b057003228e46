// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/**
 * @title PullPayments
 * @notice Every payout (rewards, refunds, forfeited bonds, matured stake) becomes a credit that its
 * owner withdraws with {withdraw}. No other function sends ether, so a recipient that reverts or
 * re-enters can only hurt its own withdrawal, never a dispute's resolution.
 */
abstract contract PullPayments is ReentrancyGuardTransient {
    /// @notice Wei each account may withdraw.
    mapping(address account => uint256) public credits;

    /// @notice The sum of all credits: part of the solvency invariant.
    uint256 public totalCredits;

    /**
     * @dev Emitted when `account` is credited `amount` wei; `disputeId` is the dispute that paid it,
     * or 0 for matured stake.
     */
    event Credited(address indexed account, uint256 indexed disputeId, uint256 amount);

    /// @dev Emitted when `account` withdraws `amount` wei.
    event Withdrawn(address indexed account, uint256 amount);

    /// @dev `account` has no credit to withdraw.
    error PullPaymentsNothingToWithdraw(address account);

    /// @dev Sending `amount` wei to `account` failed (it reverted or ran out of gas).
    error PullPaymentsTransferFailed(address account, uint256 amount);

    /**
     * @notice Sends the caller all of its credit.
     *
     * Emits a {Withdrawn} event.
     *
     * NOTE: the credit is zeroed before the call (checks-effects-interactions) and the function is
     * `nonReentrant`; a failed transfer reverts the whole call, so the credit stays.
     */
    function withdraw() external nonReentrant {
        uint256 amount = credits[msg.sender];
        if (amount == 0) revert PullPaymentsNothingToWithdraw(msg.sender);
        credits[msg.sender] = 0;
        totalCredits -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool sent,) = payable(msg.sender).call{value: amount}("");
        if (!sent) revert PullPaymentsTransferFailed(msg.sender, amount);
    }

    function _credit(address account, uint256 amount, uint256 disputeId) internal {
        if (amount == 0) return;
        credits[account] += amount;
        totalCredits += amount;
        emit Credited(account, disputeId, amount);
    }
}
