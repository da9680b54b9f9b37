/*
 * lg_hist.h -- a log-bucket latency histogram for raftkv-bench (the same idea as HdrHistogram).
 *
 * BUCKETS. Values below LG_HIST_SUB (64) get one bucket each (exact). Above, every power of two
 * [2^e, 2^(e+1)) is split into 64 equal sub-buckets, so a bucket's width is at most 1/64 of its
 * lower bound: a reported percentile is within 1.6% of the true value, whatever the range (1 ns to
 * 2^64-1 ns). Recording is a few shifts and one increment; no allocation, fixed size (~30 KiB).
 *
 * PERCENTILES. lg_hist_percentile(h, p) is the upper bound of the bucket that holds the sample of
 * rank ceil(p/100 * count) (never above the exact max), i.e. an upper estimate within one bucket.
 *
 * OWNERSHIP. A plain value; the caller allocates it (it is large: keep it off small stacks).
 * THREADS: not synchronized; one histogram per thread, merged with lg_hist_merge.
 */
#ifndef RAFTKV_LG_HIST_H
#define RAFTKV_LG_HIST_H

#include <stddef.h>
#include <stdint.h>

#define LG_HIST_SUB_BITS 6
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
/* group 0 = exact values 0..63, then one group of 64 per exponent 6..63. */
#define LG_HIST_BUCKETS ((64 - LG_HIST_SUB_BITS + 1) * LG_HIST_SUB)

typedef struct lg_hist {
    uint64_t counts[LG_HIST_BUCKETS];
    uint64_t count;
    uint64_t min; /* UINT64_MAX when empty */
    uint64_t max;
    double sum;   /* for the mean; double: sums of ns overflow nothing in practice */
} lg_hist;

void lg_hist_init(lg_hist *h);
void lg_hist_record(lg_hist *h, uint64_t value);
/* Adds every sample of src to dst. */
void lg_hist_merge(lg_hist *dst, const lg_hist *src);
/* p in [0, 100]. 0 for an empty histogram. */
uint64_t lg_hist_percentile(const lg_hist *h, double p);
double lg_hist_mean(const lg_hist *h);

/* Bucket arithmetic, exposed for the tests. lg_hist_low(b) <= v <= lg_hist_high(b) for
 * b = lg_hist_bucket(v). */
size_t lg_hist_bucket(uint64_t value);
uint64_t lg_hist_low(size_t bucket);
uint64_t lg_hist_high(size_t bucket);

#endif /* RAFTKV_LG_HIST_H */
