// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {PullPayments} from "./PullPayments.sol";

/**
 * @title StakeRegistry
 * @notice Ether stakes of providers and validators, with an unbonding period.
 *
 * An account stakes in one role at a time. Unstaking moves stake to "unbonding", where it stays
 * slashable until the unbonding period is over; {withdrawStake} then turns it into a credit, and never
 * while a dispute involving the account is open. Validators with at least the minimum active stake
 * form the set that dispute committees are drawn from.
 */
abstract contract StakeRegistry is PullPayments {
    uint8 internal constant ROLE_NONE = 0;
    uint8 internal constant ROLE_PROVIDER = 1;
    uint8 internal constant ROLE_VALIDATOR = 2;

    /// @dev Two slots: the bookkeeping, then the two amounts.
    struct Stake {
        uint8 role;
        uint64 unbondingEnds;
        uint32 openDisputes;
        uint128 active;
        uint128 unbonding;
    }

    /// @notice How long unstaked ether stays slashable before it can be withdrawn, in seconds.
    uint64 public immutable unbondingPeriod;
    /// @notice The least active stake of a provider, in wei.
    uint256 public immutable minProviderStake;
    /// @notice The least active stake of a validator that can sit on a committee, in wei.
    uint256 public immutable minValidatorStake;

    /// @notice Sum of all active stakes: part of the solvency invariant.
    uint256 public totalStaked;
    /// @notice Sum of all unbonding stakes: part of the solvency invariant.
    uint256 public totalUnbonding;

    mapping(address account => Stake) private _stakes;
    address[] private _validators;
    /// @dev Position in `_validators` plus one; 0 means not eligible.
    mapping(address validator => uint256) private _validatorSlot;

    /// @dev Emitted when `account` adds `amount` wei of stake in `role`, for `active` wei in all.
    event Staked(address indexed account, uint8 indexed role, uint256 amount, uint256 active);

    /// @dev Emitted when `account` starts unbonding `amount` wei, withdrawable from `unbondingEnds`.
    event UnstakeRequested(address indexed account, uint256 amount, uint64 unbondingEnds);

    /// @dev Emitted when `account`'s matured unbonding stake, `amount` wei, becomes a credit.
    event StakeWithdrawn(address indexed account, uint256 amount);

    /// @dev Emitted when `amount` wei of `account`'s stake is taken by the resolution of `disputeId`.
    event Slashed(address indexed account, uint256 indexed disputeId, uint256 amount);

    /// @dev Emitted when `validator` joins (true) or leaves (false) the set committees are drawn from.
    event ValidatorEligibilityChanged(address indexed validator, bool eligible);

    /// @dev `role` is neither 1 (provider) nor 2 (validator).
    error StakeRegistryInvalidRole(uint8 role);

    /// @dev `account` already has stake as `current`; withdraw it all before staking as `requested`.
    error StakeRegistryRoleMismatch(address account, uint8 current, uint8 requested);

    /// @dev An amount of zero wei.
    error StakeRegistryZeroAmount();

    /// @dev The active stake would be `active` wei, below the role's minimum `minimum`.
    error StakeRegistryBelowMinimum(uint256 active, uint256 minimum);

    /// @dev Unstaking would leave `remaining` wei active: neither all of it nor at least `minimum`.
    error StakeRegistryRemainderBelowMinimum(uint256 remaining, uint256 minimum);

    /// @dev Asked to unstake `requested` wei with only `active` wei active.
    error StakeRegistryInsufficientStake(uint256 active, uint256 requested);

    /// @dev `account` has nothing unbonding.
    error StakeRegistryNothingUnbonding(address account);

    /// @dev The unbonding period runs until `unbondingEnds`; it is `timestamp`.
    error StakeRegistryStillUnbonding(uint64 unbondingEnds, uint64 timestamp);

    /// @dev `account` is the provider or a committee member of `count` open disputes.
    error StakeRegistryOpenDisputes(address account, uint32 count);

    constructor(uint64 unbondingPeriod_, uint256 minProviderStake_, uint256 minValidatorStake_) {
        unbondingPeriod = unbondingPeriod_;
        minProviderStake = minProviderStake_;
        minValidatorStake = minValidatorStake_;
    }

    /**
     * @notice Adds the ether sent to the caller's stake in `role` (1 provider, 2 validator).
     *
     * Requirements: a non-zero amount; the caller has no stake in another role; the active stake
     * reaches the role's minimum.
     *
     * Emits a {Staked} event, and {ValidatorEligibilityChanged} when a validator becomes eligible.
     */
    function stake(uint8 role) external payable {
        if (role != ROLE_PROVIDER && role != ROLE_VALIDATOR) revert StakeRegistryInvalidRole(role);
        if (msg.value == 0) revert StakeRegistryZeroAmount();
        Stake storage s = _stakes[msg.sender];
        if (s.role != ROLE_NONE && s.role != role) revert StakeRegistryRoleMismatch(msg.sender, s.role, role);
        uint256 active = s.active + msg.value;
        uint256 minimum = role == ROLE_PROVIDER ? minProviderStake : minValidatorStake;
        if (active < minimum) revert StakeRegistryBelowMinimum(active, minimum);

        s.role = role;
        s.active = SafeCast.toUint128(active);
        totalStaked += msg.value;
        emit Staked(msg.sender, role, msg.value, active);
        if (role == ROLE_VALIDATOR) _updateEligibility(msg.sender, s);
    }

    /**
     * @notice Starts unbonding `amount` wei of the caller's active stake. The whole unbonding amount
     * becomes withdrawable {unbondingPeriod} seconds after the latest request.
     *
     * Requirements: what stays active is 0 or at least the role's minimum (a remainder of 1 wei
     * would otherwise be all that a provider's fraud could cost once the rest is withdrawn).
     *
     * NOTE: unbonding stake can still be slashed.
     *
     * Emits an {UnstakeRequested} event, and {ValidatorEligibilityChanged} when a validator leaves the
     * pool.
     */
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert StakeRegistryZeroAmount();
        Stake storage s = _stakes[msg.sender];
        if (amount > s.active) revert StakeRegistryInsufficientStake(s.active, amount);
        uint256 remaining = s.active - amount;
        uint256 minimum = s.role == ROLE_PROVIDER ? minProviderStake : minValidatorStake;
        if (remaining != 0 && remaining < minimum) revert StakeRegistryRemainderBelowMinimum(remaining, minimum);
        uint64 ends = _unbondingEndsAt(uint64(block.timestamp));

        s.active -= SafeCast.toUint128(amount);
        s.unbonding += SafeCast.toUint128(amount);
        s.unbondingEnds = ends;
        totalStaked -= amount;
        totalUnbonding += amount;
        emit UnstakeRequested(msg.sender, amount, ends);
        if (s.role == ROLE_VALIDATOR) _updateEligibility(msg.sender, s);
    }

    /**
     * @notice Turns the caller's matured unbonding stake into a credit (see {withdraw}).
     *
     * Requirements: something is unbonding, the unbonding period is over, and the caller is not the
     * provider or a committee member of an open dispute.
     *
     * Emits a {StakeWithdrawn} and a {Credited} event.
     */
    function withdrawStake() external {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert StakeRegistryNothingUnbonding(msg.sender);
        uint64 timestamp = uint64(block.timestamp);
        if (!_unbonded(s.unbondingEnds, timestamp)) revert StakeRegistryStillUnbonding(s.unbondingEnds, timestamp);
        if (s.openDisputes != 0) revert StakeRegistryOpenDisputes(msg.sender, s.openDisputes);

        s.unbonding = 0;
        s.unbondingEnds = 0;
        if (s.active == 0) s.role = ROLE_NONE;
        totalUnbonding -= amount;
        emit StakeWithdrawn(msg.sender, amount);
        _credit(msg.sender, amount, 0);
    }

    /**
     * @notice The stake of `account`: its role (0 none, 1 provider, 2 validator), active and unbonding
     * wei, when the unbonding ends, and how many open disputes involve it.
     */
    function stakes(address account)
        external
        view
        returns (uint8 role, uint256 active, uint256 unbonding, uint64 unbondingEnds, uint32 openDisputes)
    {
        Stake storage s = _stakes[account];
        return (s.role, s.active, s.unbonding, s.unbondingEnds, s.openDisputes);
    }

    /// @notice The number of validators eligible for committees.
    function validatorCount() public view returns (uint256) {
        return _validators.length;
    }

    /// @notice The eligible validator at position `index` (the order committees are drawn in).
    function validatorAt(uint256 index) public view returns (address) {
        return _validators[index];
    }

    /// @notice Whether `account` is a validator eligible for committees.
    function isEligibleValidator(address account) public view returns (bool) {
        return _validatorSlot[account] != 0;
    }

    function _role(address account) internal view returns (uint8) {
        return _stakes[account].role;
    }

    function _activeStake(address account) internal view returns (uint256) {
        return _stakes[account].active;
    }

    /// @dev Stake `account` could lose: active and unbonding.
    function _slashable(address account) internal view returns (uint256) {
        Stake storage s = _stakes[account];
        return uint256(s.active) + s.unbonding;
    }

    function _addOpenDispute(address account) internal {
        _stakes[account].openDisputes += 1;
    }

    function _removeOpenDispute(address account) internal {
        _stakes[account].openDisputes -= 1;
    }

    /**
     * @dev Takes up to `amount` wei from `account`'s stake, active first, then unbonding, and returns
     * what it took: never more than there is, so a resolution cannot fail for want of stake.
     */
    function _slash(address account, uint256 amount, uint256 disputeId) internal returns (uint256 taken) {
        Stake storage s = _stakes[account];
        uint256 fromActive = amount < s.active ? amount : s.active;
        uint256 rest = amount - fromActive;
        uint256 fromUnbonding = rest < s.unbonding ? rest : s.unbonding;
        taken = fromActive + fromUnbonding;
        if (taken == 0) return 0;

        s.active -= uint128(fromActive);
        s.unbonding -= uint128(fromUnbonding);
        totalStaked -= fromActive;
        totalUnbonding -= fromUnbonding;
        emit Slashed(account, disputeId, taken);
        if (s.role == ROLE_VALIDATOR) _updateEligibility(account, s);
    }

    /// @dev Schedule math takes the time as a parameter; only entry points read the clock.
    function _unbondingEndsAt(uint64 timestamp) internal view returns (uint64) {
        return timestamp + unbondingPeriod;
    }

    function _unbonded(uint64 unbondingEnds, uint64 timestamp) internal pure returns (bool) {
        return timestamp >= unbondingEnds;
    }

    function _updateEligibility(address validator, Stake storage s) private {
        bool eligible = s.active >= minValidatorStake;
        uint256 slot = _validatorSlot[validator];
        if (eligible && slot == 0) {
            _validators.push(validator);
            _validatorSlot[validator] = _validators.length;
            emit ValidatorEligibilityChanged(validator, true);
        } else if (!eligible && slot != 0) {
            // Swap with the last and pop: O(1), the order is only what committees are drawn from.
            address last = _validators[_validators.length - 1];
            _validators[slot - 1] = last;
            _validatorSlot[last] = slot;
            _validators.pop();
            _validatorSlot[validator] = 0;
            emit ValidatorEligibilityChanged(validator, false);
        }
    }
}
