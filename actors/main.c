/*
 * intentd: the FlowPay backend, as one process.
 *
 * Composition root: reads the configuration, checks io_uring, starts the worker pool with the
 * HTTP server on every worker, registers the routes, and waits for SIGTERM/SIGINT to drain and
 * exit 0.
 */
#include <signal.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "actors/api.h"
#include "actors/api_cache.h"
#include "actors/deploy.h"
#include "actors/engine.h"
#include "actors/engine_clock.h"
#include "actors/gas_oracle.h"
#include "actors/ops_routes.h"
#include "actors/weekly_summary.h"
#include "chain/rfc3339.h"
#include "chain/rpc.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/worker.h"
#include "net/router.h"
#include "store/crypto.h"
#include "store/migrate.h"
#include "store/pg.h"
#include "store/redis.h"

/* Options marked "(not used yet)" are read by components still being built; they are listed so
 * that ops can prepare one configuration for the whole product. */
static rt_option_t options[] = {
    {"PORT", "8080", "HTTP port to listen on", false, NULL},
    {"BIND_ADDRESS", "127.0.0.1", "IPv4 address to listen on", false, NULL},
    {"WORKERS", "0", "worker threads, each with its own io_uring and h2o loop (0: one per CPU)",
     false, NULL},
    {"LOG_LEVEL", "info", "debug, info, warn or error", false, NULL},
    {"SHUTDOWN_TIMEOUT_MS", "10000", "how long a graceful shutdown may drain in-flight work", false,
     NULL},
    {"RING_ENTRIES", "1024", "io_uring submission queue entries per worker", false, NULL},
    {"DATABASE_URL", NULL,
     "PostgreSQL connection URL; migrations run at start (unset: no database, /readyz is 503)",
     false, NULL},
    {"PG_CONNECTIONS_PER_WORKER", "2", "PostgreSQL connections per worker (pipelined)", false,
     NULL},
    {"PG_QUEUE_MAX", "1024", "queries waiting per connection before answering busy (503)", false,
     NULL},
    {"PG_STATEMENT_TIMEOUT_MS", "10000", "longest a statement may run", false, NULL},
    {"REDIS_URL", NULL, "Redis URL, redis://[:password@]host[:port][/db] (unset: no cache)", false,
     NULL},
    {"DATA_ENCRYPTION_KEY", NULL,
     "64 hex digits: AES-256-GCM key for sensitive columns (unset: e-mail cannot be stored)", true,
     NULL},
    {"RPC_URL", NULL,
     "JSON-RPC URL(s) of the EVM chain, comma-separated in order of preference (unset: no chain, "
     "balances and gas prices answer 503)",
     false, NULL},
    {"CHAIN_ID", "31337", "EVM chain id that sign-in messages must name", false, NULL},
    {"NATIVE_SYMBOL", "ETH", "symbol of the chain's native coin in balances (CRO on Cronos)", false,
     NULL},
    {"GAS_REFRESH_MS", "5000",
     "longest time between two reads of the chain's fees (gas prices; also on every new block)",
     false, NULL},
    {"CRONOS_TESTNET_RPC", NULL, "Cronos testnet JSON-RPC URL (not used yet)", false, NULL},
    {"CRONOS_MAINNET_RPC", NULL, "Cronos mainnet JSON-RPC URL (not used yet)", false, NULL},
    {"INTENT_CONTRACT_ADDRESS", NULL,
     "address of the intent registry (unset: intents cannot be created, 503)", false, NULL},
    {"USDC_ADDRESS", NULL, "address of USDC (6 decimals); adds it to the token registry", false,
     NULL},
    {"TOKENS", NULL, "more tokens intents may use: SYMBOL:0xADDRESS:DECIMALS, comma-separated",
     false, NULL},
    {"PRIVATE_KEY", NULL, "executor private key, 0x + 64 hex digits (unset: no engine)", true,
     NULL},
    {"EXECUTOR_KEYS", NULL, "more executor keys, comma-separated: one nonce lane each", true, NULL},
    {"CONFIRMATIONS", "1", "blocks deep before an execution counts as confirmed", false, NULL},
    {"MAX_FEE_GWEI", NULL, "ceiling of the executor's maxFeePerGas, in gwei (unset: none)", false,
     NULL},
    {"BATCH_GAS_BUDGET", "8000000", "gas of one executeBatch transaction", false, NULL},
    {"REPLACE_AFTER_MS", "30000", "a transaction not mined by then is replaced (higher fee)", false,
     NULL},
    {"LOGS_BLOCK_RANGE", "10000",
     "most blocks per eth_getLogs call (halved while the node refuses a range)", false, NULL},
    {"REGISTRY_START_BLOCK", "0",
     "block the intent registry was deployed in (`intentd deploy` prints it): logs are read from"
     " there, not from block 0",
     false, NULL},
    {"ENGINE_MAX_INTENTS", "4194304",
     "most live intents the engine schedules (more are logged as errors and not scheduled)", false,
     NULL},
    {"ENGINE_TEST_CLOCK", "0",
     "1: tests may move the engine's clock (POST /internal/test/clock, loopback only)", false,
     NULL},
    {"JWT_SECRET", NULL,
     "HS256 secret for session tokens, >= 32 bytes (unset: a random one per start)", true, NULL},
    {"JWT_SECRET_PREVIOUS", NULL, "the previous JWT secret, still accepted during a rotation", true,
     NULL},
    {"SESSION_TTL_S", "86400", "lifetime of a session token, seconds", false, NULL},
    {"AUTH_NONCE_TTL_S", "600", "lifetime of a sign-in nonce, seconds", false, NULL},
    {"SIWE_DOMAIN", NULL, "EIP-4361 domain of sign-in messages (default: localhost:PORT)", false,
     NULL},
    {"SIWE_URI", NULL, "URI put in issued sign-in messages (default: http://SIWE_DOMAIN)", false,
     NULL},
    {"CORS_ORIGINS", NULL, "comma-separated origins allowed to call the API from a browser", false,
     NULL},
    {"API_RATE_LIMIT", "100", "requests per minute per IP address (0: no limit)", false, NULL},
    {"USER_RATE_LIMIT", "1000", "requests per hour per signed-in user (0: no limit)", false, NULL},
    {"RATE_LIMIT_WINDOW_S", "0",
     "one window for both rate limits, in seconds (0: a minute per IP, an hour per user; tests)",
     false, NULL},
    {"API_CACHE_TTL_MS", "2000", "longest a cached GET answer is served (0: no read cache)", false,
     NULL},
    {"API_CACHE_TTL_SUBSCRIBED_MS", "15000",
     "longest while the other processes' events surely arrive through Redis (>= API_CACHE_TTL_MS)",
     false, NULL},
    {"API_CACHE_MAX_BYTES", "16777216", "read cache size per worker, bytes", false, NULL},
    {"WS_PING_INTERVAL_MS", "30000", "WebSocket keepalive: a ping this often", false, NULL},
    {"WS_IDLE_TIMEOUT_MS", "75000", "a WebSocket silent this long (no pong) is closed", false,
     NULL},
    {"WS_QUEUE_MAX_BYTES", "1048576",
     "bytes waiting per WebSocket; a client that lets more pile up is closed (1013)", false, NULL},
    {"EVENTS_TEST_ENDPOINT", "0",
     "1: POST /api/test/events publishes any event to the caller (tests and benchmarks only)",
     false, NULL},
    {"WEEKLY_SUMMARY_AT", NULL,
     "RFC 3339 time: also summarise the week ending then, at start (tests, catching up)", false,
     NULL},
    {"TELEGRAM_BOT_TOKEN", NULL, "Telegram bot token for notifications (not used yet)", true, NULL},
};
#define NUM_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char summary[] =
    "intentd - the FlowPay backend: REST and WebSocket API, and the engine that executes\n"
    "payment intents on chain. See README.md and docs/architecture.md.\n"
    "`intentd deploy --help`: deploy the intent registry and a test USDC to a chain.";

static bool read_int(const char *name, int64_t min, int64_t max, int64_t *out)
{
    char err[256];
    if (rt_config_int(rt_config_find(options, NUM_OPTIONS, name), min, max, out, err, sizeof(err)))
        return true;
    fprintf(stderr, "intentd: %s\n", err);
    return false;
}

/* Applies the schema before any worker runs: nothing should serve on a schema it cannot trust. */
static bool run_migrations(const char *database_url)
{
    char err[512];
    int applied = 0;
    if (!store_migrate(database_url, &applied, err, sizeof(err))) {
        rt_log_error("main", "cannot start: %s", err);
        return false;
    }
    rt_log_info("main", "database schema up to date (%d migration(s) applied now)", applied);
    return true;
}

/* Connects the PostgreSQL and Redis pools (they connect in the background and reconnect on
 * their own). False when a setting is malformed. */
static bool open_stores(rt_runtime_t *rt, ops_deps_t *deps)
{
    const char *database_url = rt_config_find(options, NUM_OPTIONS, "DATABASE_URL")->value;
    const char *redis_url = rt_config_find(options, NUM_OPTIONS, "REDIS_URL")->value;
    int64_t per_worker, queue_max, statement_timeout_ms;
    if (!read_int("PG_CONNECTIONS_PER_WORKER", 1, 64, &per_worker) ||
        !read_int("PG_QUEUE_MAX", 1, 1000000, &queue_max) ||
        !read_int("PG_STATEMENT_TIMEOUT_MS", 100, 3600000, &statement_timeout_ms))
        return false;
    if (database_url != NULL) {
        store_pg_config_t config = {.url = database_url,
                                    .connections_per_worker = (int)per_worker,
                                    .queue_max = (uint32_t)queue_max,
                                    .statement_timeout_ms = (uint64_t)statement_timeout_ms};
        deps->pg = store_pg_create(rt, &config);
    } else {
        rt_log_warn("main", "DATABASE_URL is not set: running without a database");
    }
    if (redis_url != NULL) {
        char err[256];
        deps->redis = store_redis_create(rt, redis_url, err, sizeof(err));
        if (deps->redis == NULL) {
            fprintf(stderr, "intentd: %s\n", err);
            return false;
        }
    }
    return true;
}

/* The JSON-RPC client of the chain, over an HTTP client that runs on the workers' h2o loops.
 * NULL (and no error) when RPC_URL is unset. */
#define MAX_RPC_URLS 4

typedef struct st_chain_setup_t {
    char urls_text[1024];
    const char *urls[MAX_RPC_URLS];
    size_t num_urls;
    net_http_client_t *http;
    chain_rpc_t *rpc;
    gas_oracle_t *gas; /* the fees, read from rpc */
} chain_setup_t;

static bool setup_chain(chain_setup_t *c)
{
    const char *list = rt_config_find(options, NUM_OPTIONS, "RPC_URL")->value;
    c->http = net_http_client_create(NULL);
    if (c->http == NULL)
        return false;
    if (list == NULL) {
        rt_log_warn("main", "RPC_URL is not set: running without a chain");
        return true;
    }
    snprintf(c->urls_text, sizeof(c->urls_text), "%s", list);
    size_t n = 0;
    char *save = NULL;
    for (char *url = strtok_r(c->urls_text, ",", &save); url != NULL && n < MAX_RPC_URLS;
         url = strtok_r(NULL, ",", &save))
        c->urls[n++] = url;
    c->num_urls = n;
    char err[256];
    c->rpc = chain_rpc_create(&(chain_rpc_config_t){.urls = c->urls, .num_urls = n}, c->http, err,
                              sizeof(err));
    if (c->rpc == NULL) {
        fprintf(stderr, "intentd: RPC_URL: %s\n", err);
        return false;
    }
    int64_t chain_id, refresh_ms;
    if (!read_int("CHAIN_ID", 1, INT64_MAX, &chain_id) ||
        !read_int("GAS_REFRESH_MS", 100, 3600000, &refresh_ms))
        return false;
    c->gas = gas_oracle_create(&(gas_oracle_config_t){
        .rpc = c->rpc, .chain_id = (uint64_t)chain_id, .refresh_ms = (uint32_t)refresh_ms});
    return c->gas != NULL;
}

/* The engine, once the stores run; the API's hook reads the slot (NULL until then). */
static engine_t *_Atomic engine_slot;
/* The live updates' event hub (set up in setup_events, below). */
static events_t *live_events;

static const char *opt(const char *name)
{
    return rt_config_find(options, NUM_OPTIONS, name)->value;
}

/* Starts the engine when there is a database, a registry and an executor key. */
/* Whether the engine runs: it needs the database, the chain, the registry and an executor key
 * (setup_api gives the API the engine's hooks only then; start_engine starts it). */
static bool engine_configured(const chain_rpc_t *rpc)
{
    return rpc != NULL && opt("DATABASE_URL") != NULL && opt("INTENT_CONTRACT_ADDRESS") != NULL &&
           opt("PRIVATE_KEY") != NULL;
}

static bool start_engine(rt_runtime_t *rt, ops_deps_t *deps, chain_setup_t *chain,
                         const intent_token_t *tokens, size_t num_tokens)
{
    chain_addr_t registry;
    const char *registry_text = opt("INTENT_CONTRACT_ADDRESS");
    int64_t chain_id, max_intents;
    if (deps->pg == NULL || !engine_configured(chain->rpc)) {
        rt_log_warn("main", "no engine: it needs DATABASE_URL, RPC_URL, INTENT_CONTRACT_ADDRESS "
                            "and PRIVATE_KEY");
        return true;
    }
    if (!read_int("CHAIN_ID", 1, INT64_MAX, &chain_id) ||
        !read_int("ENGINE_MAX_INTENTS", 1, UINT32_MAX, &max_intents) ||
        chain_addr_parse(&registry, registry_text, strlen(registry_text)) != CHAIN_OK)
        return false;
    engine_settings_t settings = {.private_key = opt("PRIVATE_KEY"),
                                  .executor_keys = opt("EXECUTOR_KEYS"),
                                  .confirmations = opt("CONFIRMATIONS"),
                                  .max_fee_gwei = opt("MAX_FEE_GWEI"),
                                  .batch_gas_budget = opt("BATCH_GAS_BUDGET"),
                                  .replace_after_ms = opt("REPLACE_AFTER_MS"),
                                  .logs_block_range = opt("LOGS_BLOCK_RANGE"),
                                  .registry_start_block = opt("REGISTRY_START_BLOCK")};
    engine_config_t config = {.rt = rt,
                              .pg = deps->pg,
                              .rpc = chain->rpc,
                              .gas = chain->gas,
                              .tokens = tokens,
                              .num_tokens = num_tokens,
                              .chain_id = (uint64_t)chain_id,
                              .registry = registry,
                              .max_intents = (uint32_t)max_intents,
                              .events = live_events};
    char err[256];
    engine_t *engine = engine_setup(&settings, &config, err, sizeof(err));
    if (engine == NULL) {
        fprintf(stderr, "intentd: %s\n", err);
        return false;
    }
    engine_start(engine);
    atomic_store(&engine_slot, engine);
    return true;
}

static void close_stores(ops_deps_t *deps)
{
    if (deps->pg != NULL)
        store_pg_free(deps->pg);
    if (deps->redis != NULL)
        store_redis_free(deps->redis);
    deps->pg = NULL;
    deps->redis = NULL;
}

/* The API's secrets and settings. The JWT secret falls back to a random one (sessions then end
 * with the process), the data key to none (e-mail updates then answer 503). */
#define MAX_TOKENS 16

typedef struct st_api_setup_t {
    intent_token_t tokens[MAX_TOKENS];
    size_t num_tokens;
    net_jwt_keys_t *jwt_keys;
    store_crypto_key_t *data_key;
    net_router_t *router;
    net_http_cors_t cors;
    char domain[256], uri[300];
    api_t *api;
} api_setup_t;

/* The token registry: USDC_ADDRESS (6 decimals) and TOKENS ("SYM:0xADDR:DEC,..."). */
static bool load_tokens(api_setup_t *s)
{
    const char *usdc = rt_config_find(options, NUM_OPTIONS, "USDC_ADDRESS")->value;
    const char *list = rt_config_find(options, NUM_OPTIONS, "TOKENS")->value;
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s%s%s%s", usdc != NULL ? "USDC:" : "", usdc != NULL ? usdc : "",
             usdc != NULL ? ":6" : "", list != NULL ? (usdc != NULL ? "," : "") : "");
    if (list != NULL)
        strncat(buf, list, sizeof(buf) - strlen(buf) - 1);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *addr = strchr(item, ':'), *dec = addr != NULL ? strchr(addr + 1, ':') : NULL;
        intent_token_t *t = &s->tokens[s->num_tokens];
        if (s->num_tokens == MAX_TOKENS || addr == NULL || dec == NULL ||
            (size_t)(addr - item) >= sizeof(t->symbol) || addr == item) {
            fprintf(stderr, "intentd: TOKENS/USDC_ADDRESS: cannot read '%s'\n", item);
            return false;
        }
        char *end;
        long decimals = strtol(dec + 1, &end, 10);
        if (chain_addr_parse(&t->address, addr + 1, (size_t)(dec - addr - 1)) != CHAIN_OK ||
            *end != '\0' || decimals < 0 || decimals > 36) {
            fprintf(stderr, "intentd: TOKENS/USDC_ADDRESS: bad address or decimals in '%s'\n",
                    item);
            return false;
        }
        snprintf(t->symbol, sizeof(t->symbol), "%.*s", (int)(addr - item), item);
        t->decimals = (uint8_t)decimals;
        ++s->num_tokens;
    }
    return true;
}

/* Live updates: the event hub exists before the API (which publishes and accepts sockets),
 * starts with the workers and uses Redis once the stores are open; the weekly summary needs
 * the database. */
static weekly_summary_t *weekly;
static int64_t weekly_at_s; /* WEEKLY_SUMMARY_AT, 0: unset */

static bool setup_events(void)
{
    int64_t ping_ms, idle_ms, queue_bytes;
    uint32_t frac;
    const char *at = opt("WEEKLY_SUMMARY_AT");
    if (!read_int("WS_PING_INTERVAL_MS", 100, 3600000, &ping_ms) ||
        !read_int("WS_IDLE_TIMEOUT_MS", 200, 7200000, &idle_ms) ||
        !read_int("WS_QUEUE_MAX_BYTES", 1024, 1 << 30, &queue_bytes))
        return false;
    if (at != NULL && chain_rfc3339_parse(at, strlen(at), &weekly_at_s, &frac) != CHAIN_OK) {
        fprintf(stderr, "intentd: WEEKLY_SUMMARY_AT is not an RFC 3339 time\n");
        return false;
    }
    events_config_t config = {.queue_max_frames = 256,
                              .queue_max_bytes = (uint32_t)queue_bytes,
                              .max_message_bytes = 64 << 10,
                              .max_sockets_per_user = 32,
                              .ping_interval_ms = (uint64_t)ping_ms,
                              .idle_timeout_ms = (uint64_t)idle_ms,
                              .close_grace_ms = 2000,
                              .hub_queue_max = 65536};
    weekly_summary_register_statements(); /* before the database pool exists */
    return (live_events = events_create(&config)) != NULL;
}

static void start_live_updates(rt_runtime_t *rt, ops_deps_t *deps, api_setup_t *api)
{
    events_attach_redis(live_events, deps->redis);
    if (deps->pg != NULL)
        weekly = weekly_summary_start(rt, deps->pg, live_events, api->tokens, api->num_tokens,
                                      weekly_at_s);
}

static bool setup_api(api_setup_t *s, net_http_server_t *http, int64_t port, chain_rpc_t *rpc,
                      gas_oracle_t *gas)
{
    char err[256], random_secret[65];
    const char *secret = rt_config_find(options, NUM_OPTIONS, "JWT_SECRET")->value;
    if (secret == NULL) {
        uint8_t bytes[32];
        if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes))
            return false;
        for (int i = 0; i != 32; ++i)
            snprintf(random_secret + 2 * i, 3, "%02x", bytes[i]);
        secret = random_secret;
        rt_log_warn("main", "JWT_SECRET is not set: sessions end when this process does");
    }
    s->jwt_keys = net_jwt_keys_load(
        secret, rt_config_find(options, NUM_OPTIONS, "JWT_SECRET_PREVIOUS")->value, err,
        sizeof(err));
    explicit_bzero(random_secret, sizeof(random_secret));
    const char *data_key = rt_config_find(options, NUM_OPTIONS, "DATA_ENCRYPTION_KEY")->value;
    if (s->jwt_keys == NULL ||
        (data_key != NULL &&
         (s->data_key = store_crypto_key_load(data_key, err, sizeof(err))) == NULL) ||
        !net_http_cors_init(&s->cors, rt_config_find(options, NUM_OPTIONS, "CORS_ORIGINS")->value,
                            err, sizeof(err))) {
        fprintf(stderr, "intentd: %s\n", err);
        return false;
    }
    int64_t chain_id, nonce_ttl, session_ttl;
    if (!read_int("CHAIN_ID", 1, INT64_MAX, &chain_id) ||
        !read_int("AUTH_NONCE_TTL_S", 10, 86400, &nonce_ttl) ||
        !read_int("SESSION_TTL_S", 60, 30 * 86400, &session_ttl))
        return false;
    const char *domain = rt_config_find(options, NUM_OPTIONS, "SIWE_DOMAIN")->value;
    const char *uri = rt_config_find(options, NUM_OPTIONS, "SIWE_URI")->value;
    if (domain != NULL)
        snprintf(s->domain, sizeof(s->domain), "%s", domain);
    else
        snprintf(s->domain, sizeof(s->domain), "localhost:%lld", (long long)port);
    snprintf(s->uri, sizeof(s->uri), "%s", uri != NULL ? uri : "");
    if (uri == NULL)
        snprintf(s->uri, sizeof(s->uri), "http://%s", s->domain);
    api_register_statements();
    s->router = net_router_create();
    net_router_set_cors(s->router, &s->cors);
    net_http_set_cors(http, &s->cors); /* for h2o's own errors: a body over the limit */
    const char *registry = rt_config_find(options, NUM_OPTIONS, "INTENT_CONTRACT_ADDRESS")->value;
    chain_addr_t registry_addr = {{0}};
    if (!load_tokens(s) || (registry != NULL && chain_addr_parse(&registry_addr, registry,
                                                                 strlen(registry)) != CHAIN_OK)) {
        if (registry != NULL)
            fprintf(stderr, "intentd: INTENT_CONTRACT_ADDRESS is not an address\n");
        return false;
    }
    api_config_t config = {.siwe_domain = s->domain,
                           .has_registry = registry != NULL,
                           .registry = registry_addr,
                           .tokens = s->tokens,
                           .num_tokens = s->num_tokens,
                           .siwe_uri = s->uri,
                           .chain_id = (uint64_t)chain_id,
                           .nonce_ttl_s = nonce_ttl,
                           .session_ttl_s = session_ttl,
                           .jwt_keys = s->jwt_keys,
                           .data_key = s->data_key,
                           .rpc = rpc,
                           .intent_changed_ctx = (void *)&engine_slot,
                           .gas = gas,
                           .native_symbol =
                               rt_config_find(options, NUM_OPTIONS, "NATIVE_SYMBOL")->value};
    if (engine_configured(rpc)) { /* else the API announces its changes itself */
        config.intent_changed = engine_intent_changed;
        config.intent_created = engine_intent_created;
        config.intent_changed_reserved = engine_intent_changed_reserved;
        config.engine_reserve = engine_reserve;
        config.engine_release = engine_release;
    }
    config.events = live_events;
    config.events_test_endpoint = strcmp(opt("EVENTS_TEST_ENDPOINT"), "1") == 0;
    int64_t ip_limit, user_limit, window_s, cache_ttl_ms, cache_ttl_sub_ms, cache_bytes;
    if (!read_int("API_RATE_LIMIT", 0, UINT32_MAX, &ip_limit) ||
        !read_int("USER_RATE_LIMIT", 0, UINT32_MAX, &user_limit) ||
        !read_int("RATE_LIMIT_WINDOW_S", 0, 86400, &window_s) ||
        !read_int("API_CACHE_TTL_MS", 0, 3600000, &cache_ttl_ms) ||
        !read_int("API_CACHE_TTL_SUBSCRIBED_MS", 0, 3600000, &cache_ttl_sub_ms) ||
        !read_int("API_CACHE_MAX_BYTES", API_CACHE_MIN_BYTES, API_CACHE_MAX_BYTES, &cache_bytes))
        return false;
    config.cache_ttl_ms = (uint64_t)cache_ttl_ms;
    config.cache_ttl_subscribed_ms = (uint64_t)cache_ttl_sub_ms;
    config.cache_max_bytes = (uint64_t)cache_bytes;
    config.rate_limit_ip = (uint32_t)ip_limit;
    config.rate_limit_user = (uint32_t)user_limit;
    config.rate_window_s = (uint32_t)window_s;
    s->api = api_create(&config, NULL, s->router);
    net_http_route(http, "/", net_router_handle, s->router); /* after the ops routes */
    return true;
}

static void teardown_api(api_setup_t *s)
{
    api_free(s->api);
    net_router_free(s->router);
    net_jwt_keys_free(s->jwt_keys);
    store_crypto_key_free(s->data_key);
}

/* Blocks until SIGINT or SIGTERM. The signals are blocked in every thread (workers inherit the
 * mask), so sigwait here is the only place they are taken. */
static int wait_for_shutdown_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "deploy") == 0)
        return deploy_main(argc - 1, argv + 1);
    char err[256];
    switch (rt_config_load(options, NUM_OPTIONS, argc, argv, err, sizeof(err))) {
    case RT_CONFIG_HELP:
        rt_config_print_help(stdout, argv[0], summary, options, NUM_OPTIONS);
        return 0;
    case RT_CONFIG_ERROR:
        fprintf(stderr, "intentd: %s\n", err);
        return 2;
    case RT_CONFIG_OK:
        break;
    }
    int64_t port, workers, drain_ms, ring_entries;
    if (!read_int("PORT", 1, 65535, &port) || !read_int("WORKERS", 0, RT_MAX_WORKERS, &workers) ||
        !read_int("SHUTDOWN_TIMEOUT_MS", 1, 3600000, &drain_ms) ||
        !read_int("RING_ENTRIES", 8, 32768, &ring_entries))
        return 2;
    int level = rt_log_parse_level(rt_config_find(options, NUM_OPTIONS, "LOG_LEVEL")->value);
    if (level < 0) {
        fprintf(stderr, "intentd: LOG_LEVEL must be debug, info, warn or error\n");
        return 2;
    }
    rt_log_set_level((rt_log_level_t)level);

    char why[512];
    if (!rt_probe_io_uring(why, sizeof(why))) {
        rt_log_error("main", "cannot start: %s", why);
        return 1;
    }

    sigset_t shutdown_signals;
    sigemptyset(&shutdown_signals);
    sigaddset(&shutdown_signals, SIGINT);
    sigaddset(&shutdown_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &shutdown_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *bind_address = rt_config_find(options, NUM_OPTIONS, "BIND_ADDRESS")->value;
    net_http_server_t *http = net_http_create(bind_address, (uint16_t)port);
    if (http == NULL)
        return 2;
    static chain_setup_t chain;
    if (!setup_chain(&chain))
        return 2;
    rt_config_t rt_config = {.workers = (int)workers,
                             .ring_entries = (unsigned)ring_entries,
                             .drain_timeout_ms = (uint64_t)drain_ms,
                             .waiter = net_http_client_waiter(chain.http, net_http_waiter(http))};
    rt_config_log(options, NUM_OPTIONS);
    const char *database_url = rt_config_find(options, NUM_OPTIONS, "DATABASE_URL")->value;
    if (database_url != NULL && !run_migrations(database_url))
        return 1;
    rt_runtime_t *rt = rt_runtime_create(&rt_config);
    if (rt == NULL)
        rt_log_fatal("main", "out of memory creating the runtime");
    static ops_deps_t deps;
    deps.rt = rt;
    ops_routes_register(http, &deps);
    engine_clock_set_test_mode(strcmp(opt("ENGINE_TEST_CLOCK"), "1") == 0);
    if (engine_clock_test_mode())
        net_http_route(http, "/internal/test/clock", engine_clock_handle, NULL);
    static api_setup_t api;
    if (!setup_events())
        return 2;
    if (!setup_api(&api, http, port, chain.rpc, chain.gas))
        return 2;

    engine_register_statements(); /* before the database pool exists */
    if (!rt_runtime_start(rt)) {
        rt_log_error("main", "cannot start the workers (see above)");
        rt_runtime_join_and_free(rt);
        net_http_free(http);
        return 1;
    }
    events_start(live_events, rt); /* sockets can arrive from now on */
    if (!open_stores(rt, &deps)) {
        rt_runtime_shutdown(rt);
        rt_runtime_join_and_free(rt);
        net_http_free(http);
        return 2;
    }
    if (chain.rpc != NULL)
        chain_rpc_start(chain.rpc, rt);
    if (chain.gas != NULL)
        gas_oracle_start(chain.gas, rt); /* after the client: its first refresh goes out now */
    deps.rpc = chain.rpc;
    deps.rpc_endpoints = chain.num_urls;
    deps.events = live_events;
    deps.api = api.api;
    deps.engine = &engine_slot;
    /* the engine before the API's store: no change commits before its hooks reach the engine */
    if (!start_engine(rt, &deps, &chain, api.tokens, api.num_tokens)) {
        close_stores(&deps);
        rt_runtime_shutdown(rt);
        rt_runtime_join_and_free(rt);
        return 2;
    }
    api_attach_store(api.api, deps.pg);
    api_attach_redis(api.api, deps.redis);
    atomic_store(&deps.serving, 1);
    start_live_updates(rt, &deps, &api);
    rt_log_info("main", "listening on http://%s:%d with %d workers", bind_address, (int)port,
                rt->num_workers);

    int sig = wait_for_shutdown_signal(&shutdown_signals);
    rt_log_info("main", "received %s: draining (deadline %lld ms)", strsignal(sig),
                (long long)drain_ms);
    /* in order: stop taking requests and finish those in flight; close the stores while the
     * actors still run (their connections answer what is pending); then stop the workers */
    atomic_store(&deps.closing, 1);
    if (!rt_runtime_begin_drain(rt))
        rt_log_warn("main", "requests still in flight at the drain deadline");
    api_attach_store(api.api, NULL);
    api_attach_redis(api.api, NULL);
    gas_oracle_stop(chain.gas);
    if (chain.rpc != NULL)
        chain_rpc_stop(chain.rpc);
    engine_t *engine = atomic_exchange(&engine_slot, NULL);
    if (engine != NULL)
        engine_stop(engine); /* before the stores: its actors may still be writing */
    weekly_summary_stop(weekly);
    events_stop(live_events); /* closes the sockets (1001); before Redis closes */
    close_stores(&deps);
    rt_runtime_shutdown(rt);
    rt_runtime_join_and_free(rt);
    engine_free(engine);
    gas_oracle_free(chain.gas);
    if (chain.rpc != NULL)
        chain_rpc_free(chain.rpc);
    net_http_client_free(chain.http);
    net_http_free(http);
    teardown_api(&api);
    weekly_summary_free(weekly);
    events_free(live_events);
    rt_log_info("main", "stopped");
    return 0;
}
