// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @title RFC9162
 * @notice Merkle tree hashing and proof verification of RFC 9162 (Certificate Transparency v2),
 * section 2.1: SHA-256, leaf = H(0x00 || data), node = H(0x01 || left || right) (both prefixes live
 * here: {hashLeaf}, and the node hashing inside the verifiers).
 *
 * A port of transparency-dev/merkle proof/verify.go (commit 417fb0c), as is the Python verifier in
 * anchor/merkle/verify.py; both pass the same vectors (tests/vectors/rfc9162).
 *
 * NOTE: OpenZeppelin's MerkleProof hashes sorted pairs with keccak256, which builds a different tree;
 * an RFC 9162 log needs ordered pairs and the SHA-256 precompile.
 *
 * Conventions kept from the Go code: a consistency proof from size 0 is invalid (a log's first
 * checkpoint is its own case), equal sizes need an empty proof and equal roots.
 */
library RFC9162 {
    /**
     * @dev H(0x00 || data), the hash of a leaf's input.
     */
    function hashLeaf(bytes memory data) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), data));
    }

    /**
     * @dev Recomputes the root of a tree of `size` leaves from the leaf hash at `index` and its audit
     * path. Returns `valid = false` (and no root) when `index >= size` or the proof does not have the
     * exact length the tree shape implies.
     */
    function rootFromInclusionProof(uint256 index, uint256 size, bytes32 leafHash, bytes32[] calldata proof)
        internal
        view
        returns (bool valid, bytes32 root)
    {
        if (index >= size) return (false, bytes32(0));
        (uint256 inner, uint256 border) = _decomposeInclusionProof(index, size);
        if (proof.length != inner + border) return (false, bytes32(0));
        root = leafHash;
        // Node hashing H(0x01 || left || right) is done in assembly: the 65 bytes are written past the
        // free memory pointer (never advanced) and hashed by the SHA-256 precompile (address 2), so a
        // long proof costs no memory expansion and no abi.encodePacked copy per node: about 190 gas a
        // node less, which keeps {CheckpointLog-anchor} under 80k gas. The precompile only fails when
        // out of gas. The length check above keeps every calldataload inside `proof`.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            for { let i := 0 } lt(i, inner) { i := add(i, 1) } {
                let node := calldataload(add(proof.offset, shl(5, i)))
                switch and(shr(i, index), 1)
                case 0 {
                    mstore(add(ptr, 0x01), root)
                    mstore(add(ptr, 0x21), node)
                }
                default {
                    mstore(add(ptr, 0x01), node)
                    mstore(add(ptr, 0x21), root)
                }
                if iszero(staticcall(gas(), 0x02, ptr, 0x41, 0x00, 0x20)) { revert(0x00, 0x00) }
                root := mload(0x00)
            }
            for { let i := inner } lt(i, proof.length) { i := add(i, 1) } {
                mstore(add(ptr, 0x01), calldataload(add(proof.offset, shl(5, i))))
                mstore(add(ptr, 0x21), root)
                if iszero(staticcall(gas(), 0x02, ptr, 0x41, 0x00, 0x20)) { revert(0x00, 0x00) }
                root := mload(0x00)
            }
        }
        return (true, root);
    }

    /**
     * @dev True iff `leafHash` is the leaf at `index` of the tree of `size` leaves whose root is `root`.
     */
    function verifyInclusion(uint256 index, uint256 size, bytes32 leafHash, bytes32[] calldata proof, bytes32 root)
        internal
        view
        returns (bool)
    {
        (bool valid, bytes32 computed) = rootFromInclusionProof(index, size, leafHash, proof);
        return valid && computed == root;
    }

    /**
     * @dev True iff the tree of `size2` leaves with `root2` extends the tree of `size1` leaves with
     * `root1` (RFC 9162 section 2.1.4.2). Requires 0 < size1 <= size2; anything else is false.
     */
    function verifyConsistency(
        uint256 size1,
        uint256 size2,
        bytes32 root1,
        bytes32 root2,
        bytes32[] calldata proof
    ) internal view returns (bool) {
        if (size1 == 0 || size2 < size1) return false;
        if (size1 == size2) return proof.length == 0 && root1 == root2;
        if (proof.length == 0) return false;

        (uint256 inner, uint256 border) = _decomposeInclusionProof(size1 - 1, size2);
        // The proof starts at the level of the largest complete subtree that ends at size1, a unit of
        // 2^shift leaves; inner >= shift + 1 because size2 - 1 >= size1 differs from size1 - 1 above it.
        uint256 shift = _trailingZeros(size1);
        inner -= shift;

        // The proof begins with that subtree's root, unless the old tree is the subtree itself.
        bytes32 seed;
        uint256 start;
        if (size1 == 1 << shift) {
            seed = root1;
        } else {
            seed = proof[0];
            start = 1;
        }
        if (proof.length != start + inner + border) return false;

        uint256 mask = (size1 - 1) >> shift;
        bytes32 hash1 = seed;
        bytes32 hash2 = seed;
        // hash1 rebuilds the old root, hash2 the new one; node hashing as in {rootFromInclusionProof}.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            let nodes := add(proof.offset, shl(5, start))
            for { let i := 0 } lt(i, inner) { i := add(i, 1) } {
                let node := calldataload(add(nodes, shl(5, i)))
                switch and(shr(i, mask), 1)
                case 0 {
                    // A right sibling exists only in the new tree.
                    mstore(add(ptr, 0x01), hash2)
                    mstore(add(ptr, 0x21), node)
                    if iszero(staticcall(gas(), 0x02, ptr, 0x41, 0x00, 0x20)) { revert(0x00, 0x00) }
                    hash2 := mload(0x00)
                }
                default {
                    mstore(add(ptr, 0x01), node)
                    mstore(add(ptr, 0x21), hash1)
                    if iszero(staticcall(gas(), 0x02, ptr, 0x41, 0x00, 0x20)) { revert(0x00, 0x00) }
                    hash1 := mload(0x00)
                    mstore(add(ptr, 0x21), hash2)
                    if iszero(staticcall(gas(), 0x02, ptr, 0x41, 0x00, 0x20)) { revert(0x00, 0x00) }
                    hash2 := mload(0x00)
                }
            }
            for { let i := add(start, inner) } lt(i, proof.length) { i := add(i, 1) } {
                mstore(add(ptr, 0x01), calldataload(add(proof.offset, shl(5, i))))
                mstore(add(ptr, 0x21), hash1)
                if iszero(staticcall(gas(), 0x02, ptr, 0x41, 0x00, 0x20)) { revert(0x00, 0x00) }
                hash1 := mload(0x00)
                mstore(add(ptr, 0x21), hash2)
                if iszero(staticcall(gas(), 0x02, ptr, 0x41, 0x00, 0x20)) { revert(0x00, 0x00) }
                hash2 := mload(0x00)
            }
        }
        return hash1 == root1 && hash2 == root2;
    }

    /**
     * @dev Splits an inclusion proof's length into the part below the point where the path to `index`
     * leaves the right border of the tree (inner) and the left siblings on that border (border).
     */
    function _decomposeInclusionProof(uint256 index, uint256 size) private pure returns (uint256 inner, uint256 border) {
        inner = _bitLength(index ^ (size - 1));
        border = _popCount(index >> inner);
    }

    function _bitLength(uint256 x) private pure returns (uint256 n) {
        // Binary search: 9 steps whatever the value, cheaper than a loop over up to 64 bits.
        if (x >> 128 != 0) { x >>= 128; n += 128; }
        if (x >> 64 != 0) { x >>= 64; n += 64; }
        if (x >> 32 != 0) { x >>= 32; n += 32; }
        if (x >> 16 != 0) { x >>= 16; n += 16; }
        if (x >> 8 != 0) { x >>= 8; n += 8; }
        if (x >> 4 != 0) { x >>= 4; n += 4; }
        if (x >> 2 != 0) { x >>= 2; n += 2; }
        if (x >> 1 != 0) { x >>= 1; n += 1; }
        if (x != 0) n += 1;
    }

    function _popCount(uint256 x) private pure returns (uint256 n) {
        // One step per set bit (Kernighan); a tree position has at most 64.
        while (x != 0) {
            x &= x - 1;
            ++n;
        }
    }

    /// @dev Requires x != 0.
    function _trailingZeros(uint256 x) private pure returns (uint256) {
        return _bitLength(x & (~x + 1)) - 1;
    }
}
