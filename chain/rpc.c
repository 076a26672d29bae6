#include "chain/rpc.h"
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "chain/hex.h"

/* A call, from chain_rpc_send to the call actor of the same worker. */
#define CHAIN_RPC_MSG_CALL 0x4302

typedef struct st_call_request_t {
    uint32_t count;      /* calls; 1 is sent as an object, more as a batch (array) */
    uint32_t timeout_ms; /* the call's deadline, from its arrival */
    uint64_t first_id;   /* the calls carry ids first_id, first_id + 1, ... */
    bool retry_safe;     /* every call only reads */
    uint32_t body_len;
    char body[]; /* the JSON text, NUL-terminated */
} call_request_t;

/* An endpoint's circuit breaker, shared by every worker (relaxed where a stale read only costs
 * one more or one fewer attempt). */
typedef struct st_breaker_t {
    _Atomic uint32_t failures;      /* consecutive */
    _Atomic uint64_t open_until_ms; /* 0: closed */
    _Atomic uint32_t probing;       /* a half-open probe is out */
} breaker_t;

/* Per worker; touched only by that worker's thread. */
typedef struct st_rpc_worker_t {
    rt_actor_t *actor;
    uint32_t pending; /* calls sent to the actor and not answered yet */
    uint64_t next_id;
} __attribute__((aligned(64))) rpc_worker_t;

struct st_chain_rpc_t {
    chain_rpc_config_t config;
    net_http_client_t *http;
    size_t num_endpoints;
    int http_endpoint[CHAIN_RPC_MAX_ENDPOINTS];
    breaker_t breakers[CHAIN_RPC_MAX_ENDPOINTS];
    atomic_bool stopping;
    int num_workers;
    rpc_worker_t *workers;
};

/* One call in the actor's table. */
typedef struct st_call_t {
    rt_msg_t *request; /* kept (it holds the body and the caller); NULL: the slot is free */
    uint32_t gen;      /* bumped when the slot is freed, so stale timers and responses are
                        * recognised by their tag */
    uint32_t attempts, rounds;
    uint32_t tried; /* endpoints tried since the last backoff, one bit each */
    int32_t endpoint;
    bool in_flight, probe, maybe_sent;
    uint64_t deadline_ms;
    char detail[160]; /* why the last attempt failed */
    rt_actor_timer_t timer;
} call_t;

/* The call actor's state: the table, then a stack of free slots. */
typedef struct st_caller_t {
    chain_rpc_t *rpc;
    uint64_t rng;
    uint32_t capacity, num_free;
    uint32_t *free_slots;
    call_t calls[];
} caller_t;

/* What a node answered, one entry per call. Strings are owned when `owned`. */
typedef struct st_answer_t {
    size_t count;
    bool owned;
    struct {
        int error;
        int64_t code;
        const char *result; /* JSON text in the answer's body (not NUL-terminated), not owned */
        size_t result_len;
        const char *message, *data;
    } items[CHAIN_RPC_MAX_BATCH];
} answer_t;

static uint64_t tag_of(const call_t *call, uint32_t slot)
{
    return (uint64_t)call->gen << 32 | slot;
}

/* The call a tag names, or NULL when it is stale (the call ended, the slot was reused). */
static call_t *call_of_tag(caller_t *c, uint64_t tag, uint32_t *slot)
{
    *slot = (uint32_t)tag;
    if (*slot >= c->capacity)
        return NULL;
    call_t *call = &c->calls[*slot];
    return call->request != NULL && call->gen == (uint32_t)(tag >> 32) ? call : NULL;
}

/* ---- circuit breakers ---- */

static chain_rpc_breaker_t breaker_state(breaker_t *b, uint64_t now)
{
    uint64_t open_until = atomic_load_explicit(&b->open_until_ms, memory_order_acquire);
    if (open_until == 0)
        return CHAIN_RPC_BREAKER_CLOSED;
    return now < open_until ? CHAIN_RPC_BREAKER_OPEN : CHAIN_RPC_BREAKER_HALF_OPEN;
}

/* May an attempt go to this endpoint now? When half-open, only one (the probe) may. */
static bool breaker_acquire(breaker_t *b, uint64_t now, bool *probe)
{
    *probe = false;
    switch (breaker_state(b, now)) {
    case CHAIN_RPC_BREAKER_CLOSED:
        return true;
    case CHAIN_RPC_BREAKER_OPEN:
        return false;
    default: {
        uint32_t expected = 0;
        *probe = atomic_compare_exchange_strong(&b->probing, &expected, 1);
        return *probe;
    }
    }
}

static void breaker_success(breaker_t *b)
{
    atomic_store_explicit(&b->failures, 0, memory_order_relaxed);
    atomic_store_explicit(&b->open_until_ms, 0, memory_order_release);
    atomic_store_explicit(&b->probing, 0, memory_order_release);
}

static void breaker_failure(const chain_rpc_t *rpc, breaker_t *b, bool probe, uint64_t now)
{
    uint32_t failures = atomic_fetch_add_explicit(&b->failures, 1, memory_order_relaxed) + 1;
    if (probe || failures >= rpc->config.breaker_failures)
        atomic_store_explicit(&b->open_until_ms, now + rpc->config.breaker_cooldown_ms,
                              memory_order_release);
    if (probe)
        atomic_store_explicit(&b->probing, 0, memory_order_release);
}

/* The attempt never reached the endpoint (refused here): say nothing about its health. */
static void breaker_release(breaker_t *b, bool probe)
{
    if (probe)
        atomic_store_explicit(&b->probing, 0, memory_order_release);
}

chain_rpc_breaker_t chain_rpc_breaker_state(chain_rpc_t *rpc, size_t i)
{
    CHAIN_ASSERT(i < rpc->num_endpoints);
    return breaker_state(&rpc->breakers[i], rt_now_ms());
}

/* The first endpoint, in order of preference, not tried in this round and whose breaker lets
 * an attempt through; -1 when none. */
static int pick_endpoint(chain_rpc_t *rpc, uint32_t tried, uint64_t now, bool *probe)
{
    for (size_t i = 0; i != rpc->num_endpoints; ++i)
        if ((tried & 1u << i) == 0 && breaker_acquire(&rpc->breakers[i], now, probe))
            return (int)i;
    return -1;
}

/* Like pick_endpoint, without taking a half-open probe: is an immediate failover possible? */
static bool has_untried_endpoint(chain_rpc_t *rpc, uint32_t tried, uint64_t now)
{
    for (size_t i = 0; i != rpc->num_endpoints; ++i) {
        breaker_t *b = &rpc->breakers[i];
        chain_rpc_breaker_t state = breaker_state(b, now);
        if ((tried & 1u << i) == 0 &&
            (state == CHAIN_RPC_BREAKER_CLOSED ||
             (state == CHAIN_RPC_BREAKER_HALF_OPEN && atomic_load(&b->probing) == 0)))
            return true;
    }
    return false;
}

/* ---- reading a node's answer ---- */

static void answer_free(answer_t *a)
{
    if (!a->owned)
        return;
    for (size_t i = 0; i != a->count; ++i) {
        free((char *)a->items[i].message);
        free((char *)a->items[i].data);
    }
}

static char *dump(const json_t *v)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    CHAIN_ASSERT(text != NULL); /* out of memory */
    return text;
}

/*
 * The answer's text is read by a scanner that checks the syntax of every value it passes and
 * keeps the span of each "result", without building it: the caller's reader (rpc_codec.h)
 * parses a result once. Building every result and writing it out again as text cost the lane
 * three passes over every receipt (~0.3 MB of JSON per 200-execution batch). It refuses what
 * jansson (which read whole answers before) refused: bad syntax, invalid UTF-8, U+0000 and
 * unpaired surrogates; except that numbers are not range-checked (a result's reader does that)
 * and nesting deeper than SCAN_DEPTH_MAX is refused (tests/test_rpc.c: hand-made answers).
 */
#define SCAN_DEPTH_MAX 64 /* nesting; deeper answers are not JSON-RPC answers we take */

typedef struct st_scan_t {
    const char *p, *end;
    unsigned depth;
    bool number_seen; /* a number was passed (chain_rpc_result_logs_scan leaves those to jansson) */
} scan_t;

static void scan_ws(scan_t *s)
{
    while (s->p != s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        ++s->p;
}

static bool scan_digits(scan_t *s)
{
    const char *from = s->p;
    while (s->p != s->end && *s->p >= '0' && *s->p <= '9')
        ++s->p;
    return s->p != from;
}

/* Passes the rest of a UTF-8 sequence whose lead byte `lead` was read; false when it is not
 * well-formed (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static bool scan_utf8_tail(scan_t *s, unsigned char lead)
{
    size_t more = lead >= 0xc2 && lead <= 0xdf   ? 1
                  : lead >= 0xe0 && lead <= 0xef ? 2
                  : lead >= 0xf0 && lead <= 0xf4 ? 3
                                                 : 0;
    /* the second byte's range narrows after E0, ED, F0 and F4 */
    unsigned char lo = lead == 0xe0 ? 0xa0 : lead == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = lead == 0xed ? 0x9f : lead == 0xf4 ? 0x8f : 0xbf;
    if (more == 0 || (size_t)(s->end - s->p) < more)
        return false;
    for (size_t k = 0; k != more; ++k, lo = 0x80, hi = 0xbf) {
        unsigned char ch = (unsigned char)*s->p++;
        if (ch < lo || ch > hi)
            return false;
    }
    return true;
}

/* Reads the 4 hex digits of a \u escape into `*cp`. */
static bool scan_hex4(scan_t *s, unsigned *cp)
{
    *cp = 0;
    for (int k = 0; k != 4; ++k, ++s->p) {
        if (s->p == s->end)
            return false;
        unsigned ch = (unsigned char)*s->p, digit = ch - '0', letter = (ch | 0x20) - 'a';
        if (digit > 9 && letter > 5)
            return false;
        *cp = *cp << 4 | (digit <= 9 ? digit : letter + 10);
    }
    return true;
}

/* A \u escape, after its 'u': U+0000 and unpaired surrogates are refused, as jansson (the
 * caller's reader) refuses them. */
static bool scan_unicode_escape(scan_t *s)
{
    unsigned cp, low;
    if (!scan_hex4(s, &cp) || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
        return false;
    if (cp < 0xd800 || cp > 0xdbff)
        return true;
    if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
        return false;
    s->p += 2;
    return scan_hex4(s, &low) && low >= 0xdc00 && low <= 0xdfff;
}

/* Bytes a string holds as they are (printable ASCII but the quote and the backslash): most of
 * an answer's bytes, which the loop below passes with a table lookup each. */
static const bool scan_plain[256] = {
    [0x20 ... 0x21] = true, [0x23 ... 0x5b] = true, [0x5d ... 0x7f] = true};

/* A string, from its opening quote: escapes and UTF-8 checked, control characters refused. */
static bool scan_string(scan_t *s)
{
    for (++s->p; s->p != s->end;) {
        while (s->p != s->end && scan_plain[(unsigned char)*s->p])
            ++s->p;
        if (s->p == s->end)
            return false;
        unsigned char ch = (unsigned char)*s->p++;
        if (ch == '"')
            return true;
        if (ch < 0x20)
            return false;
        if (ch >= 0x80 && !scan_utf8_tail(s, ch))
            return false;
        if (ch != '\\')
            continue;
        if (s->p == s->end)
            return false;
        ch = (unsigned char)*s->p++;
        if (ch == 'u') {
            if (!scan_unicode_escape(s))
                return false;
        } else if (strchr("\"\\/bfnrt", ch) == NULL || ch == '\0') {
            return false;
        }
    }
    return false;
}

static bool scan_number(scan_t *s)
{
    s->number_seen = true;
    if (*s->p == '-')
        ++s->p;
    if (s->p != s->end && *s->p == '0')
        ++s->p;
    else if (!scan_digits(s))
        return false;
    if (s->p != s->end && *s->p == '.' && (++s->p, !scan_digits(s)))
        return false;
    if (s->p != s->end && (*s->p == 'e' || *s->p == 'E')) {
        ++s->p;
        if (s->p != s->end && (*s->p == '+' || *s->p == '-'))
            ++s->p;
        return scan_digits(s);
    }
    return true;
}

static bool scan_word(scan_t *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

/* After a member or an element: true with `more` set at a ',' (and the whitespace after it),
 * true with `more` clear at `close`; false at anything else. */
static bool scan_separator(scan_t *s, char close, bool *more)
{
    scan_ws(s);
    if (s->p == s->end)
        return false;
    char ch = *s->p++;
    if (ch != close && ch != ',')
        return false;
    *more = ch == ',';
    if (*more)
        scan_ws(s);
    return true;
}

static bool scan_value(scan_t *s);

/* The members of an object or the elements of an array, from its opening bracket. */
static bool scan_container(scan_t *s, char close)
{
    if (++s->depth > SCAN_DEPTH_MAX)
        return false;
    ++s->p;
    scan_ws(s);
    if (s->p != s->end && *s->p == close) {
        ++s->p, --s->depth;
        return true;
    }
    for (;;) {
        if (close == '}') {
            if (s->p == s->end || *s->p != '"' || !scan_string(s))
                return false;
            scan_ws(s);
            if (s->p == s->end || *s->p++ != ':')
                return false;
            scan_ws(s);
        }
        if (!scan_value(s))
            return false;
        bool more;
        if (!scan_separator(s, close, &more))
            return false;
        if (!more)
            break;
    }
    --s->depth;
    return true;
}

/* Passes one value (whitespace before it already skipped); false when it is not JSON. */
static bool scan_value(scan_t *s)
{
    if (s->p == s->end)
        return false;
    switch (*s->p) {
    case '"':
        return scan_string(s);
    case '{':
        return scan_container(s, '}');
    case '[':
        return scan_container(s, ']');
    case 't':
        return scan_word(s, "true");
    case 'f':
        return scan_word(s, "false");
    case 'n':
        return scan_word(s, "null");
    default:
        return scan_number(s);
    }
}

/* ---- receipts read by the scanner (chain_rpc_result_receipt_scan) ---- */

/* A span of the text: a value as JSON, or a string's characters. */
typedef struct st_scan_span_t {
    const char *p;
    size_t len;
} scan_span_t;

/* The string at s->p, its characters (between the quotes) in `out`; false when it is not a
 * string, or when it holds an escape (the caller then leaves the text to jansson, which
 * decodes them). */
static bool scan_plain_string(scan_t *s, scan_span_t *out)
{
    if (s->p == s->end || *s->p != '"')
        return false;
    const char *from = s->p + 1;
    if (!scan_string(s))
        return false;
    out->p = from, out->len = (size_t)(s->p - 1 - from);
    return memchr(from, '\\', out->len) == NULL;
}

/* The members of the object at s->p: `fn` reads each value (s at its first character) and
 * returns false to give up. Keys with escapes give up too. */
static bool scan_members(scan_t *s, bool (*fn)(scan_t *s, const scan_span_t *key, void *ctx),
                         void *ctx)
{
    if (s->p == s->end || *s->p != '{' || ++s->depth > SCAN_DEPTH_MAX)
        return false;
    ++s->p;
    scan_ws(s);
    if (s->p != s->end && *s->p == '}')
        return ++s->p, --s->depth, true;
    for (bool more = true; more;) {
        scan_span_t key;
        if (!scan_plain_string(s, &key))
            return false;
        scan_ws(s);
        if (s->p == s->end || *s->p++ != ':')
            return false;
        scan_ws(s);
        if (!fn(s, &key, ctx) || !scan_separator(s, '}', &more))
            return false;
    }
    --s->depth;
    return true;
}

static bool span_is(const scan_span_t *key, const char *name)
{
    /* the first character tells most names apart without measuring them */
    return key->len != 0 && key->p[0] == name[0] && key->len == strlen(name) &&
           memcmp(key->p, name, key->len) == 0;
}

/* The fields of a receipt or a log the engine reads, by name: their spans, once each. */
typedef struct st_scan_fields_t {
    const char *const *names;
    size_t count;
    scan_span_t *values; /* each as JSON text */
    uint32_t seen;       /* bit k: names[k] was read */
} scan_fields_t;

/* One member: a field of `names` (read once: a second one gives up, as jansson would take the
 * last), or anything else, passed. */
static bool scan_field_member(scan_t *s, const scan_span_t *key, void *ctx)
{
    scan_fields_t *f = ctx;
    for (size_t k = 0; k != f->count; ++k) {
        if (!span_is(key, f->names[k]))
            continue;
        if (f->seen & (1u << k))
            return false;
        f->seen |= 1u << k;
        f->values[k].p = s->p;
        if (!scan_value(s))
            return false;
        f->values[k].len = (size_t)(s->p - f->values[k].p);
        return true;
    }
    return scan_value(s);
}

enum {
    LOG_ADDRESS,
    LOG_TOPICS,
    LOG_DATA,
    LOG_BLOCK,
    LOG_BLOCK_HASH,
    LOG_TX,
    LOG_TX_INDEX,
    LOG_INDEX,
    LOG_REMOVED,
    LOG_FIELDS
};
static const char *const log_names[LOG_FIELDS] = {
    "address",         "topics",           "data",     "blockNumber", "blockHash",
    "transactionHash", "transactionIndex", "logIndex", "removed"};

/* The spans of the log object at s->p (each value as JSON text); false to give up. */
static bool scan_log_fields(scan_t *s, scan_span_t v[LOG_FIELDS])
{
    scan_fields_t f = {.names = log_names, .count = LOG_FIELDS, .values = v};
    memset(v, 0, LOG_FIELDS * sizeof(*v));
    /* every field but removed is required (jansson reads a missing one as an error) */
    return scan_members(s, scan_field_member, &f) &&
           (f.seen | 1u << LOG_REMOVED) == (1u << LOG_FIELDS) - 1;
}

/* A span that is a JSON string without escapes: its characters. */
static bool span_string(const scan_span_t *v, const char **p, size_t *len)
{
    /* scan_value passed it: a value that begins with a quote is one string */
    if (v->len < 2 || v->p[0] != '"' || memchr(v->p, '\\', v->len) != NULL)
        return false;
    *p = v->p + 1, *len = v->len - 2;
    return true;
}

static bool span_fixed(const scan_span_t *v, uint8_t *dst, size_t n)
{
    const char *p;
    size_t len;
    return span_string(v, &p, &len) &&
           chain_hex_decode_exact(dst, n, p, len, CHAIN_HEX_0X_REQUIRED) == CHAIN_OK;
}

static bool span_u64(const scan_span_t *v, uint64_t *out)
{
    const char *p;
    size_t len;
    return span_string(v, &p, &len) && chain_rpc_parse_quantity_u64(p, len, out) == CHAIN_OK;
}

/* The topics array of a log: at most 4 hashes. */
static bool span_topics(const scan_span_t *v, chain_rpc_log_t *log)
{
    scan_t s = {.p = v->p, .end = v->p + v->len};
    if (s.p == s.end || *s.p != '[')
        return false;
    ++s.p;
    scan_ws(&s);
    log->num_topics = 0;
    if (s.p != s.end && *s.p == ']')
        return true;
    for (bool more = true; more;) {
        scan_span_t t;
        if (log->num_topics == 4 || !scan_plain_string(&s, &t) ||
            chain_hex_decode_exact(log->topics[log->num_topics++], 32, t.p, t.len,
                                   CHAIN_HEX_0X_REQUIRED) != CHAIN_OK ||
            !scan_separator(&s, ']', &more))
            return false;
    }
    return true;
}

/* Fills `log` from its spans, its data into `data` (exactly its size); false to give up. */
static bool log_from_spans(const scan_span_t v[LOG_FIELDS], chain_rpc_log_t *log, uint8_t *data,
                           size_t size)
{
    const char *p;
    size_t len;
    log->data = data;
    log->removed = span_is(&v[LOG_REMOVED], "true");
    return span_topics(&v[LOG_TOPICS], log) &&
           span_fixed(&v[LOG_ADDRESS], log->address.bytes, 20) &&
           span_u64(&v[LOG_BLOCK], &log->block_number) &&
           span_fixed(&v[LOG_BLOCK_HASH], log->block_hash, 32) &&
           span_fixed(&v[LOG_TX], log->tx_hash, 32) && span_u64(&v[LOG_TX_INDEX], &log->tx_index) &&
           span_u64(&v[LOG_INDEX], &log->log_index) && span_string(&v[LOG_DATA], &p, &len) &&
           chain_hex_decode(data, size, &log->data_len, p, len, CHAIN_HEX_0X_REQUIRED) ==
               CHAIN_OK &&
           log->data_len == size;
}

/* The spans of one log's fields (scan_log_fields). */
typedef scan_span_t log_spans_t[LOG_FIELDS];

/* Fills `out` with the `n` logs of `spans`, whose data take `total` bytes, in one allocation (as
 * chain_rpc_result_logs makes). False to give up, `out` empty. */
static bool logs_from_spans(log_spans_t *spans, size_t n, size_t total, chain_rpc_logs_t *out)
{
    out->items = calloc(1, n * sizeof(chain_rpc_log_t) + total + 1);
    CHAIN_ASSERT(out->items != NULL); /* out of memory */
    uint8_t *data = (uint8_t *)(out->items + n);
    for (size_t i = 0; i != n; ++i) {
        /* a string "0x..." without escapes (scan_log_array checked it): quotes and 0x aside,
         * two digits a byte */
        size_t size = (spans[i][LOG_DATA].len - 4) / 2;
        if (!log_from_spans(spans[i], &out->items[i], data, size)) {
            chain_rpc_logs_free(out);
            return false;
        }
        data += size;
    }
    out->count = n;
    return true;
}

/* The array of logs at s->p (its opening bracket) into `out`: one pass keeps every log's spans
 * (the text is scanned once), then the logs are read from them; s->p ends past the closing
 * bracket. False to give up, `out` empty. */
static bool scan_log_array(scan_t *s, chain_rpc_logs_t *out)
{
    log_spans_t *spans = NULL;
    size_t n = 0, cap = 0, total = 0;
    bool ok = false;
    memset(out, 0, sizeof(*out));
    if (s->p == s->end || *s->p != '[')
        return false;
    ++s->p;
    scan_ws(s);
    bool more = s->p == s->end || *s->p != ']';
    if (!more)
        ++s->p;
    for (; more; ++n) {
        const char *p;
        size_t len;
        if (n == cap) { /* at most CHAIN_RPC_MAX_LOGS, as jansson's reading allows */
            if (n == CHAIN_RPC_MAX_LOGS)
                goto done;
            cap = cap == 0 ? 64 : cap * 2 < CHAIN_RPC_MAX_LOGS ? cap * 2 : CHAIN_RPC_MAX_LOGS;
            log_spans_t *grown = realloc(spans, cap * sizeof(*spans));
            CHAIN_ASSERT(grown != NULL); /* out of memory */
            spans = grown;
        }
        if (!scan_log_fields(s, spans[n]) || !span_string(&spans[n][LOG_DATA], &p, &len) ||
            len < 2 || len % 2 != 0 || !scan_separator(s, ']', &more))
            goto done;
        total += (len - 2) / 2;
    }
    ok = logs_from_spans(spans, n, total, out);
done:
    free(spans);
    return ok;
}

/* The array of logs `v` (a value scan_value passed) into `out`; false to give up. */
static bool scan_logs(const scan_span_t *v, chain_rpc_logs_t *out)
{
    scan_t s = {.p = v->p, .end = v->p + v->len};
    if (scan_log_array(&s, out) && s.p == s.end)
        return true;
    chain_rpc_logs_free(out);
    return false;
}

int chain_rpc_result_logs_scan(const char *json, size_t len, chain_rpc_logs_t *out)
{
    scan_t s = {.p = json, .end = json + len};
    scan_ws(&s);
    if (scan_log_array(&s, out) && (scan_ws(&s), s.p == s.end) && !s.number_seen)
        return CHAIN_OK;
    chain_rpc_logs_free(out);
    /* anything the scan does not take, numbers included (jansson refuses those out of its
     * range): jansson's reading, with its verdict */
    return chain_rpc_result_logs(json, len, out);
}

enum {
    RC_TX,
    RC_STATUS,
    RC_BLOCK,
    RC_BLOCK_HASH,
    RC_GAS,
    RC_PRICE,
    RC_CONTRACT,
    RC_LOGS,
    RC_FIELDS
};
static const char *const receipt_names[RC_FIELDS] = {
    "transactionHash",   "status",          "blockNumber", "blockHash", "gasUsed",
    "effectiveGasPrice", "contractAddress", "logs"};

/* The receipt object's fields from their spans; false to give up. */
static bool receipt_from_spans(const scan_span_t v[RC_FIELDS], uint32_t seen,
                               chain_rpc_receipt_t *r)
{
    uint64_t status;
    const char *p;
    size_t len;
    memset(r, 0, sizeof(*r));
    if ((seen & 0x9f) != 0x9f || !span_fixed(&v[RC_TX], r->tx_hash, 32) ||
        !span_u64(&v[RC_STATUS], &status) || !span_u64(&v[RC_BLOCK], &r->block_number) ||
        !span_fixed(&v[RC_BLOCK_HASH], r->block_hash, 32) || !span_u64(&v[RC_GAS], &r->gas_used))
        return false;
    r->success = status == 1;
    r->has_effective_gas_price = (seen & 1u << RC_PRICE) && !span_is(&v[RC_PRICE], "null");
    if (r->has_effective_gas_price &&
        (!span_string(&v[RC_PRICE], &p, &len) ||
         chain_rpc_parse_quantity_u256(p, len, &r->effective_gas_price) != CHAIN_OK))
        return false;
    r->has_contract_address = (seen & 1u << RC_CONTRACT) && !span_is(&v[RC_CONTRACT], "null");
    if (r->has_contract_address && !span_fixed(&v[RC_CONTRACT], r->contract_address.bytes, 20))
        return false;
    return scan_logs(&v[RC_LOGS], &r->logs);
}

int chain_rpc_result_receipt_scan(const char *json, size_t len, chain_rpc_receipt_t *out,
                                  bool *found)
{
    scan_t s = {.p = json, .end = json + len};
    scan_span_t v[RC_FIELDS] = {0};
    scan_fields_t f = {.names = receipt_names, .count = RC_FIELDS, .values = v};
    scan_ws(&s);
    bool object = s.p != s.end && *s.p == '{';
    if (object && scan_members(&s, scan_field_member, &f) && (scan_ws(&s), s.p == s.end) &&
        receipt_from_spans(v, f.seen, out)) {
        *found = true;
        return CHAIN_OK;
    }
    /* null, or anything the scan does not take: jansson's reading, with its verdict */
    return chain_rpc_result_receipt(json, len, out, found);
}

/* ---- a block's transactions (chain_rpc_result_block_txs_all) ---- */

typedef struct st_txs_all_t {
    bool (*pred)(void *ctx, const uint8_t hash[32]);
    void *ctx;
    bool seen; /* the "transactions" member was read */
} txs_all_t;

/* One member of a block: "transactions" is read as an array of hashes, each of which must
 * satisfy the predicate (the first that does not ends the scan: the answer is known); the
 * others are passed. */
static bool scan_txs_member(scan_t *s, const scan_span_t *key, void *ctx)
{
    txs_all_t *t = ctx;
    if (!span_is(key, "transactions"))
        return scan_value(s);
    if (t->seen || s->p == s->end || *s->p != '[') /* doubled, or not an array */
        return false;
    t->seen = true;
    ++s->p;
    scan_ws(s);
    if (s->p != s->end && *s->p == ']')
        return ++s->p, true;
    for (bool more = true; more;) {
        scan_span_t v;
        uint8_t hash[32];
        if (!scan_plain_string(s, &v) ||
            chain_hex_decode_exact(hash, 32, v.p, v.len, CHAIN_HEX_0X_REQUIRED) != CHAIN_OK ||
            !t->pred(t->ctx, hash) || !scan_separator(s, ']', &more))
            return false;
    }
    return true;
}

bool chain_rpc_result_block_txs_all(const char *json, size_t len,
                                    bool (*pred)(void *ctx, const uint8_t hash[32]), void *ctx)
{
    scan_t s = {.p = json, .end = json + len};
    txs_all_t t = {.pred = pred, .ctx = ctx};
    scan_ws(&s);
    return scan_members(&s, scan_txs_member, &t) && (scan_ws(&s), s.p == s.end) && t.seen;
}

/* The spans of one JSON-RPC response object's members (len 0: absent). */
typedef struct st_scan_response_t {
    const char *id, *result, *error;
    size_t id_len, result_len, error_len;
} scan_response_t;

/* Reads the response object at s->p into `out`; false when it is not a JSON object. */
static bool scan_response(scan_t *s, scan_response_t *out)
{
    memset(out, 0, sizeof(*out));
    if (s->p == s->end || *s->p != '{')
        return false;
    ++s->p;
    scan_ws(s);
    if (s->p != s->end && *s->p == '}')
        return ++s->p, true;
    for (;;) {
        if (s->p == s->end || *s->p != '"')
            return false;
        const char *key = s->p + 1;
        if (!scan_string(s))
            return false;
        size_t key_len = (size_t)(s->p - 1 - key);
        scan_ws(s);
        if (s->p == s->end || *s->p++ != ':')
            return false;
        scan_ws(s);
        const char *value = s->p;
        s->depth = 1;
        if (!scan_value(s))
            return false;
        size_t len = (size_t)(s->p - value);
        if (key_len == 2 && memcmp(key, "id", 2) == 0)
            out->id = value, out->id_len = len;
        else if (key_len == 6 && memcmp(key, "result", 6) == 0)
            out->result = value, out->result_len = len;
        else if (key_len == 5 && memcmp(key, "error", 5) == 0)
            out->error = value, out->error_len = len;
        bool more;
        if (!scan_separator(s, '}', &more))
            return false;
        if (!more)
            return true;
    }
}

/* Fills item `i` from one response; false when it holds neither a result nor an error. */
static bool read_item(answer_t *a, size_t i, const scan_response_t *r)
{
    json_t *error = r->error != NULL && r->error[0] == '{'
                        ? json_loadb(r->error, r->error_len, JSON_DECODE_ANY, NULL)
                        : NULL;
    if (json_is_object(error)) {
        json_t *data = json_object_get(error, "data");
        const char *message = json_string_value(json_object_get(error, "message"));
        a->items[i].code = json_integer_value(json_object_get(error, "code"));
        a->items[i].error = chain_rpc_classify(a->items[i].code, message);
        a->items[i].message = strdup(message != NULL ? message : "");
        CHAIN_ASSERT(a->items[i].message != NULL);
        a->items[i].data = data != NULL && !json_is_null(data) ? dump(data) : NULL;
        json_decref(error);
        return true;
    }
    json_decref(error);
    if (r->result == NULL)
        return false;
    /* a JSON null is a result too (no such receipt); the span points into the body */
    a->items[i].error = CHAIN_RPC_OK;
    a->items[i].result = r->result;
    a->items[i].result_len = r->result_len;
    return true;
}

/* The index of the call a response answers (its id, an integer), or -1. */
static long batch_index(const call_request_t *req, const scan_response_t *r)
{
    if (r->id == NULL || r->id_len > 20)
        return -1;
    char text[24];
    memcpy(text, r->id, r->id_len);
    text[r->id_len] = '\0';
    scan_t s = {.p = text, .end = text + r->id_len};
    if (text[0] == '-' || !scan_digits(&s) || s.p != s.end) /* an integer: no sign, no fraction */
        return -1;
    unsigned long long id = strtoull(text, NULL, 10);
    return id >= req->first_id && id - req->first_id < req->count ? (long)(id - req->first_id) : -1;
}

/* The response objects of a batch answer, from its '['; false when it is not JSON. */
static bool read_batch(const call_request_t *req, scan_t *s, answer_t *a, size_t *answered)
{
    ++s->p;
    scan_ws(s);
    if (s->p != s->end && *s->p == ']')
        return ++s->p, true;
    for (size_t k = 0;; ++k) {
        const char *element = s->p;
        scan_response_t r;
        if (s->p != s->end && *s->p == '{') {
            if (!scan_response(s, &r))
                return false;
            long i = k < CHAIN_RPC_MAX_BATCH ? batch_index(req, &r) : -1; /* bounded */
            if (i >= 0 && a->items[i].result == NULL && a->items[i].message == NULL)
                *answered += read_item(a, (size_t)i, &r);
        } else if ((s->p = element, s->depth = 1, !scan_value(s))) {
            return false;
        }
        bool more;
        if (!scan_separator(s, ']', &more))
            return false;
        if (!more)
            return true;
    }
}

/* Reads `body` as the answer to `req`. Returns false when it is not one: not JSON-RPC, or no
 * element answers any call. Calls left unanswered are CHAIN_RPC_ERR_BAD_RESPONSE. Results point
 * into `body`. */
static bool read_answer(const call_request_t *req, const char *body, size_t len, answer_t *a)
{
    memset(a, 0, sizeof(*a));
    a->count = req->count;
    a->owned = true;
    for (size_t i = 0; i != a->count; ++i)
        a->items[i].error = CHAIN_RPC_ERR_BAD_RESPONSE;
    scan_t s = {.p = body, .end = body + len};
    size_t answered = 0;
    scan_response_t r;
    scan_ws(&s);
    bool ok = false;
    if (s.p != s.end && *s.p == '{') {
        ok = scan_response(&s, &r);
        /* a single answer; for a batch, an error about the whole batch ("batch too large")
         * answers every call */
        bool ours = ok && (req->count == 1 || (r.error != NULL && r.error[0] == '{')) &&
                    ((r.id_len == 4 && memcmp(r.id, "null", 4) == 0) || batch_index(req, &r) == 0 ||
                     req->count > 1);
        for (size_t i = 0; ours && i != a->count; ++i)
            answered += read_item(a, i, &r);
    } else if (s.p != s.end && *s.p == '[' && req->count > 1) { /* a batch only for a batch */
        ok = read_batch(req, &s, a, &answered);
    }
    scan_ws(&s);
    if (!ok || s.p != s.end) { /* not JSON after all: nothing in it counts */
        answer_free(a);
        memset(a, 0, sizeof(*a));
        a->count = req->count, a->owned = true, answered = 0;
        for (size_t i = 0; i != a->count; ++i)
            a->items[i].error = CHAIN_RPC_ERR_BAD_RESPONSE;
    }
    for (size_t i = 0; i != a->count; ++i)
        if (a->items[i].error == CHAIN_RPC_ERR_BAD_RESPONSE && a->items[i].message == NULL) {
            a->items[i].message = strdup("the node's answer has no entry for this call");
            CHAIN_ASSERT(a->items[i].message != NULL);
        }
    return answered != 0;
}

static bool all_rate_limited(const answer_t *a)
{
    for (size_t i = 0; i != a->count; ++i)
        if (a->items[i].error != CHAIN_RPC_ERR_RATE_LIMITED)
            return false;
    return true;
}

/* ---- answering the caller ---- */

static size_t text_size(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

/* Copies `s` into the reply's text at `*off`; sets the item's offset and length fields. */
static void put_text(char *text, uint32_t *off, const char *s, uint32_t *item_off,
                     uint32_t *item_len)
{
    if (s == NULL)
        return;
    size_t len = strlen(s);
    memcpy(text + *off, s, len + 1);
    *item_off = *off;
    *item_len = (uint32_t)len;
    *off += (uint32_t)len + 1;
}

static void release_call(rt_actor_t *self, caller_t *c, uint32_t slot);

/* Sends the reply built from `a` (with `error` for the whole call) and frees the call. */
static void reply(rt_actor_t *self, caller_t *c, uint32_t slot, int error, const answer_t *a)
{
    call_t *call = &c->calls[slot];
    size_t text = 0;
    for (size_t i = 0; i != a->count; ++i)
        text += (a->items[i].result != NULL ? a->items[i].result_len + 1 : 0) +
                text_size(a->items[i].message) + text_size(a->items[i].data);
    size_t head = sizeof(chain_rpc_reply_t) + a->count * sizeof(chain_rpc_item_t);
    rt_msg_t *msg = rt_msg_new(CHAIN_RPC_MSG_REPLY, head + text);
    chain_rpc_reply_t *r = chain_rpc_reply(msg);
    r->error = error;
    r->count = (uint32_t)a->count;
    r->attempts = call->attempts;
    r->endpoint = call->endpoint;
    r->maybe_sent = call->maybe_sent;
    r->text_len = (uint32_t)text;
    char *out = (char *)&r->items[r->count];
    uint32_t off = 0;
    for (size_t i = 0; i != a->count; ++i) {
        chain_rpc_item_t *item = &r->items[i];
        item->error = a->items[i].error;
        item->code = (int32_t)a->items[i].code;
        if (a->items[i].result != NULL) { /* a span of the answer: copied, then terminated */
            memcpy(out + off, a->items[i].result, a->items[i].result_len);
            out[off + a->items[i].result_len] = '\0';
            item->result_off = off, item->result_len = (uint32_t)a->items[i].result_len;
            off += (uint32_t)a->items[i].result_len + 1;
        }
        put_text(out, &off, a->items[i].message, &item->message_off, &item->message_len);
        put_text(out, &off, a->items[i].data, &item->data_off, &item->data_len);
    }
    rt_actor_reply(call->request, msg);
    release_call(self, c, slot);
}

/* Ends the call with `error` in every item, and the last failure's detail as the message. */
static void fail(rt_actor_t *self, caller_t *c, uint32_t slot, int error)
{
    call_t *call = &c->calls[slot];
    call_request_t *req = rt_msg_payload(call->request);
    answer_t a;
    a.count = req->count;
    a.owned = false;
    for (size_t i = 0; i != a.count; ++i) {
        a.items[i].error = error;
        a.items[i].code = 0;
        a.items[i].result = a.items[i].data = NULL;
        a.items[i].message = call->detail[0] != '\0' ? call->detail : chain_rpc_strerror(error);
    }
    reply(self, c, slot, error, &a);
}

/* ---- attempts, failover and backoff ---- */

static void attempt(rt_actor_t *self, caller_t *c, uint32_t slot);

static void release_call(rt_actor_t *self, caller_t *c, uint32_t slot)
{
    call_t *call = &c->calls[slot];
    rpc_worker_t *rw = &c->rpc->workers[self->home];
    rt_actor_timer_cancel(self, &call->timer);
    rt_msg_free(call->request); /* drops its reference to the caller */
    call->request = NULL;
    ++call->gen;
    CHAIN_ASSERT(c->num_free < c->capacity && rw->pending > 0);
    c->free_slots[c->num_free++] = slot;
    --rw->pending;
}

/* xorshift64*: jitter only needs to be spread out, not unpredictable */
static uint64_t next_random(caller_t *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545F4914F6CDD1DULL;
}

/* Waits before the next round of attempts: exponential (base * 2^round, capped) with equal
 * jitter (half fixed, half random) so that callers that failed together do not retry together;
 * never sooner than the node's Retry-After. Gives up when the deadline would pass first. */
static void backoff(rt_actor_t *self, caller_t *c, uint32_t slot, uint32_t retry_after_ms)
{
    call_t *call = &c->calls[slot];
    const chain_rpc_config_t *config = &c->rpc->config;
    uint32_t shift = call->rounds < 16 ? call->rounds : 16;
    uint64_t cap = (uint64_t)config->backoff_base_ms << shift;
    if (cap > config->backoff_max_ms)
        cap = config->backoff_max_ms;
    uint64_t delay = cap / 2 + next_random(c) % (cap / 2 + 1);
    if (delay < retry_after_ms)
        delay = retry_after_ms;
    ++call->rounds;
    call->tried = 0;
    if (rt_now_ms() + delay >= call->deadline_ms) {
        fail(self, c, slot, CHAIN_RPC_ERR_TIMEOUT);
        return;
    }
    rt_actor_timer_start(self, &call->timer, delay, tag_of(call, slot));
}

/* An attempt failed with `error` (the call's outcome if it is the last). Retries when that is
 * safe: a read, or a write that provably never left this process. */
static void on_failure(rt_actor_t *self, caller_t *c, uint32_t slot, int error, bool maybe_sent,
                       uint32_t retry_after_ms, const char *fmt, ...)
{
    call_t *call = &c->calls[slot];
    const call_request_t *req = rt_msg_payload(call->request);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->detail, sizeof(call->detail), fmt, ap);
    va_end(ap);
    call->maybe_sent |= maybe_sent;
    if (!req->retry_safe && call->maybe_sent) {
        fail(self, c, slot, error); /* never resend what a node may have received */
        return;
    }
    if (call->attempts >= c->rpc->config.max_attempts) {
        fail(self, c, slot, error);
        return;
    }
    if (rt_now_ms() >= call->deadline_ms) {
        fail(self, c, slot, CHAIN_RPC_ERR_TIMEOUT);
        return;
    }
    if (retry_after_ms == 0 && has_untried_endpoint(c->rpc, call->tried, rt_now_ms()))
        attempt(self, c, slot); /* fail over at once; recursion bounded by max_attempts */
    else
        backoff(self, c, slot, retry_after_ms);
}

static uint32_t min_u32(uint64_t a, uint64_t b)
{
    return (uint32_t)(a < b ? a : b);
}

/* Sends the call to the next endpoint that will take it. */
static void attempt(rt_actor_t *self, caller_t *c, uint32_t slot)
{
    chain_rpc_t *rpc = c->rpc;
    call_t *call = &c->calls[slot];
    const call_request_t *req = rt_msg_payload(call->request);
    uint64_t now = rt_now_ms();
    if (now >= call->deadline_ms) {
        fail(self, c, slot, CHAIN_RPC_ERR_TIMEOUT);
        return;
    }
    bool probe;
    int ep = pick_endpoint(rpc, call->tried, now, &probe);
    if (ep < 0) {
        if (call->tried != 0) { /* the rest are open: start a new round after a backoff */
            backoff(self, c, slot, 0);
            return;
        }
        if (call->detail[0] == '\0')
            snprintf(call->detail, sizeof(call->detail), "every endpoint's breaker is open");
        fail(self, c, slot, CHAIN_RPC_ERR_UNAVAILABLE);
        return;
    }
    net_http_request_t http = {
        .endpoint = rpc->http_endpoint[ep],
        .method = "POST",
        .body = req->body,
        .body_len = req->body_len,
        .connect_timeout_ms = rpc->config.connect_timeout_ms,
        .timeout_ms = min_u32(call->deadline_ms - now + 1, rpc->config.attempt_timeout_ms)};
    ++call->attempts;
    call->endpoint = ep;
    call->probe = probe;
    call->tried |= 1u << ep;
    int err = net_http_request(self, rpc->http, &http, tag_of(call, slot), NULL);
    if (err == NET_HTTP_OK) {
        call->in_flight = true;
        return;
    }
    breaker_release(&rpc->breakers[ep], probe); /* refused here: says nothing of the node */
    if (err == NET_HTTP_ERR_SHUTDOWN || err == NET_HTTP_ERR_INVALID) {
        snprintf(call->detail, sizeof(call->detail), "%s", net_http_strerror(err));
        fail(self, c, slot,
             err == NET_HTTP_ERR_SHUTDOWN ? CHAIN_RPC_ERR_SHUTDOWN : CHAIN_RPC_ERR_INVALID);
        return;
    }
    on_failure(self, c, slot, CHAIN_RPC_ERR_UNAVAILABLE, false, 0, "endpoint %d: %s", ep,
               net_http_strerror(err));
}

/* An HTTP attempt came back: an answer for the caller, or a failure to retry or report. */
static void on_response(rt_actor_t *self, caller_t *c, const net_http_response_t *resp)
{
    uint32_t slot;
    call_t *call = call_of_tag(c, resp->tag, &slot);
    if (call == NULL || !call->in_flight)
        return; /* stale: the call ended meanwhile */
    call->in_flight = false;
    breaker_t *b = &c->rpc->breakers[call->endpoint];
    uint64_t now = rt_now_ms();
    if (resp->error != NET_HTTP_OK) {
        breaker_failure(c->rpc, b, call->probe, now);
        on_failure(self, c, slot, CHAIN_RPC_ERR_UNAVAILABLE, resp->maybe_sent, 0, "endpoint %d: %s",
                   call->endpoint, net_http_strerror(resp->error));
        return;
    }
    const call_request_t *req = rt_msg_payload(call->request);
    answer_t a;
    bool answered = read_answer(req, resp->body, resp->body_len, &a);
    if (resp->status == 429 || (answered && all_rate_limited(&a))) {
        breaker_failure(c->rpc, b, call->probe, now); /* shed load onto the other endpoints */
        answer_free(&a);
        on_failure(self, c, slot, CHAIN_RPC_ERR_RATE_LIMITED, true, resp->retry_after_ms,
                   "endpoint %d: rate limited (HTTP %d)", call->endpoint, resp->status);
    } else if (!answered) {
        breaker_failure(c->rpc, b, call->probe, now);
        answer_free(&a);
        on_failure(self, c, slot,
                   resp->status == 200 ? CHAIN_RPC_ERR_BAD_RESPONSE : CHAIN_RPC_ERR_UNAVAILABLE,
                   true, 0, "endpoint %d: HTTP %d without a JSON-RPC answer", call->endpoint,
                   resp->status);
    } else {
        breaker_success(b); /* a node's own error (nonce too low...) is an answer too */
        reply(self, c, slot, CHAIN_RPC_OK, &a);
        answer_free(&a);
    }
}

static void on_timer(rt_actor_t *self, caller_t *c, uint64_t tag)
{
    uint32_t slot;
    call_t *call = call_of_tag(c, tag, &slot);
    if (call != NULL && !call->in_flight)
        attempt(self, c, slot);
}

static void on_call(rt_actor_t *self, caller_t *c, rt_msg_t *msg)
{
    /* chain_rpc_send admits at most `capacity` pending calls per worker */
    CHAIN_ASSERT(c->num_free > 0);
    uint32_t slot = c->free_slots[--c->num_free];
    call_t *call = &c->calls[slot];
    const call_request_t *req = rt_msg_payload(msg);
    rt_msg_keep(msg);
    call->request = msg;
    call->attempts = call->rounds = call->tried = 0;
    call->endpoint = -1;
    call->in_flight = call->probe = call->maybe_sent = false;
    call->deadline_ms = rt_now_ms() + req->timeout_ms;
    call->detail[0] = '\0';
    attempt(self, c, slot);
}

/* Answers every call CHAIN_RPC_ERR_SHUTDOWN; HTTP responses still out are dropped by the
 * runtime once this actor has stopped. */
static void on_stop(rt_actor_t *self, caller_t *c)
{
    for (uint32_t slot = 0; slot != c->capacity; ++slot) {
        call_t *call = &c->calls[slot];
        if (call->request == NULL)
            continue;
        if (call->in_flight)
            breaker_release(&c->rpc->breakers[call->endpoint], call->probe);
        snprintf(call->detail, sizeof(call->detail), "the RPC client is stopping");
        fail(self, c, slot, CHAIN_RPC_ERR_SHUTDOWN);
    }
}

static void caller_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    caller_t *c = rt_actor_state(self);
    switch (msg->type) {
    case CHAIN_RPC_MSG_CALL:
        on_call(self, c, msg);
        break;
    case NET_HTTP_MSG_RESPONSE:
        on_response(self, c, net_http_response(msg));
        break;
    case RT_MSG_TIMER:
        on_timer(self, c, msg->corr);
        break;
    case RT_MSG_STOP:
        on_stop(self, c);
        break;
    default:
        CHAIN_ASSERT(!"unexpected message for the RPC call actor");
    }
}

/* ---- the public side ---- */

static uint32_t or_default(uint32_t value, uint32_t fallback)
{
    return value != 0 ? value : fallback;
}

chain_rpc_t *chain_rpc_create(const chain_rpc_config_t *config, net_http_client_t *http, char *err,
                              size_t err_size)
{
    if (config->num_urls == 0 || config->num_urls > CHAIN_RPC_MAX_ENDPOINTS) {
        snprintf(err, err_size, "between 1 and %d RPC URLs are needed", CHAIN_RPC_MAX_ENDPOINTS);
        return NULL;
    }
    chain_rpc_t *rpc = calloc(1, sizeof(*rpc));
    CHAIN_ASSERT(rpc != NULL);
    chain_rpc_config_t c = *config;
    c.urls = NULL; /* not kept: the HTTP client has copied them */
    c.call_timeout_ms = or_default(c.call_timeout_ms, 15000);
    c.attempt_timeout_ms = or_default(c.attempt_timeout_ms, 5000);
    c.connect_timeout_ms = or_default(c.connect_timeout_ms, 2000);
    c.max_attempts = or_default(c.max_attempts, 4);
    c.backoff_base_ms = or_default(c.backoff_base_ms, 100);
    c.backoff_max_ms = or_default(c.backoff_max_ms, 2000);
    c.breaker_failures = or_default(c.breaker_failures, 5);
    c.breaker_cooldown_ms = or_default(c.breaker_cooldown_ms, 10000);
    c.max_calls = or_default(c.max_calls, 256);
    rpc->config = c;
    rpc->http = http;
    for (size_t i = 0; i != config->num_urls; ++i) {
        rpc->http_endpoint[i] = net_http_client_add_endpoint(http, config->urls[i], err, err_size);
        if (rpc->http_endpoint[i] < 0) {
            free(rpc);
            return NULL;
        }
    }
    rpc->num_endpoints = config->num_urls;
    return rpc;
}

void chain_rpc_start(chain_rpc_t *rpc, rt_runtime_t *rt)
{
    CHAIN_ASSERT(rpc->workers == NULL);
    uint32_t cap = rpc->config.max_calls;
    size_t state = sizeof(caller_t) + cap * (sizeof(call_t) + sizeof(uint32_t));
    rpc->num_workers = rt->num_workers;
    rpc->workers = aligned_alloc(64, sizeof(rpc_worker_t) * (size_t)rt->num_workers);
    CHAIN_ASSERT(rpc->workers != NULL);
    memset(rpc->workers, 0, sizeof(rpc_worker_t) * (size_t)rt->num_workers);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    for (int w = 0; w != rt->num_workers; ++w) {
        rt_actor_t *actor = rt_actor_spawn(rt, w, caller_behaviour, state);
        caller_t *c = rt_actor_state(actor); /* zeroed; nothing runs it before its first call */
        c->rpc = rpc;
        c->rng = ((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30) +
                 (uint64_t)(w + 1) * 0x9E3779B97F4A7C15ULL;
        c->capacity = cap;
        c->free_slots = (uint32_t *)&c->calls[cap];
        for (uint32_t i = 0; i != cap; ++i)
            c->free_slots[i] = cap - 1 - i;
        c->num_free = cap;
        rpc->workers[w].actor = actor;
        rpc->workers[w].next_id = 1;
    }
}

void chain_rpc_stop(chain_rpc_t *rpc)
{
    /* set before the stop messages travel, so a caller on the same worker that runs after the
     * actor stopped (and was freed) sees it and never touches the actor */
    atomic_store(&rpc->stopping, true);
    for (int w = 0; rpc->workers != NULL && w != rpc->num_workers; ++w) {
        rt_actor_send_stop(rpc->workers[w].actor);
        rt_actor_release(rpc->workers[w].actor);
    }
}

void chain_rpc_free(chain_rpc_t *rpc)
{
    if (rpc == NULL)
        return;
    free(rpc->workers);
    free(rpc);
}

/* Serialises the calls with ids from `first_id`: an object for one, an array for more. */
static rt_msg_t *encode(const chain_rpc_call_t *calls, size_t n, uint64_t first_id,
                        uint32_t timeout_ms)
{
    json_t *list = json_array();
    bool retry_safe = true, ok = list != NULL;
    for (size_t i = 0; ok && i != n; ++i) {
        json_t *call =
            json_pack("{s:s,s:I,s:s,s:O}", "jsonrpc", "2.0", "id", (json_int_t)(first_id + i),
                      "method", calls[i].method, "params", calls[i].params);
        ok = json_array_append_new(list, call) == 0;
        retry_safe &= chain_rpc_method_is_read(calls[i].method);
    }
    char *body = ok ? json_dumps(n == 1 ? json_array_get(list, 0) : list, JSON_COMPACT) : NULL;
    json_decref(list);
    size_t len = body != NULL ? strlen(body) : 0;
    if (body == NULL || len > CHAIN_RPC_MAX_REQUEST_BYTES) {
        free(body);
        return NULL;
    }
    rt_msg_t *msg = rt_msg_new(CHAIN_RPC_MSG_CALL, sizeof(call_request_t) + len + 1);
    call_request_t *req = rt_msg_payload(msg);
    req->count = (uint32_t)n;
    req->timeout_ms = timeout_ms;
    req->first_id = first_id;
    req->retry_safe = retry_safe;
    req->body_len = (uint32_t)len;
    memcpy(req->body, body, len + 1);
    free(body);
    return msg;
}

static bool calls_are_valid(const chain_rpc_call_t *calls, size_t n)
{
    if (calls == NULL || n == 0 || n > CHAIN_RPC_MAX_BATCH)
        return false;
    for (size_t i = 0; i != n; ++i)
        if (calls[i].method == NULL || calls[i].params == NULL)
            return false;
    return true;
}

int chain_rpc_send(rt_actor_t *self, chain_rpc_t *rpc, chain_rpc_call_t *calls, size_t n,
                   uint32_t timeout_ms, uint64_t tag)
{
    rt_worker_t *w = rt_worker_current();
    CHAIN_ASSERT(w != NULL && w->id == self->home && rpc->workers != NULL);
    rpc_worker_t *rw = &rpc->workers[w->id];
    int ret = calls_are_valid(calls, n) ? CHAIN_RPC_OK : CHAIN_RPC_ERR_INVALID;
    if (ret == CHAIN_RPC_OK && atomic_load(&rpc->stopping))
        ret = CHAIN_RPC_ERR_SHUTDOWN;
    if (ret == CHAIN_RPC_OK && rw->pending >= rpc->config.max_calls)
        ret = CHAIN_RPC_ERR_BUSY;
    rt_msg_t *msg = NULL;
    if (ret == CHAIN_RPC_OK) {
        msg = encode(calls, n, rw->next_id,
                     timeout_ms != 0 ? timeout_ms : rpc->config.call_timeout_ms);
        ret = msg != NULL ? CHAIN_RPC_OK : CHAIN_RPC_ERR_INVALID;
    }
    for (size_t i = 0; calls != NULL && i != n; ++i) {
        json_decref(calls[i].params); /* consumed whatever the outcome */
        calls[i].params = NULL;
    }
    if (ret != CHAIN_RPC_OK)
        return ret;
    rw->next_id += n;
    ++rw->pending;
    rt_actor_request(self, rw->actor, msg, tag);
    return CHAIN_RPC_OK;
}
