/*
 * Wallets and what they sign: keys derived from the run's seed, EIP-191 signatures over the
 * server's EIP-4361 messages, EIP-712 signatures over the intents they create, and the state
 * file that carries sessions and intent ids from the setup run to the measured runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench/loadgen.h"
#include "chain/eip191.h"
#include "chain/hex.h"
#include "chain/keccak.h"
#include "chain/secp.h"

/* anvil's dev account 3: every bench intent pays it (nothing is executed by the bench) */
#define LG_RECIPIENT "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
/* 2030-01-01T09:00:00Z, so that no bench intent ever comes due */
#define LG_START_AT "2030-01-01T09:00:00Z"
#define LG_START_AT_S 1893488400
#define LG_AMOUNT_BASE 1500000 /* "1.5" USDC */

static void le64(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i != 8; ++i)
        out[i] = (uint8_t)(v >> (8 * i));
}

bool lg_users_init(lg_world_t *w, size_t n)
{
    w->users = calloc(n, sizeof(*w->users));
    if (w->users == NULL)
        return false;
    w->num_users = n;
    for (size_t i = 0; i != n; ++i) {
        lg_user_t *u = &w->users[i];
        uint8_t in[16];
        le64(in, w->seed);
        le64(in + 8, i);
        chain_keccak256(in, sizeof(in), u->seckey);
        /* a hash that is not a valid key (odds about 2^-128) is hashed again */
        for (int tries = 0; chain_secp_seckey_address(&u->address, u->seckey) != CHAIN_OK;
             ++tries) {
            if (tries == 8)
                return false;
            chain_keccak256(u->seckey, sizeof(u->seckey), u->seckey);
        }
        chain_addr_format(&u->address, u->address_str);
    }
    return true;
}

void lg_users_free(lg_world_t *w)
{
    for (size_t i = 0; i != w->num_users; ++i) {
        free(w->users[i].token);
        explicit_bzero(w->users[i].seckey, sizeof(w->users[i].seckey));
    }
    free(w->users);
    w->users = NULL;
    w->num_users = 0;
}

static void sign_hex(const uint8_t hash[32], const uint8_t seckey[32], char out[133])
{
    chain_sig_t sig;
    uint8_t bytes[CHAIN_SIG_LEN];
    chain_secp_sign(&sig, hash, seckey);
    chain_sig_serialize(&sig, bytes);
    chain_hex_encode(out, 133, bytes, sizeof(bytes), CHAIN_HEX_0X);
}

char *lg_signin_body(const lg_user_t *u, const char *message)
{
    uint8_t hash[32];
    char sig[133];
    chain_eip191_hash(message, strlen(message), hash);
    sign_hex(hash, u->seckey, sig);
    json_t *j = json_pack("{s:s, s:s}", "message", message, "signature", sig);
    char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return body;
}

char *lg_create_body(lg_world_t *w, lg_user_t *u)
{
    chain_intent_t terms = {.owner = u->address,
                            .token = w->usdc,
                            .amount = chain_u256_from_u64(LG_AMOUNT_BASE),
                            .min_interval = chain_intent_min_interval(CHAIN_INTENT_DAILY, 0),
                            .valid_after = LG_START_AT_S,
                            .valid_until = CHAIN_INTENT_NO_END,
                            .max_executions = 0};
    chain_addr_parse(&terms.recipient, LG_RECIPIENT, strlen(LG_RECIPIENT));
    /* salt = keccak256(owner || seed || counter): unique per intent, the same on every run
     * with the same seed (so a rerun on the same database meets 409s, not silent duplicates) */
    uint8_t in[20 + 8 + 8];
    memcpy(in, u->address.bytes, 20);
    le64(in + 20, w->seed);
    le64(in + 28, ++u->salt_counter);
    chain_keccak256(in, sizeof(in), terms.salt);
    uint8_t digest[32];
    char sig[133], salt[67];
    chain_intent_digest(&w->domain, &terms, digest);
    sign_hex(digest, u->seckey, sig);
    chain_hex_encode(salt, sizeof(salt), terms.salt, sizeof(terms.salt), CHAIN_HEX_0X);
    char *body = NULL;
    if (asprintf(&body,
                 "{\"name\":\"bench %u\",\"recipient\":\"" LG_RECIPIENT "\",\"token\":\"%s\","
                 "\"amount\":\"1.5\",\"frequency\":\"daily\",\"startAt\":\"" LG_START_AT "\","
                 "\"salt\":\"%s\",\"signature\":\"%s\"}",
                 u->salt_counter, w->usdc_str, salt, sig) < 0)
        return NULL;
    return body;
}

bool lg_state_save(const lg_world_t *w, const char *path)
{
    json_t *users = json_array();
    for (size_t i = 0; i != w->num_users; ++i) {
        const lg_user_t *u = &w->users[i];
        json_t *ids = json_array();
        for (uint32_t k = 0; k != u->num_intents; ++k)
            json_array_append_new(ids, json_string(u->intent_ids[k]));
        json_array_append_new(users, json_pack("{s:s, s:s?, s:i, s:o}", "address", u->address_str,
                                               "token", u->token, "saltCounter",
                                               (int)u->salt_counter, "intents", ids));
    }
    json_t *j = json_pack("{s:I, s:o}", "seed", (json_int_t)w->seed, "users", users);
    int rc = json_dump_file(j, path, JSON_COMPACT);
    json_decref(j);
    return rc == 0;
}

static bool state_user(lg_user_t *u, json_t *ju)
{
    const char *addr = json_string_value(json_object_get(ju, "address"));
    const char *token = json_string_value(json_object_get(ju, "token"));
    json_t *ids = json_object_get(ju, "intents");
    if (addr == NULL || strcmp(addr, u->address_str) != 0 || !json_is_array(ids))
        return false;
    free(u->token);
    u->token = token != NULL ? strdup(token) : NULL;
    u->salt_counter = (uint32_t)json_integer_value(json_object_get(ju, "saltCounter"));
    u->num_intents = 0;
    size_t k;
    json_t *id;
    json_array_foreach(ids, k, id)
    {
        if (u->num_intents == LG_USER_INTENTS_MAX || json_string_value(id) == NULL)
            break;
        snprintf(u->intent_ids[u->num_intents++], sizeof(u->intent_ids[0]), "%s",
                 json_string_value(id));
    }
    return true;
}

bool lg_state_load(lg_world_t *w, const char *path)
{
    json_t *j = json_load_file(path, 0, NULL);
    json_t *users = json_object_get(j, "users");
    bool ok = j != NULL && (uint64_t)json_integer_value(json_object_get(j, "seed")) == w->seed &&
              json_array_size(users) >= w->num_users;
    for (size_t i = 0; ok && i != w->num_users; ++i)
        ok = state_user(&w->users[i], json_array_get(users, i));
    json_decref(j);
    return ok;
}
