/*
 * lg_hist.c -- log-bucket histogram (layout in lg_hist.h).
 */
#include "lg_hist.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void lg_hist_init(lg_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

size_t lg_hist_bucket(uint64_t value)
{
    if (value < LG_HIST_SUB) return (size_t)value;
    unsigned exponent = 63u - (unsigned)__builtin_clzll(value); /* >= LG_HIST_SUB_BITS */
    unsigned shift = exponent - LG_HIST_SUB_BITS;
    uint64_t top = value >> shift; /* in [64, 128): the leading 7 bits */
    size_t bucket = (size_t)(shift + 1) * LG_HIST_SUB + (size_t)(top - LG_HIST_SUB);
    assert(bucket < LG_HIST_BUCKETS);
    return bucket;
}

uint64_t lg_hist_low(size_t bucket)
{
    assert(bucket < LG_HIST_BUCKETS);
    if (bucket < LG_HIST_SUB) return bucket;
    size_t group = bucket / LG_HIST_SUB; /* = shift + 1 */
    uint64_t sub = bucket % LG_HIST_SUB;
    return (LG_HIST_SUB + sub) << (group - 1);
}

uint64_t lg_hist_high(size_t bucket)
{
    if (bucket < LG_HIST_SUB) return bucket;
    size_t group = bucket / LG_HIST_SUB;
    return lg_hist_low(bucket) + ((UINT64_C(1) << (group - 1)) - 1);
}

void lg_hist_record(lg_hist *h, uint64_t value)
{
    h->counts[lg_hist_bucket(value)]++;
    h->count++;
    if (value < h->min) h->min = value;
    if (value > h->max) h->max = value;
    h->sum += (double)value;
}

void lg_hist_merge(lg_hist *dst, const lg_hist *src)
{
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++) dst->counts[i] += src->counts[i];
    dst->count += src->count;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
    dst->sum += src->sum;
}

uint64_t lg_hist_percentile(const lg_hist *h, double p)
{
    if (h->count == 0) return 0;
    if (p < 0) p = 0;
    if (p > 100) p = 100;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t high = lg_hist_high(i);
            return high < h->max ? high : h->max;
        }
    }
    assert(0 && "counts sum below count");
    return h->max;
}

double lg_hist_mean(const lg_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
