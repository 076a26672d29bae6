/*
 * Log-linear latency histograms (HDR-style): exact below 128 us, then 64 linear sub-buckets per
 * power of two, so any value is kept within 1/64 of itself at a fixed 18 KiB per histogram and
 * recording is a count-leading-zeros and an increment.
 */
#include <assert.h>
#include "bench/loadgen.h"

#define LG_HIST_VALUE_MAX ((UINT64_C(1) << 40) - 1)

static size_t hist__index(uint64_t v)
{
    if (v < 2 * LG_HIST_SUB)
        return (size_t)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 6; /* v >> shift lands in [64, 127] */
    return 2 * LG_HIST_SUB + (size_t)(shift - 1) * LG_HIST_SUB +
           (size_t)((v >> shift) - LG_HIST_SUB);
}

static uint64_t hist__upper(size_t idx)
{
    if (idx < 2 * LG_HIST_SUB)
        return idx;
    size_t j = idx - 2 * LG_HIST_SUB;
    unsigned shift = (unsigned)(j / LG_HIST_SUB) + 1;
    uint64_t m = j % LG_HIST_SUB + LG_HIST_SUB;
    return ((m + 1) << shift) - 1;
}

void lg_hist_record(lg_hist_t *h, uint64_t latency_us)
{
    if (latency_us > LG_HIST_VALUE_MAX)
        latency_us = LG_HIST_VALUE_MAX;
    size_t idx = hist__index(latency_us);
    assert(idx < LG_HIST_BUCKETS);
    ++h->counts[idx];
    ++h->total;
    h->sum_us += (double)latency_us;
    if (latency_us > h->max_us)
        h->max_us = latency_us;
}

void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src)
{
    for (size_t i = 0; i != LG_HIST_BUCKETS; ++i)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double quantile)
{
    if (h->total == 0)
        return 0;
    if (quantile >= 1.0)
        return h->max_us;
    /* the rank of the value asked for, 1-based, rounded up as HdrHistogram does */
    uint64_t rank = (uint64_t)(quantile * (double)h->total + 0.999999);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i != LG_HIST_BUCKETS; ++i) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist__upper(i);
            return v < h->max_us ? v : h->max_us;
        }
    }
    return h->max_us;
}

json_t *lg_hist_json(const lg_hist_t *h, bool with_buckets)
{
    json_t *j = json_pack("{s:I, s:f, s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t)h->total,
                          "mean_us", h->total > 0 ? h->sum_us / (double)h->total : 0.0, "p50_us",
                          (json_int_t)lg_hist_quantile(h, 0.50), "p90_us",
                          (json_int_t)lg_hist_quantile(h, 0.90), "p99_us",
                          (json_int_t)lg_hist_quantile(h, 0.99), "p999_us",
                          (json_int_t)lg_hist_quantile(h, 0.999), "max_us", (json_int_t)h->max_us);
    if (j == NULL || !with_buckets)
        return j;
    json_t *buckets = json_array();
    for (size_t i = 0; i != LG_HIST_BUCKETS; ++i)
        if (h->counts[i] != 0)
            json_array_append_new(
                buckets, json_pack("[I, I]", (json_int_t)hist__upper(i), (json_int_t)h->counts[i]));
    json_object_set_new(j, "buckets", buckets);
    return j;
}
