#include "store/crypto.h"
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#define VERSION 0x01
#define NONCE_BYTES 12
#define TAG_BYTES 16

struct st_store_crypto_key_t {
    uint8_t aes_key[32];
    uint8_t index_key[32]; /* HMAC(aes_key, "blind-index"): never the encryption key itself */
};

store_crypto_key_t *store_crypto_key_load(const char *hex, char *err, size_t err_size)
{
    if (hex == NULL || strlen(hex) != 64) {
        snprintf(err, err_size, "DATA_ENCRYPTION_KEY must be 64 hex digits (32 bytes)");
        return NULL;
    }
    /* its own page, so that it can be locked in memory and left out of core dumps */
    long page = sysconf(_SC_PAGESIZE);
    store_crypto_key_t *key =
        mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (key == MAP_FAILED) {
        snprintf(err, err_size, "cannot allocate memory for the key");
        return NULL;
    }
    madvise(key, (size_t)page, MADV_DONTDUMP);
    mlock(key, (size_t)page); /* best effort: RLIMIT_MEMLOCK may be 0 for unprivileged users */
    word32 key_len = sizeof(key->aes_key);
    if (Base16_Decode((const byte *)hex, 64, key->aes_key, &key_len) != 0 || key_len != 32) {
        store_crypto_key_free(key);
        snprintf(err, err_size, "DATA_ENCRYPTION_KEY must be 64 hex digits (32 bytes)");
        return NULL;
    }
    Hmac hmac;
    if (wc_HmacSetKey(&hmac, WC_SHA256, key->aes_key, 32) != 0 ||
        wc_HmacUpdate(&hmac, (const byte *)"blind-index", 11) != 0 ||
        wc_HmacFinal(&hmac, key->index_key) != 0) {
        store_crypto_key_free(key);
        snprintf(err, err_size, "cannot derive the index key");
        return NULL;
    }
    wc_HmacFree(&hmac);
    return key;
}

void store_crypto_key_free(store_crypto_key_t *key)
{
    if (key == NULL)
        return;
    long page = sysconf(_SC_PAGESIZE);
    explicit_bzero(key, sizeof(*key)); /* not optimised away, unlike memset */
    munlock(key, (size_t)page);
    munmap(key, (size_t)page);
}

size_t store_crypto_seal(const store_crypto_key_t *key, const char *label, const uint8_t *plain,
                         size_t len, uint8_t *out, size_t cap)
{
    if (cap < len + STORE_CRYPTO_OVERHEAD || len > UINT32_MAX)
        return 0;
    out[0] = VERSION;
    uint8_t *nonce = out + 1, *cipher = out + 1 + NONCE_BYTES, *tag = cipher + len;
    if (getrandom(nonce, NONCE_BYTES, 0) != NONCE_BYTES)
        return 0;
    Aes aes;
    int ret = wc_AesInit(&aes, NULL, INVALID_DEVID);
    if (ret == 0)
        ret = wc_AesGcmSetKey(&aes, key->aes_key, 32);
    if (ret == 0)
        ret = wc_AesGcmEncrypt(&aes, cipher, plain, (word32)len, nonce, NONCE_BYTES, tag, TAG_BYTES,
                               (const byte *)label, (word32)strlen(label));
    wc_AesFree(&aes);
    explicit_bzero(&aes, sizeof(aes)); /* the expanded key schedule */
    return ret == 0 ? len + STORE_CRYPTO_OVERHEAD : 0;
}

bool store_crypto_open(const store_crypto_key_t *key, const char *label, const uint8_t *sealed,
                       size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (len < STORE_CRYPTO_OVERHEAD || sealed[0] != VERSION)
        return false;
    size_t plain_len = len - STORE_CRYPTO_OVERHEAD;
    if (cap < plain_len)
        return false;
    const uint8_t *nonce = sealed + 1, *cipher = sealed + 1 + NONCE_BYTES;
    const uint8_t *tag = cipher + plain_len;
    Aes aes;
    int ret = wc_AesInit(&aes, NULL, INVALID_DEVID);
    if (ret == 0)
        ret = wc_AesGcmSetKey(&aes, key->aes_key, 32);
    if (ret == 0)
        ret = wc_AesGcmDecrypt(&aes, out, cipher, (word32)plain_len, nonce, NONCE_BYTES, tag,
                               TAG_BYTES, (const byte *)label, (word32)strlen(label));
    wc_AesFree(&aes);
    explicit_bzero(&aes, sizeof(aes));
    if (ret != 0) {
        explicit_bzero(out, plain_len); /* release nothing unauthenticated */
        return false;
    }
    *out_len = plain_len;
    return true;
}

void store_crypto_blind_index(const store_crypto_key_t *key, const char *label,
                              const uint8_t *plain, size_t len, uint8_t out[32])
{
    Hmac hmac;
    int ret = wc_HmacSetKey(&hmac, WC_SHA256, key->index_key, 32);
    ret |= wc_HmacUpdate(&hmac, (const byte *)label, (word32)strlen(label) + 1);
    ret |= wc_HmacUpdate(&hmac, plain, (word32)len);
    ret |= wc_HmacFinal(&hmac, out);
    wc_HmacFree(&hmac);
    assert(ret == 0);
    (void)ret;
}
