#include <criterion/criterion.h>
#include <string.h>
#include "chain/eip191.h"
#include "test_chain_fixtures.h"

static void hash_hex(const void *msg, size_t len, char out[67])
{
    uint8_t h[32];
    chain_eip191_hash(msg, len, h);
    fx_to_hex(out, h, sizeof(h));
}

/* hashMessage("Hello World") from the ethers documentation */
Test(chain_eip191, hello_world_hash)
{
    char hex[67];
    hash_hex("Hello World", 11, hex);
    cr_assert_str_eq(hex, "0xa1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2");
}

/* web3.js documentation, web3.eth.accounts.sign('Some data', '0x4c0883...'): messageHash and
 * signature, both published there */
Test(chain_eip191, web3js_published_signature)
{
    char hex[2 * CHAIN_SIG_LEN + 3];
    hash_hex("Some data", 9, hex);
    cr_assert_str_eq(hex, "0x1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655");
    const char *sig_hex = "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd"
                          "6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c";
    uint8_t sig[CHAIN_SIG_LEN];
    fx_hex_exact(sig_hex, sig, sizeof(sig));
    chain_addr_t signer, want = fx_addr_str("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23");
    cr_assert_eq(chain_eip191_recover(&signer, "Some data", 9, sig, CHAIN_SIG_STRICT), CHAIN_OK);
    cr_assert(chain_addr_eq(&signer, &want));

    /* and signing reproduces it */
    uint8_t key[32], h[32], ours[CHAIN_SIG_LEN];
    fx_hex_exact("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", key, 32);
    chain_eip191_hash("Some data", 9, h);
    chain_sig_t s;
    cr_assert_eq(chain_secp_sign(&s, h, key), CHAIN_OK);
    chain_sig_serialize(&s, ours);
    cr_assert_str_eq(fx_to_hex(hex, ours, sizeof(ours)), sig_hex);
}

Test(chain_eip191, ethers_vectors)
{
    json_t *root = fx_load();
    json_t *list = fx_get(root, "personalSign"), *v;
    size_t i;
    json_array_foreach(list, i, v)
    {
        uint8_t msg[512], sig[CHAIN_SIG_LEN];
        size_t len = fx_hex(fx_str(v, "messageHex"), msg, sizeof(msg));
        json_t *text = json_object_get(v, "message");
        if (text != NULL) /* the length prefix counts UTF-8 bytes, not characters */
            cr_assert_eq(json_string_length(text), len);
        char hex[67];
        hash_hex(msg, len, hex);
        cr_assert_str_eq(hex, fx_str(v, "hash"), "vector %zu", i);
        fx_hex_exact(fx_str(v, "signature"), sig, sizeof(sig));
        chain_addr_t want = fx_addr(v, "address"), signer;
        cr_assert_eq(chain_eip191_recover(&signer, msg, len, sig, CHAIN_SIG_STRICT), CHAIN_OK);
        cr_assert(chain_addr_eq(&signer, &want), "vector %zu", i);
        cr_assert_eq(chain_eip191_verify(&want, msg, len, sig, CHAIN_SIG_STRICT), CHAIN_OK);
    }
    json_decref(root);
}

Test(chain_eip191, verify_rejects)
{
    json_t *root = fx_load();
    json_t *v = json_array_get(fx_get(root, "personalSign"), 0);
    const char *msg = fx_str(v, "message");
    size_t len = strlen(msg);
    uint8_t sig[CHAIN_SIG_LEN];
    fx_hex_exact(fx_str(v, "signature"), sig, sizeof(sig));
    chain_addr_t owner = fx_addr(v, "address"), other = owner;
    other.bytes[19] ^= 1;

    cr_assert_eq(chain_eip191_verify(&other, msg, len, sig, 0), CHAIN_ERR_SIGNER);
    cr_assert_eq(chain_eip191_verify(&owner, msg, len - 1, sig, 0), CHAIN_ERR_SIGNER,
                 "a shorter message has another signer");
    uint8_t bad[CHAIN_SIG_LEN];
    memcpy(bad, sig, sizeof(bad));
    bad[64] = 29;
    cr_assert_eq(chain_eip191_verify(&owner, msg, len, bad, 0), CHAIN_ERR_SIGNATURE);
    memcpy(bad, sig, sizeof(bad));
    bad[10] ^= 0x40; /* another r: another signer, or no valid point at all */
    int ret = chain_eip191_verify(&owner, msg, len, bad, 0);
    cr_assert(ret == CHAIN_ERR_SIGNER || ret == CHAIN_ERR_SIGNATURE);
    json_decref(root);
}
