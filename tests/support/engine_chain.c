#include "engine_chain.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "chain/abi.h"
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/key.h"
#include "actors/executor_internal.h"
#include "actors/intent_model.h"
#include "store/migrate.h"

#ifndef INTENTD_CONTRACTS_DIR
#error "INTENTD_CONTRACTS_DIR must name the directory of the compiled contracts"
#endif

const char *const echain_dev_keys[10] = {
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
};

#define RESPONSE_MAX (256 * 1024)

chain_addr_t echain_dev_address(int i)
{
    chain_key_t *k = NULL;
    chain_key_from_hex(&k, echain_dev_keys[i], 64);
    chain_addr_t a = *chain_key_address(k);
    chain_key_free(k);
    return a;
}

/* Whether a JSON-RPC method only reads the chain. */
static bool reads_only(const char *method)
{
    return strncmp(method, "eth_get", 7) == 0 || strcmp(method, "eth_blockNumber") == 0 ||
           strcmp(method, "eth_call") == 0 || strcmp(method, "eth_chainId") == 0;
}

bool echain_rpc(echain_t *c, const char *method, const char *params, char *out, size_t cap)
{
    size_t body_len = strlen(params) + strlen(method) + 64;
    char *body = malloc(body_len);
    snprintf(body, body_len, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}",
             method, params);
    int n = http_post_blocking(c->anvil.port, body, out, cap);
    if (n <= 0 && reads_only(method)) {
        /* A read that got no answer is asked once more, saying so: safe, since it changes
         * nothing, and the message keeps what the socket said. Such reads used to fail right
         * after a test started its engine: the io_uring probe's ring, torn down by the kernel a
         * few ms after harness_start, interrupted this thread's read (SO_RCVTIMEO: EINTR); the
         * probe now runs on a thread of its own (rt_probe_io_uring, test_runtime_probe). */
        fprintf(stderr, "echain: %s: no answer (%s); asking again\n", method,
                http_post_blocking_failure());
        usleep(100 * 1000);
        n = http_post_blocking(c->anvil.port, body, out, cap);
    }
    free(body);
    if (n <= 0 || strstr(out, "\"error\"") != NULL) {
        fprintf(stderr, "echain: %s failed: %.300s\n", method,
                n > 0 ? out : http_post_blocking_failure());
        return false;
    }
    return true;
}

/* The "result" member of a response, as a new reference. */
static json_t *result_of(const char *response)
{
    json_t *doc = json_loads(response, 0, NULL);
    json_t *r = json_incref(json_object_get(doc, "result"));
    json_decref(doc);
    return r;
}

bool echain_rpc_u64(echain_t *c, const char *method, const char *params, uint64_t *out)
{
    char *resp = malloc(RESPONSE_MAX);
    bool ok = echain_rpc(c, method, params, resp, RESPONSE_MAX);
    json_t *r = ok ? result_of(resp) : NULL;
    const char *s = json_string_value(r);
    ok = s != NULL && chain_rpc_parse_quantity_u64(s, strlen(s), out) == CHAIN_OK;
    json_decref(r);
    free(resp);
    return ok;
}

bool echain_send(echain_t *c, int from, const chain_addr_t *to, const char *data, char hash_hex[67])
{
    char from_s[CHAIN_ADDR_STR_SIZE], to_s[CHAIN_ADDR_STR_SIZE] = "";
    chain_addr_t f = echain_dev_address(from);
    chain_addr_format(&f, from_s);
    if (to != NULL)
        chain_addr_format(to, to_s);
    size_t cap = strlen(data) + 256;
    char *params = malloc(cap), *resp = malloc(RESPONSE_MAX);
    snprintf(params, cap, "[{\"from\":\"%s\"%s%s%s,\"data\":\"0x%s\",\"gas\":\"0x7a1200\"}]",
             from_s, to != NULL ? ",\"to\":\"" : "", to_s, to != NULL ? "\"" : "", data);
    bool ok = echain_rpc(c, "eth_sendTransaction", params, resp, RESPONSE_MAX);
    json_t *r = ok ? result_of(resp) : NULL;
    ok = json_string_value(r) != NULL && strlen(json_string_value(r)) == 66;
    if (ok)
        memcpy(hash_hex, json_string_value(r), 67);
    json_decref(r);
    free(params);
    free(resp);
    return ok;
}

/* The contract address in the receipt of `hash_hex` (automine: mined at once, though the
 * receipt may show a moment later). */
static bool created_address(echain_t *c, const char *hash_hex, chain_addr_t *out)
{
    char params[96], *resp = malloc(RESPONSE_MAX);
    snprintf(params, sizeof(params), "[\"%s\"]", hash_hex);
    bool ok = false;
    for (int i = 0; i != 100 && !ok; ++i) {
        if (i != 0)
            usleep(50000);
        json_t *r = echain_rpc(c, "eth_getTransactionReceipt", params, resp, RESPONSE_MAX)
                        ? result_of(resp)
                        : NULL;
        const char *a = json_string_value(json_object_get(r, "contractAddress"));
        ok = a != NULL && chain_addr_parse(out, a, strlen(a)) == CHAIN_OK;
        json_decref(r);
    }
    free(resp);
    return ok;
}

static bool deploy(echain_t *c, const char *name, chain_addr_t *out)
{
    char path[512], hash[67];
    snprintf(path, sizeof(path), "%s/%s.bin", INTENTD_CONTRACTS_DIR, name);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "echain: cannot open %s\n", path);
        return false;
    }
    char *code = malloc(128 * 1024);
    size_t n = fread(code, 1, 128 * 1024 - 1, f);
    fclose(f);
    while (n > 0 && (code[n - 1] == '\n' || code[n - 1] == ' '))
        --n;
    code[n] = '\0';
    bool ok = echain_send(c, 9, NULL, code, hash) && created_address(c, hash, out);
    free(code);
    return ok;
}

static bool create_db(echain_t *c)
{
    static int counter;
    const char *base = getenv("DATABASE_URL");
    if (base == NULL) {
        fprintf(stderr, "echain: DATABASE_URL is not set\n");
        return false;
    }
    snprintf(c->db_name, sizeof(c->db_name), "t_engine_%d_%d", (int)getpid(), ++counter);
    PGconn *admin = PQconnectdb(base);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", c->db_name);
    PGresult *res = PQexec(admin, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    PQfinish(admin);
    PQconninfoOption *opts = PQconninfoParse(base, NULL);
    size_t len = 0;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; ++o)
        if (o->val != NULL && strcmp(o->keyword, "dbname") != 0)
            len += (size_t)snprintf(c->db_url + len, sizeof(c->db_url) - len, "%s='%s' ",
                                    o->keyword, o->val);
    snprintf(c->db_url + len, sizeof(c->db_url) - len, "dbname='%s'", c->db_name);
    PQconninfoFree(opts);
    char err[256];
    int applied;
    if (!ok || !store_migrate(c->db_url, &applied, err, sizeof(err))) {
        fprintf(stderr, "echain: database: %s\n", ok ? err : "cannot create");
        return false;
    }
    c->db = PQconnectdb(c->db_url);
    if (PQstatus(c->db) != CONNECTION_OK) {
        fprintf(stderr, "echain: %s: %s\n", c->db_name, PQerrorMessage(c->db));
        return false;
    }
    return true;
}

bool echain_start(echain_t *c, const char *const *anvil_args)
{
    memset(c, 0, sizeof(*c));
    if (!anvil_start(&c->anvil, anvil_args))
        return false;
    if (!deploy(c, "IntentRegistry", &c->registry) || !deploy(c, "TestUSDC", &c->usdc)) {
        fprintf(stderr, "echain: the contracts were not deployed\n");
        return false;
    }
    return create_db(c);
}

void echain_stop(echain_t *c)
{
    if (c->db != NULL)
        PQfinish(c->db);
    if (c->db_name[0] != '\0' && getenv("DATABASE_URL") != NULL) {
        PGconn *admin = PQconnectdb(getenv("DATABASE_URL"));
        char sql[160];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", c->db_name);
        PQclear(PQexec(admin, sql));
        PQfinish(admin);
    }
    if (c->anvil.pid != 0)
        anvil_stop(&c->anvil);
}

/* Sends a token call from `from` with ABI call data `data` of `len` bytes. */
static bool token_call(echain_t *c, int from, const uint8_t *data, size_t len)
{
    char hex[2 * CHAIN_ABI_SMALL_CALL_MAX + 1], hash[67];
    chain_hex_encode(hex, sizeof(hex), data, len, 0);
    return echain_send(c, from, &c->usdc, hex, hash);
}

bool echain_mint(echain_t *c, int owner, uint64_t amount)
{
    /* mint(address,uint256): not among chain/abi's calls, so built here */
    uint8_t data[CHAIN_ABI_SMALL_CALL_MAX] = {0};
    chain_abi_selector("mint(address,uint256)", data);
    chain_addr_t to = echain_dev_address(owner);
    memcpy(data + 4 + 12, to.bytes, 20);
    chain_u256_t v = chain_u256_from_u64(amount);
    chain_u256_to_be(&v, data + 36);
    return token_call(c, 9, data, sizeof(data));
}

bool echain_approve(echain_t *c, int owner, uint64_t amount)
{
    uint8_t data[CHAIN_ABI_SMALL_CALL_MAX];
    size_t len;
    chain_u256_t v = chain_u256_from_u64(amount);
    chain_abi_approve(data, sizeof(data), &len, &c->registry, &v);
    return token_call(c, owner, data, len);
}

/* eth_call of `data` on `to` at latest: the returned word as a u64. */
static bool call_u64(echain_t *c, const chain_addr_t *to, const uint8_t *data, size_t len,
                     uint64_t *out)
{
    char to_s[CHAIN_ADDR_STR_SIZE], hex[2 * CHAIN_ABI_SMALL_CALL_MAX + 1], params[512];
    chain_addr_format(to, to_s);
    chain_hex_encode(hex, sizeof(hex), data, len, 0);
    snprintf(params, sizeof(params), "[{\"to\":\"%s\",\"data\":\"0x%s\"},\"latest\"]", to_s, hex);
    char *resp = malloc(RESPONSE_MAX);
    bool ok = echain_rpc(c, "eth_call", params, resp, RESPONSE_MAX);
    json_t *r = ok ? result_of(resp) : NULL;
    const char *s = json_string_value(r);
    uint8_t word[32];
    ok = s != NULL &&
         chain_hex_decode_exact(word, 32, s, strlen(s), CHAIN_HEX_0X_REQUIRED) == CHAIN_OK;
    if (ok)
        ok = chain_abi_decode_uint(word, 32, UINT64_MAX, out) == CHAIN_OK;
    json_decref(r);
    free(resp);
    return ok;
}

bool echain_balance(echain_t *c, const chain_addr_t *who, uint64_t *out)
{
    uint8_t data[CHAIN_ABI_SMALL_CALL_MAX];
    size_t len;
    chain_abi_balance_of(data, sizeof(data), &len, who);
    return call_u64(c, &c->usdc, data, len, out);
}

bool echain_executed_count(echain_t *c, const uint8_t on_chain_id[32], uint32_t *out)
{
    uint8_t data[CHAIN_ABI_SMALL_CALL_MAX];
    size_t len;
    uint64_t v = 0;
    chain_abi_executed_count(data, sizeof(data), &len, on_chain_id);
    bool ok = call_u64(c, &c->registry, data, len, &v);
    *out = (uint32_t)v;
    return ok;
}

bool echain_mine(echain_t *c, int n)
{
    char resp[4096];
    for (int i = 0; i != n; ++i)
        if (!echain_rpc(c, "evm_mine", "[]", resp, sizeof(resp)))
            return false;
    return true;
}

bool echain_automine(echain_t *c, bool on)
{
    char resp[4096];
    return echain_rpc(c, "evm_setAutomine", on ? "[true]" : "[false]", resp, sizeof(resp));
}

bool echain_db_value(echain_t *c, const char *sql, char *out, size_t cap)
{
    PGresult *res = PQexec(c->db, sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "echain: %s: %s\n", sql, PQerrorMessage(c->db));
    snprintf(out, cap, "%s", ok && PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return ok;
}

bool echain_db_exec(echain_t *c, const char *sql)
{
    PGresult *res = PQexec(c->db, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "echain: %s: %s\n", sql, PQerrorMessage(c->db));
    PQclear(res);
    return ok;
}

/* The user and intent rows of `job` (terms and signature set). */
static bool insert_rows(echain_t *c, executor_job_t *job, const uint8_t on_chain_id[32])
{
    char owner[43], recipient[43], token[43], salt[67], id[67], sig[133], amount[80], sql[2048];
    executor__bytea(owner, job->terms.owner.bytes, 20);
    executor__bytea(recipient, job->terms.recipient.bytes, 20);
    executor__bytea(token, job->terms.token.bytes, 20);
    executor__bytea(salt, job->terms.salt, 32);
    executor__bytea(id, on_chain_id, 32);
    executor__bytea(sig, job->signature, 65);
    chain_u256_to_dec(&job->terms.amount, amount);
    snprintf(sql, sizeof(sql),
             "INSERT INTO users (wallet_address) VALUES ('%s') ON CONFLICT (wallet_address) DO"
             " UPDATE SET last_active = now() RETURNING id",
             owner);
    if (!echain_db_value(c, sql, job->user_id, sizeof(job->user_id)))
        return false;
    char max[16] = "NULL";
    if (job->terms.max_executions != 0)
        snprintf(max, sizeof(max), "%u", job->terms.max_executions);
    snprintf(sql, sizeof(sql),
             "INSERT INTO intents (owner_id, name, chain_id, recipient, token, amount, frequency,"
             " interval_seconds, start_at, max_executions, min_interval, salt, on_chain_id,"
             " signature, status) VALUES ('%s', 'test intent', 31337, '%s', '%s', %s, 'custom',"
             " 3600, now(), %s, %llu, '%s', '%s', '%s', 'active') RETURNING id",
             job->user_id, recipient, token, amount, max,
             (unsigned long long)job->terms.min_interval, salt, id, sig);
    return echain_db_value(c, sql, job->intent_id, sizeof(job->intent_id)) &&
           job->intent_id[0] != '\0';
}

bool echain_job(echain_t *c, int owner, int recipient, uint64_t amount, uint32_t max_executions,
                uint64_t min_interval_s, uint32_t salt, executor_job_t *job)
{
    memset(job, 0, sizeof(*job));
    chain_intent_t *t = &job->terms;
    t->owner = echain_dev_address(owner);
    t->token = c->usdc;
    t->recipient = echain_dev_address(recipient);
    t->amount = chain_u256_from_u64(amount);
    t->min_interval = min_interval_s;
    t->valid_after = 0;
    t->valid_until = CHAIN_INTENT_NO_END;
    t->max_executions = max_executions;
    memcpy(t->salt, &salt, sizeof(salt));
    t->salt[31] = (uint8_t)owner;
    chain_eip712_domain_t d;
    chain_intent_domain(&d, 31337, &c->registry);
    uint8_t digest[32], id[32];
    chain_intent_digest(&d, t, digest);
    chain_intent_hash(t, id);
    chain_key_t *k = NULL;
    chain_key_from_hex(&k, echain_dev_keys[owner], 64);
    chain_sig_t sig;
    chain_key_sign(k, digest, &sig);
    chain_key_free(k);
    memcpy(job->signature, sig.r, 32);
    memcpy(job->signature + 32, sig.s, 32);
    job->signature[64] = (uint8_t)(27 + sig.recid);
    job->period = 0;
    return insert_rows(c, job, id);
}

/* The intent that echain_due_intents' row `i` describes, as the engine will parse it. */
static void due_intent(echain_t *c, int owner, int recipient, uint64_t amount, int64_t due_s,
                       uint32_t salt, intent_t *in)
{
    memset(in, 0, sizeof(*in));
    in->owner = echain_dev_address(owner);
    in->token.address = c->usdc;
    in->recipient = echain_dev_address(recipient);
    in->amount = chain_u256_from_u64(amount);
    sched_init(&in->sched, CHAIN_INTENT_ONCE, 0, due_s, SCHED_NONE, 1);
    memcpy(in->salt, &salt, sizeof(salt));
    in->salt[30] = 0xd0; /* apart from echain_job's salts */
    in->salt[31] = (uint8_t)owner;
    in->chain_id = 31337;
    in->registry = c->registry;
}

/* One VALUES row of echain_due_intents for `in`, signed with `key`, owned by `user_id`; the
 * length written. */
static size_t due_row(const intent_t *in, chain_key_t *key, const char *user_id, char *out,
                      size_t cap)
{
    chain_intent_t terms;
    chain_eip712_domain_t domain;
    intent_signed_terms(in, &terms); /* what the engine derives from the row */
    intent_domain(in, &domain);
    uint8_t digest[32], id[32], sig65[65];
    chain_intent_digest(&domain, &terms, digest);
    chain_intent_hash(&terms, id);
    chain_sig_t sig;
    chain_key_sign(key, digest, &sig);
    memcpy(sig65, sig.r, 32);
    memcpy(sig65 + 32, sig.s, 32);
    sig65[64] = (uint8_t)(27 + sig.recid);
    char recipient[43], token[43], salt[67], hash[67], sig_text[133], amount[80];
    executor__bytea(recipient, in->recipient.bytes, 20);
    executor__bytea(token, in->token.address.bytes, 20);
    executor__bytea(salt, in->salt, 32);
    executor__bytea(hash, id, 32);
    executor__bytea(sig_text, sig65, 65);
    chain_u256_to_dec(&in->amount, amount);
    return (size_t)snprintf(out, cap,
                            "('%s', 'due intent', %llu, '%s', '%s', %s, '%s', to_timestamp(%lld),"
                            " 1, 'active', to_timestamp(%lld), %llu, '%s', '%s', '%s',"
                            " now() - interval '1 hour', now() - interval '1 hour')",
                            user_id, (unsigned long long)in->chain_id, recipient, token, amount,
                            intent_freq_name(in->sched.freq), (long long)in->sched.start_at,
                            (long long)in->sched.start_at,
                            (unsigned long long)in->sched.min_interval_s, salt, hash, sig_text);
}

bool echain_due_intents(echain_t *c, int n, int owners, int recipient, uint64_t amount,
                        int64_t due_s, uint32_t salt)
{
    enum { OWNERS_MAX = 8, ROWS_PER_INSERT = 500, ROW_MAX = 1024 };
    if (owners < 1 || owners > OWNERS_MAX)
        return false;
    char user_ids[OWNERS_MAX][40], sql[256];
    chain_key_t *keys[OWNERS_MAX] = {NULL};
    bool ok = true;
    for (int o = 0; o != owners && ok; ++o) {
        char owner[43];
        chain_addr_t a = echain_dev_address(1 + o);
        executor__bytea(owner, a.bytes, 20);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO users (wallet_address) VALUES ('%s') ON CONFLICT (wallet_address)"
                 " DO UPDATE SET last_active = now() RETURNING id",
                 owner);
        ok = echain_db_value(c, sql, user_ids[o], sizeof(user_ids[o])) &&
             chain_key_from_hex(&keys[o], echain_dev_keys[1 + o], 64) == CHAIN_OK;
    }
    static const char head[] =
        "INSERT INTO intents (owner_id, name, chain_id, recipient, token, amount, frequency,"
        " start_at, max_executions, status, next_execution, min_interval, salt, on_chain_id,"
        " signature, created_at, updated_at) VALUES ";
    size_t cap = sizeof(head) + (size_t)ROWS_PER_INSERT * ROW_MAX;
    char *body = malloc(cap);
    ok = ok && body != NULL;
    for (int first = 0; first < n && ok; first += ROWS_PER_INSERT) {
        size_t pos = (size_t)snprintf(body, cap, "%s", head);
        for (int i = first; i < n && i < first + ROWS_PER_INSERT && pos < cap - ROW_MAX; ++i) {
            intent_t in;
            int o = i % owners;
            due_intent(c, 1 + o, recipient, amount, due_s, salt + (uint32_t)i, &in);
            if (i != first)
                body[pos++] = ',';
            pos += due_row(&in, keys[o], user_ids[o], body + pos, cap - pos);
        }
        ok = echain_db_exec(c, body);
    }
    free(body);
    for (int o = 0; o != owners; ++o)
        chain_key_free(keys[o]);
    return ok;
}
