#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha3.h>
#include <stdalign.h>
#include <string.h>
#include "chain/common.h"
#include "chain/keccak.h"

/*
 * The Keccak-256 padding switch (wc_Sha3_SetFlags with WC_HASH_SHA3_KECCAK256) exists only in a
 * wolfSSL built with WOLFSSL_HASH_FLAGS; Debian 12's 5.5.4 is. Fail the build, not the hash,
 * on one that is not.
 */
#if !defined(WOLFSSL_SHA3) || !defined(WOLFSSL_HASH_FLAGS)
#error "wolfSSL lacks SHA-3 or WOLFSSL_HASH_FLAGS: Keccak-256 is not available"
#endif

_Static_assert(sizeof(wc_Sha3) <= CHAIN_KECCAK256_CTX_SIZE,
               "CHAIN_KECCAK256_CTX_SIZE is too small for this wolfSSL's wc_Sha3");
_Static_assert(alignof(wc_Sha3) <= alignof(chain_keccak256_ctx_t),
               "chain_keccak256_ctx_t is not aligned enough for wc_Sha3");

/* wolfSSL takes word32 lengths: feed it at most this much per call */
#define CHAIN__KECCAK_CHUNK ((size_t)1 << 30)

static wc_Sha3 *chain__keccak_state(chain_keccak256_ctx_t *ctx)
{
    return (wc_Sha3 *)(void *)ctx->opaque_.bytes_;
}

void chain_keccak256_init(chain_keccak256_ctx_t *ctx)
{
    CHAIN_ASSERT(ctx != NULL);
    wc_Sha3 *s = chain__keccak_state(ctx);
    /* both calls fail only on NULL arguments or a wolfSSL without the feature (ruled out above);
     * a hash that silently became SHA3-256 would sign wrong data, so check anyway */
    int ret = wc_InitSha3_256(s, NULL, INVALID_DEVID);
    CHAIN_ASSERT(ret == 0);
    ret = wc_Sha3_SetFlags(s, WC_HASH_SHA3_KECCAK256);
    CHAIN_ASSERT(ret == 0);
}

void chain_keccak256_update(chain_keccak256_ctx_t *ctx, const void *data, size_t len)
{
    CHAIN_ASSERT(data != NULL || len == 0);
    const uint8_t *p = data;
    /* bounded: len / CHAIN__KECCAK_CHUNK + 1 rounds at most */
    while (len != 0) {
        size_t n = len < CHAIN__KECCAK_CHUNK ? len : CHAIN__KECCAK_CHUNK;
        int ret = wc_Sha3_256_Update(chain__keccak_state(ctx), p, (word32)n);
        CHAIN_ASSERT(ret == 0);
        p += n;
        len -= n;
    }
}

void chain_keccak256_final(chain_keccak256_ctx_t *ctx, uint8_t out[CHAIN_KECCAK256_LEN])
{
    CHAIN_ASSERT(out != NULL);
    wc_Sha3 *s = chain__keccak_state(ctx);
    int ret = wc_Sha3_256_Final(s, out);
    CHAIN_ASSERT(ret == 0);
    wc_Sha3_256_Free(s);
    /* the state may have absorbed secrets (EIP-712 payloads, key material in derivations) */
    explicit_bzero(ctx, sizeof(*ctx));
}

void chain_keccak256(const void *data, size_t len, uint8_t out[CHAIN_KECCAK256_LEN])
{
    chain_keccak256_ctx_t ctx;
    chain_keccak256_init(&ctx);
    chain_keccak256_update(&ctx, data, len);
    chain_keccak256_final(&ctx, out);
}
