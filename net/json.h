/*
 * Strict JSON request bodies and JSON responses, with jansson.
 *
 * A body is accepted when: its Content-Type is application/json (charset=utf-8 the only
 * parameter allowed; otherwise 415), it is at most the limit (1 MiB by default; otherwise 413),
 * and it parses as one JSON object (otherwise 400) with no duplicated key, no "\u0000" in a
 * string, valid UTF-8 and nothing after it. A validator then checks a flat object against a
 * table of fields: unknown fields, missing required fields and wrong types are each reported
 * with the field's name, all of them at once (up to NET_JSON_MAX_ERRORS).
 *
 * Numbers. jansson reads a number with a fraction or an exponent ("1.0", "1e3") as a real and
 * any other as an integer (json_int_t, 64 bits), and fails the whole parse on an integer beyond
 * int64 ("too big integer"). We keep that default: JSON_DECODE_INT_AS_REAL would turn every
 * integer into a double and silently lose precision above 2^53. So:
 * - NET_JSON_INTEGER accepts only a JSON integer within int64: "1.0" and "1e3" are refused
 *   even though they are whole, because the API documents integers and a client sending 1.0 has
 *   a float somewhere that will one day send 1.5;
 * - a number beyond int64 (or beyond double) anywhere in the body is a 400 naming the field
 *   that holds it ("constraints.x[1]"): jansson's error position is the end of that number,
 *   and a small tokenizer walks the body up to there to recover its path;
 * - amounts are NET_JSON_DECIMAL: a JSON string such as "100.5" (api.md: never floats).
 *
 * The response helpers serialise into the request's memory pool (no malloc per answer) and must
 * run on the request's own thread.
 */
#ifndef NET_JSON_H
#define NET_JSON_H

#include <h2o.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_JSON_BODY_LIMIT_DEFAULT (1024 * 1024)
#define NET_JSON_MAX_ERRORS 16
#define NET_JSON_MAX_FIELDS 64         /* entries of one field table */
#define NET_JSON_FIELD_NAME_MAX 95     /* bytes kept of a field's (dotted) name */
#define NET_JSON_ERROR_MESSAGE_MAX 127 /* bytes kept of a message */
#define NET_JSON_DECIMAL_MAX_LEN 100   /* a decimal string's length, in characters */

/** One validation error: which field, and what is wrong, in words for the API's client. */
typedef struct st_net_json_error_t {
    char field[NET_JSON_FIELD_NAME_MAX + 1];
    char message[NET_JSON_ERROR_MESSAGE_MAX + 1];
} net_json_error_t;

/** What a body or an object got wrong: a body-level `detail` (empty when the body parsed) and
 * field errors. Fixed size (about 3.6 KiB): lives on the stack, no allocation. */
typedef struct st_net_json_errors_t {
    char detail[192];
    size_t count;
    bool truncated; /* more errors were found than fit */
    net_json_error_t items[NET_JSON_MAX_ERRORS];
} net_json_errors_t;

/** Kinds of values a field may hold. */
typedef enum en_net_json_kind_t {
    NET_JSON_STRING,  /* any JSON string */
    NET_JSON_DECIMAL, /* a string: digits, optionally '.' and more digits ("0", "100.5") */
    NET_JSON_INTEGER, /* a JSON number without fraction or exponent, within int64 */
    NET_JSON_BOOLEAN,
    NET_JSON_OBJECT, /* validate its members with another table and a prefix */
    NET_JSON_ARRAY,
} net_json_kind_t;

#define NET_JSON_REQUIRED 0x1u /* the field must be present */
#define NET_JSON_NULLABLE 0x2u /* null is accepted in place of the kind */

/** One allowed field of an object. */
typedef struct st_net_json_field_t {
    const char *name;
    net_json_kind_t kind;
    unsigned flags; /* NET_JSON_REQUIRED, NET_JSON_NULLABLE */
    /** STRING: most characters (code points); ARRAY: most elements. 0: no limit beyond the body
     * limit. DECIMAL strings are always at most NET_JSON_DECIMAL_MAX_LEN. */
    size_t max_len;
    /** INTEGER: the inclusive range, applied when min < max. */
    int64_t min, max;
} net_json_field_t;

/** Clears `errs`. */
void net_json_errors_init(net_json_errors_t *errs);
/** Adds an error for `field` (a printf-style message); counts it as truncated when full.
 * Names and messages longer than their buffers are cut on a UTF-8 boundary. */
void net_json_errors_add(net_json_errors_t *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** True when `errs` holds a detail or any field error. */
bool net_json_errors_any(const net_json_errors_t *errs);

/** True when `value` is a Content-Type naming JSON: application/json, case-insensitive, with at
 * most a charset=utf-8 (or "utf-8") parameter. */
bool net_json_content_type_ok(const char *value, size_t len);

/** Parses a request body. Returns 0 with `*out` a new reference to the top-level object, or the
 * status to answer (400, 413 or 415) with `errs` saying why (`detail`, or a field error for an
 * out-of-range number). `content_type` NULL means the header is absent. O(body). */
int net_json_parse_body(const char *content_type, size_t content_type_len, const char *body,
                        size_t body_len, size_t limit, json_t **out, net_json_errors_t *errs);

/** Checks the members of `obj` against `fields` (n <= NET_JSON_MAX_FIELDS); error field names
 * are `prefix.name` (or `name` when `prefix` is NULL or empty). Returns true when it added no
 * error. O(members * n), and stops early once `errs` is full. */
bool net_json_validate(const json_t *obj, const net_json_field_t *fields, size_t n,
                       const char *prefix, net_json_errors_t *errs);

/** True when `s` is a decimal string as NET_JSON_DECIMAL accepts it: no sign, no leading zeros
 * ("0.5" is fine, "00.5" is not), at least one digit on each side of a '.', no exponent. */
bool net_json_is_decimal(const char *s, size_t len);

/** The request body as a validated object, or NULL after answering the problem (400, 413, 415)
 * itself. The caller owns the returned reference. Limit: NET_JSON_BODY_LIMIT_DEFAULT. */
json_t *net_json_read(h2o_req_t *req, const net_json_field_t *fields, size_t n);
/** The detail of a 413 for a body over `limit` bytes, into `out`: net_json_read,
 * net_problem_too_large and h2o's own refusal (net/http_server.c) word it alike. */
void net_json_too_large_detail(char *out, size_t cap, size_t limit);

/** Serialises `body` into the request's pool and answers `status` with `content_type`.
 * Steals the reference to `body`; a NULL `body` (a failed json_pack) answers 500. Returns 0,
 * the value a handler returns. */
int net_json_send_as(h2o_req_t *req, int status, const char *content_type, json_t *body);
/** net_json_send_as with application/json. */
int net_json_send(h2o_req_t *req, int status, json_t *body);

/** The string member `name` of `obj`, or NULL when absent, null or not a string. */
const char *net_json_get_string(const json_t *obj, const char *name);

/**
 * A bounded append-only JSON writer, for hot answers rendered without building jansson objects
 * (a create's 201, typedData): the caller writes the separators and names, and strings come out
 * escaped exactly as jansson's compact dump escapes them, so the bytes are the same. `full` is
 * set once something did not fit (everything after is dropped) or a string was not UTF-8.
 */
typedef struct st_net_json_out_t {
    char *buf;
    size_t cap, len;
    bool full;
} net_json_out_t;

/** Appends `n` bytes as they are. */
void net_json_out_put(net_json_out_t *o, const char *s, size_t n);
/** Appends the NUL-terminated `s` as it is. */
void net_json_out_puts(net_json_out_t *o, const char *s);
/** Appends `s` as a JSON string: '"' and '\\' escaped, control characters as \b \f \n \r \t or
 * \u00XX (upper-case hex), everything else (UTF-8 included) as it is; invalid UTF-8 sets `full`,
 * as json_string refuses it. */
void net_json_out_put_str(net_json_out_t *o, const char *s);

#endif
