#include <criterion/criterion.h>
#include <string.h>
#include "chain/hex.h"
#include "chain/keccak.h"

static void hash_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[CHAIN_KECCAK256_LEN];
    chain_keccak256(data, len, d);
    cr_assert_eq(chain_hex_encode(out, 65, d, sizeof(d), 0), CHAIN_OK);
}

Test(chain_keccak, empty_string)
{
    char h[65];
    hash_hex("", 0, h);
    cr_assert_str_eq(h, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    /* not the FIPS 202 SHA3-256 of "", which has a different padding */
    cr_assert_str_neq(h, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
}

Test(chain_keccak, abc)
{
    char h[65];
    hash_hex("abc", 3, h);
    cr_assert_str_eq(h, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
}

Test(chain_keccak, solidity_signatures)
{
    /* the ERC-20 transfer selector and Transfer event topic everyone's logs use */
    char h[65];
    const char *fn = "transfer(address,uint256)";
    hash_hex(fn, strlen(fn), h);
    cr_assert_eq(strncmp(h, "a9059cbb", 8), 0, "%s", h);
    const char *ev = "Transfer(address,address,uint256)";
    hash_hex(ev, strlen(ev), h);
    cr_assert_str_eq(h, "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

Test(chain_keccak, incremental_matches_one_shot_at_every_split)
{
    /* 300 bytes spans more than two 136-byte blocks, so splits cross block edges */
    uint8_t msg[300];
    for (size_t i = 0; i != sizeof(msg); ++i)
        msg[i] = (uint8_t)(i * 7 + 3);
    uint8_t want[CHAIN_KECCAK256_LEN];
    chain_keccak256(msg, sizeof(msg), want);
    for (size_t split = 0; split <= sizeof(msg); ++split) {
        chain_keccak256_ctx_t ctx;
        uint8_t got[CHAIN_KECCAK256_LEN];
        chain_keccak256_init(&ctx);
        chain_keccak256_update(&ctx, msg, split);
        chain_keccak256_update(&ctx, NULL, 0);
        chain_keccak256_update(&ctx, msg + split, sizeof(msg) - split);
        chain_keccak256_final(&ctx, got);
        cr_assert_arr_eq(got, want, sizeof(want), "split at %zu", split);
    }
}

Test(chain_keccak, block_boundaries_differ)
{
    /* lengths around the 136-byte rate must all give distinct digests (padding is applied) */
    uint8_t msg[272] = {0};
    uint8_t prev[CHAIN_KECCAK256_LEN] = {0}, cur[CHAIN_KECCAK256_LEN];
    const size_t lens[] = {134, 135, 136, 137, 271, 272};
    for (size_t i = 0; i != sizeof(lens) / sizeof(lens[0]); ++i) {
        chain_keccak256(msg, lens[i], cur);
        cr_assert_arr_neq(cur, prev, sizeof(cur), "length %zu", lens[i]);
        memcpy(prev, cur, sizeof(cur));
    }
}

Test(chain_keccak, context_reusable_after_reinit)
{
    chain_keccak256_ctx_t ctx;
    uint8_t a[CHAIN_KECCAK256_LEN], b[CHAIN_KECCAK256_LEN];
    chain_keccak256_init(&ctx);
    chain_keccak256_update(&ctx, "xyz", 3);
    chain_keccak256_final(&ctx, a);
    chain_keccak256_init(&ctx);
    chain_keccak256_update(&ctx, "abc", 3);
    chain_keccak256_final(&ctx, b);
    char h[65];
    chain_hex_encode(h, sizeof(h), b, sizeof(b), 0);
    cr_assert_str_eq(h, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
    cr_assert_arr_neq(a, b, sizeof(a));
}
