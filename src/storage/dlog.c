/*
 * dlog.c -- the fast path's durability log (dlog.h).
 */
#include "dlog.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"

#define DLOG_MAGIC 0x444b5652u /* "RKVD" */
#define DLOG_VERSION 1u
#define HEADER 8
#define REC_FIXED 9 /* crc, length, kind */
#define KIND_ENTRY 1
#define KIND_DROP 2
#define MAX_PAYLOAD (256u << 20)

struct dlog {
    vfs *v;
    char path[1024], tmp[1024], dir[1024];
    vfs_file *f;
    uint64_t size;
    uint64_t cut_at, cut_bytes; /* the torn tail dlog_open cut */
    bool failed;
    char err[DLOG_ERRMSG_SIZE];
};

static int fail(dlog *d, int rc, const char *what, int e)
{
    snprintf(d->err, sizeof d->err, "%.160s: %s: %s", d->path, what, strerror(-e));
    if (rc == DLOG_EFATAL)
        d->failed = true;
    return rc;
}

static int write_all(dlog *d, vfs_file *f, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        size_t w = 0;
        int e = d->v->pwrite(d->v, f, p, len, off, &w);
        if (e < 0)
            return e;
        if (w == 0)
            return -EIO;
        p += w;
        off += w;
        len -= w;
    }
    return 0;
}

/* One record into buf (REC_FIXED + 8 + len bytes). */
static size_t encode(uint8_t *buf, uint8_t kind, raft_term term, const uint8_t *data, uint32_t len)
{
    le_put32(buf + 4, 8 + len);
    buf[8] = kind;
    le_put64(buf + 9, term);
    if (len > 0)
        memcpy(buf + 17, data, len);
    le_put32(buf, crc32c(0, buf + 4, 5 + 8 + (size_t)len));
    return REC_FIXED + 8 + len;
}

static size_t records_bytes(const raft_entry *entries, size_t n, bool drop)
{
    size_t bytes = drop ? REC_FIXED + 8 : 0;
    for (size_t i = 0; i < n; i++)
        bytes += REC_FIXED + 8 + entries[i].len;
    return bytes;
}

static size_t encode_all(uint8_t *buf, const raft_entry *entries, size_t n, raft_term drop_below)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += encode(buf + off, KIND_ENTRY, entries[i].term, entries[i].data, entries[i].len);
    if (drop_below != 0)
        off += encode(buf + off, KIND_DROP, drop_below, NULL, 0);
    return off;
}

/* Replays buf (the whole file) into a list; returns how many bytes are good (the rest is a torn
 * tail), or -1 with the reason in err when a damaged record has bytes after it. */
typedef struct replay {
    raft_entry *items;
    size_t n, cap;
    uint64_t data_bytes;
} replay;

static void replay_drop(replay *r, raft_term below)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->items[i].term < below)
            r->data_bytes -= r->items[i].len;
        else
            r->items[kept++] = r->items[i];
    }
    r->n = kept;
}

/* A well-formed record (sane length, matching checksum, known kind) at off. */
static bool record_at(const uint8_t *buf, uint64_t size, uint64_t off)
{
    if (size - off < REC_FIXED + 8)
        return false;
    uint32_t len = le_get32(buf + off + 4);
    if (len < 8 || len > MAX_PAYLOAD || size - off - REC_FIXED < len)
        return false;
    uint8_t kind = buf[off + 8];
    return (kind == KIND_ENTRY || kind == KIND_DROP) &&
           le_get32(buf + off) == crc32c(0, buf + off + 4, 5 + (size_t)len);
}

/* A bad record at off is a torn write only if nothing valid comes after it: the tail is zeros (a
 * file extended but not written), or no offset after off holds a well-formed record. Otherwise
 * records that were acknowledged follow: corruption, never cut. Returns the first offset after
 * off where a record parses, or 0. */
static uint64_t valid_after(const uint8_t *buf, uint64_t size, uint64_t off)
{
    bool zeros = true;
    for (uint64_t p = off; p < size && zeros; p++)
        zeros = buf[p] == 0;
    if (zeros)
        return 0;
    for (uint64_t p = off + 1; p + REC_FIXED + 8 <= size; p++)
        if (record_at(buf, size, p))
            return p;
    return 0;
}

static int64_t replay_all(const uint8_t *buf, uint64_t size, replay *r, char *err, size_t errlen,
                          const char *path)
{
    uint64_t off = HEADER;
    while (off < size) {
        if (!record_at(buf, size, off)) {
            uint64_t next = valid_after(buf, size, off);
            if (next == 0)
                return (int64_t)off; /* a torn tail: the caller cuts it */
            uint32_t len = size - off >= 8 ? le_get32(buf + off + 4) : 0;
            snprintf(err, errlen, "%.160s: record at offset %llu (length field %u) is damaged, "
                     "and a valid record follows at offset %llu", path, (unsigned long long)off,
                     len, (unsigned long long)next);
            return -1;
        }
        uint32_t len = le_get32(buf + off + 4);
        uint8_t kind = buf[off + 8];
        uint64_t end = off + REC_FIXED + len;
        raft_term term = le_get64(buf + off + 9);
        if (kind == KIND_DROP) {
            replay_drop(r, term);
        } else {
            if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 64;
                raft_entry *grown = realloc(r->items, cap * sizeof *grown);
                if (!grown)
                    return -2;
                r->items = grown;
                r->cap = cap;
            }
            r->items[r->n++] = (raft_entry){.term = term, .type = RAFT_ENTRY_FAST,
                                            .len = len - 8, .data = buf + off + 17};
            r->data_bytes += len - 8;
        }
        off = end;
    }
    return (int64_t)off;
}

static int read_file(dlog *d, uint8_t **buf, uint64_t *size)
{
    int e = d->v->size(d->v, d->f, size);
    if (e < 0)
        return e;
    *buf = malloc(*size ? *size : 1);
    if (!*buf)
        return -ENOMEM;
    uint64_t off = 0;
    while (off < *size) {
        size_t got = 0;
        e = d->v->pread(d->v, d->f, *buf + off, (size_t)(*size - off), off, &got);
        if (e < 0 || got == 0) {
            free(*buf);
            return e < 0 ? e : -EIO;
        }
        off += got;
    }
    return 0;
}

static int write_header(dlog *d, vfs_file *f)
{
    uint8_t h[HEADER];
    le_put32(h, DLOG_MAGIC);
    le_put32(h + 4, DLOG_VERSION);
    return write_all(d, f, h, HEADER, 0);
}

int dlog_open(const char *dir, vfs *v, dlog **out, raft_entry **entries, size_t *n,
              char *errmsg)
{
    *out = NULL;
    *entries = NULL;
    *n = 0;
    dlog *d = calloc(1, sizeof *d);
    if (!d)
        return DLOG_ENOMEM;
    d->v = v;
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    snprintf(d->path, sizeof d->path, "%s/dlog", dir);
    snprintf(d->tmp, sizeof d->tmp, "%s/dlog.tmp", dir);
    (void)v->unlink(v, d->tmp); /* an unfinished rewrite: the old file is the d-log */
    int rc = DLOG_OK;
    int e = v->open(v, d->path, VFS_O_RDWR | VFS_O_CREATE, &d->f);
    uint8_t *buf = NULL;
    uint64_t size = 0;
    if (e < 0) {
        rc = fail(d, DLOG_EIO, "open", e);
        goto out;
    }
    if ((e = read_file(d, &buf, &size)) < 0) {
        rc = fail(d, e == -ENOMEM ? DLOG_ENOMEM : DLOG_EIO, "read", e);
        goto out;
    }
    if (size < HEADER) { /* new, or torn while being created */
        if ((e = v->truncate(v, d->f, 0)) < 0 || (e = write_header(d, d->f)) < 0 ||
            (e = v->fdatasync(v, d->f)) < 0 || (e = v->sync_dir(v, dir)) < 0) {
            rc = fail(d, DLOG_EFATAL, "create", e);
            goto out;
        }
        d->size = HEADER;
        goto out;
    }
    if (le_get32(buf) != DLOG_MAGIC || le_get32(buf + 4) != DLOG_VERSION) {
        snprintf(d->err, sizeof d->err, "%.160s: not a d-log of version %u (magic %08x, version %u)",
                 d->path, DLOG_VERSION, le_get32(buf), le_get32(buf + 4));
        rc = DLOG_ECORRUPT;
        goto out;
    }
    replay r = {0};
    int64_t good = replay_all(buf, size, &r, d->err, sizeof d->err, d->path);
    if (good < 0) {
        free(r.items);
        rc = good == -2 ? DLOG_ENOMEM : DLOG_ECORRUPT;
        goto out;
    }
    if ((uint64_t)good < size) { /* a torn tail: cut it */
        d->cut_at = (uint64_t)good;
        d->cut_bytes = size - (uint64_t)good;
        if ((e = v->truncate(v, d->f, (uint64_t)good)) < 0 || (e = v->fdatasync(v, d->f)) < 0) {
            free(r.items);
            rc = fail(d, DLOG_EFATAL, "truncate a torn tail", e);
            goto out;
        }
    }
    d->size = (uint64_t)good;
    if (r.n > 0) { /* one block the caller owns: the entries point into buf until copied */
        raft_entry *block = malloc(r.n * sizeof(raft_entry) + r.data_bytes);
        if (!block) {
            free(r.items);
            rc = DLOG_ENOMEM;
            goto out;
        }
        uint8_t *data = (uint8_t *)(block + r.n);
        for (size_t i = 0; i < r.n; i++) {
            block[i] = r.items[i];
            memcpy(data, r.items[i].data, r.items[i].len);
            block[i].data = data;
            data += r.items[i].len;
        }
        *entries = block;
        *n = r.n;
    }
    free(r.items);
out:
    free(buf);
    if (rc != DLOG_OK) {
        if (errmsg)
            snprintf(errmsg, DLOG_ERRMSG_SIZE, "%s", d->err);
        dlog_close(d);
        return rc;
    }
    *out = d;
    return DLOG_OK;
}

int dlog_append(dlog *d, const raft_entry *entries, size_t n, raft_term drop_below)
{
    if (d->failed)
        return DLOG_EFATAL;
    if (n == 0 && drop_below == 0)
        return DLOG_OK;
    size_t bytes = records_bytes(entries, n, drop_below != 0);
    uint8_t *buf = malloc(bytes);
    if (!buf)
        return fail(d, DLOG_ENOMEM, "append", -ENOMEM);
    encode_all(buf, entries, n, drop_below);
    int e = write_all(d, d->f, buf, bytes, d->size);
    free(buf);
    if (e < 0)
        return fail(d, DLOG_EFATAL, "write", e);
    if ((e = d->v->fdatasync(d->v, d->f)) < 0)
        return fail(d, DLOG_EFATAL, "fdatasync", e);
    d->size += bytes;
    return DLOG_OK;
}

uint64_t dlog_size(const dlog *d) { return d->size; }
uint64_t dlog_cut(const dlog *d, uint64_t *at)
{
    *at = d->cut_at;
    return d->cut_bytes;
}

int dlog_rewrite(dlog *d, const raft_entry *entries, size_t n)
{
    if (d->failed)
        return DLOG_EFATAL;
    size_t bytes = HEADER + records_bytes(entries, n, false);
    uint8_t *buf = malloc(bytes);
    if (!buf)
        return DLOG_ENOMEM;
    le_put32(buf, DLOG_MAGIC);
    le_put32(buf + 4, DLOG_VERSION);
    encode_all(buf + HEADER, entries, n, 0);
    vfs *v = d->v;
    vfs_file *f = NULL;
    int e = v->open(v, d->tmp, VFS_O_RDWR | VFS_O_CREATE | VFS_O_TRUNC, &f);
    if (e == 0)
        e = write_all(d, f, buf, bytes, 0);
    if (e == 0)
        e = v->fdatasync(v, f);
    free(buf);
    if (f != NULL) {
        int ce = v->close(v, f);
        if (e == 0)
            e = ce;
    }
    if (e == 0)
        e = v->rename(v, d->tmp, d->path);
    if (e == 0)
        e = v->sync_dir(v, d->dir);
    if (e < 0)
        return fail(d, DLOG_EFATAL, "rewrite", e);
    v->close(v, d->f);
    d->f = NULL;
    if ((e = v->open(v, d->path, VFS_O_RDWR, &d->f)) < 0)
        return fail(d, DLOG_EFATAL, "reopen after a rewrite", e);
    d->size = bytes;
    return DLOG_OK;
}

const char *dlog_errmsg(const dlog *d) { return d->err; }

void dlog_close(dlog *d)
{
    if (!d)
        return;
    if (d->f)
        d->v->close(d->v, d->f);
    free(d);
}
