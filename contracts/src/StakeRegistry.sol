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
 * while a dispute involving the account is open. A validator joins the pool that dispute committees are
 * drawn from (weighted by active stake) with at least {minValidatorStake}, and stays in it while it holds
 * at least {validatorFloor}: one penalty alone never evicts a validator that joined at the minimum; it
 * gets a {ValidatorStakeLow} notice to top up instead.
 *
 * The pool cannot be reshaped to steer a draw once its randomness is known: a validator keeps its slot
 * for good (leaving sets its weight to 0, nothing moves), and a draw weighs each validator as it stood
 * before the current block ({drawWeightOf}), so stake moved in the drawing block itself counts for
 * nothing.
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
    /// @notice The least active stake with which a validator joins the committee pool, in wei.
    uint256 public immutable minValidatorStake;
    /// @notice The least active stake with which a validator in the pool stays in it, in wei
    /// ({minValidatorStake} less the largest single penalty).
    uint256 public immutable validatorFloor;

    /// @notice Sum of all active stakes: part of the solvency invariant.
    uint256 public totalStaked;
    /// @notice Sum of all unbonding stakes: part of the solvency invariant.
    uint256 public totalUnbonding;

    /// @dev A validator's place in the pool, one slot: its draw weight now, and as it stood before
    /// `changedBlock` (96 bits hold 79 billion ether).
    struct PoolEntry {
        uint96 weight;
        uint96 weightBefore;
        uint56 changedBlock;
        bool eligible;
    }

    mapping(address account => Stake) private _stakes;
    /// @dev Every account that was ever in the pool, in the order it joined (draw order).
    address[] private _validators;
    /// @dev Position in `_validators` plus one; 0 if the account never joined.
    mapping(address validator => uint256) private _validatorSlot;
    mapping(address validator => PoolEntry) private _pool;
    /// @notice The number of validators in the pool now.
    uint256 public eligibleValidatorCount;

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

    /// @dev Emitted when a penalty leaves `validator`, still in the pool, with `active` wei, below the
    /// joining minimum `minimum`: a second penalty before it tops up may evict it.
    event ValidatorStakeLow(address indexed validator, uint256 active, uint256 minimum);

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

    constructor(uint64 unbondingPeriod_, uint256 minProviderStake_, uint256 minValidatorStake_, uint256 validatorFloor_) {
        unbondingPeriod = unbondingPeriod_;
        minProviderStake = minProviderStake_;
        minValidatorStake = minValidatorStake_;
        validatorFloor = validatorFloor_;
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

    /// @notice The number of pool slots: every validator that ever joined (some may weigh 0 now).
    function validatorCount() public view returns (uint256) {
        return _validators.length;
    }

    /// @notice The validator in pool slot `index` (the order committees are drawn in).
    function validatorAt(uint256 index) public view returns (address) {
        return _validators[index];
    }

    /// @notice Whether `account` is a validator in the pool now.
    function isEligibleValidator(address account) public view returns (bool) {
        return _pool[account].eligible;
    }

    /// @notice The weight a draw in this block gives `validator`: its active stake in the pool as it
    /// stood before this block (0 when it was out of the pool).
    function drawWeightOf(address validator) public view returns (uint256) {
        PoolEntry storage e = _pool[validator];
        return e.changedBlock == block.number ? e.weightBefore : e.weight;
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
        PoolEntry storage e = _pool[validator];
        // Hysteresis: joining takes the minimum, staying only the floor.
        bool eligible = s.active >= (e.eligible ? validatorFloor : minValidatorStake);
        if (eligible && e.eligible && s.active < minValidatorStake) {
            emit ValidatorStakeLow(validator, s.active, minValidatorStake);
        }
        if (e.changedBlock != block.number) {
            e.weightBefore = e.weight;
            e.changedBlock = uint56(block.number);
        }
        e.weight = eligible ? SafeCast.toUint96(s.active) : 0;
        if (eligible == e.eligible) return;
        e.eligible = eligible;
        if (eligible) {
            if (_validatorSlot[validator] == 0) {
                _validators.push(validator);
                _validatorSlot[validator] = _validators.length;
            }
            ++eligibleValidatorCount;
        } else {
            --eligibleValidatorCount;
        }
        emit ValidatorEligibilityChanged(validator, eligible);
    }
}
