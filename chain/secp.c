#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <secp256k1_recovery.h>
#include "chain/hex.h"
#include "chain/keccak.h"
#include "chain/secp.h"

/* n / 2, big-endian, n being the order of secp256k1: the largest s a low-s signature has */
static const uint8_t chain__secp_half_n[32] = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
};
/* getrandom may return fewer bytes or EINTR; a handful of retries is plenty for 32 bytes */
#define CHAIN__SECP_RANDOM_TRIES 16

static secp256k1_context *chain__secp_ctx;
static pthread_once_t chain__secp_once = PTHREAD_ONCE_INIT;

/* fills `buf` from the kernel's CSPRNG; false when it cannot */
static bool chain__secp_random(uint8_t *buf, size_t len)
{
    size_t got = 0;
    for (int i = 0; i != CHAIN__SECP_RANDOM_TRIES && got < len; ++i) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno != EINTR)
            return false;
    }
    return got == len;
}

static void chain__secp_create(void)
{
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    CHAIN_ASSERT(ctx != NULL);
    uint8_t seed[32];
    CHAIN_ASSERT(chain__secp_random(seed, sizeof(seed)));
    int ok = secp256k1_context_randomize(ctx, seed);
    explicit_bzero(seed, sizeof(seed));
    CHAIN_ASSERT(ok == 1);
    chain__secp_ctx = ctx;
}

const secp256k1_context *chain_secp_context(void)
{
    int ret = pthread_once(&chain__secp_once, chain__secp_create);
    CHAIN_ASSERT(ret == 0 && chain__secp_ctx != NULL);
    return chain__secp_ctx;
}

int chain_secp_sign(chain_sig_t *sig, const uint8_t hash[CHAIN_SECP_KEY_LEN],
                    const uint8_t seckey[CHAIN_SECP_KEY_LEN])
{
    CHAIN_ASSERT(sig != NULL && hash != NULL && seckey != NULL);
    const secp256k1_context *ctx = chain_secp_context();
    if (!secp256k1_ec_seckey_verify(ctx, seckey))
        return CHAIN_ERR_KEY;
    secp256k1_ecdsa_recoverable_signature rs;
    /* NULL nonce function: RFC 6979, so the same key and hash always give the same signature */
    if (!secp256k1_ecdsa_sign_recoverable(ctx, &rs, hash, seckey, NULL, NULL))
        return CHAIN_ERR_KEY;
    uint8_t compact[64];
    int recid;
    secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, compact, &recid, &rs);
    /* libsecp256k1 signs low-s by construction; Ethereum depends on it, so check */
    CHAIN_ASSERT(recid == 0 || recid == 1);
    memcpy(sig->r, compact, 32);
    memcpy(sig->s, compact + 32, 32);
    sig->recid = (uint8_t)recid;
    CHAIN_ASSERT(chain_sig_is_low_s(sig));
    return CHAIN_OK;
}

int chain_secp_recover(chain_addr_t *addr, const uint8_t hash[CHAIN_SECP_KEY_LEN],
                       const chain_sig_t *sig)
{
    CHAIN_ASSERT(addr != NULL && hash != NULL && sig != NULL);
    const secp256k1_context *ctx = chain_secp_context();
    if (sig->recid > 1)
        return CHAIN_ERR_SIGNATURE;
    uint8_t compact[64];
    memcpy(compact, sig->r, 32);
    memcpy(compact + 32, sig->s, 32);
    secp256k1_ecdsa_recoverable_signature rs;
    /* refuses r or s at or above the order; zero r or s then fails to recover */
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &rs, compact, sig->recid))
        return CHAIN_ERR_SIGNATURE;
    secp256k1_pubkey pub;
    if (!secp256k1_ecdsa_recover(ctx, &pub, &rs, hash))
        return CHAIN_ERR_SIGNATURE;
    uint8_t ser[CHAIN_SECP_PUBKEY_LEN];
    size_t ser_len = sizeof(ser);
    secp256k1_ec_pubkey_serialize(ctx, ser, &ser_len, &pub, SECP256K1_EC_UNCOMPRESSED);
    CHAIN_ASSERT(ser_len == CHAIN_SECP_PUBKEY_LEN);
    chain_secp_pubkey_address(addr, ser);
    return CHAIN_OK;
}

bool chain_sig_is_low_s(const chain_sig_t *sig)
{
    return memcmp(sig->s, chain__secp_half_n, 32) <= 0;
}

static bool chain__secp_is_zero(const uint8_t v[32])
{
    uint8_t acc = 0;
    for (size_t i = 0; i != 32; ++i)
        acc |= v[i];
    return acc == 0;
}

int chain_sig_parse(chain_sig_t *sig, const uint8_t in[CHAIN_SIG_LEN], int flags)
{
    CHAIN_ASSERT(sig != NULL && in != NULL);
    uint8_t v = in[64];
    if (v == 27 || v == 28)
        v -= 27;
    if (v > 1)
        return CHAIN_ERR_SIGNATURE;
    chain_sig_t parsed;
    memcpy(parsed.r, in, 32);
    memcpy(parsed.s, in + 32, 32);
    parsed.recid = v;
    if (chain__secp_is_zero(parsed.r) || chain__secp_is_zero(parsed.s))
        return CHAIN_ERR_SIGNATURE;
    if ((flags & CHAIN_SIG_STRICT) != 0 && !chain_sig_is_low_s(&parsed))
        return CHAIN_ERR_SIGNATURE;
    /* r or s at or above the order is refused by libsecp256k1 when recovering */
    *sig = parsed;
    return CHAIN_OK;
}

int chain_sig_parse_hex(chain_sig_t *sig, const char *s, size_t len, int flags)
{
    uint8_t raw[CHAIN_SIG_LEN];
    int ret = chain_hex_decode_exact(raw, sizeof(raw), s, len, CHAIN_HEX_0X_REQUIRED);
    if (ret != CHAIN_OK)
        return ret;
    return chain_sig_parse(sig, raw, flags);
}

void chain_sig_serialize(const chain_sig_t *sig, uint8_t out[CHAIN_SIG_LEN])
{
    CHAIN_ASSERT(sig != NULL && out != NULL && sig->recid <= 1);
    memcpy(out, sig->r, 32);
    memcpy(out + 32, sig->s, 32);
    out[64] = (uint8_t)(27 + sig->recid);
}

int chain_secp_recover_bytes(chain_addr_t *addr, const uint8_t hash[CHAIN_SECP_KEY_LEN],
                             const uint8_t sig[CHAIN_SIG_LEN], int flags)
{
    chain_sig_t parsed;
    int ret = chain_sig_parse(&parsed, sig, flags);
    if (ret != CHAIN_OK)
        return ret;
    return chain_secp_recover(addr, hash, &parsed);
}

void chain_secp_pubkey_address(chain_addr_t *addr, const uint8_t pub[CHAIN_SECP_PUBKEY_LEN])
{
    CHAIN_ASSERT(addr != NULL && pub != NULL && pub[0] == 0x04);
    uint8_t hash[CHAIN_KECCAK256_LEN];
    chain_keccak256(pub + 1, CHAIN_SECP_PUBKEY_LEN - 1, hash);
    memcpy(addr->bytes, hash + CHAIN_KECCAK256_LEN - CHAIN_ADDR_LEN, CHAIN_ADDR_LEN);
}

int chain_secp_seckey_address(chain_addr_t *addr, const uint8_t seckey[CHAIN_SECP_KEY_LEN])
{
    CHAIN_ASSERT(addr != NULL && seckey != NULL);
    const secp256k1_context *ctx = chain_secp_context();
    secp256k1_pubkey pub;
    if (!secp256k1_ec_pubkey_create(ctx, &pub, seckey))
        return CHAIN_ERR_KEY;
    uint8_t ser[CHAIN_SECP_PUBKEY_LEN];
    size_t ser_len = sizeof(ser);
    secp256k1_ec_pubkey_serialize(ctx, ser, &ser_len, &pub, SECP256K1_EC_UNCOMPRESSED);
    CHAIN_ASSERT(ser_len == CHAIN_SECP_PUBKEY_LEN);
    chain_secp_pubkey_address(addr, ser);
    return CHAIN_OK;
}
