#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include "chain/keccak.h"
#include "chain/secp.h"
#include "test_chain_fixtures.h"

/* EIP-155's worked example: the signing hash of its transaction, key 0x46..46, and the
 * signature the EIP gives (v 37 = 1 * 2 + 35 + 0) */
#define EIP155_HASH "0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
#define EIP155_KEY "0x4646464646464646464646464646464646464646464646464646464646464646"
#define EIP155_R "0x28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276"
#define EIP155_S "0x67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
#define EIP155_ADDR "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"
/* the order n of secp256k1 */
#define CURVE_N "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"

static void hex32(const char *s, uint8_t out[32])
{
    fx_hex_exact(s, out, 32);
}

/* a valid signature over EIP155_HASH as 65 bytes, v = 27 */
static void eip155_sig_bytes(uint8_t out[CHAIN_SIG_LEN])
{
    hex32(EIP155_R, out);
    hex32(EIP155_S, out + 32);
    out[64] = 27;
}

/* s := n - s, which is the other valid signature of the same (hash, r), with the other y */
static void negate_s(uint8_t s[32])
{
    uint8_t n[32];
    hex32(CURVE_N, n);
    int borrow = 0;
    for (int i = 31; i >= 0; --i) {
        int d = n[i] - s[i] - borrow;
        borrow = d < 0;
        s[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

Test(chain_secp, eip155_example_signature)
{
    uint8_t hash[32], key[32];
    hex32(EIP155_HASH, hash);
    hex32(EIP155_KEY, key);
    chain_sig_t sig;
    cr_assert_eq(chain_secp_sign(&sig, hash, key), CHAIN_OK);
    char hex[67];
    cr_assert_str_eq(fx_to_hex(hex, sig.r, 32), EIP155_R);
    cr_assert_str_eq(fx_to_hex(hex, sig.s, 32), EIP155_S);
    cr_assert_eq(sig.recid, 0);

    chain_addr_t from, want = fx_addr_str(EIP155_ADDR);
    cr_assert_eq(chain_secp_recover(&from, hash, &sig), CHAIN_OK);
    cr_assert(chain_addr_eq(&from, &want));
    cr_assert_eq(chain_secp_seckey_address(&from, key), CHAIN_OK);
    cr_assert(chain_addr_eq(&from, &want));
}

/* EIP-712's example (assets/eip-712/Example.js): keccak256("cow") signs the Mail digest */
Test(chain_secp, eip712_example_signature)
{
    uint8_t hash[32], key[32];
    hex32("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2", hash);
    chain_keccak256("cow", 3, key);
    chain_sig_t sig;
    cr_assert_eq(chain_secp_sign(&sig, hash, key), CHAIN_OK);
    uint8_t ser[CHAIN_SIG_LEN];
    chain_sig_serialize(&sig, ser);
    char hex[2 * CHAIN_SIG_LEN + 3];
    cr_assert_str_eq(fx_to_hex(hex, ser, sizeof(ser)),
                     "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
                     "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562"
                     "1c");
    chain_addr_t from, want = fx_addr_str("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, ser, CHAIN_SIG_STRICT), CHAIN_OK);
    cr_assert(chain_addr_eq(&from, &want));
}

Test(chain_secp, anvil_account_zero_address)
{
    uint8_t key[32];
    hex32("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", key);
    chain_addr_t a, want = fx_addr_str("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    cr_assert_eq(chain_secp_seckey_address(&a, key), CHAIN_OK);
    cr_assert(chain_addr_eq(&a, &want));
}

/* ethers signs with RFC 6979 too, so the bytes must match exactly, not just verify */
Test(chain_secp, matches_ethers_signatures_bit_for_bit)
{
    json_t *root = fx_load();
    json_t *list = fx_get(root, "personalSign"), *v;
    size_t i;
    json_array_foreach(list, i, v)
    {
        uint8_t hash[32], key[32], want[CHAIN_SIG_LEN], got[CHAIN_SIG_LEN];
        hex32(fx_str(v, "hash"), hash);
        hex32(fx_str(v, "privateKey"), key);
        fx_hex_exact(fx_str(v, "signature"), want, sizeof(want));
        chain_sig_t sig;
        cr_assert_eq(chain_secp_sign(&sig, hash, key), CHAIN_OK);
        chain_sig_serialize(&sig, got);
        cr_assert_arr_eq(got, want, sizeof(want), "vector %zu", i);
        chain_addr_t from, addr = fx_addr(v, "address");
        cr_assert_eq(chain_secp_recover_bytes(&from, hash, want, CHAIN_SIG_STRICT), CHAIN_OK);
        cr_assert(chain_addr_eq(&from, &addr), "vector %zu", i);
    }
    json_decref(root);
}

Test(chain_secp, signing_is_deterministic_and_low_s)
{
    uint8_t key[32];
    hex32(EIP155_KEY, key);
    for (unsigned i = 0; i != 64; ++i) {
        uint8_t hash[32];
        chain_keccak256(&i, sizeof(i), hash);
        chain_sig_t a, b;
        cr_assert_eq(chain_secp_sign(&a, hash, key), CHAIN_OK);
        cr_assert_eq(chain_secp_sign(&b, hash, key), CHAIN_OK);
        cr_assert(memcmp(&a, &b, sizeof(a)) == 0);
        cr_assert(chain_sig_is_low_s(&a), "high s for hash %u", i);
    }
}

Test(chain_secp, v_forms)
{
    uint8_t hash[32], sig[CHAIN_SIG_LEN];
    hex32(EIP155_HASH, hash);
    eip155_sig_bytes(sig);
    chain_addr_t want = fx_addr_str(EIP155_ADDR);
    const uint8_t good[] = {0, 27};
    for (size_t i = 0; i != sizeof(good); ++i) {
        sig[64] = good[i];
        chain_addr_t from;
        cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, CHAIN_SIG_STRICT), CHAIN_OK);
        cr_assert(chain_addr_eq(&from, &want), "v %u", good[i]);
    }
    /* the other parity is a valid signature of someone else */
    const uint8_t other[] = {1, 28};
    for (size_t i = 0; i != sizeof(other); ++i) {
        sig[64] = other[i];
        chain_addr_t from;
        cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, 0), CHAIN_OK);
        cr_assert(!chain_addr_eq(&from, &want), "v %u", other[i]);
    }
    const uint8_t bad[] = {2, 3, 26, 29, 35, 37, 255};
    for (size_t i = 0; i != sizeof(bad); ++i) {
        sig[64] = bad[i];
        chain_sig_t parsed = {.recid = 0xee};
        cr_assert_eq(chain_sig_parse(&parsed, sig, 0), CHAIN_ERR_SIGNATURE, "v %u", bad[i]);
        cr_assert_eq(parsed.recid, 0xee, "output written on error");
    }
}

Test(chain_secp, high_s_refused_only_when_strict)
{
    uint8_t hash[32], sig[CHAIN_SIG_LEN];
    hex32(EIP155_HASH, hash);
    eip155_sig_bytes(sig);
    negate_s(sig + 32);
    sig[64] = 28; /* negating s flips the parity of the recovered point */
    chain_addr_t from, want = fx_addr_str(EIP155_ADDR);
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, 0), CHAIN_OK);
    cr_assert(chain_addr_eq(&from, &want), "the malleated signature is the same signer's");
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, CHAIN_SIG_STRICT), CHAIN_ERR_SIGNATURE);
}

Test(chain_secp, r_and_s_out_of_range)
{
    uint8_t hash[32], sig[CHAIN_SIG_LEN];
    hex32(EIP155_HASH, hash);
    chain_addr_t from;
    eip155_sig_bytes(sig);
    memset(sig, 0, 32); /* r = 0 */
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, 0), CHAIN_ERR_SIGNATURE);
    eip155_sig_bytes(sig);
    memset(sig + 32, 0, 32); /* s = 0 */
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, 0), CHAIN_ERR_SIGNATURE);
    eip155_sig_bytes(sig);
    hex32(CURVE_N, sig); /* r = n */
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, 0), CHAIN_ERR_SIGNATURE);
    eip155_sig_bytes(sig);
    memset(sig, 0xff, 32); /* r > n */
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, 0), CHAIN_ERR_SIGNATURE);
    eip155_sig_bytes(sig);
    memset(sig + 32, 0xff, 32); /* s > n: high, and out of range when not strict */
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, CHAIN_SIG_STRICT), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(chain_secp_recover_bytes(&from, hash, sig, 0), CHAIN_ERR_SIGNATURE);
}

Test(chain_secp, invalid_private_keys)
{
    uint8_t hash[32] = {1}, key[32];
    chain_sig_t sig;
    chain_addr_t a;
    memset(key, 0, sizeof(key));
    cr_assert_eq(chain_secp_sign(&sig, hash, key), CHAIN_ERR_KEY);
    cr_assert_eq(chain_secp_seckey_address(&a, key), CHAIN_ERR_KEY);
    hex32(CURVE_N, key);
    cr_assert_eq(chain_secp_sign(&sig, hash, key), CHAIN_ERR_KEY);
    memset(key, 0xff, sizeof(key));
    cr_assert_eq(chain_secp_sign(&sig, hash, key), CHAIN_ERR_KEY);
    cr_assert_eq(chain_secp_seckey_address(&a, key), CHAIN_ERR_KEY);
}

Test(chain_secp, parse_hex)
{
    chain_sig_t sig;
    const char *good = "0x28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276"
                       "67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d831b";
    cr_assert_eq(chain_sig_parse_hex(&sig, good, strlen(good), CHAIN_SIG_STRICT), CHAIN_OK);
    cr_assert_eq(sig.recid, 0);
    cr_assert_eq(chain_sig_parse_hex(&sig, good + 2, strlen(good) - 2, 0), CHAIN_ERR_SYNTAX);
    cr_assert_eq(chain_sig_parse_hex(&sig, good, strlen(good) - 2, 0), CHAIN_ERR_LENGTH);
    cr_assert_eq(chain_sig_parse_hex(&sig, good, strlen(good) - 1, 0), CHAIN_ERR_LENGTH);
    cr_assert_eq(chain_sig_parse_hex(&sig, "0xzz", 4, 0), CHAIN_ERR_SYNTAX);
    cr_assert_eq(chain_sig_parse_hex(&sig, "", 0, 0), CHAIN_ERR_SYNTAX);
}

static void *sign_in_thread(void *arg)
{
    uint8_t key[32], hash[32];
    memset(key, 0x46, sizeof(key));
    chain_keccak256(&arg, sizeof(arg), hash);
    for (int i = 0; i != 50; ++i) {
        chain_sig_t sig;
        chain_addr_t from;
        if (chain_secp_sign(&sig, hash, key) != CHAIN_OK ||
            chain_secp_recover(&from, hash, &sig) != CHAIN_OK)
            return (void *)1;
    }
    return NULL;
}

/* the shared context is created once, whichever thread asks first */
Test(chain_secp, context_shared_by_threads)
{
    pthread_t t[4];
    for (uintptr_t i = 0; i != 4; ++i)
        cr_assert_eq(pthread_create(&t[i], NULL, sign_in_thread, (void *)i), 0);
    for (int i = 0; i != 4; ++i) {
        void *ret;
        cr_assert_eq(pthread_join(t[i], &ret), 0);
        cr_assert_null(ret);
    }
    cr_assert_eq(chain_secp_context(), chain_secp_context());
}
