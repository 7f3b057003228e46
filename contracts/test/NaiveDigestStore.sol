// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @title NaiveDigestStore
 * @notice BENCHMARK BASELINE ONLY: what anchoring replaces, one transaction per record that stores
 * its digest on chain. bench/bench_gas.py compares its gas per record with {ToplocAudit-anchor}'s.
 */
contract NaiveDigestStore {
    mapping(bytes32 digest => uint256) public storedAt;

    event DigestStored(bytes32 indexed digest, uint256 timestamp);

    function store(bytes32 digest) external {
        storedAt[digest] = block.timestamp;
        emit DigestStored(digest, block.timestamp);
    }
}
