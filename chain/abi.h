/*
 * Solidity ABI encoding of the calls the engine makes (ERC-20 reads, approve and transfer; the
 * intent registry's execute, executeBatch, revoke and views) and decoding of what comes back:
 * return values, revert reasons and the registry's event logs.
 *
 * Selectors and event topics are computed from the canonical signatures below (keccak256, the
 * first 4 bytes for a selector), never typed in as numbers, so a signature and its selector
 * cannot drift apart; the tests compare them with known values. The PaymentIntent is a static
 * tuple: its nine members are encoded in place, one 32-byte word each, in the order of
 * CHAIN_INTENT_TYPE.
 *
 * Encoders write to a caller's buffer, or only measure when it is NULL. Decoders never trust an
 * offset or a length from the data: everything is checked against the bytes there are, and
 * spans they return point into the caller's data.
 */
#ifndef CHAIN_ABI_H
#define CHAIN_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chain/address.h"
#include "chain/common.h"
#include "chain/eip712.h"
#include "chain/u256.h"

/** Length of a function selector. */
#define CHAIN_ABI_SELECTOR_LEN 4
/** Length of an ABI word. */
#define CHAIN_ABI_WORD 32
/** The size of every call below except execute, executeBatch and revoke. */
#define CHAIN_ABI_SMALL_CALL_MAX (CHAIN_ABI_SELECTOR_LEN + 2 * CHAIN_ABI_WORD)
/** Most executions in one executeBatch call. */
#define CHAIN_ABI_BATCH_MAX 1024
/** Longest signature accepted per execution (the registry takes 65 bytes). */
#define CHAIN_ABI_SIG_MAX 4096

/** The registry's PaymentIntent as an ABI tuple type. */
#define CHAIN_ABI_INTENT_TUPLE                                                                     \
    "(address,address,address,uint256,uint64,uint64,uint64,uint32,bytes32)"
/* canonical signatures: the selector of a function is keccak256 of this text, first 4 bytes */
#define CHAIN_ABI_SIG_BALANCE_OF "balanceOf(address)"
#define CHAIN_ABI_SIG_ALLOWANCE "allowance(address,address)"
#define CHAIN_ABI_SIG_DECIMALS "decimals()"
#define CHAIN_ABI_SIG_SYMBOL "symbol()"
#define CHAIN_ABI_SIG_APPROVE "approve(address,uint256)"
#define CHAIN_ABI_SIG_TRANSFER "transfer(address,uint256)"
#define CHAIN_ABI_SIG_EXECUTE "execute(" CHAIN_ABI_INTENT_TUPLE ",bytes,uint32)"
#define CHAIN_ABI_SIG_EXECUTE_BATCH "executeBatch((" CHAIN_ABI_INTENT_TUPLE ",bytes,uint32)[])"
#define CHAIN_ABI_SIG_REVOKE "revoke(" CHAIN_ABI_INTENT_TUPLE ")"
#define CHAIN_ABI_SIG_EXECUTED_COUNT "executedCount(bytes32)"
#define CHAIN_ABI_SIG_LAST_EXECUTED_AT "lastExecutedAt(bytes32)"
#define CHAIN_ABI_SIG_REVOKED "revoked(bytes32)"
/* events: topic0 is keccak256 of this text */
#define CHAIN_ABI_EVENT_EXECUTED "Executed(bytes32,address,address,address,uint256,uint32)"
#define CHAIN_ABI_EVENT_EXECUTION_FAILED "ExecutionFailed(bytes32,uint32,bytes)"
#define CHAIN_ABI_EVENT_REVOKED "Revoked(bytes32)"
/* the revert payloads Solidity itself produces */
#define CHAIN_ABI_SIG_ERROR "Error(string)"
#define CHAIN_ABI_SIG_PANIC "Panic(uint256)"

/** One member of executeBatch. */
typedef struct st_chain_abi_execution_t {
    const chain_intent_t *intent;
    const uint8_t *sig; /* as the registry takes it: 65 bytes, v 27 or 28 */
    size_t sig_len;
    uint32_t count; /* the 0-based index of this execution */
} chain_abi_execution_t;

/** What a revert's data says. */
typedef enum en_chain_abi_revert_kind_t {
    CHAIN_ABI_REVERT_EMPTY,  /* no data: require(false), out of gas, a bare revert() */
    CHAIN_ABI_REVERT_ERROR,  /* Error(string): `message` */
    CHAIN_ABI_REVERT_PANIC,  /* Panic(uint256): `panic_code` (0x11 overflow, 0x12 div by 0...) */
    CHAIN_ABI_REVERT_CUSTOM, /* another selector (a custom error): `selector` */
} chain_abi_revert_kind_t;

/** A decoded revert. `message` points into the caller's data and is not NUL-terminated. */
typedef struct st_chain_abi_revert_t {
    chain_abi_revert_kind_t kind;
    const uint8_t *message;
    size_t message_len;
    chain_u256_t panic_code;
    uint8_t selector[CHAIN_ABI_SELECTOR_LEN];
} chain_abi_revert_t;

/** The registry's events. */
typedef enum en_chain_abi_event_kind_t {
    CHAIN_ABI_EVENT_KIND_EXECUTED = 1,
    CHAIN_ABI_EVENT_KIND_EXECUTION_FAILED,
    CHAIN_ABI_EVENT_KIND_REVOKED,
} chain_abi_event_kind_t;

/** A decoded registry log; members beyond `intent_id` are set as the event has them. */
typedef struct st_chain_abi_event_t {
    chain_abi_event_kind_t kind;
    uint8_t intent_id[32];
    chain_addr_t owner;     /* Executed */
    chain_addr_t recipient; /* Executed */
    chain_addr_t token;     /* Executed */
    chain_u256_t amount;    /* Executed */
    uint32_t count;         /* Executed, ExecutionFailed */
    const uint8_t *reason;  /* ExecutionFailed: revert data, into the caller's data */
    size_t reason_len;
} chain_abi_event_t;

/** The selector of canonical function signature `signature` (NUL-terminated). */
void chain_abi_selector(const char *signature, uint8_t out[CHAIN_ABI_SELECTOR_LEN]);
/** The topic0 of canonical event signature `signature`. */
void chain_abi_topic(const char *signature, uint8_t out[CHAIN_ABI_WORD]);

/*
 * Call data encoders. Each writes to `out` (`cap` bytes; NULL only measures) and sets `*len`.
 * They return CHAIN_OK or CHAIN_ERR_SHORT_BUFFER, and the dynamic ones CHAIN_ERR_LENGTH for a
 * signature above CHAIN_ABI_SIG_MAX bytes or a batch above CHAIN_ABI_BATCH_MAX members.
 */

/** ERC-20 balanceOf(owner). */
int chain_abi_balance_of(uint8_t *out, size_t cap, size_t *len, const chain_addr_t *owner);
/** ERC-20 allowance(owner, spender). */
int chain_abi_allowance(uint8_t *out, size_t cap, size_t *len, const chain_addr_t *owner,
                        const chain_addr_t *spender);
/** ERC-20 decimals(). */
int chain_abi_decimals(uint8_t *out, size_t cap, size_t *len);
/** ERC-20 symbol(). */
int chain_abi_symbol(uint8_t *out, size_t cap, size_t *len);
/** ERC-20 approve(spender, amount). */
int chain_abi_approve(uint8_t *out, size_t cap, size_t *len, const chain_addr_t *spender,
                      const chain_u256_t *amount);
/** ERC-20 transfer(to, amount). */
int chain_abi_transfer(uint8_t *out, size_t cap, size_t *len, const chain_addr_t *to,
                       const chain_u256_t *amount);
/** Registry execute(intent, signature, count). */
int chain_abi_execute(uint8_t *out, size_t cap, size_t *len, const chain_intent_t *intent,
                      const uint8_t *sig, size_t sig_len, uint32_t count);
/** Registry executeBatch(batch), `n` members (0 allowed). O(sum of sizes). */
int chain_abi_execute_batch(uint8_t *out, size_t cap, size_t *len,
                            const chain_abi_execution_t *batch, size_t n);
/** Registry revoke(intent). */
int chain_abi_revoke(uint8_t *out, size_t cap, size_t *len, const chain_intent_t *intent);
/** Registry view executedCount(id): returns the uint32 count of executions so far. */
int chain_abi_executed_count(uint8_t *out, size_t cap, size_t *len, const uint8_t id[32]);
/** Registry view lastExecutedAt(id): returns the uint64 time of the last execution, or 0. */
int chain_abi_last_executed_at(uint8_t *out, size_t cap, size_t *len, const uint8_t id[32]);
/** Registry view revoked(id): returns a bool. */
int chain_abi_revoked(uint8_t *out, size_t cap, size_t *len, const uint8_t id[32]);

/*
 * Return data decoders: `len` bytes at `data` as an eth_call returned them. A single static
 * value must be exactly one word (CHAIN_ERR_LENGTH otherwise: an address without code returns
 * nothing), and its unused high bits zero (CHAIN_ERR_NONCANONICAL otherwise, as Solidity's
 * own decoder refuses them).
 */

/** A uint256. */
int chain_abi_decode_u256(const uint8_t *data, size_t len, chain_u256_t *v);
/** A uintN of at most 64 bits whose value must not exceed `max` (255 for uint8, ...). */
int chain_abi_decode_uint(const uint8_t *data, size_t len, uint64_t max, uint64_t *v);
/** A bool: the word must be 0 or 1. */
int chain_abi_decode_bool(const uint8_t *data, size_t len, bool *v);
/**
 * A single `string` (or `bytes`) return value: its bytes in `*s`, `*s_len`, pointing into
 * `data`, not NUL-terminated and not checked for UTF-8. CHAIN_ERR_TRUNCATED when an offset or
 * length points beyond the data.
 */
int chain_abi_decode_string(const uint8_t *data, size_t len, const uint8_t **s, size_t *s_len);
/**
 * An ERC-20 symbol(): a `string`, or, from early tokens that return bytes32 (MKR), one word
 * read as text up to its first NUL.
 */
int chain_abi_decode_symbol(const uint8_t *data, size_t len, const uint8_t **s, size_t *s_len);
/**
 * A revert's data (from eth_call or eth_estimateGas errors, or ExecutionFailed's `reason`).
 * Error(string) and Panic(uint256) are decoded; another selector is CHAIN_ABI_REVERT_CUSTOM.
 * Returns CHAIN_ERR_LENGTH for 1 to 3 bytes, or the string's errors for a broken Error body.
 */
int chain_abi_decode_revert(const uint8_t *data, size_t len, chain_abi_revert_t *r);
/**
 * A registry log: `n_topics` topics (topic0 first) and `len` bytes of data. Returns CHAIN_OK;
 * CHAIN_ERR_UNSUPPORTED when topic0 is none of the registry's events; CHAIN_ERR_LENGTH for a
 * wrong topic count or data size; CHAIN_ERR_NONCANONICAL for an address or uint32 with dirty
 * high bits; CHAIN_ERR_TRUNCATED for a `reason` reaching beyond the data.
 */
int chain_abi_decode_event(chain_abi_event_t *ev, const uint8_t (*topics)[CHAIN_ABI_WORD],
                           size_t n_topics, const uint8_t *data, size_t len);

#endif
