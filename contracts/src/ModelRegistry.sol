// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {StakeRegistry} from "./StakeRegistry.sol";

/**
 * @title ModelRegistry
 * @notice Staked providers declare the models they serve: a name and the model's fingerprint (the
 * SHA-256 over config and weights defined in gpu_core), so validators know which weights to load.
 */
abstract contract ModelRegistry is StakeRegistry {
    /// @notice The longest model name, in bytes.
    uint256 public constant MAX_MODEL_NAME_LENGTH = 128;

    struct Model {
        string name;
        uint64 declaredAt;
    }

    mapping(address provider => mapping(bytes32 fingerprint => Model)) private _models;

    /// @dev Emitted when `provider` declares that it serves the model `fingerprint`, named `name`.
    event ModelDeclared(address indexed provider, bytes32 indexed fingerprint, string name);

    /// @dev `account` has no stake as a provider.
    error ModelRegistryNotProvider(address account);

    /// @dev The name has `length` bytes; it must have 1 to {MAX_MODEL_NAME_LENGTH}.
    error ModelRegistryInvalidName(uint256 length);

    /// @dev The fingerprint is zero.
    error ModelRegistryZeroFingerprint();

    /// @dev `provider` already declared `fingerprint`.
    error ModelRegistryAlreadyDeclared(address provider, bytes32 fingerprint);

    /**
     * @notice Declares that the caller serves the model `fingerprint`, called `name`.
     *
     * Requirements: the caller is a provider with active stake; a name of 1 to
     * {MAX_MODEL_NAME_LENGTH} bytes; a non-zero fingerprint not declared before by the caller.
     *
     * Emits a {ModelDeclared} event.
     */
    function declareModel(string calldata name, bytes32 fingerprint) external {
        if (_role(msg.sender) != ROLE_PROVIDER || _activeStake(msg.sender) == 0) {
            revert ModelRegistryNotProvider(msg.sender);
        }
        uint256 length = bytes(name).length;
        if (length == 0 || length > MAX_MODEL_NAME_LENGTH) revert ModelRegistryInvalidName(length);
        if (fingerprint == bytes32(0)) revert ModelRegistryZeroFingerprint();
        Model storage model = _models[msg.sender][fingerprint];
        if (model.declaredAt != 0) revert ModelRegistryAlreadyDeclared(msg.sender, fingerprint);

        model.name = name;
        model.declaredAt = uint64(block.timestamp);
        emit ModelDeclared(msg.sender, fingerprint, name);
    }

    /// @notice The model `provider` declared with `fingerprint`: its name and when (0 if never).
    function models(address provider, bytes32 fingerprint) external view returns (string memory name, uint64 declaredAt) {
        Model storage model = _models[provider][fingerprint];
        return (model.name, model.declaredAt);
    }
}
