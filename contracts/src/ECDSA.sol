// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @title ECDSA
 * @notice Recovers the signer of a 65-byte (r, s, v) secp256k1 signature, refusing malleable ones.
 *
 * Follows OpenZeppelin's ECDSA.tryRecover (contracts/utils/cryptography/ECDSA.sol, v5.1): `s` must be in
 * the lower half of the curve order (EIP-2), so each signed message has exactly one valid signature and
 * a signature cannot be replayed in its flipped form; `v` must be 27 or 28.
 */
library ECDSA {
    /// @dev secp256k1n / 2: the largest `s` accepted.
    uint256 private constant _HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /**
     * @dev The address that signed `digest`, or address(0) when `signature` is not 65 bytes, is
     * malleable (high `s`), has a `v` other than 27 or 28, or does not recover.
     */
    function tryRecover(bytes32 digest, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > _HALF_ORDER) return address(0);
        if (v != 27 && v != 28) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
