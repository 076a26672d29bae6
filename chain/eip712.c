#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "chain/eip712.h"
#include "chain/hex.h"
#include "net/json.h"

/* one member of a struct type: the single list that the type string, the hash order and the
 * typedData JSON all follow */
typedef struct st_chain__eip712_member_t {
    const char *name;
    const char *type;
} chain__eip712_member_t;

static const chain__eip712_member_t chain__eip712_domain_members[] = {
    {"name", "string"},
    {"version", "string"},
    {"chainId", "uint256"},
    {"verifyingContract", "address"},
};

static const chain__eip712_member_t chain__intent_members[] = {
    {"owner", "address"},     {"token", "address"},        {"recipient", "address"},
    {"amount", "uint256"},    {"minInterval", "uint64"},   {"validAfter", "uint64"},
    {"validUntil", "uint64"}, {"maxExecutions", "uint32"}, {"salt", "bytes32"},
};

#define CHAIN__COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void chain__struct_begin_hashed(chain_eip712_struct_t *s,
                                       const uint8_t type_hash[CHAIN_EIP712_HASH_LEN])
{
    chain_keccak256_init(&s->ctx);
    chain_keccak256_update(&s->ctx, type_hash, CHAIN_EIP712_HASH_LEN);
}

void chain_eip712_struct_begin(chain_eip712_struct_t *s, const char *encoded_type)
{
    CHAIN_ASSERT(s != NULL && encoded_type != NULL);
    uint8_t type_hash[CHAIN_EIP712_HASH_LEN];
    chain_keccak256(encoded_type, strlen(encoded_type), type_hash);
    chain__struct_begin_hashed(s, type_hash);
}

/* The type hashes of the domain and of PaymentIntent: constants that every request signing or
 * naming an intent would otherwise hash again, computed once per process. */
static uint8_t chain__domain_type_hash[CHAIN_EIP712_HASH_LEN];
static uint8_t chain__intent_type_hash[CHAIN_EIP712_HASH_LEN];
static pthread_once_t chain__type_hashes_once = PTHREAD_ONCE_INIT;

static void chain__type_hashes_init(void)
{
    chain_keccak256(CHAIN_EIP712_DOMAIN_TYPE, strlen(CHAIN_EIP712_DOMAIN_TYPE),
                    chain__domain_type_hash);
    chain_keccak256(CHAIN_INTENT_TYPE, strlen(CHAIN_INTENT_TYPE), chain__intent_type_hash);
}

static const uint8_t *chain__type_hash(bool intent)
{
    int ret = pthread_once(&chain__type_hashes_once, chain__type_hashes_init);
    CHAIN_ASSERT(ret == 0);
    return intent ? chain__intent_type_hash : chain__domain_type_hash;
}

void chain_eip712_put_word(chain_eip712_struct_t *s, const uint8_t word[32])
{
    CHAIN_ASSERT(word != NULL);
    chain_keccak256_update(&s->ctx, word, 32);
}

void chain_eip712_put_address(chain_eip712_struct_t *s, const chain_addr_t *a)
{
    CHAIN_ASSERT(a != NULL);
    uint8_t word[32] = {0};
    memcpy(word + 32 - CHAIN_ADDR_LEN, a->bytes, CHAIN_ADDR_LEN);
    chain_eip712_put_word(s, word);
}

void chain_eip712_put_u256(chain_eip712_struct_t *s, const chain_u256_t *v)
{
    uint8_t word[32];
    chain_u256_to_be(v, word);
    chain_eip712_put_word(s, word);
}

void chain_eip712_put_u64(chain_eip712_struct_t *s, uint64_t v)
{
    chain_u256_t w = chain_u256_from_u64(v);
    chain_eip712_put_u256(s, &w);
}

void chain_eip712_put_bytes(chain_eip712_struct_t *s, const void *data, size_t len)
{
    uint8_t hash[CHAIN_EIP712_HASH_LEN];
    chain_keccak256(data, len, hash);
    chain_eip712_put_word(s, hash);
}

void chain_eip712_struct_end(chain_eip712_struct_t *s, uint8_t out[CHAIN_EIP712_HASH_LEN])
{
    CHAIN_ASSERT(out != NULL);
    chain_keccak256_final(&s->ctx, out);
}

/* The last domain separator computed on this thread and its domain: a process names one domain
 * (its chain and registry), and each separator costs four Keccak-256 runs. */
typedef struct st_chain__domain_cache_t {
    bool valid;
    uint64_t chain_id;
    chain_addr_t contract;
    char name[64], version[64];
    uint8_t separator[CHAIN_EIP712_HASH_LEN];
} chain__domain_cache_t;

static __thread chain__domain_cache_t chain__domain_cache;

/* True when `c` holds the separator of `d`. */
static bool chain__domain_cached(const chain__domain_cache_t *c, const chain_eip712_domain_t *d)
{
    return c->valid && c->chain_id == d->chain_id &&
           chain_addr_eq(&c->contract, &d->verifying_contract) && strcmp(c->name, d->name) == 0 &&
           strcmp(c->version, d->version) == 0;
}

void chain_eip712_domain_separator(const chain_eip712_domain_t *d,
                                   uint8_t out[CHAIN_EIP712_HASH_LEN])
{
    CHAIN_ASSERT(d != NULL && d->name != NULL && d->version != NULL);
    chain__domain_cache_t *c = &chain__domain_cache;
    if (chain__domain_cached(c, d)) {
        memcpy(out, c->separator, CHAIN_EIP712_HASH_LEN);
        return;
    }
    chain_eip712_struct_t s;
    chain__struct_begin_hashed(&s, chain__type_hash(false));
    chain_eip712_put_bytes(&s, d->name, strlen(d->name));
    chain_eip712_put_bytes(&s, d->version, strlen(d->version));
    chain_eip712_put_u64(&s, d->chain_id);
    chain_eip712_put_address(&s, &d->verifying_contract);
    chain_eip712_struct_end(&s, out);
    /* names too long for the cache are simply not cached */
    c->valid = strlen(d->name) < sizeof(c->name) && strlen(d->version) < sizeof(c->version);
    if (c->valid) {
        c->chain_id = d->chain_id;
        c->contract = d->verifying_contract;
        strcpy(c->name, d->name);
        strcpy(c->version, d->version);
        memcpy(c->separator, out, CHAIN_EIP712_HASH_LEN);
    }
}

void chain_eip712_digest(const uint8_t domain_separator[CHAIN_EIP712_HASH_LEN],
                         const uint8_t struct_hash[CHAIN_EIP712_HASH_LEN],
                         uint8_t out[CHAIN_EIP712_HASH_LEN])
{
    CHAIN_ASSERT(domain_separator != NULL && struct_hash != NULL && out != NULL);
    uint8_t buf[2 + 2 * CHAIN_EIP712_HASH_LEN] = {0x19, 0x01};
    memcpy(buf + 2, domain_separator, CHAIN_EIP712_HASH_LEN);
    memcpy(buf + 2 + CHAIN_EIP712_HASH_LEN, struct_hash, CHAIN_EIP712_HASH_LEN);
    chain_keccak256(buf, sizeof(buf), out);
}

void chain_intent_domain(chain_eip712_domain_t *d, uint64_t chain_id, const chain_addr_t *registry)
{
    CHAIN_ASSERT(d != NULL && registry != NULL);
    d->name = CHAIN_INTENT_DOMAIN_NAME;
    d->version = CHAIN_INTENT_DOMAIN_VERSION;
    d->chain_id = chain_id;
    d->verifying_contract = *registry;
}

/* The last terms hashed on this thread and their hash: a create hashes the same terms to check
 * their signature, then again for their onChainId, and each hash costs three Keccak-f runs.
 * Equal bytes are equal terms (padding included: a difference there only misses). */
typedef struct st_chain__intent_hash_memo_t {
    bool valid;
    chain_intent_t terms;
    uint8_t hash[CHAIN_EIP712_HASH_LEN];
} chain__intent_hash_memo_t;

static __thread chain__intent_hash_memo_t chain__intent_hash_memo;

void chain_intent_hash(const chain_intent_t *intent, uint8_t out[CHAIN_EIP712_HASH_LEN])
{
    CHAIN_ASSERT(intent != NULL);
    chain__intent_hash_memo_t *m = &chain__intent_hash_memo;
    if (m->valid && memcmp(&m->terms, intent, sizeof(*intent)) == 0) {
        memcpy(out, m->hash, CHAIN_EIP712_HASH_LEN);
        return;
    }
    /* member order: chain__intent_members, which mirrors CHAIN_INTENT_TYPE */
    chain_eip712_struct_t s;
    chain__struct_begin_hashed(&s, chain__type_hash(true));
    chain_eip712_put_address(&s, &intent->owner);
    chain_eip712_put_address(&s, &intent->token);
    chain_eip712_put_address(&s, &intent->recipient);
    chain_eip712_put_u256(&s, &intent->amount);
    chain_eip712_put_u64(&s, intent->min_interval);
    chain_eip712_put_u64(&s, intent->valid_after);
    chain_eip712_put_u64(&s, intent->valid_until);
    chain_eip712_put_u64(&s, intent->max_executions);
    chain_eip712_put_word(&s, intent->salt);
    chain_eip712_struct_end(&s, out);
    memcpy(&m->terms, intent, sizeof(*intent));
    memcpy(m->hash, out, CHAIN_EIP712_HASH_LEN);
    m->valid = true;
}

void chain_intent_digest(const chain_eip712_domain_t *d, const chain_intent_t *intent,
                         uint8_t out[CHAIN_EIP712_HASH_LEN])
{
    uint8_t sep[CHAIN_EIP712_HASH_LEN], hash[CHAIN_EIP712_HASH_LEN];
    chain_eip712_domain_separator(d, sep);
    chain_intent_hash(intent, hash);
    chain_eip712_digest(sep, hash, out);
}

int chain_intent_verify(const chain_eip712_domain_t *d, const chain_intent_t *intent,
                        const uint8_t sig[CHAIN_SIG_LEN], uint8_t normalized[CHAIN_SIG_LEN])
{
    CHAIN_ASSERT(sig != NULL);
    chain_sig_t parsed;
    /* strict: the registry refuses a high s, so accepting one here would activate an intent
     * that can never execute */
    int ret = chain_sig_parse(&parsed, sig, CHAIN_SIG_STRICT);
    if (ret != CHAIN_OK)
        return ret;
    uint8_t digest[CHAIN_EIP712_HASH_LEN];
    chain_intent_digest(d, intent, digest);
    chain_addr_t signer;
    ret = chain_secp_recover(&signer, digest, &parsed);
    if (ret != CHAIN_OK)
        return ret;
    if (!chain_addr_eq(&signer, &intent->owner))
        return CHAIN_ERR_SIGNER;
    if (normalized != NULL)
        chain_sig_serialize(&parsed, normalized);
    return CHAIN_OK;
}

uint64_t chain_intent_min_interval(chain_intent_freq_t freq, uint64_t interval_s)
{
    uint64_t period;
    switch (freq) {
    case CHAIN_INTENT_ONCE:
        return 0;
    case CHAIN_INTENT_DAILY:
        period = 86400;
        break;
    case CHAIN_INTENT_WEEKLY:
        period = 604800;
        break;
    case CHAIN_INTENT_MONTHLY:
        period = 2419200;
        break;
    case CHAIN_INTENT_CUSTOM:
        period = interval_s;
        break;
    default:
        CHAIN_ASSERT(!"unknown chain_intent_freq_t");
        return 0;
    }
    uint64_t slack = period / 10 < 300 ? period / 10 : 300;
    return period - slack;
}

/* ---- typedData JSON ---- */

/* sets obj[key] to a new string; false (and nothing leaks) when out of memory */
static bool chain__json_set_str(json_t *obj, const char *key, const char *val)
{
    return json_object_set_new(obj, key, json_string(val)) == 0;
}

static bool chain__json_set_u64(json_t *obj, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return chain__json_set_str(obj, key, buf);
}

static bool chain__json_set_addr(json_t *obj, const char *key, const chain_addr_t *a)
{
    char buf[CHAIN_ADDR_STR_SIZE];
    chain_addr_format(a, buf);
    return chain__json_set_str(obj, key, buf);
}

/* [{"name":..,"type":..}, ...] for a member list */
static json_t *chain__json_members(const chain__eip712_member_t *m, size_t n)
{
    json_t *arr = json_array();
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i != n; ++i) {
        json_t *o = json_object();
        ok = o != NULL && chain__json_set_str(o, "name", m[i].name) &&
             chain__json_set_str(o, "type", m[i].type);
        ok = json_array_append_new(arr, o) == 0 && ok;
    }
    if (!ok)
        json_decref(arr);
    return ok ? arr : NULL;
}

static json_t *chain__json_types(void)
{
    json_t *types = json_object();
    /* json_object_set_new releases its value when it fails, also for a NULL object, so both
     * calls run whatever happened before */
    int ret = json_object_set_new(types, "EIP712Domain",
                                  chain__json_members(chain__eip712_domain_members,
                                                      CHAIN__COUNT(chain__eip712_domain_members)));
    ret |= json_object_set_new(
        types, "PaymentIntent",
        chain__json_members(chain__intent_members, CHAIN__COUNT(chain__intent_members)));
    if (ret != 0) {
        json_decref(types);
        return NULL;
    }
    return types;
}

static json_t *chain__json_domain(const chain_eip712_domain_t *d)
{
    json_t *o = json_object();
    bool ok = o != NULL && chain__json_set_str(o, "name", d->name) &&
              chain__json_set_str(o, "version", d->version) &&
              chain__json_set_u64(o, "chainId", d->chain_id) &&
              chain__json_set_addr(o, "verifyingContract", &d->verifying_contract);
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

static json_t *chain__json_intent(const chain_intent_t *in)
{
    char amount[CHAIN_U256_DEC_SIZE];
    chain_u256_to_dec(&in->amount, amount);
    char salt[2 + 64 + 1];
    int ret = chain_hex_encode(salt, sizeof(salt), in->salt, sizeof(in->salt), CHAIN_HEX_0X);
    CHAIN_ASSERT(ret == CHAIN_OK);
    json_t *o = json_object();
    bool ok = o != NULL && chain__json_set_addr(o, "owner", &in->owner) &&
              chain__json_set_addr(o, "token", &in->token) &&
              chain__json_set_addr(o, "recipient", &in->recipient) &&
              chain__json_set_str(o, "amount", amount) &&
              chain__json_set_u64(o, "minInterval", in->min_interval) &&
              chain__json_set_u64(o, "validAfter", in->valid_after) &&
              chain__json_set_u64(o, "validUntil", in->valid_until) &&
              chain__json_set_u64(o, "maxExecutions", in->max_executions) &&
              chain__json_set_str(o, "salt", salt);
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

json_t *chain_intent_typed_data(const chain_eip712_domain_t *d, const chain_intent_t *intent)
{
    CHAIN_ASSERT(d != NULL && intent != NULL);
    json_t *root = json_object();
    /* json_object_set_new takes (and on failure releases) its value, also a NULL one */
    bool ok = root != NULL && json_object_set_new(root, "types", chain__json_types()) == 0 &&
              chain__json_set_str(root, "primaryType", "PaymentIntent") &&
              json_object_set_new(root, "domain", chain__json_domain(d)) == 0 &&
              json_object_set_new(root, "message", chain__json_intent(intent)) == 0;
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ---- typedData rendered without jansson ----
 *
 * Building the object and dumping it cost about as much as the EIP-712 signature recovery of a
 * create, so the answers that carry typedData write it straight into their buffer. The bytes are
 * exactly those of json_dumpb(chain_intent_typed_data(...), JSON_COMPACT): members in insertion
 * order, no spaces. Every value but the domain's name and version is hex, digits or a member
 * table's constant, none of which JSON escapes. */

/* "\"" s "\"" for a string that needs no escape */
static void chain__put_plain_str(net_json_out_t *o, const char *s)
{
    net_json_out_put(o, "\"", 1);
    net_json_out_puts(o, s);
    net_json_out_put(o, "\"", 1);
}

/* "\"" v "\"" in decimal, as "%" PRIu64 writes it (a typedData has four: printf cost more than
 * the rest of them) */
static void chain__put_u64_str(net_json_out_t *o, uint64_t v)
{
    char buf[24]; /* the quotes and at most 20 digits, written from the end */
    size_t at = sizeof(buf);
    buf[--at] = '"';
    do { /* at most 20 turns */
        buf[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    buf[--at] = '"';
    net_json_out_put(o, buf + at, sizeof(buf) - at);
}

/* Entries of chain_eip712_addr_text's memo: the registry, the configured tokens and a few
 * owners and recipients; a lookup compares at most this many addresses. */
#define CHAIN__ADDR_MEMO_SIZE 8

typedef struct st_chain__addr_memo_entry_t {
    chain_addr_t addr;
    char text[CHAIN_ADDR_STR_SIZE];
} chain__addr_memo_entry_t;

/* most recently used first, so that the addresses every answer names (registry, token) stay
 * while each answer's new owner and recipient push out the oldest */
typedef struct st_chain__addr_memo_t {
    chain__addr_memo_entry_t entries[CHAIN__ADDR_MEMO_SIZE];
    unsigned used;
} chain__addr_memo_t;

static __thread chain__addr_memo_t chain__addr_memo;

void chain_eip712_addr_text(const chain_addr_t *a, char out[CHAIN_ADDR_STR_SIZE])
{
    CHAIN_ASSERT(a != NULL && out != NULL);
    chain__addr_memo_t *m = &chain__addr_memo;
    chain__addr_memo_entry_t found;
    unsigned i = 0;
    while (i != m->used && !chain_addr_eq(&m->entries[i].addr, a)) /* at most SIZE turns */
        ++i;
    if (i != m->used) {
        found = m->entries[i];
    } else {
        found.addr = *a;
        chain_addr_format(a, found.text);
        if (m->used < CHAIN__ADDR_MEMO_SIZE)
            ++m->used;
        i = m->used - 1; /* the least recently used goes, or the new last slot is taken */
    }
    memmove(&m->entries[1], &m->entries[0], i * sizeof(m->entries[0]));
    m->entries[0] = found;
    memcpy(out, found.text, CHAIN_ADDR_STR_SIZE);
}

static void chain__put_addr(net_json_out_t *o, const chain_addr_t *a)
{
    char buf[CHAIN_ADDR_STR_SIZE];
    chain_eip712_addr_text(a, buf);
    chain__put_plain_str(o, buf);
}

/* True when JSON would write `s` as it is: printable ASCII but quote and backslash (anything
 * else is left to jansson, which also refuses what is not UTF-8). */
static bool chain__needs_no_escape(const char *s)
{
    for (; *s != '\0'; ++s) /* bounded by the NUL */
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* {"EIP712Domain":[...],"PaymentIntent":[...]}: the same for every intent, rendered once */
static char chain__types_json[1024];
static size_t chain__types_json_len;
static pthread_once_t chain__types_json_once = PTHREAD_ONCE_INIT;

static void chain__put_members(net_json_out_t *o, const chain__eip712_member_t *m, size_t n)
{
    net_json_out_put(o, "[", 1);
    for (size_t i = 0; i != n; ++i) {
        net_json_out_puts(o, i == 0 ? "{\"name\":" : ",{\"name\":");
        chain__put_plain_str(o, m[i].name);
        net_json_out_puts(o, ",\"type\":");
        chain__put_plain_str(o, m[i].type);
        net_json_out_put(o, "}", 1);
    }
    net_json_out_put(o, "]", 1);
}

static void chain__types_json_init(void)
{
    net_json_out_t o = {.buf = chain__types_json, .cap = sizeof(chain__types_json)};
    net_json_out_puts(&o, "{\"EIP712Domain\":");
    chain__put_members(&o, chain__eip712_domain_members,
                       CHAIN__COUNT(chain__eip712_domain_members));
    net_json_out_puts(&o, ",\"PaymentIntent\":");
    chain__put_members(&o, chain__intent_members, CHAIN__COUNT(chain__intent_members));
    net_json_out_put(&o, "}", 1);
    CHAIN_ASSERT(!o.full); /* the tables are constants: a failure here is a programming error */
    chain__types_json_len = o.len;
}

size_t chain_intent_typed_data_render(const chain_eip712_domain_t *d, const chain_intent_t *intent,
                                      char *buf, size_t cap)
{
    CHAIN_ASSERT(d != NULL && intent != NULL && buf != NULL);
    if (!chain__needs_no_escape(d->name) || !chain__needs_no_escape(d->version))
        return 0;
    int ret = pthread_once(&chain__types_json_once, chain__types_json_init);
    CHAIN_ASSERT(ret == 0);
    net_json_out_t o = {.buf = buf, .cap = cap};
    net_json_out_puts(&o, "{\"types\":");
    net_json_out_put(&o, chain__types_json, chain__types_json_len);
    net_json_out_puts(&o, ",\"primaryType\":\"PaymentIntent\",\"domain\":{\"name\":");
    chain__put_plain_str(&o, d->name);
    net_json_out_puts(&o, ",\"version\":");
    chain__put_plain_str(&o, d->version);
    net_json_out_puts(&o, ",\"chainId\":");
    chain__put_u64_str(&o, d->chain_id);
    net_json_out_puts(&o, ",\"verifyingContract\":");
    chain__put_addr(&o, &d->verifying_contract);
    net_json_out_puts(&o, "},\"message\":{\"owner\":");
    chain__put_addr(&o, &intent->owner);
    net_json_out_puts(&o, ",\"token\":");
    chain__put_addr(&o, &intent->token);
    net_json_out_puts(&o, ",\"recipient\":");
    chain__put_addr(&o, &intent->recipient);
    char text[CHAIN_U256_DEC_SIZE];
    chain_u256_to_dec(&intent->amount, text);
    net_json_out_puts(&o, ",\"amount\":");
    chain__put_plain_str(&o, text);
    net_json_out_puts(&o, ",\"minInterval\":");
    chain__put_u64_str(&o, intent->min_interval);
    net_json_out_puts(&o, ",\"validAfter\":");
    chain__put_u64_str(&o, intent->valid_after);
    net_json_out_puts(&o, ",\"validUntil\":");
    chain__put_u64_str(&o, intent->valid_until);
    net_json_out_puts(&o, ",\"maxExecutions\":");
    chain__put_u64_str(&o, intent->max_executions);
    char salt[2 + 64 + 1];
    ret = chain_hex_encode(salt, sizeof(salt), intent->salt, sizeof(intent->salt), CHAIN_HEX_0X);
    CHAIN_ASSERT(ret == CHAIN_OK);
    net_json_out_puts(&o, ",\"salt\":");
    chain__put_plain_str(&o, salt);
    net_json_out_puts(&o, "}}");
    return o.full ? 0 : o.len;
}
