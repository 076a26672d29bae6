#include <criterion/criterion.h>
#include <string.h>
#include "chain/eip712.h"
#include "chain/keccak.h"
#include "test_chain_fixtures.h"

/* api.md, "The on-chain side", copied here rather than taken from the header, so that a change
 * to the header's string fails this test */
static const char api_md_type[] =
    "PaymentIntent(address owner,address token,address recipient,uint256 amount,"
    "uint64 minInterval,uint64 validAfter,uint64 validUntil,uint32 maxExecutions,bytes32 salt)";

static const char *hex_of(char out[67], const uint8_t h[32])
{
    return fx_to_hex(out, h, 32);
}

/* ---- EIP-712's own example, through the generic struct encoder ---- */

#define MAIL_TYPE "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
#define PERSON_TYPE "Person(string name,address wallet)"

static void person_hash(const char *name, const char *wallet, uint8_t out[32])
{
    chain_eip712_struct_t s;
    chain_addr_t a = fx_addr_str(wallet);
    chain_eip712_struct_begin(&s, PERSON_TYPE);
    chain_eip712_put_bytes(&s, name, strlen(name));
    chain_eip712_put_address(&s, &a);
    chain_eip712_struct_end(&s, out);
}

static void mail_hash(uint8_t out[32])
{
    uint8_t from[32], to[32];
    person_hash("Cow", "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", from);
    person_hash("Bob", "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB", to);
    chain_eip712_struct_t s;
    chain_eip712_struct_begin(&s, MAIL_TYPE);
    chain_eip712_put_word(&s, from);
    chain_eip712_put_word(&s, to);
    chain_eip712_put_bytes(&s, "Hello, Bob!", 11);
    chain_eip712_struct_end(&s, out);
}

/* the values asserted by EIP-712's assets/eip-712/Example.js */
Test(chain_eip712, eip712_mail_example)
{
    char hex[67];
    uint8_t h[32];
    chain_keccak256(MAIL_TYPE, strlen(MAIL_TYPE), h);
    cr_assert_str_eq(hex_of(hex, h),
                     "0xa0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2");

    uint8_t mail[32], sep[32], digest[32];
    mail_hash(mail);
    hex_of(hex, mail);
    cr_assert_str_eq(hex, "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e");

    chain_eip712_domain_t d = {.name = "Ether Mail", .version = "1", .chain_id = 1};
    d.verifying_contract = fx_addr_str("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC");
    chain_eip712_domain_separator(&d, sep);
    hex_of(hex, sep);
    cr_assert_str_eq(hex, "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f");

    chain_eip712_digest(sep, mail, digest);
    hex_of(hex, digest);
    cr_assert_str_eq(hex, "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
}

/* ---- the PaymentIntent against ethers ---- */

Test(chain_eip712, type_string_is_api_md)
{
    cr_assert_str_eq(CHAIN_INTENT_TYPE, api_md_type);
    json_t *root = fx_load();
    cr_assert_str_eq(fx_str(fx_get(root, "eip712"), "encodeType"), api_md_type);
    uint8_t h[32];
    char hex[67];
    chain_keccak256(api_md_type, strlen(api_md_type), h);
    cr_assert_str_eq(hex_of(hex, h), fx_str(fx_get(root, "eip712"), "typeHash"));
    json_decref(root);
}

static chain_eip712_domain_t fx_domain(json_t *e712)
{
    chain_eip712_domain_t d;
    chain_addr_t registry = fx_addr(e712, "verifyingContract");
    chain_intent_domain(&d, fx_u64(e712, "chainId"), &registry);
    return d;
}

Test(chain_eip712, ethers_hashes_and_signatures)
{
    json_t *root = fx_load();
    json_t *e712 = fx_get(root, "eip712");
    chain_eip712_domain_t d = fx_domain(e712);
    uint8_t h[32];
    char hex[67];
    chain_eip712_domain_separator(&d, h);
    cr_assert_str_eq(hex_of(hex, h), fx_str(e712, "domainSeparator"));

    json_t *v;
    size_t i;
    json_array_foreach(fx_get(e712, "intents"), i, v)
    {
        chain_intent_t in = fx_intent(fx_get(v, "intent"));
        chain_intent_hash(&in, h);
        cr_assert_str_eq(hex_of(hex, h), fx_str(v, "structHash"), "intent %zu", i);
        chain_intent_digest(&d, &in, h);
        cr_assert_str_eq(hex_of(hex, h), fx_str(v, "digest"), "intent %zu", i);

        uint8_t sig[CHAIN_SIG_LEN], norm[CHAIN_SIG_LEN];
        fx_hex_exact(fx_str(v, "signature"), sig, sizeof(sig));
        cr_assert_eq(chain_intent_verify(&d, &in, sig, norm), CHAIN_OK, "intent %zu", i);
        cr_assert_arr_eq(norm, sig, sizeof(sig), "ethers already writes v 27/28");

        /* signing the digest ourselves gives ethers' bytes */
        uint8_t key[32], ours[CHAIN_SIG_LEN];
        chain_sig_t s;
        fx_hex_exact(fx_str(v, "privateKey"), key, sizeof(key));
        cr_assert_eq(chain_secp_sign(&s, h, key), CHAIN_OK);
        chain_sig_serialize(&s, ours);
        cr_assert_arr_eq(ours, sig, sizeof(sig), "intent %zu", i);
    }
    json_decref(root);
}

/* one intent and its ethers signature, for the negative cases */
static void first_intent(chain_eip712_domain_t *d, chain_intent_t *in, uint8_t sig[65])
{
    json_t *root = fx_load();
    json_t *e712 = fx_get(root, "eip712");
    *d = fx_domain(e712);
    json_t *v = json_array_get(fx_get(e712, "intents"), 0);
    *in = fx_intent(fx_get(v, "intent"));
    fx_hex_exact(fx_str(v, "signature"), sig, CHAIN_SIG_LEN);
    json_decref(root);
}

Test(chain_eip712, verify_rejects_changed_terms)
{
    chain_eip712_domain_t d;
    chain_intent_t in, x;
    uint8_t sig[CHAIN_SIG_LEN];
    first_intent(&d, &in, sig);
    cr_assert_eq(chain_intent_verify(&d, &in, sig, NULL), CHAIN_OK);

    x = in;
    x.amount.limb[0] += 1;
    cr_assert_eq(chain_intent_verify(&d, &x, sig, NULL), CHAIN_ERR_SIGNER, "amount");
    x = in;
    x.recipient.bytes[0] ^= 1;
    cr_assert_eq(chain_intent_verify(&d, &x, sig, NULL), CHAIN_ERR_SIGNER, "recipient");
    x = in;
    x.min_interval -= 1;
    cr_assert_eq(chain_intent_verify(&d, &x, sig, NULL), CHAIN_ERR_SIGNER, "minInterval");
    x = in;
    x.max_executions = 1;
    cr_assert_eq(chain_intent_verify(&d, &x, sig, NULL), CHAIN_ERR_SIGNER, "maxExecutions");
    x = in;
    x.salt[31] ^= 1;
    cr_assert_eq(chain_intent_verify(&d, &x, sig, NULL), CHAIN_ERR_SIGNER, "salt");
    x = in;
    x.owner.bytes[5] ^= 1; /* the signature is good, but not the claimed owner's */
    cr_assert_eq(chain_intent_verify(&d, &x, sig, NULL), CHAIN_ERR_SIGNER, "owner");

    chain_eip712_domain_t d2 = d;
    d2.chain_id = 25;
    cr_assert_eq(chain_intent_verify(&d2, &in, sig, NULL), CHAIN_ERR_SIGNER, "chain id");
    d2 = d;
    d2.verifying_contract.bytes[19] ^= 1;
    cr_assert_eq(chain_intent_verify(&d2, &in, sig, NULL), CHAIN_ERR_SIGNER, "registry");
    d2 = d;
    d2.version = "2";
    cr_assert_eq(chain_intent_verify(&d2, &in, sig, NULL), CHAIN_ERR_SIGNER, "version");
}

Test(chain_eip712, verify_signature_forms)
{
    chain_eip712_domain_t d;
    chain_intent_t in;
    uint8_t sig[CHAIN_SIG_LEN], alt[CHAIN_SIG_LEN], norm[CHAIN_SIG_LEN];
    first_intent(&d, &in, sig);

    /* v as a bare recovery id is accepted, and normalized to what the registry takes */
    memcpy(alt, sig, sizeof(alt));
    alt[64] -= 27;
    cr_assert_eq(chain_intent_verify(&d, &in, alt, norm), CHAIN_OK);
    cr_assert_arr_eq(norm, sig, sizeof(sig));

    memcpy(alt, sig, sizeof(alt));
    alt[64] = 2;
    memset(norm, 0xaa, sizeof(norm));
    cr_assert_eq(chain_intent_verify(&d, &in, alt, norm), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(norm[0], 0xaa, "output written on error");

    /* the high-s twin recovers the same owner, but the registry refuses it, so must we */
    static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                  0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
    memcpy(alt, sig, sizeof(alt));
    int borrow = 0;
    for (int i = 31; i >= 0; --i) {
        int v = n[i] - sig[32 + i] - borrow;
        borrow = v < 0;
        alt[32 + i] = (uint8_t)(v + (borrow ? 256 : 0));
    }
    alt[64] = sig[64] == 27 ? 28 : 27;
    chain_sig_t parsed;
    chain_addr_t who;
    cr_assert_eq(chain_sig_parse(&parsed, alt, 0), CHAIN_OK);
    uint8_t digest[32];
    chain_intent_digest(&d, &in, digest);
    cr_assert_eq(chain_secp_recover(&who, digest, &parsed), CHAIN_OK);
    cr_assert(chain_addr_eq(&who, &in.owner), "the twin is the owner's too");
    cr_assert_eq(chain_intent_verify(&d, &in, alt, NULL), CHAIN_ERR_SIGNATURE);
}

/* ---- typedData ---- */

static void assert_members(json_t *arr, json_t *want, const char *what)
{
    cr_assert(json_is_array(arr), "%s", what);
    cr_assert_eq(json_array_size(arr), json_array_size(want), "%s", what);
    for (size_t i = 0; i != json_array_size(want); ++i) {
        json_t *a = json_array_get(arr, i), *b = json_array_get(want, i);
        cr_assert_eq(json_object_size(a), 2);
        cr_assert_str_eq(fx_str(a, "name"), fx_str(b, "name"), "%s[%zu]", what, i);
        cr_assert_str_eq(fx_str(a, "type"), fx_str(b, "type"), "%s[%zu]", what, i);
    }
}

Test(chain_eip712, typed_data_shape_and_values)
{
    json_t *root = fx_load();
    json_t *e712 = fx_get(root, "eip712");
    chain_eip712_domain_t d = fx_domain(e712);
    json_t *v;
    size_t i;
    json_array_foreach(fx_get(e712, "intents"), i, v)
    {
        json_t *want = fx_get(v, "intent"), *payload = fx_get(v, "payload");
        chain_intent_t in = fx_intent(want);
        json_t *td = chain_intent_typed_data(&d, &in);
        cr_assert_not_null(td);
        cr_assert_eq(json_object_size(td), 4);
        json_t *types = fx_get(td, "types");
        cr_assert_eq(json_object_size(types), 2);
        assert_members(fx_get(types, "EIP712Domain"),
                       fx_get(fx_get(payload, "types"), "EIP712Domain"), "EIP712Domain");
        assert_members(fx_get(types, "PaymentIntent"),
                       fx_get(fx_get(payload, "types"), "PaymentIntent"), "PaymentIntent");
        cr_assert_str_eq(fx_str(td, "primaryType"), "PaymentIntent");

        json_t *dom = fx_get(td, "domain");
        cr_assert_eq(json_object_size(dom), 4);
        cr_assert_str_eq(fx_str(dom, "name"), "FlowPay");
        cr_assert_str_eq(fx_str(dom, "version"), "1");
        cr_assert_str_eq(fx_str(dom, "chainId"), "31337", "a decimal string, not a number");
        cr_assert_str_eq(fx_str(dom, "verifyingContract"), fx_str(e712, "verifyingContract"));

        /* the fixture's intents are written EIP-55 and decimal, as ours must be */
        json_t *msg = fx_get(td, "message");
        cr_assert(json_equal(msg, want), "intent %zu:\n%s", i, json_dumps(msg, JSON_INDENT(1)));
        const char *key;
        json_t *val;
        json_object_foreach(msg, key, val)
        {
            cr_assert(json_is_string(val), "message.%s is not a string", key);
        }
        json_decref(td);
    }
    json_decref(root);
}

Test(chain_eip712, typed_data_exact_text)
{
    chain_intent_t in;
    memset(&in, 0, sizeof(in));
    in.owner = fx_addr_str("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    in.token = fx_addr_str("0x5FbDB2315678afecb367f032d93F642f64180aa3");
    in.recipient = fx_addr_str("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    in.amount = chain_u256_from_u64(2500000);
    in.min_interval = chain_intent_min_interval(CHAIN_INTENT_WEEKLY, 0);
    in.valid_after = 1795251600;
    in.valid_until = CHAIN_INTENT_NO_END;
    in.max_executions = 12;
    in.salt[0] = 0xab;
    chain_addr_t registry = fx_addr_str("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");
    chain_eip712_domain_t d;
    chain_intent_domain(&d, 338, &registry);
    json_t *td = chain_intent_typed_data(&d, &in);
    char *text = json_dumps(td, JSON_COMPACT);
    cr_assert_str_eq(
        text,
        "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},"
        "{\"name\":\"version\",\"type\":\"string\"},{\"name\":\"chainId\",\"type\":\"uint256\"},"
        "{\"name\":\"verifyingContract\",\"type\":\"address\"}],"
        "\"PaymentIntent\":[{\"name\":\"owner\",\"type\":\"address\"},"
        "{\"name\":\"token\",\"type\":\"address\"},{\"name\":\"recipient\",\"type\":\"address\"},"
        "{\"name\":\"amount\",\"type\":\"uint256\"},{\"name\":\"minInterval\",\"type\":\"uint64\"},"
        "{\"name\":\"validAfter\",\"type\":\"uint64\"},"
        "{\"name\":\"validUntil\",\"type\":\"uint64\"},"
        "{\"name\":\"maxExecutions\",\"type\":\"uint32\"},"
        "{\"name\":\"salt\",\"type\":\"bytes32\"}]},"
        "\"primaryType\":\"PaymentIntent\","
        "\"domain\":{\"name\":\"FlowPay\",\"version\":\"1\",\"chainId\":\"338\","
        "\"verifyingContract\":\"0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512\"},"
        "\"message\":{\"owner\":\"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\","
        "\"token\":\"0x5FbDB2315678afecb367f032d93F642f64180aa3\","
        "\"recipient\":\"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\",\"amount\":\"2500000\","
        "\"minInterval\":\"604500\",\"validAfter\":\"1795251600\","
        "\"validUntil\":\"18446744073709551615\",\"maxExecutions\":\"12\","
        "\"salt\":\"0xab00000000000000000000000000000000000000000000000000000000000000\"}}");
    free(text);
    json_decref(td);
}

Test(chain_eip712, min_interval_per_api_md)
{
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_ONCE, 0), 0);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_ONCE, 86400), 0);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_DAILY, 0), 86100);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_DAILY, 60), 86100, "interval ignored");
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_WEEKLY, 0), 604500);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_MONTHLY, 0), 2418900);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_CUSTOM, 60), 54);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_CUSTOM, 61), 55);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_CUSTOM, 2999), 2700);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_CUSTOM, 3000), 2700);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_CUSTOM, 3001), 2701);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_CUSTOM, 90000), 89700);
    cr_assert_eq(chain_intent_min_interval(CHAIN_INTENT_CUSTOM, UINT64_MAX), UINT64_MAX - 300);
}
