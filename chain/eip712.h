/*
 * EIP-712 typed structured data: the hashing of the FlowPay PaymentIntent that owners sign
 * (api.md, "The on-chain side"), its verification, and the eth_signTypedData_v4 payload that
 * the API hands to wallets.
 *
 * hashStruct(s) = keccak256(typeHash || encodeData(s)), typeHash = keccak256(encodeType), and
 * encodeData is one 32-byte word per member: atomic values ABI-encoded, `string` and `bytes` as
 * the keccak256 of their contents, a nested struct as its hashStruct. The signed digest is
 * keccak256(0x19 0x01 || domainSeparator || hashStruct(message)).
 *
 * The generic part (chain_eip712_struct_*) encodes any struct member by member; the caller
 * supplies the encodeType string and the members in its order. The PaymentIntent functions are
 * built on it, and their member list exists once (eip712.c) for both the hash and the JSON.
 */
#ifndef CHAIN_EIP712_H
#define CHAIN_EIP712_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "chain/address.h"
#include "chain/common.h"
#include "chain/keccak.h"
#include "chain/secp.h"
#include "chain/u256.h"

/** Length of hashes and words. */
#define CHAIN_EIP712_HASH_LEN 32
/** The EIP-712 domain type this code uses (the four members below, in this order). */
#define CHAIN_EIP712_DOMAIN_TYPE                                                                   \
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
/** The PaymentIntent type, exactly as api.md and the registry contract spell it. */
#define CHAIN_INTENT_TYPE                                                                          \
    "PaymentIntent(address owner,address token,address recipient,uint256 amount,"                  \
    "uint64 minInterval,uint64 validAfter,uint64 validUntil,uint32 maxExecutions,bytes32 salt)"
/** The FlowPay domain's name. */
#define CHAIN_INTENT_DOMAIN_NAME "FlowPay"
/** The FlowPay domain's version. */
#define CHAIN_INTENT_DOMAIN_VERSION "1"
/** `validUntil` of an intent without an end. */
#define CHAIN_INTENT_NO_END UINT64_MAX

/** A domain {name, version, chainId, verifyingContract}; strings are NUL-terminated. */
typedef struct st_chain_eip712_domain_t {
    const char *name;
    const char *version;
    uint64_t chain_id;
    chain_addr_t verifying_contract;
} chain_eip712_domain_t;

/** A struct being hashed; see chain_eip712_struct_begin. */
typedef struct st_chain_eip712_struct_t {
    chain_keccak256_ctx_t ctx;
} chain_eip712_struct_t;

/** The signed terms of a payment intent (api.md); `amount` in the token's base units. */
typedef struct st_chain_intent_t {
    chain_addr_t owner;
    chain_addr_t token;
    chain_addr_t recipient;
    chain_u256_t amount;
    uint64_t min_interval;   /* seconds */
    uint64_t valid_after;    /* unix seconds, inclusive */
    uint64_t valid_until;    /* unix seconds, inclusive; CHAIN_INTENT_NO_END for none */
    uint32_t max_executions; /* 0: unlimited */
    uint8_t salt[32];
} chain_intent_t;

/** An intent's schedule, for chain_intent_min_interval. */
typedef enum en_chain_intent_freq_t {
    CHAIN_INTENT_ONCE,
    CHAIN_INTENT_DAILY,
    CHAIN_INTENT_WEEKLY,
    CHAIN_INTENT_MONTHLY,
    CHAIN_INTENT_CUSTOM,
} chain_intent_freq_t;

/**
 * Starts hashing a struct whose encodeType is the NUL-terminated `encoded_type` (the primary
 * type first, then referenced types sorted by name, as EIP-712 specifies).
 */
void chain_eip712_struct_begin(chain_eip712_struct_t *s, const char *encoded_type);
/** Appends a 32-byte word as is: bytes32, or the hashStruct of a nested struct. */
void chain_eip712_put_word(chain_eip712_struct_t *s, const uint8_t word[32]);
/** Appends an address, left-padded with zeros. */
void chain_eip712_put_address(chain_eip712_struct_t *s, const chain_addr_t *a);
/** Appends any uintN value. */
void chain_eip712_put_u256(chain_eip712_struct_t *s, const chain_u256_t *v);
/** Appends a uintN value of at most 64 bits (uint8 to uint64). */
void chain_eip712_put_u64(chain_eip712_struct_t *s, uint64_t v);
/** Appends a `string` or `bytes` member: the keccak256 of its `len` bytes. */
void chain_eip712_put_bytes(chain_eip712_struct_t *s, const void *data, size_t len);
/** Writes hashStruct of everything appended to `out`. */
void chain_eip712_struct_end(chain_eip712_struct_t *s, uint8_t out[CHAIN_EIP712_HASH_LEN]);

/** The domain separator: hashStruct(EIP712Domain) of `d`. */
void chain_eip712_domain_separator(const chain_eip712_domain_t *d,
                                   uint8_t out[CHAIN_EIP712_HASH_LEN]);
/** The signed digest keccak256(0x1901 || domain_separator || struct_hash). */
void chain_eip712_digest(const uint8_t domain_separator[CHAIN_EIP712_HASH_LEN],
                         const uint8_t struct_hash[CHAIN_EIP712_HASH_LEN],
                         uint8_t out[CHAIN_EIP712_HASH_LEN]);

/** Fills `d` with the FlowPay domain for `chain_id` and the registry at `registry`. */
void chain_intent_domain(chain_eip712_domain_t *d, uint64_t chain_id, const chain_addr_t *registry);
/** hashStruct(PaymentIntent): the intent's `onChainId`, the registry's intent id. */
void chain_intent_hash(const chain_intent_t *intent, uint8_t out[CHAIN_EIP712_HASH_LEN]);
/** The digest the owner signs for `intent` in domain `d`. */
void chain_intent_digest(const chain_eip712_domain_t *d, const chain_intent_t *intent,
                         uint8_t out[CHAIN_EIP712_HASH_LEN]);
/**
 * Checks that the 65-byte `sig` is the owner's signature of `intent` in domain `d`, with the
 * registry's rules: s must be low; v may be 0, 1, 27 or 28. On CHAIN_OK, `normalized` (may be
 * NULL) receives the signature as the registry takes it (v 27 or 28): store and submit that
 * one. Returns CHAIN_ERR_SIGNATURE for a malformed or high-s signature, CHAIN_ERR_SIGNER for a
 * valid signature by anyone but `intent->owner`.
 */
int chain_intent_verify(const chain_eip712_domain_t *d, const chain_intent_t *intent,
                        const uint8_t sig[CHAIN_SIG_LEN], uint8_t normalized[CHAIN_SIG_LEN]);

/**
 * The eth_signTypedData_v4 payload for `intent` in `d`: {"types": {"EIP712Domain": [...],
 * "PaymentIntent": [...]}, "primaryType": "PaymentIntent", "domain": {...}, "message": {...}},
 * every integer as a decimal string (domain.chainId too), addresses EIP-55, salt as "0x" + 64
 * lowercase hex digits. A new reference, or NULL when out of memory.
 */
json_t *chain_intent_typed_data(const chain_eip712_domain_t *d, const chain_intent_t *intent);

/**
 * chain_addr_format through a small memo of this thread's last few addresses: typedData and
 * the intent object name the same few (the registry, the tokens, a busy owner) in answer after
 * answer, and each EIP-55 checksum costs a Keccak-256 run.
 */
void chain_eip712_addr_text(const chain_addr_t *a, char out[CHAIN_ADDR_STR_SIZE]);

/**
 * chain_intent_typed_data's JSON written straight into `buf`, byte for byte what json_dumpb
 * with JSON_COMPACT makes of it, without building it. Returns the length (no NUL is written),
 * or 0 when it does not fit in `cap` or the domain's name or version is not plain ASCII
 * (the caller then takes chain_intent_typed_data).
 */
size_t chain_intent_typed_data_render(const chain_eip712_domain_t *d, const chain_intent_t *intent,
                                      char *buf, size_t cap);

/**
 * The `minInterval` api.md derives from a schedule: 0 for a one-off, otherwise
 * period - min(period / 10, 300), the period being 86400 (daily), 604800 (weekly), 2419200
 * (monthly) or `interval_s` (custom; ignored otherwise). The slack lets an execution that ran
 * late by up to 5 minutes keep the next one on time.
 */
uint64_t chain_intent_min_interval(chain_intent_freq_t freq, uint64_t interval_s);

#endif
