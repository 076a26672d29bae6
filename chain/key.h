/*
 * The executor's private key: the one secret in chain/ that signs money-moving transactions.
 *
 * The key lives in a page of its own, mapped for it alone, locked in RAM (mlock: never written
 * to swap) and excluded from core dumps (madvise MADV_DONTDUMP), and wiped with explicit_bzero
 * before that page is unmapped. No function here prints, logs or returns the key bytes; error
 * messages name the file and the rule that failed, never the content. Callers sign through
 * chain_key_sign and identify the key by its address.
 *
 * Loading reads a file (the only I/O in chain/'s pure layer), so that the key need not sit in
 * the environment or on a command line, where /proc/<pid>/environ and ps show it.
 */
#ifndef CHAIN_KEY_H
#define CHAIN_KEY_H

#include <stddef.h>
#include <stdint.h>
#include "chain/address.h"
#include "chain/common.h"
#include "chain/secp.h"

/** A loaded private key; opaque. */
typedef struct st_chain_key_t chain_key_t;

/** Largest key file accepted: "0x", 64 digits and some whitespace fit many times over. */
#define CHAIN_KEY_FILE_MAX 256
/** A size for the error message buffer of chain_key_load_file that fits every message. */
#define CHAIN_KEY_ERR_SIZE 512

/**
 * Loads a key from `len` characters of `s`: 64 hex digits, with or without a leading "0x".
 * Returns CHAIN_OK with `*key` set; CHAIN_ERR_SYNTAX or CHAIN_ERR_LENGTH for text that is not
 * that; CHAIN_ERR_KEY for zero or a value not below the curve order
 * (secp256k1_ec_seckey_verify); CHAIN_ERR_NOMEM when the page cannot be mapped, locked or
 * excluded from dumps (check RLIMIT_MEMLOCK). `*key` is NULL on error.
 */
int chain_key_from_hex(chain_key_t **key, const char *s, size_t len);

/**
 * Loads a key from the file at `path`, which must hold the text chain_key_from_hex takes,
 * optionally surrounded by whitespace (a trailing newline), and must be a regular file that
 * neither group nor others may read, write or execute (mode 0600 or 0400, as ssh demands of
 * private keys). On error, returns the code and writes a one-line English explanation to `err`
 * (`err_size` bytes, CHAIN_KEY_ERR_SIZE is enough; may be NULL): CHAIN_ERR_IO (errno kept) when
 * it cannot be opened or read, or is not a regular file; CHAIN_ERR_PERMISSION for group or
 * other access; CHAIN_ERR_LENGTH for a file above CHAIN_KEY_FILE_MAX bytes; then the errors of
 * chain_key_from_hex. The read buffer is wiped before returning.
 */
int chain_key_load_file(chain_key_t **key, const char *path, char *err, size_t err_size);

/** Wipes and unmaps `key`; NULL is allowed. */
void chain_key_free(chain_key_t *key);

/** The key's address, computed once at load. */
const chain_addr_t *chain_key_address(const chain_key_t *key);

/** Signs `hash` (deterministic, low-s; see chain_secp_sign). Cannot fail for a loaded key. */
void chain_key_sign(const chain_key_t *key, const uint8_t hash[CHAIN_SECP_KEY_LEN],
                    chain_sig_t *sig);

#endif
