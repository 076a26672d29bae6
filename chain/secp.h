/*
 * secp256k1 signatures as Ethereum uses them: recoverable ECDSA over a 32-byte hash, with the
 * signer identified by the address recovered from (hash, signature) rather than by a public key
 * sent along.
 *
 * One process-wide libsecp256k1 context, created and randomized on first use (the
 * randomization blinds signing against timing and power side channels) and read-only after
 * that, so every thread may sign and recover through it without a lock.
 *
 * Signatures travel as 65 bytes r || s || v. Wallets and contracts write v as 27 or 28; some
 * tools write the bare recovery id 0 or 1; both are read. What this module writes is always
 * v = 27 + recovery id with a low s, the one form the intent registry accepts.
 */
#ifndef CHAIN_SECP_H
#define CHAIN_SECP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <secp256k1.h>
#include "chain/address.h"
#include "chain/common.h"

/** Length of a serialized signature: r (32), s (32), v (1). */
#define CHAIN_SIG_LEN 65
/** Length of a private key and of a message hash. */
#define CHAIN_SECP_KEY_LEN 32
/** Length of an uncompressed public key: 0x04, x (32), y (32). */
#define CHAIN_SECP_PUBKEY_LEN 65

/** chain_sig_parse: refuse s above n/2 (the form the registry and Ethereum txs require). */
#define CHAIN_SIG_STRICT 0x1

/** A recoverable signature: r and s big-endian, and the recovery id (0 or 1). */
typedef struct st_chain_sig_t {
    uint8_t r[32];
    uint8_t s[32];
    uint8_t recid;
} chain_sig_t;

/**
 * The process-wide context, created and randomized on the first call (thread-safe). Aborts
 * when it cannot be created or the kernel gives no randomness, since signing without blinding
 * is not something to fall back to silently.
 */
const secp256k1_context *chain_secp_context(void);

/**
 * Signs `hash` with the private key `seckey`: deterministic (RFC 6979) and low-s, like every
 * Ethereum client. Returns CHAIN_OK, or CHAIN_ERR_KEY when `seckey` is zero or not below the
 * curve order (nothing is written to `sig` then).
 */
int chain_secp_sign(chain_sig_t *sig, const uint8_t hash[CHAIN_SECP_KEY_LEN],
                    const uint8_t seckey[CHAIN_SECP_KEY_LEN]);

/**
 * Recovers the address that made `sig` over `hash`. Returns CHAIN_OK, or CHAIN_ERR_SIGNATURE
 * when r or s is zero or not below the curve order, the recovery id is not 0 or 1, or no public
 * key matches. The s-is-low rule is chain_sig_parse's business, not this function's.
 */
int chain_secp_recover(chain_addr_t *addr, const uint8_t hash[CHAIN_SECP_KEY_LEN],
                       const chain_sig_t *sig);

/**
 * Reads a 65-byte r || s || v signature. v may be 0, 1, 27 or 28. With CHAIN_SIG_STRICT in
 * `flags`, an s above n/2 is refused. Returns CHAIN_OK, or CHAIN_ERR_SIGNATURE (and `sig` is
 * untouched) for any other v, a zero or out-of-range r or s, or a high s when strict.
 */
int chain_sig_parse(chain_sig_t *sig, const uint8_t in[CHAIN_SIG_LEN], int flags);
/**
 * Like chain_sig_parse, from "0x" + 130 hex digits; CHAIN_ERR_SYNTAX or CHAIN_ERR_LENGTH for
 * text that is not that.
 */
int chain_sig_parse_hex(chain_sig_t *sig, const char *s, size_t len, int flags);
/** Writes `sig` as r || s || v with v = 27 + recovery id. */
void chain_sig_serialize(const chain_sig_t *sig, uint8_t out[CHAIN_SIG_LEN]);
/** True when s is at most n/2. */
bool chain_sig_is_low_s(const chain_sig_t *sig);

/**
 * The convenience most callers want: parse the 65 bytes (with `flags`), then recover the
 * signer. Errors as chain_sig_parse and chain_secp_recover.
 */
int chain_secp_recover_bytes(chain_addr_t *addr, const uint8_t hash[CHAIN_SECP_KEY_LEN],
                             const uint8_t sig[CHAIN_SIG_LEN], int flags);

/** The address of an uncompressed public key (0x04 || x || y): keccak256(x || y)[12:]. */
void chain_secp_pubkey_address(chain_addr_t *addr, const uint8_t pub[CHAIN_SECP_PUBKEY_LEN]);
/**
 * The address of private key `seckey`. Returns CHAIN_OK, or CHAIN_ERR_KEY for an invalid key.
 */
int chain_secp_seckey_address(chain_addr_t *addr, const uint8_t seckey[CHAIN_SECP_KEY_LEN]);

#endif
