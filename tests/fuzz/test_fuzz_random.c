/*
 * test_fuzz_random.c -- deterministic, bounded fuzzing that runs in ctest under any compiler.
 *
 * For each format it runs every seed of tests/fuzz/corpus/<format>/, then ITERATIONS inputs made by
 * mutating seeds (bit flips, random bytes, inserted/deleted/duplicated ranges, splices of two seeds)
 * and some pure random bytes, all from a fixed xorshift seed: a failure replays identically. The
 * checks (fuzz_checks.c) abort on any contract violation, which fails the test.
 *
 * usage: test_fuzz_random <corpus dir> [iterations per format] [seed]
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_checks.h"

#define MAX_SEEDS 256
#define FUZZ_MAX_INPUT 4096

typedef struct seed_file {
    uint8_t *data;
    size_t len;
} seed_file;

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

static size_t load_seeds(const char *dir, seed_file *seeds)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "test_fuzz_random: cannot open corpus dir %s\n", dir);
        exit(2);
    }
    size_t n = 0;
    struct dirent *entry;
    /* readdir order is not stable: sort by name so runs replay identically */
    char names[MAX_SEEDS][256];
    while ((entry = readdir(d)) != NULL && n < MAX_SEEDS) {
        if (entry->d_name[0] == '.') continue;
        snprintf(names[n++], sizeof names[0], "%.255s", entry->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], compare_names);
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        int plen = snprintf(path, sizeof path, "%.1000s/%.255s", dir, names[i]);
        if (plen < 0 || (size_t)plen >= sizeof path) exit(2);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            fprintf(stderr, "test_fuzz_random: cannot read %s\n", path);
            exit(2);
        }
        seeds[i].data = malloc(FUZZ_MAX_INPUT);
        seeds[i].len = fread(seeds[i].data, 1, FUZZ_MAX_INPUT, f);
        fclose(f);
    }
    return n;
}

static size_t mutate(uint8_t *buf, size_t len, const seed_file *seeds, size_t n_seeds)
{
    int rounds = 1 + (int)(rng() % 8);
    for (int r = 0; r < rounds; r++) {
        size_t pos = len ? rng() % len : 0;
        switch (rng() % 7) {
        case 0: if (len) buf[pos] ^= (uint8_t)(1u << (rng() % 8)); break;
        case 1: if (len) buf[pos] = (uint8_t)rng(); break;
        case 2: { /* insert interesting bytes */
            static const char *tokens[] = {"\r\n", "\n", " ", "0", "-1", "99999999999", "\"", "'",
                                           "*", "$", "noreply", "mset 2", "\\x"};
            const char *t = tokens[rng() % (sizeof tokens / sizeof tokens[0])];
            size_t tl = strlen(t);
            if (len + tl > FUZZ_MAX_INPUT) break;
            memmove(buf + pos + tl, buf + pos, len - pos);
            memcpy(buf + pos, t, tl);
            len += tl;
            break;
        }
        case 3: { /* delete a range */
            size_t cut = len - pos ? rng() % (len - pos) + 1 : 0;
            if (cut > 16) cut = 16;
            memmove(buf + pos, buf + pos + cut, len - pos - cut);
            len -= cut;
            break;
        }
        case 4: { /* duplicate a range */
            size_t span = len - pos < 32 ? len - pos : 32;
            if (len + span > FUZZ_MAX_INPUT) break;
            memmove(buf + pos + span, buf + pos, len - pos);
            len += span;
            break;
        }
        case 5: { /* splice the tail of another seed */
            const seed_file *other = &seeds[rng() % n_seeds];
            size_t from = other->len ? rng() % other->len : 0;
            size_t take = other->len - from;
            if (pos + take > FUZZ_MAX_INPUT) take = FUZZ_MAX_INPUT - pos;
            memcpy(buf + pos, other->data + from, take);
            len = pos + take;
            break;
        }
        default: len = pos; break; /* truncate */
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_fuzz_random <corpus dir> [iterations] [seed]\n");
        return 2;
    }
    long iterations = argc > 2 ? atol(argv[2]) : 20000;
    rng_state = argc > 3 ? strtoull(argv[3], NULL, 0) : 0x2545F4914F6CDD1Dull;
    if (rng_state == 0) rng_state = 1;
    static const struct {
        const char *name;
        void (*check)(const uint8_t *, size_t);
    } formats[] = {{"text", fuzz_text}, {"resp", fuzz_resp}, {"kv_cmd", fuzz_kv_cmd},
                   {"restore", fuzz_restore}, {"members", fuzz_members}};
    static seed_file seeds[MAX_SEEDS];
    static uint8_t buf[FUZZ_MAX_INPUT];
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%.900s/%s", argv[1], formats[f].name);
        size_t n = load_seeds(dir, seeds);
        if (n == 0) {
            fprintf(stderr, "test_fuzz_random: no seeds in %s\n", dir);
            return 2;
        }
        for (size_t i = 0; i < n; i++) formats[f].check(seeds[i].data, seeds[i].len);
        for (long it = 0; it < iterations; it++) {
            size_t len;
            if (rng() % 10 == 0) { /* pure noise */
                len = rng() % 512;
                for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rng();
            } else {
                const seed_file *s = &seeds[rng() % n];
                memcpy(buf, s->data, s->len);
                len = mutate(buf, s->len, seeds, n);
            }
            formats[f].check(buf, len);
        }
        printf("%s: %zu seeds + %ld generated inputs checked\n", formats[f].name, n, iterations);
        for (size_t i = 0; i < n; i++) free(seeds[i].data);
    }
    return 0;
}
