/*
 * lincheck_main.c -- raftkv-lincheck: checks a torture history (format in lincheck.h).
 *
 *   raftkv-lincheck [--model register|set|multi|ttl] [--budget N] [--jobs N] [--ttl-tolerance-ms MS] FILE
 *   raftkv-lincheck --gen N [--seed S] [--clients C] [--keys K] [--unknown PCT]   (history to stdout)
 *
 * Exit status: 0 valid, 1 violation found, 2 bad usage or unreadable history, 3 undecided.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lincheck.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: raftkv-lincheck [--model register|set|multi|ttl] [--budget N] [--jobs N]\n"
            "                       [--ttl-tolerance-ms MS] HISTORY.tsv\n"
            "       raftkv-lincheck --gen N [--seed S] [--clients C] [--keys K] [--unknown PCT]\n"
            "Checks a history recorded by raftkv-torture (format: tests/torture/lincheck.h).\n"
            "Exit status: 0 valid, 1 violation, 2 usage or input error, 3 undecided.\n");
}

static int parse_u64(const char *flag, const char *text, unsigned long long *out)
{
    char *end;
    *out = strtoull(text, &end, 10);
    if (text[0] == '\0' || text[0] == '-' || *end != '\0') {
        fprintf(stderr, "raftkv-lincheck: %s: expected a non-negative integer, got '%s'\n", flag, text);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = "register", *path = NULL;
    unsigned long long budget = 0, tolerance_ms = 1000, gen = 0, seed = 1, clients = 10, keys = 5,
                       unknown = 5, jobs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-' && i + 1 >= argc) {
            fprintf(stderr, "raftkv-lincheck: %s needs a value\n", a);
            return 2;
        }
        unsigned long long *num = strcmp(a, "--budget") == 0             ? &budget
                                  : strcmp(a, "--ttl-tolerance-ms") == 0 ? &tolerance_ms
                                  : strcmp(a, "--gen") == 0              ? &gen
                                  : strcmp(a, "--seed") == 0             ? &seed
                                  : strcmp(a, "--clients") == 0          ? &clients
                                  : strcmp(a, "--keys") == 0             ? &keys
                                  : strcmp(a, "--unknown") == 0          ? &unknown
                                  : strcmp(a, "--jobs") == 0             ? &jobs
                                                                         : NULL;
        if (num != NULL) {
            if (parse_u64(a, argv[++i], num) != 0) return 2;
        } else if (strcmp(a, "--model") == 0) {
            model = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "raftkv-lincheck: unknown flag %s\n", a);
            usage(stderr);
            return 2;
        } else {
            path = a;
        }
    }
    if (gen > 0) {
        if (clients == 0 || keys == 0 || unknown > 100) {
            fprintf(stderr, "raftkv-lincheck: --clients and --keys must be > 0, --unknown <= 100\n");
            return 2;
        }
        lc_generate_register(stdout, seed, gen, (int)clients, (int)keys, (int)unknown);
        return 0;
    }
    if (path == NULL) {
        usage(stderr);
        return 2;
    }
    char err[512];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lc_history *h = lc_history_load(path, err, sizeof err);
    if (h == NULL) {
        fprintf(stderr, "raftkv-lincheck: %s\n", err);
        return 2;
    }
    lc_stats st;
    int verdict;
    if (jobs == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = cpus > 0 ? (unsigned long long)cpus : 1;
    }
    if (strcmp(model, "register") == 0)
        verdict = lc_check_register_jobs(h, budget, (unsigned)(jobs > 64 ? 64 : jobs), stdout, &st);
    else if (strcmp(model, "set") == 0) verdict = lc_check_set(h, stdout, &st);
    else if (strcmp(model, "multi") == 0) verdict = lc_check_multi(h, stdout, &st);
    else if (strcmp(model, "ttl") == 0)
        verdict = lc_check_ttl(h, (int64_t)tolerance_ms * 1000, stdout, &st);
    else {
        fprintf(stderr, "raftkv-lincheck: --model: expected register, set, multi or ttl, got '%s'\n",
                model);
        lc_history_free(h);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("checked %zu history lines in %.3f s\n", lc_history_len(h), secs);
    lc_history_free(h);
    return verdict == LC_EBAD ? 2 : verdict;
}
