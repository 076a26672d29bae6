/*
 * Ethereum transactions the executor sends: EIP-1559 (type 2) and legacy with EIP-155 replay
 * protection; their signing hashes, signatures, raw serialization and hashes; and the reverse,
 * a raw signed transaction decoded and its sender recovered, to check what was stored before a
 * broadcast or what a node returns.
 *
 * Raw forms (Yellow Paper appendix B for RLP, EIP-2718 for typed envelopes):
 *   type 2:  0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, value,
 *                         data, accessList, yParity, r, s])
 *   legacy:  rlp([nonce, gasPrice, gas, to, value, data, v, r, s]), v = chainId * 2 + 35 + y
 * The signing hash is keccak256 of the same without the signature; for legacy EIP-155, with
 * [chainId, 0, 0] in its place. The transaction hash is keccak256 of the raw bytes.
 * The access list is always empty: the engine's calls gain nothing from one.
 */
#ifndef CHAIN_TX_H
#define CHAIN_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chain/address.h"
#include "chain/common.h"
#include "chain/key.h"
#include "chain/secp.h"
#include "chain/u256.h"

/** Transaction types (the EIP-2718 type byte; legacy has none). */
typedef enum en_chain_tx_type_t {
    CHAIN_TX_LEGACY = 0,
    CHAIN_TX_EIP1559 = 2,
} chain_tx_type_t;

/** Length of the signing hash and of the transaction hash. */
#define CHAIN_TX_HASH_LEN 32
/** Largest legacy chain id whose v (chainId * 2 + 36) still fits 64 bits. */
#define CHAIN_TX_LEGACY_CHAIN_ID_MAX ((UINT64_MAX - 36) / 2)

/** A transaction. `data` is borrowed: the caller's, or the decoded raw bytes'. */
typedef struct st_chain_tx_t {
    chain_tx_type_t type;
    uint64_t chain_id;
    uint64_t nonce;
    chain_u256_t max_priority_fee_per_gas; /* type 2 */
    chain_u256_t max_fee_per_gas;          /* type 2 */
    chain_u256_t gas_price;                /* legacy */
    uint64_t gas;
    bool has_to; /* false: contract creation */
    chain_addr_t to;
    chain_u256_t value;
    const uint8_t *data;
    size_t data_len;
} chain_tx_t;

/**
 * An upper bound on the raw size of a signed transaction carrying `data_len` bytes of data:
 * every field at its largest, headers included.
 */
static inline size_t chain_tx_raw_size_max(size_t data_len);

/**
 * Writes the payload whose keccak256 is the signing hash (type byte included for type 2) to
 * `buf` (`cap` bytes; NULL only measures), its length in `*len`. Returns CHAIN_OK,
 * CHAIN_ERR_SHORT_BUFFER, or CHAIN_ERR_UNSUPPORTED for a legacy transaction without a chain id
 * (this code signs only replay-protected ones) or CHAIN_ERR_OVERFLOW for a legacy chain id
 * above CHAIN_TX_LEGACY_CHAIN_ID_MAX.
 */
int chain_tx_encode_unsigned(const chain_tx_t *tx, uint8_t *buf, size_t cap, size_t *len);
/** The signing hash of `tx`. Errors as chain_tx_encode_unsigned, or CHAIN_ERR_NOMEM. */
int chain_tx_signing_hash(const chain_tx_t *tx, uint8_t out[CHAIN_TX_HASH_LEN]);
/**
 * Writes the raw signed transaction for `tx` and `sig` (v or yParity from sig->recid). Errors
 * as chain_tx_encode_unsigned.
 */
int chain_tx_encode_signed(const chain_tx_t *tx, const chain_sig_t *sig, uint8_t *buf, size_t cap,
                           size_t *len);
/**
 * Signs `tx` with `key` and writes the raw transaction to `raw` (`cap` bytes;
 * chain_tx_raw_size_max(tx->data_len) is always enough), its length in `*raw_len` and its hash
 * in `tx_hash` (may be NULL). Deterministic: the same transaction and key give the same bytes,
 * so a re-signed transaction after a crash is the one stored. Errors as
 * chain_tx_encode_unsigned.
 */
int chain_tx_sign(const chain_tx_t *tx, const chain_key_t *key, uint8_t *raw, size_t cap,
                  size_t *raw_len, uint8_t tx_hash[CHAIN_TX_HASH_LEN]);
/** The transaction hash: keccak256 of the raw bytes. */
void chain_tx_hash(const uint8_t *raw, size_t len, uint8_t out[CHAIN_TX_HASH_LEN]);

/**
 * Decodes a raw signed transaction. `tx->data` then points into `raw`. Returns CHAIN_OK; the
 * RLP errors (CHAIN_ERR_TRUNCATED, CHAIN_ERR_NONCANONICAL, CHAIN_ERR_TRAILING, ...);
 * CHAIN_ERR_LENGTH for a wrong number of fields or a `to` that is not 0 or 20 bytes;
 * CHAIN_ERR_TYPE for an RLP string or a list where the other is expected;
 * CHAIN_ERR_UNSUPPORTED for another type (access-list, blob, ...), a non-empty access list or
 * a legacy transaction without EIP-155 replay protection (v 27 or 28, or chain id 0);
 * CHAIN_ERR_OVERFLOW for a legacy chain id above CHAIN_TX_LEGACY_CHAIN_ID_MAX; CHAIN_ERR_SIGNATURE
 * for a v or yParity out of range, a zero r or s, or a high s (invalid since Homestead). Outputs
 * are set only on success.
 */
int chain_tx_decode(chain_tx_t *tx, chain_sig_t *sig, const uint8_t *raw, size_t len);
/** The sender of a signed transaction (as decoded). Errors of signing_hash and recover. */
int chain_tx_recover_sender(chain_addr_t *from, const chain_tx_t *tx, const chain_sig_t *sig);

/* inline definitions */

static inline size_t chain_tx_raw_size_max(size_t data_len)
{
    /* type byte 1, list header 9, chainId/nonce/gas 3 * 9, three fees and value 4 * 33,
     * to 21, data header 9, empty access list 1, v 9, r and s 2 * 33 */
    const size_t overhead = 1 + 9 + 3 * 9 + 4 * 33 + 21 + 9 + 1 + 9 + 2 * 33;
    CHAIN_ASSERT(data_len <= SIZE_MAX - overhead);
    return data_len + overhead;
}

#endif
