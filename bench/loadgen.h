/*
 * loadgen: the bench harness's load generator. One thread, one io_uring, many keep-alive
 * HTTP/1.1 connections, each carrying one request at a time. Users are wallets derived from a
 * seed (keccak256(seed || i)); they sign in with EIP-4361 messages and EIP-191 signatures and
 * create intents with inline EIP-712 signatures, then read and list them, as the frontend does.
 *
 * Load is driven closed-loop (every connection sends its next task as soon as the previous one
 * is answered) or open-loop (tasks arrive at a constant rate whatever the server does; each
 * task's latency counts from its intended start, so a stalled server cannot hide its stall by
 * slowing the generator down: no coordinated omission).
 *
 * Files: loadgen.c (command line, phases, report), loadgen_engine.c (the ring, connections,
 * HTTP framing, scheduling), loadgen_hist.c (latency histograms), loadgen_users.c (wallets,
 * signing, request bodies, the state file), loadgen_machine.c (the machine's CPU time).
 */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "chain/address.h"
#include "chain/eip712.h"

/* ---- latency histograms (loadgen_hist.c) ---- */

/** Sub-buckets per power of two: values are kept within 1/64 (about 1.6 %), HDR-style. */
#define LG_HIST_SUB 64
/** Buckets: exact below 2*LG_HIST_SUB us, then 64 per power of two up to 2^40 us. */
#define LG_HIST_BUCKETS (2 * LG_HIST_SUB + 34 * LG_HIST_SUB)

/** A log-linear histogram of latencies in microseconds. */
typedef struct st_lg_hist_t {
    uint64_t counts[LG_HIST_BUCKETS];
    uint64_t total;
    uint64_t max_us;
    double sum_us;
} lg_hist_t;

/** Adds one latency. O(1). */
void lg_hist_record(lg_hist_t *h, uint64_t latency_us);
/** Adds every count of `src` to `dst`. */
void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src);
/** The value at `quantile` (0..1): the upper edge of the bucket that holds it (max for 1). */
uint64_t lg_hist_quantile(const lg_hist_t *h, double quantile);
/** {"count","mean_us","p50_us","p90_us","p99_us","p999_us","max_us","buckets":[[us,n],...]}. */
json_t *lg_hist_json(const lg_hist_t *h, bool with_buckets);

/* ---- users and requests (loadgen_users.c) ---- */

/** The most intents remembered per user for reads. */
#define LG_USER_INTENTS_MAX 32

/** One wallet. */
typedef struct st_lg_user_t {
    uint8_t seckey[32];
    chain_addr_t address;
    char address_str[CHAIN_ADDR_STR_SIZE];
    char *token; /* session JWT, NULL before sign-in */
    uint32_t salt_counter;
    uint32_t num_intents;
    char intent_ids[LG_USER_INTENTS_MAX][40];
} lg_user_t;

/** What request bodies need to know of the deployment. */
typedef struct st_lg_world_t {
    uint64_t seed;
    uint64_t chain_id;
    chain_eip712_domain_t domain; /* the registry's EIP-712 domain */
    chain_addr_t usdc;
    char usdc_str[CHAIN_ADDR_STR_SIZE];
    lg_user_t *users;
    size_t num_users;
} lg_world_t;

/** Derives `n` wallets from `seed`; false when out of memory. */
bool lg_users_init(lg_world_t *w, size_t n);
/** Frees the users. */
void lg_users_free(lg_world_t *w);
/** The body of POST /api/auth/wallet for `message` (a nonce answer's), malloc'ed. */
char *lg_signin_body(const lg_user_t *u, const char *message);
/** A POST /api/intents body for `u`, signed with a fresh salt, malloc'ed. */
char *lg_create_body(lg_world_t *w, lg_user_t *u);
/** Saves tokens and intent ids to `path` (JSON); false on I/O error. */
bool lg_state_save(const lg_world_t *w, const char *path);
/** Loads what lg_state_save wrote for the same users; false when it does not match. */
bool lg_state_load(lg_world_t *w, const char *path);

/* ---- the engine (loadgen_engine.c) ---- */

/** The kinds of task; each has its own histogram. */
typedef enum en_lg_kind_t {
    LG_HELLO,  /* GET / on the bare h2o baseline (or /healthz) */
    LG_GET,    /* GET /api/intents/:id */
    LG_LIST,   /* GET /api/intents?limit=20 */
    LG_CREATE, /* POST /api/intents, inline-signed */
    LG_SIGNIN, /* POST /api/auth/nonce, then POST /api/auth/wallet */
    LG_RAWTX,  /* eth_sendRawTransaction of a pre-signed transaction (anvil baseline) */
    LG_NUM_KINDS
} lg_kind_t;

/** Per-kind figures of a run. */
typedef struct st_lg_stats_t {
    lg_hist_t hist;
    uint64_t ok;
    uint64_t errors;    /* non-2xx answers, connection failures and timeouts */
    uint64_t status[6]; /* answers by status class: [0] none, [2] 2xx ... [5] 5xx */
    uint64_t ok_bytes;  /* head and body of the 2xx answers: what each one cost to move */
} lg_stats_t;

/** A pre-signed POST /api/intents body and the user it belongs to. */
typedef struct st_lg_body_t {
    uint32_t user;
    char *body;
} lg_body_t;

/* What a browser's fetch sends as Accept-Encoding (Chromium's), as the frontend's users do: the
 * API answers large reads gzip-coded to it. */
#define LG_ACCEPT_ENCODING "gzip, deflate, br, zstd"

/** A run's settings. */
typedef struct st_lg_run_t {
    const char *host; /* numeric IPv4 */
    uint16_t port;
    const char *hello_path;
    const char *accept_encoding; /* sent with every request but rawtx's; NULL or "": none */
    uint32_t connections;
    double rate_per_s; /* > 0: open loop at this rate; 0: closed loop */
    double warmup_s, duration_s;
    uint32_t mix[LG_NUM_KINDS]; /* relative weights of the task kinds */
    /* setup runs: one task per entry of `setup_kinds`[i] for user i % num_users, unmeasured */
    const lg_kind_t *setup_kinds;
    size_t num_setup;
    /* pre-signed raw transactions (0x-hex strings) for LG_RAWTX */
    char **raw_txs;
    size_t num_raw_txs;
    /* pre-signed intent bodies for LG_CREATE (signed on the spot once they run out) */
    const lg_body_t *bodies;
    size_t num_bodies;
    const char *name;    /* for the progress line */
    bool progress;       /* a progress line on stderr, once a second */
    uint32_t timeout_ms; /* a request unanswered this long fails and its connection is reset */
} lg_run_t;

/* ---- the machine's CPU time (loadgen_machine.c) ---- */

/** All CPUs' time from /proc/stat, in ticks: busy (user, nice, system, irq, softirq), idle
 * (idle, iowait), and stolen by the host. */
typedef struct st_lg_machine_t {
    unsigned long long busy, idle, steal;
    unsigned cpus;
} lg_machine_t;

/** Reads /proc/stat's text `stat`; false when its first line is not the total. */
bool lg_machine_parse(const char *stat, lg_machine_t *out);
/** Reads the counters now; false when /proc/stat cannot be read. */
bool lg_machine_read(lg_machine_t *out);
/** The shares of the CPUs' time between two readings that were busy and stolen; false when the
 * readings cannot be compared (none, a CPU came or went, or no time passed). */
bool lg_machine_share(const lg_machine_t *from, const lg_machine_t *to, double *busy,
                      double *steal);

/** A run's results. */
typedef struct st_lg_result_t {
    lg_stats_t kinds[LG_NUM_KINDS];
    double measured_s;
    uint64_t dropped;     /* open loop: arrivals that found the bounded backlog full */
    uint64_t late_max_us; /* open loop: largest lag between intended and actual send */
    lg_hist_t send_late;  /* open loop: that lag per measured task, in microseconds */
    double cpu_s;         /* the generator's own CPU time (user + system) over the run */
    /* the machine's CPUs over the measured window (not for setup runs) */
    lg_machine_t machine_from, machine_to;
    uint64_t signed_inline;    /* intent bodies signed during the run (the pool ran out) */
    uint64_t unanswered;       /* measured tasks still queued or in flight when the run ended */
    uint64_t connect_failures; /* connections refused or failed (they are retried every 100 ms) */
    uint32_t *timeline;        /* completed tasks per 100 ms of the measured period */
    uint32_t *timeline_err;
    uint32_t *timeline_max_us; /* the slowest answer completed in each 100 ms (stall finder) */
    size_t timeline_len;
} lg_result_t;

/** Runs `run` against the world's users; false when the ring cannot be set up. */
bool lg_engine_run(lg_world_t *w, const lg_run_t *run, lg_result_t *res);
/** Name of a kind ("get", "list", ...). */
const char *lg_kind_name(lg_kind_t k);

/** Monotonic time in nanoseconds. */
uint64_t lg_now_ns(void);

#endif
