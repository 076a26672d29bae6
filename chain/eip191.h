/*
 * EIP-191 version 0x45, "personal_sign": what wallets sign when asked to sign a text, and what
 * Sign-In with Ethereum (EIP-4361) messages are signed with.
 *
 * The signed hash is keccak256("\x19Ethereum Signed Message:\n" || decimal byte length of the
 * message || message). The prefix makes a signed text unusable as a transaction signature; the
 * length is of the bytes (UTF-8), not of the characters.
 */
#ifndef CHAIN_EIP191_H
#define CHAIN_EIP191_H

#include <stddef.h>
#include <stdint.h>
#include "chain/address.h"
#include "chain/common.h"
#include "chain/keccak.h"
#include "chain/secp.h"

/** The hash personal_sign signs for the `len` bytes of `msg`. O(len). */
void chain_eip191_hash(const void *msg, size_t len, uint8_t out[CHAIN_KECCAK256_LEN]);

/**
 * Recovers the address that personal_signed `msg` with the 65-byte `sig` (v 0, 1, 27 or 28;
 * `flags` as chain_sig_parse: CHAIN_SIG_STRICT refuses a high s). Returns CHAIN_OK or
 * CHAIN_ERR_SIGNATURE.
 */
int chain_eip191_recover(chain_addr_t *signer, const void *msg, size_t len,
                         const uint8_t sig[CHAIN_SIG_LEN], int flags);

/**
 * Checks that `sig` over `msg` recovers to `expected`: CHAIN_OK, CHAIN_ERR_SIGNER for another
 * address, or CHAIN_ERR_SIGNATURE for a malformed signature.
 */
int chain_eip191_verify(const chain_addr_t *expected, const void *msg, size_t len,
                        const uint8_t sig[CHAIN_SIG_LEN], int flags);

#endif
