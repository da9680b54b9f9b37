/* disk_fault.c -- TEST ONLY disk fault injection over a real vfs (see disk_fault.h). */
#include "disk_fault.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DF_EXPECTED "fsync-eio:N, enospc:N, torn-crash:N or fsync-stall:N:MS"

int disk_fault_parse(const char *spec, disk_fault *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (spec == NULL || spec[0] == '\0')
        return 0;
    const char *colon = strchr(spec, ':');
    char *end = NULL;
    errno = 0;
    unsigned long long n = colon != NULL ? strtoull(colon + 1, &end, 10) : 0;
    unsigned long long ms = 0;
    size_t klen = colon != NULL ? (size_t)(colon - spec) : 0;
    bool stall = klen == 11 && strncmp(spec, "fsync-stall", 11) == 0;
    if (stall && end != NULL && end != colon + 1 && *end == ':' && isdigit((unsigned char)end[1]))
        ms = strtoull(end + 1, &end, 10); /* N:MS; anything else leaves end at the ':' */
    if (colon == NULL || end == colon + 1 || *end != '\0' || errno != 0 || colon[1] == '-') {
        snprintf(err, errlen, "test_disk_fault: expected " DF_EXPECTED ", got \"%s\"", spec);
        return -1;
    }
    if (klen == 9 && strncmp(spec, "fsync-eio", 9) == 0 && n >= 1)
        out->kind = DISK_FAULT_FSYNC_EIO;
    else if (klen == 6 && strncmp(spec, "enospc", 6) == 0)
        out->kind = DISK_FAULT_ENOSPC;
    else if (klen == 10 && strncmp(spec, "torn-crash", 10) == 0 && n >= 1)
        out->kind = DISK_FAULT_TORN_CRASH;
    else if (stall && n >= 1 && ms >= 1 && ms <= 60000)
        out->kind = DISK_FAULT_FSYNC_STALL;
    else {
        snprintf(err, errlen, "test_disk_fault: expected fsync-eio:N (N >= 1), enospc:N, "
                 "torn-crash:N (N >= 1) or fsync-stall:N:MS (N >= 1, MS 1..60000), got \"%s\"",
                 spec);
        return -1;
    }
    out->n = n;
    out->stall_ms = ms;
    return 0;
}

static disk_fault *df_of(vfs *v) { return v->ctx; }

/* True when this sync call must fail: the Nth or a later one (fsync-eio). For fsync-stall the Nth
 * call sleeps first, on whichever thread makes it, and then syncs. */
static int df_sync_fails(disk_fault *df)
{
    if (df->kind == DISK_FAULT_FSYNC_STALL) {
        if (atomic_fetch_add(&df->syncs, 1) + 1 == df->n) {
            fprintf(stderr, "TEST fsync-stall: sync %" PRIu64 " sleeps %" PRIu64 " ms\n", df->n,
                    df->stall_ms);
            struct timespec ts = {.tv_sec = (time_t)(df->stall_ms / 1000),
                                  .tv_nsec = (long)(df->stall_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
        return 0;
    }
    if (df->kind != DISK_FAULT_FSYNC_EIO)
        return 0;
    return atomic_fetch_add(&df->syncs, 1) + 1 >= df->n;
}

static int df_open(vfs *v, const char *path, unsigned flags, vfs_file **out)
{
    disk_fault *df = df_of(v);
    return df->inner.open(&df->inner, path, flags, out);
}

static int df_close(vfs *v, vfs_file *f)
{
    disk_fault *df = df_of(v);
    return df->inner.close(&df->inner, f);
}

static int df_pread(vfs *v, vfs_file *f, void *buf, size_t len, uint64_t off, size_t *nread)
{
    disk_fault *df = df_of(v);
    return df->inner.pread(&df->inner, f, buf, len, off, nread);
}

static int df_pwrite(vfs *v, vfs_file *f, const void *buf, size_t len, uint64_t off,
                     size_t *written)
{
    disk_fault *df = df_of(v);
    if (df->kind == DISK_FAULT_ENOSPC) {
        uint64_t before = atomic_fetch_add(&df->written, len);
        if (before + len > df->n) {
            *written = 0;
            return -ENOSPC;
        }
    }
    if (df->kind == DISK_FAULT_TORN_CRASH && atomic_fetch_add(&df->writes, 1) + 1 == df->n) {
        size_t half = len / 2;
        size_t done = 0;
        if (half > 0)
            (void)df->inner.pwrite(&df->inner, f, buf, half, off, &done);
        fprintf(stderr, "TEST torn-crash: write %" PRIu64 " cut after %zu of %zu bytes at offset "
                "%" PRIu64 ": killing this process\n", df->n, done, len, off);
        raise(SIGKILL); /* a crash: no exit handlers, no more writes */
    }
    return df->inner.pwrite(&df->inner, f, buf, len, off, written);
}

static int df_fdatasync(vfs *v, vfs_file *f)
{
    disk_fault *df = df_of(v);
    return df_sync_fails(df) ? -EIO : df->inner.fdatasync(&df->inner, f);
}

static int df_fsync(vfs *v, vfs_file *f)
{
    disk_fault *df = df_of(v);
    return df_sync_fails(df) ? -EIO : df->inner.fsync(&df->inner, f);
}

static int df_preallocate(vfs *v, vfs_file *f, uint64_t off, uint64_t len)
{
    disk_fault *df = df_of(v);
    /* The disk is full once the budget is spent: no more space can be reserved either. */
    if (df->kind == DISK_FAULT_ENOSPC && atomic_load(&df->written) >= df->n)
        return -ENOSPC;
    return df->inner.preallocate(&df->inner, f, off, len);
}

static int df_truncate(vfs *v, vfs_file *f, uint64_t size)
{
    disk_fault *df = df_of(v);
    return df->inner.truncate(&df->inner, f, size);
}

static int df_size(vfs *v, vfs_file *f, uint64_t *size)
{
    disk_fault *df = df_of(v);
    return df->inner.size(&df->inner, f, size);
}

static int df_rename(vfs *v, const char *from, const char *to)
{
    disk_fault *df = df_of(v);
    return df->inner.rename(&df->inner, from, to);
}

static int df_unlink(vfs *v, const char *path)
{
    disk_fault *df = df_of(v);
    return df->inner.unlink(&df->inner, path);
}

static int df_list(vfs *v, const char *dir, char ***names, size_t *n_names)
{
    disk_fault *df = df_of(v);
    return df->inner.list(&df->inner, dir, names, n_names);
}

static int df_mkdir(vfs *v, const char *path)
{
    disk_fault *df = df_of(v);
    return df->inner.mkdir(&df->inner, path);
}

static int df_sync_dir(vfs *v, const char *path)
{
    disk_fault *df = df_of(v);
    return df_sync_fails(df) ? -EIO : df->inner.sync_dir(&df->inner, path);
}

static int df_map(vfs *v, vfs_file *f, uint64_t len, const void **addr)
{
    disk_fault *df = df_of(v);
    return df->inner.map(&df->inner, f, len, addr);
}

static void df_unmap(vfs *v, const void *addr, uint64_t len)
{
    disk_fault *df = df_of(v);
    df->inner.unmap(&df->inner, addr, len);
}

void disk_fault_wrap(disk_fault *df, vfs *v)
{
    if (df->kind == DISK_FAULT_NONE)
        return;
    df->inner = *v;
    atomic_init(&df->syncs, 0);
    atomic_init(&df->written, 0);
    atomic_init(&df->writes, 0);
    v->name = "disk-fault";
    v->ctx = df;
    v->open = df_open;
    v->close = df_close;
    v->pread = df_pread;
    v->pwrite = df_pwrite;
    v->fdatasync = df_fdatasync;
    v->fsync = df_fsync;
    v->preallocate = df_preallocate;
    v->truncate = df_truncate;
    v->size = df_size;
    v->rename = df_rename;
    v->unlink = df_unlink;
    v->list = df_list;
    v->mkdir = df_mkdir;
    v->sync_dir = df_sync_dir;
    /* map is optional (version >= 2): keep it absent when the wrapped table has none. */
    v->map = df->inner.version >= 2 && df->inner.map != NULL ? df_map : NULL;
    v->unmap = v->map != NULL ? df_unmap : NULL;
}
