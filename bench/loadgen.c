/*
 * loadgen: see loadgen.h. Three commands:
 *
 *   loadgen setup --url URL --users N --intents K --state FILE [--connections C] [--json OUT]
 *       signs N wallets in (nonce, EIP-4361 message, EIP-191 signature), has each create K
 *       inline-signed intents, and saves sessions and intent ids to FILE;
 *   loadgen run --url URL --mix get=3,list=1,... [--state FILE] [--rate R | closed loop]
 *       [--connections C] [--duration S] [--warmup S] [--presign N] [--json OUT] [--name NAME]
 *       the measured run: kinds hello (GET --hello-path, default /), get, list, create, signin;
 *   loadgen rawtx --url RPC_URL --txs N [--senders M] [--connections C] [--duration S]
 *       the anvil baseline: N pre-signed EIP-1559 transfers from M funded wallets, sent with
 *       eth_sendRawTransaction.
 *
 * setup and run read INTENT_CONTRACT_ADDRESS, USDC_ADDRESS and CHAIN_ID from the environment
 * (the env file the bench's run writes). Every run prints one summary line and writes JSON
 * with every figure: per-kind counts, statuses and latency histograms, and per 100 ms
 * "timeline_per_s": [seconds, answers/s, errors/s, the slowest answer in ms] (the last shows
 * whether a tail is made of stalls, and whether they recur), "send_late" (open loop: how long
 * after its intended time each request went out; the generator's own lag or a backlog) and
 * "generator_cpu_s" (the generator's CPU time, taken from the cores it shares with the server)
 * and "machine_cpu" (the share of all CPUs' time that was busy, and that the host took, over
 * the measured window; null for setup, or when /proc/stat cannot be read).
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench/loadgen.h"
#include "chain/hex.h"
#include "chain/keccak.h"
#include "chain/secp.h"
#include "chain/tx.h"

#define LG_SEED_DEFAULT 20261121
#define LG_USERS_MAX 100000

typedef struct st_opts_t {
    const char *cmd, *url, *state, *json, *name, *mix, *hello_path, *accept_encoding;
    char host[64];
    uint16_t port;
    uint64_t seed;
    long users, intents, connections, presign, txs, senders, timeout_ms;
    bool progress;
    double rate, duration, warmup;
} opts_t;

static void usage(void)
{
    fprintf(stderr, "usage: loadgen setup|run|rawtx --url http://127.0.0.1:PORT [options]\n"
                    "  --users N --intents K --state FILE       (setup; run reads FILE)\n"
                    "  --mix get=3,list=1,create=1,signin=1,hello=1\n"
                    "  --rate R (open loop, tasks per second; default: closed loop)\n"
                    "  --connections C --duration S --warmup S --timeout-ms T\n"
                    "  --presign N (intent bodies signed before the run) --hello-path P\n"
                    "  --accept-encoding V (default: a browser's \"" LG_ACCEPT_ENCODING "\";\n"
                    "                       '' sends none)\n"
                    "  --txs N --senders M (rawtx)  --seed S --json OUT --name NAME --progress\n");
    exit(2);
}

static bool parse_url(opts_t *o)
{
    const char *p = o->url;
    if (p == NULL || strncmp(p, "http://", 7) != 0)
        return false;
    p += 7;
    const char *colon = strchr(p, ':');
    if (colon == NULL || (size_t)(colon - p) >= sizeof(o->host))
        return false;
    snprintf(o->host, sizeof(o->host), "%.*s", (int)(colon - p), p);
    if (strcmp(o->host, "localhost") == 0)
        snprintf(o->host, sizeof(o->host), "127.0.0.1");
    long port = strtol(colon + 1, NULL, 10);
    struct in_addr a;
    o->port = (uint16_t)port;
    return port > 0 && port < 65536 && inet_pton(AF_INET, o->host, &a) == 1;
}

/* The options, by type: 's' string, 'l' long, 'd' double, 'u' unsigned 64-bit, 'b' flag. */
typedef struct st_opt_def_t {
    const char *name;
    char type;
    size_t offset;
} opt_def_t;

static const opt_def_t opt_defs[] = {
    {"url", 's', offsetof(opts_t, url)},
    {"users", 'l', offsetof(opts_t, users)},
    {"intents", 'l', offsetof(opts_t, intents)},
    {"state", 's', offsetof(opts_t, state)},
    {"json", 's', offsetof(opts_t, json)},
    {"name", 's', offsetof(opts_t, name)},
    {"mix", 's', offsetof(opts_t, mix)},
    {"rate", 'd', offsetof(opts_t, rate)},
    {"connections", 'l', offsetof(opts_t, connections)},
    {"duration", 'd', offsetof(opts_t, duration)},
    {"warmup", 'd', offsetof(opts_t, warmup)},
    {"presign", 'l', offsetof(opts_t, presign)},
    {"txs", 'l', offsetof(opts_t, txs)},
    {"senders", 'l', offsetof(opts_t, senders)},
    {"seed", 'u', offsetof(opts_t, seed)},
    {"hello-path", 's', offsetof(opts_t, hello_path)},
    {"timeout-ms", 'l', offsetof(opts_t, timeout_ms)},
    {"accept-encoding", 's', offsetof(opts_t, accept_encoding)},
    {"progress", 'b', offsetof(opts_t, progress)},
};

/* Sets the option `name` from `value` (NULL for a flag); false when there is no such option. */
static bool set_opt(opts_t *o, const char *name, const char *value, bool *used_value)
{
    for (size_t i = 0; i != sizeof(opt_defs) / sizeof(opt_defs[0]); ++i) {
        const opt_def_t *d = &opt_defs[i];
        if (strcmp(d->name, name) != 0)
            continue;
        void *field = (char *)o + d->offset;
        *used_value = d->type != 'b';
        if (d->type != 'b' && value == NULL)
            return false;
        switch (d->type) {
        case 's':
            *(const char **)field = value;
            break;
        case 'l':
            *(long *)field = atol(value);
            break;
        case 'd':
            *(double *)field = atof(value);
            break;
        case 'u':
            *(uint64_t *)field = strtoull(value, NULL, 10);
            break;
        default:
            *(bool *)field = true;
            break;
        }
        return true;
    }
    return false;
}

static void parse_opts(opts_t *o, int argc, char **argv)
{
    *o = (opts_t){.seed = LG_SEED_DEFAULT,
                  .users = 100,
                  .intents = 4,
                  .connections = 32,
                  .senders = 8,
                  .duration = 10,
                  .warmup = 2,
                  .timeout_ms = 10000,
                  .hello_path = "/",
                  .accept_encoding = LG_ACCEPT_ENCODING,
                  .name = "run"};
    if (argc < 2)
        usage();
    o->cmd = argv[1];
    for (int i = 2; i < argc; ++i) {
        bool used_value = false;
        if (strncmp(argv[i], "--", 2) != 0 ||
            !set_opt(o, argv[i] + 2, i + 1 < argc ? argv[i + 1] : NULL, &used_value))
            usage();
        i += used_value;
    }
    if (!parse_url(o) || o->connections < 1 || o->connections > 4096 || o->users < 1 ||
        o->users > LG_USERS_MAX || o->intents < 0 || o->intents > LG_USER_INTENTS_MAX ||
        o->duration <= 0 || o->warmup < 0 || o->rate < 0 || o->timeout_ms < 1)
        usage();
}

/* "get=3,list=1" into weights; false for an unknown kind. */
static bool parse_mix(const char *s, uint32_t mix[LG_NUM_KINDS])
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "");
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        long weight = eq != NULL ? atol(eq + 1) : 1;
        if (eq != NULL)
            *eq = '\0';
        int k = 0;
        while (k != LG_NUM_KINDS && strcmp(lg_kind_name((lg_kind_t)k), tok) != 0)
            ++k;
        if (k == LG_NUM_KINDS || weight < 0 || weight > 1000000)
            return false;
        mix[k] = (uint32_t)weight;
    }
    return true;
}

static bool world_init(lg_world_t *w, const opts_t *o)
{
    const char *registry = getenv("INTENT_CONTRACT_ADDRESS"), *usdc = getenv("USDC_ADDRESS");
    const char *chain_id = getenv("CHAIN_ID");
    *w = (lg_world_t){.seed = o->seed,
                      .chain_id = chain_id != NULL ? strtoull(chain_id, NULL, 10) : 31337};
    chain_addr_t reg;
    if (registry == NULL || usdc == NULL ||
        chain_addr_parse(&reg, registry, strlen(registry)) != CHAIN_OK ||
        chain_addr_parse(&w->usdc, usdc, strlen(usdc)) != CHAIN_OK) {
        fprintf(stderr, "loadgen: INTENT_CONTRACT_ADDRESS and USDC_ADDRESS must be set\n");
        return false;
    }
    chain_addr_format(&w->usdc, w->usdc_str);
    chain_intent_domain(&w->domain, w->chain_id, &reg);
    return lg_users_init(w, (size_t)o->users);
}

/* ---- output ---- */

static json_t *result_json(const opts_t *o, const lg_run_t *run, const lg_result_t *res)
{
    json_t *kinds = json_object();
    lg_hist_t all = {0};
    uint64_t ok = 0, errors = 0, ok_bytes = 0;
    for (int k = 0; k != LG_NUM_KINDS; ++k) {
        const lg_stats_t *st = &res->kinds[k];
        if (st->ok + st->errors == 0)
            continue;
        lg_hist_merge(&all, &st->hist);
        ok += st->ok;
        errors += st->errors;
        ok_bytes += st->ok_bytes;
        json_object_set_new(
            kinds, lg_kind_name((lg_kind_t)k),
            json_pack("{s:I, s:I, s:f, s:f, s:{s:I, s:I, s:I, s:I, s:I}, s:o}", "ok",
                      (json_int_t)st->ok, "errors", (json_int_t)st->errors, "per_s",
                      (double)st->ok / res->measured_s, "answer_bytes_mean",
                      st->ok > 0 ? (double)st->ok_bytes / (double)st->ok : 0.0, "status", "none",
                      (json_int_t)st->status[0], "2xx", (json_int_t)st->status[2], "3xx",
                      (json_int_t)st->status[3], "4xx", (json_int_t)st->status[4], "5xx",
                      (json_int_t)st->status[5], "latency", lg_hist_json(&st->hist, true)));
    }
    json_t *timeline = json_array();
    for (size_t i = 0; i != res->timeline_len; ++i)
        json_array_append_new(timeline, json_pack("[f, I, I, f]", (double)(i + 1) / 10.0,
                                                  (json_int_t)res->timeline[i] * 10,
                                                  (json_int_t)res->timeline_err[i] * 10,
                                                  (double)res->timeline_max_us[i] / 1000.0));
    double busy, steal;
    json_t *machine = lg_machine_share(&res->machine_from, &res->machine_to, &busy, &steal)
                          ? json_pack("{s:I, s:f, s:f}", "cpus", (json_int_t)res->machine_to.cpus,
                                      "busy", busy, "steal", steal)
                          : json_null();
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, "
                     "s:I, s:f, s:o, s:o, s:o, s:o, s:f, s:o}",
                     "name", o->name, "command", o->cmd, "mode",
                     run->rate_per_s > 0 ? "open" : "closed", "accept_encoding",
                     run->accept_encoding, "connections", (json_int_t)run->connections,
                     "rate_per_s", run->rate_per_s, "warmup_s", run->warmup_s, "duration_s",
                     res->measured_s, "throughput_per_s", (double)ok / res->measured_s, "ok",
                     (json_int_t)ok, "errors", (json_int_t)errors, "dropped",
                     (json_int_t)res->dropped, "unanswered", (json_int_t)res->unanswered,
                     "connect_failures", (json_int_t)res->connect_failures, "late_max_us",
                     (json_int_t)res->late_max_us, "signed_inline", (json_int_t)res->signed_inline,
                     "answer_bytes_mean", ok > 0 ? (double)ok_bytes / (double)ok : 0.0, "kinds",
                     kinds, "latency", lg_hist_json(&all, true), "timeline_per_s", timeline,
                     "send_late", lg_hist_json(&res->send_late, false), "generator_cpu_s",
                     res->cpu_s, "machine_cpu", machine);
}

static bool report(const opts_t *o, const lg_run_t *run, lg_result_t *res)
{
    json_t *j = result_json(o, run, res);
    if (j == NULL) {
        fprintf(stderr, "loadgen: cannot build the JSON report\n");
        return false;
    }
    json_t *lat = json_object_get(j, "latency");
    printf("%s: %.0f/s ok, %lld errors, %lld dropped, %lld unanswered, %lld failed connects, "
           "p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           o->name, json_real_value(json_object_get(j, "throughput_per_s")),
           json_integer_value(json_object_get(j, "errors")),
           json_integer_value(json_object_get(j, "dropped")),
           json_integer_value(json_object_get(j, "unanswered")),
           json_integer_value(json_object_get(j, "connect_failures")),
           (double)json_integer_value(json_object_get(lat, "p50_us")) / 1000.0,
           (double)json_integer_value(json_object_get(lat, "p99_us")) / 1000.0,
           (double)json_integer_value(json_object_get(lat, "max_us")) / 1000.0);
    bool ok = o->json == NULL || json_dump_file(j, o->json, JSON_COMPACT) == 0;
    json_decref(j);
    free(res->timeline);
    free(res->timeline_err);
    free(res->timeline_max_us);
    return ok;
}

/* ---- commands ---- */

static lg_run_t base_run(const opts_t *o)
{
    return (lg_run_t){.host = o->host,
                      .port = o->port,
                      .hello_path = o->hello_path,
                      .accept_encoding = o->accept_encoding,
                      .connections = (uint32_t)o->connections,
                      .rate_per_s = o->rate,
                      .warmup_s = o->warmup,
                      .duration_s = o->duration,
                      .name = o->name,
                      .progress = o->progress,
                      .timeout_ms = (uint32_t)o->timeout_ms};
}

/* One unmeasured-pace phase of setup: `count` tasks of `kind`, task i for user i % users. */
static bool setup_phase(lg_world_t *w, opts_t *o, lg_kind_t kind, size_t count, const char *name)
{
    lg_kind_t *kinds = malloc(count * sizeof(*kinds));
    if (kinds == NULL)
        return false;
    for (size_t i = 0; i != count; ++i)
        kinds[i] = kind;
    lg_run_t run = base_run(o);
    run.rate_per_s = 0;
    run.setup_kinds = kinds;
    run.num_setup = count;
    lg_result_t res;
    bool ok = lg_engine_run(w, &run, &res);
    free(kinds);
    if (!ok)
        return false;
    uint64_t errors = res.kinds[kind].errors;
    o->name = name;
    const char *json = o->json;
    o->json = NULL;
    report(o, &run, &res);
    o->json = json;
    if (errors != 0)
        fprintf(stderr, "loadgen: setup: %llu of %zu %s tasks failed\n", (unsigned long long)errors,
                count, lg_kind_name(kind));
    return errors == 0;
}

static int cmd_setup(opts_t *o)
{
    lg_world_t w;
    if (!world_init(&w, o))
        return 1;
    bool ok = setup_phase(&w, o, LG_SIGNIN, w.num_users, "setup sign-in") &&
              setup_phase(&w, o, LG_CREATE, w.num_users * (size_t)o->intents, "setup create") &&
              lg_state_save(&w, o->state);
    lg_users_free(&w);
    return ok ? 0 : 1;
}

/* Signs `count` intent bodies before the run, so that the run measures the server, not the
 * generator's secp256k1 (the server verifies each signature all the same). */
static lg_body_t *presign(lg_world_t *w, long count)
{
    lg_body_t *bodies = calloc((size_t)count + 1, sizeof(*bodies));
    size_t signed_in = 0;
    for (size_t i = 0; i != w->num_users; ++i)
        signed_in += w->users[i].token != NULL;
    for (long i = 0; bodies != NULL && signed_in > 0 && i != count; ++i) {
        uint32_t u = (uint32_t)((size_t)i % w->num_users);
        while (w->users[u].token == NULL)
            u = (uint32_t)((u + 1) % w->num_users);
        bodies[i] = (lg_body_t){.user = u, .body = lg_create_body(w, &w->users[u])};
    }
    return bodies;
}

static int cmd_run(opts_t *o)
{
    lg_world_t w = {0};
    lg_run_t run = base_run(o);
    if (!parse_mix(o->mix, run.mix)) {
        fprintf(stderr, "loadgen: bad --mix\n");
        return 2;
    }
    bool needs_users =
        run.mix[LG_GET] + run.mix[LG_LIST] + run.mix[LG_CREATE] + run.mix[LG_SIGNIN] > 0;
    if (needs_users && o->state != NULL) { /* as many users as the setup signed in */
        json_t *j = json_load_file(o->state, 0, NULL);
        size_t n = json_array_size(json_object_get(j, "users"));
        o->users = n > 0 && n <= LG_USERS_MAX ? (long)n : o->users;
        json_decref(j);
    }
    if (needs_users && (!world_init(&w, o) || o->state == NULL || !lg_state_load(&w, o->state))) {
        fprintf(stderr, "loadgen: run: no usable --state (run `loadgen setup` first)\n");
        return 1;
    }
    lg_body_t *bodies = NULL;
    if (run.mix[LG_CREATE] > 0 && o->presign > 0) {
        bodies = presign(&w, o->presign);
        run.bodies = bodies;
        run.num_bodies = bodies != NULL ? (size_t)o->presign : 0;
    }
    lg_result_t res;
    bool ok = lg_engine_run(&w, &run, &res) && report(o, &run, &res);
    /* later runs must not reuse these salts: the state keeps each user's counter */
    if (ok && needs_users && o->state != NULL)
        ok = lg_state_save(&w, o->state);
    for (size_t i = 0; bodies != NULL && i != run.num_bodies; ++i)
        free(bodies[i].body);
    free(bodies);
    if (needs_users)
        lg_users_free(&w);
    return ok ? 0 : 1;
}

/* A blocking JSON-RPC call for the rawtx set-up (before any measuring): the "result" string. */
static bool rpc_call(const opts_t *o, const char *body, char *result, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(o->port)};
    inet_pton(AF_INET, o->host, &addr.sin_addr);
    char req[2048], resp[8192];
    int n = snprintf(req, sizeof(req),
                     "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    size_t len = 0;
    ssize_t r;
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        write(fd, req, (size_t)n) != n) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    while (len + 1 < sizeof(resp) && (r = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    resp[len] = '\0';
    const char *start = strstr(resp, "\r\n\r\n");
    json_t *j = start != NULL ? json_loads(start + 4, 0, NULL) : NULL;
    json_t *res = json_object_get(j, "result");
    bool ok = res != NULL && !json_is_false(res);
    snprintf(result, cap, "%s", json_is_string(res) ? json_string_value(res) : "");
    json_decref(j);
    return ok;
}

/* Funds `sender` (anvil_setBalance) and reads its next nonce. */
static bool fund_sender(const opts_t *o, const chain_addr_t *sender, uint64_t *nonce)
{
    char addr[CHAIN_ADDR_STR_SIZE], body[512], result[128];
    chain_addr_format(sender, addr);
    snprintf(body, sizeof(body),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"anvil_setBalance\",\"params\":[\"%s\","
             "\"0x3635c9adc5dea00000\"]}",
             addr);
    if (!rpc_call(o, body, result, sizeof(result)))
        return false;
    snprintf(body, sizeof(body),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getTransactionCount\",\"params\":"
             "[\"%s\",\"pending\"]}",
             addr);
    if (!rpc_call(o, body, result, sizeof(result)))
        return false;
    *nonce = strtoull(result, NULL, 16);
    return true;
}

/* `o->txs` EIP-1559 transfers of 1 wei, round-robin over `o->senders` funded wallets. */
static char **sign_txs(const opts_t *o)
{
    const char *cid = getenv("CHAIN_ID");
    uint64_t chain_id = cid != NULL ? strtoull(cid, NULL, 10) : 31337, nonces[64];
    uint8_t keys[64][32];
    char **txs = calloc((size_t)o->txs, sizeof(*txs));
    long senders = o->senders < 1 ? 1 : o->senders > 64 ? 64 : o->senders;
    for (long s = 0; txs != NULL && s != senders; ++s) {
        char seed[64];
        chain_addr_t addr;
        snprintf(seed, sizeof(seed), "rawtx/%llu/%ld", (unsigned long long)o->seed, s);
        chain_keccak256(seed, strlen(seed), keys[s]);
        if (chain_secp_seckey_address(&addr, keys[s]) != CHAIN_OK ||
            !fund_sender(o, &addr, &nonces[s])) {
            fprintf(stderr, "loadgen: rawtx: cannot fund sender %ld through %s\n", s, o->url);
            free(txs);
            return NULL;
        }
    }
    chain_tx_t tx = {.type = CHAIN_TX_EIP1559,
                     .chain_id = chain_id,
                     .gas = 21000,
                     .has_to = true,
                     .value = chain_u256_from_u64(1),
                     .max_priority_fee_per_gas = chain_u256_from_u64(1000000000),
                     .max_fee_per_gas = chain_u256_from_u64(100000000000ull)};
    chain_addr_parse(&tx.to, "0x90F79bf6EB2c4f870365E785982E1f101E93b906", 42);
    for (long i = 0; txs != NULL && i != o->txs; ++i) {
        uint8_t hash[32], raw[256];
        size_t raw_len;
        chain_sig_t sig;
        tx.nonce = nonces[i % senders]++;
        chain_tx_signing_hash(&tx, hash);
        chain_secp_sign(&sig, hash, keys[i % senders]);
        chain_tx_encode_signed(&tx, &sig, raw, sizeof(raw), &raw_len);
        txs[i] = malloc(2 * raw_len + 3);
        chain_hex_encode(txs[i], 2 * raw_len + 3, raw, raw_len, CHAIN_HEX_0X);
    }
    explicit_bzero(keys, sizeof(keys));
    return txs;
}

static int cmd_rawtx(opts_t *o)
{
    if (o->txs <= 0)
        usage();
    char **txs = sign_txs(o);
    if (txs == NULL)
        return 1;
    lg_world_t w = {.seed = o->seed};
    lg_run_t run = base_run(o);
    run.mix[LG_RAWTX] = 1;
    run.raw_txs = txs;
    run.num_raw_txs = (size_t)o->txs;
    lg_result_t res;
    bool ok = lg_engine_run(&w, &run, &res) && report(o, &run, &res);
    for (long i = 0; i != o->txs; ++i)
        free(txs[i]);
    free(txs);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    opts_t o;
    parse_opts(&o, argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(o.cmd, "setup") == 0 && o.state != NULL)
        return cmd_setup(&o);
    if (strcmp(o.cmd, "run") == 0)
        return cmd_run(&o);
    if (strcmp(o.cmd, "rawtx") == 0)
        return cmd_rawtx(&o);
    usage();
}
