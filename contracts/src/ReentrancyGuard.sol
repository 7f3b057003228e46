// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @title ReentrancyGuard
 * @notice Refuses a call into a `nonReentrant` function while another one is running.
 *
 * Like OpenZeppelin's ReentrancyGuardTransient (v5.1), the flag lives in transient storage (EIP-1153):
 * it is cleared at the end of every transaction, so a guarded call costs about 200 gas instead of
 * the 5,000 or more of a storage flag.
 */
abstract contract ReentrancyGuard {
    bool private transient _entered;

    /// @dev A `nonReentrant` function was called while one was already running.
    error ReentrancyGuardReentrantCall();

    modifier nonReentrant() {
        if (_entered) revert ReentrancyGuardReentrantCall();
        _entered = true;
        _;
        _entered = false;
    }
}
