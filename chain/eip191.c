#include <stdio.h>
#include "chain/eip191.h"

static const char chain__eip191_prefix[] = "\x19"
                                           "Ethereum Signed Message:\n";

void chain_eip191_hash(const void *msg, size_t len, uint8_t out[CHAIN_KECCAK256_LEN])
{
    CHAIN_ASSERT(msg != NULL || len == 0);
    CHAIN_ASSERT(out != NULL);
    char digits[24]; /* 2^64-1 has 20 digits */
    int n = snprintf(digits, sizeof(digits), "%zu", len);
    CHAIN_ASSERT(n > 0 && (size_t)n < sizeof(digits));
    chain_keccak256_ctx_t ctx;
    chain_keccak256_init(&ctx);
    chain_keccak256_update(&ctx, chain__eip191_prefix, sizeof(chain__eip191_prefix) - 1);
    chain_keccak256_update(&ctx, digits, (size_t)n);
    chain_keccak256_update(&ctx, msg, len);
    chain_keccak256_final(&ctx, out);
}

int chain_eip191_recover(chain_addr_t *signer, const void *msg, size_t len,
                         const uint8_t sig[CHAIN_SIG_LEN], int flags)
{
    CHAIN_ASSERT(signer != NULL && sig != NULL);
    uint8_t hash[CHAIN_KECCAK256_LEN];
    chain_eip191_hash(msg, len, hash);
    return chain_secp_recover_bytes(signer, hash, sig, flags);
}

int chain_eip191_verify(const chain_addr_t *expected, const void *msg, size_t len,
                        const uint8_t sig[CHAIN_SIG_LEN], int flags)
{
    CHAIN_ASSERT(expected != NULL);
    chain_addr_t got;
    int ret = chain_eip191_recover(&got, msg, len, sig, flags);
    if (ret != CHAIN_OK)
        return ret;
    return chain_addr_eq(&got, expected) ? CHAIN_OK : CHAIN_ERR_SIGNER;
}
