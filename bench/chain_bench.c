/*
 * chain/ micro-benchmarks, on one core: EIP-1559 transaction signatures (the executor's hot
 * path: hash, sign, serialize), signature recoveries (sign-in and typed-data checks), Keccak-256
 * throughput and RLP encodes. Each figure runs for a fixed time and prints a table row and a
 * JSON line.
 *
 * usage: chain_bench [seconds-per-figure]   (default 2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "chain/key.h"
#include "chain/keccak.h"
#include "chain/rlp.h"
#include "chain/secp.h"
#include "chain/tx.h"

/* anvil's dev account 9: public test key, never a secret */
static const char dev_key[] = "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *name, double value, const char *unit, const char *target)
{
    printf("| %-44s | %14.0f | %-10s | %-24s |\n", name, value, unit, target);
    printf("json: {\"name\":\"%s\",\"value\":%.1f,\"unit\":\"%s\"}\n", name, value, unit);
}

/* A transaction like the executor's: executeBatch calldata of a few hundred bytes. */
static chain_tx_t sample_tx(uint8_t *data, size_t data_len)
{
    chain_tx_t tx;
    memset(&tx, 0, sizeof(tx));
    tx.type = CHAIN_TX_EIP1559;
    tx.chain_id = 31337;
    tx.gas = 500000;
    tx.has_to = true;
    memset(tx.to.bytes, 0x5f, sizeof(tx.to.bytes));
    tx.max_fee_per_gas = chain_u256_from_u64(30000000000ULL);
    tx.max_priority_fee_per_gas = chain_u256_from_u64(1000000000ULL);
    for (size_t i = 0; i != data_len; ++i)
        data[i] = (uint8_t)(i * 31);
    tx.data = data;
    tx.data_len = data_len;
    return tx;
}

static double bench_sign(const chain_key_t *key, double seconds)
{
    static uint8_t data[516], raw[1024];
    chain_tx_t tx = sample_tx(data, sizeof(data));
    long n = 0;
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i != 100; ++i, ++n) {
            size_t len;
            tx.nonce = (uint64_t)n; /* a new hash each time, as in real use */
            if (chain_tx_sign(&tx, key, raw, sizeof(raw), &len, NULL) != CHAIN_OK)
                abort();
        }
    } while ((elapsed = now_s() - start) < seconds);
    return (double)n / elapsed;
}

static double bench_recover(const chain_key_t *key, double seconds)
{
    uint8_t hash[32];
    chain_keccak256("intentd", 7, hash);
    chain_sig_t sig;
    chain_key_sign(key, hash, &sig);
    long n = 0;
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i != 100; ++i, ++n) {
            chain_addr_t addr;
            if (chain_secp_recover(&addr, hash, &sig) != CHAIN_OK)
                abort();
        }
    } while ((elapsed = now_s() - start) < seconds);
    return (double)n / elapsed;
}

static double bench_keccak(double seconds)
{
    enum { SIZE = 1 << 20 };
    uint8_t *buf = malloc(SIZE), out[32];
    memset(buf, 0xab, SIZE);
    long bytes = 0;
    double start = now_s(), elapsed;
    do {
        chain_keccak256(buf, SIZE, out);
        bytes += SIZE;
        buf[0] = out[0]; /* keep the compiler from hoisting the hash */
    } while ((elapsed = now_s() - start) < seconds);
    free(buf);
    return (double)bytes / elapsed / (1024.0 * 1024.0);
}

static double bench_rlp(double seconds)
{
    static uint8_t data[516], out[1024];
    chain_tx_t tx = sample_tx(data, sizeof(data));
    long n = 0;
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i != 1000; ++i, ++n) {
            size_t len;
            tx.nonce = (uint64_t)n;
            if (chain_tx_encode_unsigned(&tx, out, sizeof(out), &len) != CHAIN_OK)
                abort();
        }
    } while ((elapsed = now_s() - start) < seconds);
    return (double)n / elapsed;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    chain_key_t *key;
    if (chain_key_from_hex(&key, dev_key, strlen(dev_key)) != CHAIN_OK) {
        fprintf(stderr, "chain_bench: cannot load the test key\n");
        return 1;
    }
    printf("chain_bench: one core, %.1f s per figure\n\n", seconds);
    printf("| %-44s | %14s | %-10s | %-24s |\n", "figure", "value", "unit", "target");
    printf("|%s|%s|%s|%s|\n", "----------------------------------------------", "----------------",
           "------------", "--------------------------");
    report("EIP-1559 tx signatures (hash+sign+encode)", bench_sign(key, seconds), "tx/s",
           ">= 20,000 per core");
    report("signature recoveries", bench_recover(key, seconds), "recover/s", "-");
    report("Keccak-256 over 1 MiB buffers", bench_keccak(seconds), "MiB/s", "-");
    report("RLP encodes of a 516-byte-data tx", bench_rlp(seconds), "encodes/s", "-");
    printf("command: build/bench/chain_bench %g\n", seconds);
    chain_key_free(key);
    return 0;
}
