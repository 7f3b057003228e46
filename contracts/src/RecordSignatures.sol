// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/**
 * @title RecordSignatures
 * @notice The EIP-712 typed data a provider signs for each record, as anchor/signing.py builds it:
 * domain {name "toploc-audit", version "1", chainId, verifyingContract: this contract} and message
 * InferenceRecord(bytes32 recordDigest). The domain binds a signature to one chain and one
 * deployment, so it cannot be replayed on another. OpenZeppelin's EIP712 builds the domain (and
 * answers EIP-5267's eip712Domain()); its ECDSA refuses malleable (high-s) signatures, as the recorder
 * does at ingest.
 */
abstract contract RecordSignatures is EIP712 {
    bytes32 private constant _RECORD_TYPEHASH = keccak256("InferenceRecord(bytes32 recordDigest)");

    constructor() EIP712("toploc-audit", "1") {}

    /// @notice The EIP-712 domain separator of this deployment on the current chain.
    function domainSeparator() public view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /**
     * @notice keccak256(0x1901 || domainSeparator || hashStruct(InferenceRecord(recordDigest))): the
     * hash a provider's signature over `recordDigest` signs.
     */
    function recordTypedDataHash(bytes32 recordDigest) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(_RECORD_TYPEHASH, recordDigest)));
    }

    /// @dev The signer of `recordDigest`, or address(0) for a malformed or malleable signature.
    function _recordSigner(bytes32 recordDigest, bytes calldata signature) internal view returns (address) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(recordTypedDataHash(recordDigest), signature);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }
}
