/*
 * lc_gen.c -- random linearizable register histories, for the checker's tests and benchmark.
 *
 * Every client runs one operation at a time; each operation gets a random interval and a random
 * linearization point inside it. Applying the operations to a true register in linearization-point
 * order gives their results, so the history is linearizable by construction. Unknown writes keep
 * their point (if they took effect) but lose their completion.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "lincheck.h"

typedef struct gen_op {
    int client, key;
    lc_kind kind;
    int64_t invoke, complete, point;
    bool unknown, applied;
    uint64_t value, expected; /* value ids; 0 = none */
    uint64_t result;
    bool cas_ok;
} gen_op;

static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_point(const void *a, const void *b)
{
    const gen_op *x = *(const gen_op *const *)a, *y = *(const gen_op *const *)b;
    return (x->point > y->point) - (x->point < y->point);
}

void lc_generate_register(FILE *out, uint64_t seed, size_t n_ops, int clients, int keys,
                          int unknown_percent)
{
    uint64_t rng = seed;
    gen_op *ops = calloc(n_ops + 1, sizeof *ops);
    gen_op **order = calloc(n_ops + 1, sizeof *order);
    int64_t *clock = calloc((size_t)clients, sizeof *clock);
    uint64_t *state = calloc((size_t)keys, sizeof *state);
    uint64_t *previous = calloc((size_t)keys, sizeof *previous); /* an older value, for cas */
    if (ops == NULL || order == NULL || clock == NULL || state == NULL || previous == NULL) goto done;
    uint64_t next_value = 1;
    for (size_t i = 0; i < n_ops; i++) {
        gen_op *o = &ops[i];
        o->client = (int)(next_random(&rng) % (uint64_t)clients);
        o->key = (int)(next_random(&rng) % (uint64_t)keys);
        uint64_t r = next_random(&rng) % 100;
        o->kind = r < 50 ? LC_READ : r < 80 ? LC_WRITE : LC_CAS;
        o->invoke = clock[o->client] + (int64_t)(next_random(&rng) % 50);
        int64_t length = 10 + (int64_t)(next_random(&rng) % 1000);
        if (next_random(&rng) % 100 == 0) length += (int64_t)(next_random(&rng) % 20000);
        o->complete = o->invoke + length;
        o->point = o->invoke + (int64_t)(next_random(&rng) % (uint64_t)(length + 1));
        clock[o->client] = o->complete;
        o->applied = true;
        if (o->kind != LC_READ && (int)(next_random(&rng) % 100) < unknown_percent) {
            o->unknown = true;
            o->applied = next_random(&rng) % 2 == 0;
        }
        order[i] = o;
    }
    qsort(order, n_ops, sizeof *order, cmp_point);
    for (size_t i = 0; i < n_ops; i++) {
        gen_op *o = order[i];
        uint64_t *cur = &state[o->key];
        switch (o->kind) {
        case LC_READ: o->result = *cur; break;
        case LC_CAS:
            /* Half the time expect the current value (succeeds), else an older one (fails). */
            o->expected = next_random(&rng) % 2 ? *cur : previous[o->key];
            if (o->expected == 0) o->kind = LC_WRITE;
            /* fall through */
        case LC_WRITE:
            o->value = next_value++;
            o->cas_ok = o->kind == LC_WRITE || o->expected == *cur;
            if (o->applied && o->cas_ok) {
                if (*cur != 0) previous[o->key] = *cur;
                *cur = o->value;
            }
            if (o->kind == LC_CAS && !o->cas_ok) o->unknown = false; /* a refused cas completes */
            break;
        default: break;
        }
    }
    for (size_t i = 0; i < n_ops; i++) {
        gen_op *o = &ops[i];
        fprintf(out, "%d\t%s\tk%d\t", o->client,
                o->kind == LC_READ ? "read" : o->kind == LC_WRITE ? "write" : "cas", o->key);
        if (o->kind == LC_READ) fprintf(out, "-\t-\t");
        else if (o->kind == LC_WRITE) fprintf(out, "v%llu\t-\t", (unsigned long long)o->value);
        else fprintf(out, "v%llu\tv%llu\t", (unsigned long long)o->expected,
                     (unsigned long long)o->value);
        fprintf(out, "%lld\t", (long long)o->invoke);
        if (o->unknown) fprintf(out, "-\tunknown\t-\n");
        else {
            fprintf(out, "%lld\tok\t", (long long)o->complete);
            if (o->kind == LC_READ) {
                if (o->result) fprintf(out, "v%llu\n", (unsigned long long)o->result);
                else fprintf(out, "-\n");
            } else if (o->kind == LC_CAS) {
                fprintf(out, "%s\n", o->cas_ok ? "true" : "false");
            } else {
                fprintf(out, "-\n");
            }
        }
    }
done:
    free(ops);
    free(order);
    free(clock);
    free(state);
    free(previous);
}
