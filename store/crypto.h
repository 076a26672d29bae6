/*
 * Encryption at rest for sensitive columns (e-mail, Telegram chat id, stored secrets):
 * AES-256-GCM through wolfSSL, with the key from configuration (DATA_ENCRYPTION_KEY).
 *
 * A sealed value is: version (1 byte, 0x01) | nonce (12 random bytes) | ciphertext | tag (16).
 * Each value is bound to a label naming where it lives ("users.email"), passed as associated
 * data, so a ciphertext copied into another column does not decrypt there. Random 96-bit
 * nonces are safe for far more than the number of values this key will ever seal (2^32 per
 * NIST SP 800-38D). Plaintext never goes to a log.
 */
#ifndef STORE_CRYPTO_H
#define STORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_CRYPTO_OVERHEAD (1 + 12 + 16)

typedef struct st_store_crypto_key_t store_crypto_key_t;

/** Loads a key from 64 hex digits (32 bytes). NULL with `err` set when malformed. The key lives
 * in memory excluded from core dumps and is wiped when freed. */
store_crypto_key_t *store_crypto_key_load(const char *hex, char *err, size_t err_size);
/** Wipes and frees. */
void store_crypto_key_free(store_crypto_key_t *key);
/** Encrypts `len` bytes into `out` (cap >= len + STORE_CRYPTO_OVERHEAD); returns the sealed
 * length, or 0 on failure. */
size_t store_crypto_seal(const store_crypto_key_t *key, const char *label, const uint8_t *plain,
                         size_t len, uint8_t *out, size_t cap);
/** Decrypts and authenticates; false when the key, the label or any byte is wrong. */
bool store_crypto_open(const store_crypto_key_t *key, const char *label, const uint8_t *sealed,
                       size_t len, uint8_t *out, size_t cap, size_t *out_len);
/** A keyed hash (HMAC-SHA256 under a key derived from the master key) for looking a sealed
 * value up by equality without decrypting every row (a "blind index"). */
void store_crypto_blind_index(const store_crypto_key_t *key, const char *label,
                              const uint8_t *plain, size_t len, uint8_t out[32]);

#endif
