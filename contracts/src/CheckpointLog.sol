// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {RFC9162} from "./RFC9162.sol";

/**
 * @notice One anchored checkpoint: the log had `size` entries with root `root` at `timestamp`; the
 * checkpoint before it had `previousSize` entries, so it is the first to cover entries
 * [previousSize, size).
 */
struct Checkpoint {
    uint64 previousSize;
    uint64 size;
    bytes32 root;
    uint64 timestamp;
}

/**
 * @title CheckpointLog
 * @notice The anchored history of one append-only RFC 9162 log: checkpoints numbered from 1. Only the
 * log's operator anchors, and every new checkpoint must come with a consistency proof from the
 * previous one, verified here, so no anchored history can be rewritten.
 *
 * Storage is laid out for the gas of {anchor}: each checkpoint is kept as one hash of its
 * {Checkpoint} fields (one new slot per anchor, where size, root and timestamp would need one and a
 * half), the latest one also in full. Its fields are in its {CheckpointAnchored} event; a caller that
 * needs an older checkpoint passes them and the contract checks them against the hash
 * ({isCheckpoint}).
 */
abstract contract CheckpointLog {
    /// @dev One slot. `deploymentBlock` keeps it non-zero, so each update costs 5,000 gas, not 22,100.
    struct Head {
        uint64 count;
        uint64 size;
        uint64 timestamp;
        uint64 deploymentBlock;
    }

    /// @notice The log operator: the only account that may anchor (its key sends transactions and pays gas).
    address public immutable operator;

    /**
     * @notice The address whose key signs the log's receipts (EIP-712 `Receipt`, in this contract's
     * domain): a receipt counts as the log's promise only when signed by it.
     *
     * NOTE: A key apart from {operator}'s, so the recorder that signs receipts never holds the key
     * that moves funds and anchors; the two may be the same address, but need not be.
     */
    address public immutable receiptSigner;

    Head private _head;
    /// @dev The latest root; the RFC 9162 root of the empty log (SHA-256 of nothing) before the first anchor.
    bytes32 private _latestRoot;
    mapping(uint256 id => bytes32) private _checkpointHashes;

    /**
     * @dev Emitted when checkpoint `id` records that the log had `size` entries with root `root`
     * (`previousSize` before it): the fields of its {Checkpoint}.
     */
    event CheckpointAnchored(uint256 indexed id, uint64 previousSize, uint64 size, bytes32 root, uint64 timestamp);

    /// @dev `caller` is not the log operator.
    error CheckpointLogUnauthorizedOperator(address caller);

    /// @dev A checkpoint must grow the log: `newSize` is not above the latest size `size`.
    error CheckpointLogSizeNotIncreasing(uint64 size, uint64 newSize);

    /// @dev The consistency proof does not show that the new tree extends the latest checkpoint.
    error CheckpointLogInconsistent(uint64 size, uint64 newSize);

    /// @dev The checkpoint given as `id` is not the anchored one (or there is no checkpoint `id`).
    error CheckpointLogUnknownCheckpoint(uint256 id);

    /// @dev The operator is the zero address.
    error CheckpointLogZeroOperator();

    /// @dev The receipt signer is the zero address (ecrecover's answer to a bad signature).
    error CheckpointLogZeroReceiptSigner();

    constructor(address operator_, address receiptSigner_) {
        if (operator_ == address(0)) revert CheckpointLogZeroOperator();
        if (receiptSigner_ == address(0)) revert CheckpointLogZeroReceiptSigner();
        operator = operator_;
        receiptSigner = receiptSigner_;
        _head = Head({count: 0, size: 0, timestamp: uint64(block.timestamp), deploymentBlock: uint64(block.number)});
        _latestRoot = sha256("");
    }

    /**
     * @notice Anchors the log's new checkpoint: it has `newSize` entries and root `newRoot`.
     *
     * Requirements: the caller is the operator; `newSize` is above the latest checkpoint's size;
     * `consistencyProof` is the RFC 9162 consistency proof from the latest checkpoint to the new tree
     * (empty for the first checkpoint).
     *
     * Emits a {CheckpointAnchored} event.
     */
    function anchor(uint64 newSize, bytes32 newRoot, bytes32[] calldata consistencyProof) external {
        if (msg.sender != operator) revert CheckpointLogUnauthorizedOperator(msg.sender);
        Head memory head = _head;
        if (newSize <= head.size) revert CheckpointLogSizeNotIncreasing(head.size, newSize);
        if (head.count == 0) {
            // Nothing to be consistent with yet: RFC 9162 has no consistency proof from the empty tree.
            if (consistencyProof.length != 0) revert CheckpointLogInconsistent(0, newSize);
        } else if (!RFC9162.verifyConsistency(head.size, newSize, _latestRoot, newRoot, consistencyProof)) {
            revert CheckpointLogInconsistent(head.size, newSize);
        }

        uint64 id = head.count + 1;
        uint64 timestamp = uint64(block.timestamp);
        _head = Head({count: id, size: newSize, timestamp: timestamp, deploymentBlock: head.deploymentBlock});
        _latestRoot = newRoot;
        _checkpointHashes[id] = hashCheckpoint(Checkpoint(head.size, newSize, newRoot, timestamp));
        emit CheckpointAnchored(id, head.size, newSize, newRoot, timestamp);
    }

    /// @notice The number of checkpoints; the latest has this id.
    function checkpointCount() public view returns (uint256) {
        return _head.count;
    }

    /// @notice The block of the deployment: where to start reading events.
    function deploymentBlock() external view returns (uint256) {
        return _head.deploymentBlock;
    }

    /**
     * @notice The latest checkpoint: its id, size, root and anchoring time. Before the first anchor:
     * id 0, size 0, the empty tree's root and the deployment time.
     */
    function latestCheckpoint() external view returns (uint256 id, uint64 size, bytes32 root, uint64 timestamp) {
        Head memory head = _head;
        return (head.count, head.size, _latestRoot, head.timestamp);
    }

    /// @notice The hash of checkpoint `id`'s fields (see {hashCheckpoint}); zero if there is no such checkpoint.
    function checkpointHash(uint256 id) external view returns (bytes32) {
        return _checkpointHashes[id];
    }

    /// @notice keccak256(abi.encode(checkpoint)): what is stored for each checkpoint.
    function hashCheckpoint(Checkpoint memory checkpoint) public pure returns (bytes32) {
        return keccak256(abi.encode(checkpoint));
    }

    /// @notice Whether `checkpoint` holds the fields of anchored checkpoint `id`.
    function isCheckpoint(uint256 id, Checkpoint calldata checkpoint) public view returns (bool) {
        bytes32 stored = _checkpointHashes[id];
        return stored != bytes32(0) && stored == hashCheckpoint(checkpoint);
    }

    /**
     * @notice Whether `leafHash` is entry `leafIndex` of the log at checkpoint `checkpointId`.
     *
     * Requirements: `checkpoint` holds that checkpoint's fields. A proof that does not fit the tree
     * returns false.
     */
    function verifyInclusion(
        uint256 checkpointId,
        Checkpoint calldata checkpoint,
        uint64 leafIndex,
        bytes32 leafHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        _requireCheckpoint(checkpointId, checkpoint);
        return RFC9162.verifyInclusion(leafIndex, checkpoint.size, leafHash, proof, checkpoint.root);
    }

    /**
     * @notice The RFC 9162 inclusion check on its own: whether `leafHash` is entry `index` of the tree
     * of `size` leaves with root `root`. Anyone may use it to check a proof against any root.
     */
    function verifyInclusionProof(uint256 index, uint256 size, bytes32 leafHash, bytes32[] calldata proof, bytes32 root)
        external
        view
        returns (bool)
    {
        return RFC9162.verifyInclusion(index, size, leafHash, proof, root);
    }

    /**
     * @notice The RFC 9162 consistency check on its own, as {anchor} runs it: whether the tree of
     * `size2` leaves with `root2` extends the tree of `size1` leaves with `root1` (0 < size1 <= size2).
     */
    function verifyConsistencyProof(
        uint256 size1,
        uint256 size2,
        bytes32 root1,
        bytes32 root2,
        bytes32[] calldata proof
    ) external view returns (bool) {
        return RFC9162.verifyConsistency(size1, size2, root1, root2, proof);
    }

    /// @dev Reverts with {CheckpointLogUnknownCheckpoint} unless `checkpoint` is anchored checkpoint `id`.
    function _requireCheckpoint(uint256 id, Checkpoint calldata checkpoint) internal view {
        if (!isCheckpoint(id, checkpoint)) revert CheckpointLogUnknownCheckpoint(id);
    }
}
