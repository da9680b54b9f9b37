/*
 * bench_wal -- group-commit throughput and recovery time of the WAL on a real disk. A program that
 * prints figures, not a test.
 *
 *   bench_wal [--dir DIR] [--seconds S] [--proposers 1,16,64] [--entry-bytes 256]
 *             [--recovery-mib N] [--dd-count N]
 *
 * GROUP COMMIT. P proposer threads each loop: enqueue one entry, wait until it is durable. One
 * writer thread owns the wal: it takes EVERYTHING queued, appends it, calls wal_sync (one write +
 * one fdatasync), then wakes the proposers of that batch. So one fdatasync covers as many entries as
 * arrived during the previous one. Latency = enqueue -> woken after the covering fdatasync.
 *
 * BASELINE. `dd if=/dev/zero of=DIR/dd.tmp bs=512 count=N oflag=dsync` on the same directory, run
 * right before each measurement: the rate of synchronous 512-byte writes the disk sustains (each
 * also extends the file, so it flushes metadata too, which our preallocated segments avoid);
 * entries/s and fsyncs/s are printed as ratios to it.
 *
 * RECOVERY. Writes a log of --recovery-mib MiB of entries, closes it, and times storage_open (read
 * and checksum every record, build the entry list). The page cache is warm unless the caller
 * drops it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "wal.h"

typedef struct request {
    uint64_t enqueued_ns;
    bool done;
    pthread_cond_t cond; /* its proposer waits here: waking a batch wakes no one else */
    struct request *next;
} request;

typedef struct queue {
    pthread_mutex_t mu;
    pthread_cond_t work; /* writer waits */
    request *head, *tail;
    bool stop;
} queue;

typedef struct run_ctx {
    queue q;
    wal *w;
    uint32_t entry_bytes;
    uint64_t deadline_ns;
    raft_index next_index;
    uint64_t batches;
    uint64_t entries;
    uint64_t io_ns; /* writer time inside append + write + fdatasync */
    int error;
} run_ctx;

typedef struct proposer {
    run_ctx *run;
    uint64_t *lat;
    size_t n_lat, cap_lat;
    pthread_t thread;
} proposer;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *writer_main(void *arg)
{
    run_ctx *run = arg;
    uint8_t *payload = calloc(1, run->entry_bytes);
    size_t cap = 1024;
    raft_entry *entries = calloc(cap, sizeof *entries);
    for (;;) {
        pthread_mutex_lock(&run->q.mu);
        while (run->q.head == NULL && !run->q.stop)
            pthread_cond_wait(&run->q.work, &run->q.mu);
        if (run->q.head == NULL && run->q.stop) {
            pthread_mutex_unlock(&run->q.mu);
            break;
        }
        request *batch = run->q.head;
        run->q.head = run->q.tail = NULL;
        pthread_mutex_unlock(&run->q.mu);

        size_t n = 0;
        for (request *r = batch; r != NULL; r = r->next) {
            if (n == cap) {
                cap *= 2;
                entries = realloc(entries, cap * sizeof *entries);
            }
            entries[n] = (raft_entry){.index = run->next_index + n, .term = 1,
                                      .type = RAFT_ENTRY_NORMAL, .len = run->entry_bytes,
                                      .data = payload};
            n++;
        }
        uint64_t t0 = now_ns();
        int rc = wal_append(run->w, entries, n);
        if (rc == WAL_OK)
            rc = wal_sync(run->w);
        run->io_ns += now_ns() - t0;
        if (rc != WAL_OK)
            fprintf(stderr, "bench_wal: %s\n", wal_errmsg(run->w));
        run->next_index += n;
        run->batches++;
        run->entries += n;

        pthread_mutex_lock(&run->q.mu);
        if (rc != WAL_OK)
            run->error = rc;
        for (request *r = batch; r != NULL;) {
            request *next = r->next; /* r may be reused by its proposer once done is seen */
            r->done = true;
            pthread_cond_signal(&r->cond);
            r = next;
        }
        pthread_mutex_unlock(&run->q.mu);
    }
    free(entries);
    free(payload);
    return NULL;
}

static void *proposer_main(void *arg)
{
    proposer *p = arg;
    run_ctx *run = p->run;
    request req;
    pthread_cond_init(&req.cond, NULL);
    while (now_ns() < run->deadline_ns) {
        req.enqueued_ns = now_ns();
        req.done = false;
        req.next = NULL;
        pthread_mutex_lock(&run->q.mu);
        if (run->error != 0) { /* written by the writer under the same mutex */
            pthread_mutex_unlock(&run->q.mu);
            break;
        }
        if (run->q.tail)
            run->q.tail->next = &req;
        else
            run->q.head = &req;
        run->q.tail = &req;
        pthread_cond_signal(&run->q.work);
        while (!req.done)
            pthread_cond_wait(&req.cond, &run->q.mu);
        pthread_mutex_unlock(&run->q.mu);
        if (p->n_lat == p->cap_lat) {
            p->cap_lat = p->cap_lat ? p->cap_lat * 2 : 4096;
            p->lat = realloc(p->lat, p->cap_lat * sizeof *p->lat);
        }
        p->lat[p->n_lat++] = now_ns() - req.enqueued_ns;
    }
    pthread_cond_destroy(&req.cond);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int rm_rf(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

typedef struct result {
    double entries_per_s, fsyncs_per_s, p50_us, p99_us, entries_per_sync, sync_us, writer_busy;
} result;

static int run_proposers(const char *base, int n_proposers, double seconds, uint32_t entry_bytes,
                         result *out)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/run-%d", base, n_proposers);
    storage_loaded l;
    vfs *v = vfs_posix();
    if (v->mkdir(v, dir) != 0)
        return -1;
    wal_opts opts;
    wal_opts_default(&opts);
    run_ctx run;
    memset(&run, 0, sizeof run);
    char msg[WAL_ERRMSG_SIZE];
    wal_loaded wl;
    if (wal_open(dir, v, &opts, &run.w, &wl, msg) != WAL_OK) {
        fprintf(stderr, "bench_wal: %s\n", msg);
        return -1;
    }
    wal_loaded_free(&wl);
    (void)l;
    pthread_mutex_init(&run.q.mu, NULL);
    pthread_cond_init(&run.q.work, NULL);
    run.entry_bytes = entry_bytes;
    run.next_index = 1;
    wal_stats before = wal_get_stats(run.w);
    pthread_t writer;
    pthread_create(&writer, NULL, writer_main, &run);
    proposer *ps = calloc((size_t)n_proposers, sizeof *ps);
    uint64_t start = now_ns();
    run.deadline_ns = start + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < n_proposers; i++) {
        ps[i].run = &run;
        pthread_create(&ps[i].thread, NULL, proposer_main, &ps[i]);
    }
    for (int i = 0; i < n_proposers; i++)
        pthread_join(ps[i].thread, NULL);
    uint64_t elapsed = now_ns() - start;
    pthread_mutex_lock(&run.q.mu);
    run.q.stop = true;
    pthread_cond_signal(&run.q.work);
    pthread_mutex_unlock(&run.q.mu);
    pthread_join(writer, NULL);
    wal_stats after = wal_get_stats(run.w);

    size_t total = 0;
    for (int i = 0; i < n_proposers; i++)
        total += ps[i].n_lat;
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < n_proposers; i++) {
        memcpy(all + k, ps[i].lat, ps[i].n_lat * sizeof *all);
        k += ps[i].n_lat;
        free(ps[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_u64);
    double secs = (double)elapsed / 1e9;
    out->entries_per_s = (double)run.entries / secs;
    out->fsyncs_per_s = (double)(after.syncs - before.syncs) / secs;
    out->entries_per_sync = run.batches ? (double)run.entries / (double)run.batches : 0;
    out->sync_us = run.batches ? (double)run.io_ns / 1e3 / (double)run.batches : 0;
    out->writer_busy = (double)run.io_ns / (double)elapsed;
    out->p50_us = total ? (double)all[total / 2] / 1e3 : 0;
    out->p99_us = total ? (double)all[(size_t)((double)total * 0.99)] / 1e3 : 0;
    free(all);
    free(ps);
    wal_close(run.w);
    rm_rf(dir);
    return run.error;
}

/* Synchronous 512-byte writes per second, as dd measures them: first extending a new file (the
 * figure the issue asks for: every write also flushes the size), then overwriting the same,
 * now allocated, blocks (conv=notrunc: data-only syncs, what a preallocated segment gets). */
static void dd_rates(const char *dir, int count, double *extending, double *overwriting)
{
    for (int pass = 0; pass < 2; pass++) {
        char cmd[1300];
        snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s/dd.tmp' bs=512 count=%d oflag=dsync%s 2>&1", dir,
                 count, pass ? " conv=notrunc" : "");
        double secs = 0;
        FILE *p = popen(cmd, "r");
        if (p != NULL) {
            char line[512];
            while (fgets(line, sizeof line, p) != NULL) {
                /* "... bytes (...) copied, 1.23456 s, 415 kB/s" */
                char *copied = strstr(line, "copied, ");
                if (copied != NULL)
                    secs = strtod(copied + 8, NULL);
            }
            pclose(p);
        }
        *(pass ? overwriting : extending) = secs > 0 ? count / secs : 0;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/dd.tmp", dir);
    unlink(path);
}

static int recovery(const char *base, uint64_t mib, uint32_t entry_bytes)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/recovery", base);
    vfs *v = vfs_posix();
    storage_opts opts;
    storage_opts_default(&opts);
    storage *st;
    storage_loaded l;
    if (storage_open(dir, v, &opts, &st, &l) != STORAGE_OK) {
        fprintf(stderr, "bench_wal: %s\n", l.errmsg);
        return -1;
    }
    storage_loaded_free(&l);
    size_t batch = 4096;
    raft_entry *entries = calloc(batch, sizeof *entries);
    uint8_t *payload = malloc(entry_bytes);
    for (uint32_t i = 0; i < entry_bytes; i++)
        payload[i] = (uint8_t)(i * 13);
    uint64_t target = mib << 20, written = 0;
    raft_index next = 1;
    uint64_t t0 = now_ns();
    while (written < target) {
        for (size_t i = 0; i < batch; i++)
            entries[i] = (raft_entry){.index = next + i, .term = 1, .type = 1, .len = entry_bytes, .data = payload};
        raft_ready rd;
        memset(&rd, 0, sizeof rd);
        rd.entries = entries;
        rd.n_entries = batch;
        if (storage_save(st, &rd) != STORAGE_OK) {
            fprintf(stderr, "bench_wal: %s\n", storage_errmsg(st));
            return -1;
        }
        next += batch;
        written += batch * (uint64_t)(entry_bytes + 32);
    }
    uint64_t t1 = now_ns();
    wal_stats ws = storage_wal_stats(st);
    storage_close(st);
    free(entries);
    free(payload);

    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    uint64_t t2 = now_ns();
    if (storage_open(dir, v, &opts, &st, &l) != STORAGE_OK) {
        fprintf(stderr, "bench_wal: %s\n", l.errmsg);
        return -1;
    }
    uint64_t t3 = now_ns();
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu_s = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    size_t n = l.n_entries;
    storage_loaded_free(&l);
    storage_close(st);
    double write_s = (double)(t1 - t0) / 1e9, open_s = (double)(t3 - t2) / 1e9;
    printf("recovery: %llu MiB log (%zu entries of %u bytes, %llu segments) written in %.2f s (%.0f MiB/s); "
           "storage_open %.3f s (cpu %.3f s) = %.0f MiB/s, %.0f entries/s (page cache warm)\n",
           (unsigned long long)mib, n, entry_bytes, (unsigned long long)ws.n_segments, write_s,
           (double)mib / write_s, open_s, cpu_s, (double)mib / open_s, (double)n / open_s);
    rm_rf(dir);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir_arg = NULL;
    double seconds = 3;
    uint32_t entry_bytes = 256;
    uint64_t recovery_mib = 256;
    int dd_count = 1000;
    char proposers_arg[256] = "1,16,64";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL) {
            fprintf(stderr, "bench_wal: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--dir") == 0) dir_arg = val;
        else if (strcmp(a, "--seconds") == 0) seconds = atof(val);
        else if (strcmp(a, "--entry-bytes") == 0) entry_bytes = (uint32_t)atoi(val);
        else if (strcmp(a, "--recovery-mib") == 0) recovery_mib = strtoull(val, NULL, 10);
        else if (strcmp(a, "--dd-count") == 0) dd_count = atoi(val);
        else if (strcmp(a, "--proposers") == 0) snprintf(proposers_arg, sizeof proposers_arg, "%s", val);
        else {
            fprintf(stderr, "usage: bench_wal [--dir DIR] [--seconds S] [--proposers 1,16,64] "
                            "[--entry-bytes 256] [--recovery-mib 256] [--dd-count 1000]\n");
            return 2;
        }
        i++;
    }
    char base[1024];
    snprintf(base, sizeof base, "%s/bench-wal-XXXXXX", dir_arg ? dir_arg : ".");
    if (mkdtemp(base) == NULL) {
        fprintf(stderr, "bench_wal: mkdtemp %s: %s\n", base, strerror(errno));
        return 1;
    }
    printf("bench_wal: dir %s, %u-byte entries, %.1f s per run, 64 MiB preallocated segments\n", base,
           entry_bytes, seconds);
    /* The virtual disks we run on vary a lot from one second to the next, so dd runs right
     * before each measurement and each ratio uses its own baseline. */
    char *save = NULL;
    for (char *tok = strtok_r(proposers_arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int n = atoi(tok);
        double dd = 0, dd_over = 0;
        dd_rates(base, dd_count, &dd, &dd_over);
        result r;
        if (n <= 0 || run_proposers(base, n, seconds, entry_bytes, &r) != 0) {
            fprintf(stderr, "bench_wal: run with %s proposers failed\n", tok);
            rm_rf(base);
            return 1;
        }
        printf("proposers=%-3d entries/s=%-7.0f fsyncs/s=%-6.0f entries/fsync=%-5.1f p50=%.0f us p99=%.0f us "
               "write+fdatasync=%.0f us (writer busy %.0f%%) | just before: dd bs=512 count=%d oflag=dsync "
               "%.0f writes/s (conv=notrunc %.0f/s); entries/s = %.1fx dd, fsyncs/s = %.2fx dd\n",
               n, r.entries_per_s, r.fsyncs_per_s, r.entries_per_sync, r.p50_us, r.p99_us,
               r.sync_us, 100 * r.writer_busy, dd_count, dd, dd_over,
               dd > 0 ? r.entries_per_s / dd : 0, dd > 0 ? r.fsyncs_per_s / dd : 0);
        fflush(stdout);
    }
    if (recovery_mib > 0 && recovery(base, recovery_mib, entry_bytes) != 0) {
        rm_rf(base);
        return 1;
    }
    rm_rf(base);
    return 0;
}
