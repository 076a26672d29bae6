/*
 * The intent as the API speaks it (api.md, "Intents"): request bodies checked into an
 * intent_t, the signed terms and typedData that follow from it, the intent object rendered from
 * it, and the status machine. Pure: no I/O, no clock (the caller passes "now"), no randomness
 * (the caller draws a salt when the client sent none).
 *
 * Who does what. The caller (the API handler) parses the body with net_json_read and the tables
 * below (unknown fields, types), resolves the body's "token" through its token registry (a
 * symbol such as "USDC" or an address, whose decimals() it knows), and passes the result in
 * intent_ctx_t. This module checks every rule that needs no I/O, with one {field, message} per
 * fault in net_json_errors_t, so that net_problem_send_errors can answer them as they are.
 *
 * Decisions (api.md leaves them to us):
 * - `once` takes maxExecutions absent, null, 0 or 1 and stores 1 (api.md: "once means 1"; the
 *   schema's CHECK says the same); it is answered as 1, not null.
 * - Times in requests may carry any RFC 3339 offset (the instant is unambiguous); fractions of a
 *   second are dropped; startAt may not be before 1970 (validAfter is unsigned), endAt must be
 *   after startAt and after `now` (an intent that can never run is a mistake).
 * - The recipient may be neither the zero address, the owner (a transfer to oneself only burns
 *   gas), the token contract nor the registry (tokens sent there are lost).
 * - name: 1 to 200 characters (code points), no control characters (it reaches notifications).
 * - PATCH replaces `constraints` as a whole (null clears it). A change of token carries the
 *   amounts over in token units ("100.5" stays 100.5 of the new token) when they are not sent.
 *   Changing frequency away from `once` without maxExecutions makes it unlimited; to `once`, 1.
 *   A field sent with its current value changes nothing. A change of signed terms on an intent
 *   that has executed needs a startAt in the future: the new terms are a new registry intent
 *   whose count starts again at 0, and a startAt in the past would make period 0 due at once
 *   and pay a period twice.
 */
#ifndef ACTORS_INTENT_MODEL_H
#define ACTORS_INTENT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "actors/schedule.h"
#include "chain/address.h"
#include "chain/eip712.h"
#include "chain/secp.h"
#include "chain/u256.h"
#include "net/json.h"

/** Most characters (code points) of a name. */
#define INTENT_NAME_MAX_CHARS 200
/** Buffer for a name: 200 code points of at most 4 bytes, and the NUL. */
#define INTENT_NAME_SIZE (4 * INTENT_NAME_MAX_CHARS + 1)
/** Buffer for a token symbol (the registry's; longer ones are the caller's to refuse). */
#define INTENT_SYMBOL_SIZE 32
/** Buffer for a UUID in text form and the NUL. */
#define INTENT_ID_SIZE 37
/** Length of a salt. */
#define INTENT_SALT_LEN 32

/** An intent's status (api.md); INTENT_CONFLICT is only ever a transition's answer. */
typedef enum en_intent_status_t {
    INTENT_CONFLICT = -1,
    INTENT_PENDING_SIGNATURE = 0,
    INTENT_ACTIVE,
    INTENT_PAUSED,
    INTENT_DELAYED,
    INTENT_COMPLETED,
    INTENT_CANCELLED,
    INTENT_FAILED,
} intent_status_t;
/** Number of statuses. */
#define INTENT_STATUS_COUNT 7

/** What happens to an intent; see intent_transition for the table. */
typedef enum en_intent_action_t {
    INTENT_SIGN,        /* the owner's signature arrived (POST .../signature, inline) */
    INTENT_PAUSE,       /* POST .../pause */
    INTENT_RESUME,      /* POST .../resume */
    INTENT_CANCEL,      /* DELETE */
    INTENT_PATCH_TERMS, /* PATCH changing signed terms */
    INTENT_PATCH_META,  /* PATCH changing only name, safetyBuffer or constraints (or nothing) */
    INTENT_COMPLETE,    /* the engine: the schedule is over */
    INTENT_DELAY,       /* the engine: a due execution is held back */
    INTENT_UNDELAY,     /* the engine: the hold is over */
    INTENT_FAIL,        /* the engine: it can never run (revoked on chain, rejected terms) */
} intent_action_t;
/** Number of actions. */
#define INTENT_ACTION_COUNT 10

/** How a PATCH field relates to the signed terms. */
typedef enum en_intent_field_kind_t {
    INTENT_FIELD_UNKNOWN,
    INTENT_FIELD_TERMS,   /* a change goes back to pending_signature with new typedData */
    INTENT_FIELD_META,    /* changes freely */
    INTENT_FIELD_SIGNING, /* salt and signature: how the terms are signed */
} intent_field_kind_t;

/** A token as the caller's registry resolved it. */
typedef struct st_intent_token_t {
    chain_addr_t address;
    uint8_t decimals;
    char symbol[INTENT_SYMBOL_SIZE];
} intent_token_t;

/** constraints, parsed. */
typedef struct st_intent_constraints_t {
    bool has_max_gas;
    chain_u256_t max_gas_price_wei; /* > 0; given in gwei with at most 9 decimals */
    bool has_window;
    sched_window_t window;
} intent_constraints_t;

/** An intent: terms, metadata and state. The caller fills the state from its database row. */
typedef struct st_intent_t {
    char id[INTENT_ID_SIZE]; /* "" until stored */
    char name[INTENT_NAME_SIZE];
    chain_addr_t owner;
    intent_token_t token;
    chain_addr_t recipient;
    chain_u256_t amount;        /* base units, > 0 */
    sched_t sched;              /* frequency, intervalSeconds, startAt, endAt, maxExecutions */
    chain_u256_t safety_buffer; /* base units */
    intent_constraints_t constraints;
    uint8_t salt[INTENT_SALT_LEN];
    uint64_t chain_id;
    chain_addr_t registry; /* the EIP-712 verifyingContract */
    intent_status_t status;
    sched_delay_t delay_reason; /* SCHED_DELAY_NONE unless status is delayed */
    int64_t next_execution;     /* unix seconds, SCHED_NONE: null */
    int64_t last_execution;     /* likewise */
    uint32_t execution_count;
    int64_t created_at, updated_at; /* unix seconds */
} intent_t;

/** What the caller knows when checking a body. */
typedef struct st_intent_ctx_t {
    uint64_t chain_id;
    chain_addr_t registry;
    chain_addr_t owner;          /* the authenticated user's address */
    const intent_token_t *token; /* the body's "token" resolved; NULL when absent, or when the
                                  * caller could not resolve it and has reported that itself */
    int64_t now;                 /* unix seconds */
} intent_ctx_t;

/** What a body said beyond the intent itself. */
typedef struct st_intent_extras_t {
    bool need_salt;     /* POST without "salt": draw 32 random bytes into intent->salt */
    bool has_signature; /* "signature" was sent: verify it (intent_verify_signature) */
    uint8_t signature[CHAIN_SIG_LEN];
    bool terms_changed; /* PATCH: a signed term differs (INTENT_PATCH_TERMS) */
    bool meta_changed;  /* PATCH: name, safetyBuffer or constraints differ */
} intent_extras_t;

/** The fields of a POST /api/intents body, for net_json_read (types and required ones). */
extern const net_json_field_t intent_create_fields[];
/** Number of entries of intent_create_fields. */
extern const size_t intent_create_fields_count;
/** The fields of a PATCH /api/intents/:id body (none required). */
extern const net_json_field_t intent_patch_fields[];
/** Number of entries of intent_patch_fields. */
extern const size_t intent_patch_fields_count;

/* ---- names ---- */

/** "pending_signature", ... for a status (not INTENT_CONFLICT). */
const char *intent_status_name(intent_status_t status);
/** The status named by the NUL-terminated `name`; false for an unknown name. */
bool intent_status_parse(const char *name, intent_status_t *status);
/** "once", "daily", "weekly", "monthly" or "custom". */
const char *intent_freq_name(chain_intent_freq_t freq);
/** The frequency named by the NUL-terminated `name`; false for an unknown name. */
bool intent_freq_parse(const char *name, chain_intent_freq_t *freq);
/** How the PATCH field `name` relates to the signed terms (api.md's list). */
intent_field_kind_t intent_patch_field_kind(const char *name);

/* ---- bodies ---- */

/** The detail intent_from_create and intent_apply_patch give `errs` when a value is malformed
 * (an address, time or hex string that does not parse, a wrong EIP-55 checksum, an unknown
 * member) rather than against a rule: such a body is answered 400, not 422. */
#define INTENT_MALFORMED_DETAIL "some fields are malformed (see errors)"

/**
 * Checks a POST /api/intents body (an object) and fills `out` (pending_signature, no executions)
 * and `ex`. Every fault found is added to `errs` with its field ("amount",
 * "constraints.timeWindow.start", "constraints.timeWindow.days[1]"). Returns true when the body
 * is valid; `out` is complete only then (salt still to draw when ex->need_salt).
 */
bool intent_from_create(const json_t *body, const intent_ctx_t *ctx, intent_t *out,
                        intent_extras_t *ex, net_json_errors_t *errs);
/**
 * Checks a PATCH body against the intent `cur` and writes the patched intent to `out` (status,
 * state and salt as in `cur` unless sent; the caller applies intent_transition with
 * INTENT_PATCH_TERMS or INTENT_PATCH_META as ex->terms_changed says). Same errors as creation.
 */
bool intent_apply_patch(const json_t *body, const intent_t *cur, const intent_ctx_t *ctx,
                        intent_t *out, intent_extras_t *ex, net_json_errors_t *errs);
/**
 * Parses a constraints object (from a body or the database) into `out`; errors name
 * "constraints.<member>". A NULL or JSON null `obj` is "no constraints". Returns true when valid.
 */
bool intent_constraints_parse(const json_t *obj, intent_constraints_t *out,
                              net_json_errors_t *errs);
/** The canonical constraints object ({} when none): to store, and as answered. NULL: no memory. */
json_t *intent_constraints_to_json(const intent_constraints_t *c);
/** intent_constraints_to_json's object written into `buf` as json_dumpb with JSON_COMPACT writes
 * it; returns the length (no NUL is written), or 0 when it does not fit in `cap`. */
size_t intent_constraints_render(const intent_constraints_t *c, char *buf, size_t cap);

/* ---- signed terms ---- */

/** The signed terms (api.md, "How the signed terms follow from the intent"). */
void intent_signed_terms(const intent_t *in, chain_intent_t *out);
/** The intent's EIP-712 domain (FlowPay, 1, chain id, registry). */
void intent_domain(const intent_t *in, chain_eip712_domain_t *out);
/** The onChainId: hashStruct of the signed terms. */
void intent_on_chain_id(const intent_t *in, uint8_t out[CHAIN_EIP712_HASH_LEN]);
/** The typedData the owner signs (a new reference; NULL when out of memory). */
json_t *intent_typed_data(const intent_t *in);
/** chain_intent_verify for the intent's terms and domain: CHAIN_OK when the owner signed. */
int intent_verify_signature(const intent_t *in, const uint8_t sig[CHAIN_SIG_LEN],
                            uint8_t normalized[CHAIN_SIG_LEN]);

/* ---- numbers as text ---- */

/** Room intent_format_u64 and intent_format_int need: a sign or a 20th digit, 19 digits, NUL. */
#define INTENT_INT_SIZE 21
/** `v` in decimal, as printf's "%llu" writes it, and the NUL into `out` (INTENT_INT_SIZE bytes);
 * returns the length. The create path's texts, without printf's cost. */
size_t intent_format_u64(uint64_t v, char *out);
/** `v` in decimal, as printf's "%lld" writes it (INT64_MIN too); otherwise as intent_format_u64. */
size_t intent_format_int(int64_t v, char *out);

/* ---- the object and its states ---- */

/** The intent object of api.md, every field in its order (a new reference; NULL: no memory). */
json_t *intent_to_json(const intent_t *in);
/** Buffer that holds every intent object intent_render_json writes (a name of 800 bytes at most
 * six bytes each once escaped, and the rest under 3 KB). */
#define INTENT_JSON_MAX_SIZE 8192
/**
 * intent_to_json's object written straight into `buf`, byte for byte what json_dumpb with
 * JSON_COMPACT makes of it, without building it: the create path's answer. `on_chain_id` is the
 * intent's onChainId when the caller has it already, NULL to compute it. Returns the length (no
 * NUL is written), or 0 when it does not fit in `cap` or a string is not UTF-8 (the caller then
 * takes intent_to_json, which answers the same or fails the same).
 */
size_t intent_render_json(const intent_t *in, const uint8_t *on_chain_id, char *buf, size_t cap);
/**
 * The status after `action` from `cur`, or INTENT_CONFLICT (409). A repeat of what already holds
 * answers that status (idempotent): cancelling a cancelled intent, pausing a paused one, resuming
 * an active or delayed one, completing a completed one. Pause and resume make no sense before
 * the signature or after the end. Completed and cancelled intents take no change; a failed one
 * may still be cancelled, since its signed terms may still be executable on chain (the answer
 * carries the revoke transaction). Patching goes back to pending_signature when terms change,
 * and keeps the status otherwise. O(1), a table.
 */
intent_status_t intent_transition(intent_status_t cur, intent_action_t action);

#endif
