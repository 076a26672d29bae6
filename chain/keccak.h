/*
 * Keccak-256, the hash of Ethereum: the original Keccak padding (0x01), not the SHA3-256 of
 * FIPS 202 (0x06), so the two give different digests for the same input.
 *
 * Backed by wolfSSL's SHA-3 with its Keccak-256 flag. The context is opaque storage of a fixed
 * size rather than wolfSSL's own struct, so that including this header does not pull wolfSSL's
 * option macros into every file that hashes (net/ uses wolfSSL with its own configuration).
 */
#ifndef CHAIN_KECCAK_H
#define CHAIN_KECCAK_H

#include <stddef.h>
#include <stdint.h>

/** Digest length in bytes. */
#define CHAIN_KECCAK256_LEN 32
/** Bytes reserved for the backend state; keccak.c checks at compile time that it is enough. */
#define CHAIN_KECCAK256_CTX_SIZE 512

/** An incremental Keccak-256 computation. Plain storage: no heap, no cleanup beyond final. */
typedef struct st_chain_keccak256_ctx_t {
    union {
        uint64_t align_;
        void *align_ptr_;
        uint8_t bytes_[CHAIN_KECCAK256_CTX_SIZE];
    } opaque_;
} chain_keccak256_ctx_t;

/** Starts a computation in `ctx`. */
void chain_keccak256_init(chain_keccak256_ctx_t *ctx);
/** Absorbs `len` bytes of `data` (any length, also 0). O(len). */
void chain_keccak256_update(chain_keccak256_ctx_t *ctx, const void *data, size_t len);
/**
 * Writes the digest of everything absorbed to `out` and wipes `ctx`; call
 * chain_keccak256_init before using `ctx` again.
 */
void chain_keccak256_final(chain_keccak256_ctx_t *ctx, uint8_t out[CHAIN_KECCAK256_LEN]);
/** One-shot: the Keccak-256 digest of `len` bytes of `data` into `out`. */
void chain_keccak256(const void *data, size_t len, uint8_t out[CHAIN_KECCAK256_LEN]);

#endif
