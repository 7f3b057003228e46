// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "./ECDSA.sol";

/**
 * @title RecordSignatures
 * @notice The EIP-712 typed data a provider signs for each record, as anchor/signing.py builds it:
 * domain {name "toploc-audit", version "1", chainId, verifyingContract: this contract} and message
 * InferenceRecord(bytes32 recordDigest). The domain binds a signature to one chain and one
 * deployment, so it cannot be replayed on another.
 */
abstract contract RecordSignatures {
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _RECORD_TYPEHASH = keccak256("InferenceRecord(bytes32 recordDigest)");
    bytes32 private constant _NAME_HASH = keccak256("toploc-audit");
    bytes32 private constant _VERSION_HASH = keccak256("1");

    // Cached for the chain of deployment; recomputed if the chain forks to a new id.
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    constructor() {
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    /// @notice The EIP-712 domain separator of this deployment on the current chain.
    function domainSeparator() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    /**
     * @notice keccak256(0x1901 || domainSeparator || hashStruct(InferenceRecord(recordDigest))): the
     * hash a provider's signature over `recordDigest` signs.
     */
    function recordTypedDataHash(bytes32 recordDigest) public view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(_RECORD_TYPEHASH, recordDigest));
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    /// @dev The signer of `recordDigest`, or address(0) for a malformed or malleable signature.
    function _recordSigner(bytes32 recordDigest, bytes calldata signature) internal view returns (address) {
        return ECDSA.tryRecover(recordTypedDataHash(recordDigest), signature);
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, block.chainid, address(this)));
    }
}
