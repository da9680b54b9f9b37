/*
 * sim_queue.c -- the simulator's clock, dice and hashes: a binary min-heap of events ordered by
 * (virtual time, insertion sequence), the xoshiro256** PRNG seeded through splitmix64, and the
 * 64-bit hashes the checkers compare.
 *
 * The sequence number makes the order total, so two events at the same virtual time always fire
 * in the order they were scheduled: that, plus one PRNG stream per run, is what makes a seed
 * replay exactly.
 */
#include "sim.h"

#include <stdlib.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng *rng, uint64_t seed)
{
    uint64_t state = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&state);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(sim_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(sim_rng *rng, uint64_t bound)
{
    /* The modulo bias is below 2^-40 for our bounds: irrelevant to a simulator. */
    return sim_rng_next(rng) % bound;
}

uint64_t sim_rng_range(sim_rng *rng, uint64_t lo, uint64_t hi)
{
    return lo + sim_rng_below(rng, hi - lo + 1);
}

bool sim_rng_permille(sim_rng *rng, uint32_t permille)
{
    return sim_rng_below(rng, 1000) < permille;
}

static bool event_before(const sim_event *a, const sim_event *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

void sim_queue_push(sim_queue *q, sim_event ev)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        sim_event *grown = realloc(q->heap, cap * sizeof(*grown));
        if (!grown)
            abort(); /* a test harness out of memory has nothing better to do */
        q->heap = grown;
        q->cap = cap;
    }
    ev.seq = q->next_seq++;
    size_t i = q->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!event_before(&ev, &q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = ev;
}

bool sim_queue_pop(sim_queue *q, sim_event *out)
{
    if (q->n == 0)
        return false;
    *out = q->heap[0];
    sim_event last = q->heap[--q->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= q->n)
            break;
        if (child + 1 < q->n && event_before(&q->heap[child + 1], &q->heap[child]))
            child++;
        if (!event_before(&q->heap[child], &last))
            break;
        q->heap[i] = q->heap[child];
        i = child;
    }
    if (q->n > 0)
        q->heap[i] = last;
    return true;
}

void sim_queue_free(sim_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->heap[i].payload);
    free(q->heap);
    q->heap = NULL;
    q->n = q->cap = 0;
}

/* FNV-1a with a final avalanche: good enough to tell entries apart, and fast on short data. */
uint64_t sim_hash(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return sim_mix(h, len);
}

uint64_t sim_mix(uint64_t a, uint64_t b)
{
    uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
