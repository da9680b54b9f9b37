/*
 * snap.c -- snapshot files (contract in snap.h).
 *
 * HEADER (176 bytes, little-endian)
 *     0  u32 magic 0x4E534B52 ("RKSN")    4  u32 format version (1, or 2 with learners)
 *     8  u64 index                       16  u64 term
 *    24  u32 number of voters            28  u32 number of learners (version 1: zero)
 *    32  u64 members[16]: the voters, then the learners (unused ones 0)
 *   160  u64 data length
 *   168  u32 CRC32C of the data         172  u32 CRC32C of bytes 0..171
 * then `data length` bytes of state machine data. A snapshot without learners is written as
 * version 1, which older releases read.
 */
#include "snap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"

#define SNAP_MAGIC 0x4E534B52u
#define SNAP_VERSION 1u
#define SNAP_VERSION_LEARNERS 2u
#define SNAP_NAME_LEN 30 /* "snap-" + 20 digits + ".snap" */

struct snap_writer {
    vfs *v;
    vfs_file *file;
    char *dir;
    char *tmp_path;
    char *final_path;
    raft_snapshot_meta meta;
    uint64_t written;
    uint32_t crc;
};

struct snap_reader {
    vfs *v;
    vfs_file *file;
    raft_snapshot_meta meta;
    uint64_t size;
};

const char *snap_strerror(int rc)
{
    switch (rc) {
    case SNAP_OK: return "ok";
    case SNAP_EIO: return "I/O error";
    case SNAP_ECORRUPT: return "snapshot corrupt";
    case SNAP_ENOMEM: return "out of memory";
    case SNAP_EINVAL: return "invalid argument";
    case SNAP_ENOENT: return "no such snapshot";
    case SNAP_EFATAL: return "snapshot install failed (fsync or disk full)";
    default: return "unknown error";
    }
}

static void msg_set(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_set(char *errmsg, const char *fmt, ...)
{
    if (errmsg == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, SNAP_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

static char *snap_path(const char *dir, raft_index index, const char *ext)
{
    size_t len = strlen(dir) + 64;
    char *path = malloc(len);
    if (path != NULL)
        snprintf(path, len, "%s/snap-%020llu.%s", dir, (unsigned long long)index, ext);
    return path;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* 0 unless name is snap-<20 digits>.<ext>; then the index (which may be 0 only if malformed). */
static raft_index parse_name(const char *name, const char *ext)
{
    if (strncmp(name, "snap-", 5) != 0 || strspn(name + 5, "0123456789") != 20 || name[25] != '.' ||
        strcmp(name + 26, ext) != 0)
        return 0;
    return strtoull(name + 5, NULL, 10);
}

static void header_encode(uint8_t *h, const raft_snapshot_meta *meta, uint64_t size, uint32_t crc)
{
    memset(h, 0, SNAP_HEADER_SIZE);
    le_put32(h, SNAP_MAGIC);
    le_put32(h + 4, meta->conf.n_learners > 0 ? SNAP_VERSION_LEARNERS : SNAP_VERSION);
    le_put64(h + 8, meta->index);
    le_put64(h + 16, meta->term);
    le_put32(h + 24, meta->conf.n_voters);
    le_put32(h + 28, meta->conf.n_learners);
    uint32_t k = 0; /* snap_writer_begin checked that both fit */
    for (uint32_t i = 0; i < meta->conf.n_voters; i++)
        le_put64(h + 32 + 8 * k++, meta->conf.voters[i]);
    for (uint32_t i = 0; i < meta->conf.n_learners; i++)
        le_put64(h + 32 + 8 * k++, meta->conf.learners[i]);
    le_put64(h + 160, size);
    le_put32(h + 168, crc);
    le_put32(h + 172, crc32c(0, h, 172));
}

/* NULL when the header is sound; else what is wrong with it. */
static const char *header_decode(const uint8_t *h, raft_snapshot_meta *meta, uint64_t *size,
                                 uint32_t *crc)
{
    if (le_get32(h) != SNAP_MAGIC)
        return "bad magic";
    if (le_get32(h + 172) != crc32c(0, h, 172))
        return "header crc mismatch";
    uint32_t version = le_get32(h + 4);
    if (version != SNAP_VERSION && version != SNAP_VERSION_LEARNERS)
        return "unsupported format version (this build reads 1 and 2)";
    memset(meta, 0, sizeof *meta);
    meta->index = le_get64(h + 8);
    meta->term = le_get64(h + 16);
    meta->conf.n_voters = le_get32(h + 24);
    meta->conf.n_learners = version == SNAP_VERSION_LEARNERS ? le_get32(h + 28) : 0;
    if (meta->conf.n_voters > RAFT_MAX_NODES)
        return "too many voters";
    if (meta->conf.n_learners > RAFT_MAX_NODES - meta->conf.n_voters)
        return "too many learners (voters and learners above 16)";
    for (uint32_t i = 0; i < meta->conf.n_voters; i++)
        meta->conf.voters[i] = le_get64(h + 32 + 8 * i);
    for (uint32_t i = 0; i < meta->conf.n_learners; i++)
        meta->conf.learners[i] = le_get64(h + 32 + 8 * (meta->conf.n_voters + i));
    *size = le_get64(h + 160);
    *crc = le_get32(h + 168);
    return NULL;
}

static void writer_free(snap_writer *w)
{
    if (w->file != NULL)
        w->v->close(w->v, w->file);
    free(w->dir);
    free(w->tmp_path);
    free(w->final_path);
    free(w);
}

int snap_writer_begin(const char *dir, vfs *v, const raft_snapshot_meta *meta, snap_writer **out,
                      char *errmsg)
{
    if (meta->index == 0 || meta->conf.n_voters > RAFT_MAX_NODES ||
        meta->conf.n_learners > RAFT_MAX_NODES - meta->conf.n_voters) {
        msg_set(errmsg, "snap: bad snapshot meta (index %llu, %u voters, %u learners)",
                (unsigned long long)meta->index, meta->conf.n_voters, meta->conf.n_learners);
        return SNAP_EINVAL;
    }
    snap_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return SNAP_ENOMEM;
    w->v = v;
    w->meta = *meta;
    w->dir = strdup(dir);
    w->tmp_path = snap_path(dir, meta->index, "tmp");
    w->final_path = snap_path(dir, meta->index, "snap");
    if (w->dir == NULL || w->tmp_path == NULL || w->final_path == NULL) {
        writer_free(w);
        return SNAP_ENOMEM;
    }
    int rc = v->open(v, w->tmp_path, VFS_O_RDWR | VFS_O_CREATE | VFS_O_TRUNC, &w->file);
    if (rc == 0) {
        /* A placeholder header; the real one (length, checksum) goes in at finish. */
        uint8_t h[SNAP_HEADER_SIZE] = {0};
        rc = vfs_write_all(v, w->file, h, sizeof h, 0);
    } else {
        w->file = NULL;
    }
    if (rc != 0) {
        msg_set(errmsg, "snap: %s: create: %s", base_name(w->tmp_path), strerror(-rc));
        if (w->file != NULL)
            v->unlink(v, w->tmp_path);
        writer_free(w);
        return rc == -ENOSPC ? SNAP_EFATAL : SNAP_EIO;
    }
    *out = w;
    return SNAP_OK;
}

raft_index snap_writer_meta_index(const snap_writer *w)
{
    return w->meta.index;
}

uint64_t snap_writer_offset(const snap_writer *w)
{
    return w->written;
}

int snap_writer_write(snap_writer *w, uint64_t offset, const void *data, size_t len)
{
    if (offset != w->written)
        return SNAP_EINVAL;
    int rc = vfs_write_all(w->v, w->file, data, len, SNAP_HEADER_SIZE + offset);
    if (rc != 0)
        return rc == -ENOSPC ? SNAP_EFATAL : SNAP_EIO;
    w->crc = crc32c(w->crc, data, len);
    w->written += len;
    return SNAP_OK;
}

void snap_writer_abort(snap_writer *w)
{
    if (w == NULL)
        return;
    w->v->close(w->v, w->file);
    w->file = NULL;
    w->v->unlink(w->v, w->tmp_path);
    writer_free(w);
}

/* Removes every snap-*.snap older than keep (and, with tmp, every .tmp file). */
static int remove_others(vfs *v, const char *dir, raft_index keep, bool tmp)
{
    char **names;
    size_t n;
    int rc = v->list(v, dir, &names, &n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        raft_index idx = parse_name(names[i], "snap");
        bool old = idx != 0 && idx < keep;
        bool leftover = tmp && parse_name(names[i], "tmp") != 0;
        if (!old && !leftover)
            continue;
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (path == NULL) {
            rc = -ENOMEM;
            break;
        }
        snprintf(path, len, "%s/%s", dir, names[i]);
        rc = v->unlink(v, path);
        free(path);
    }
    vfs_list_free(names, n);
    return rc;
}

int snap_writer_finish(snap_writer *w, char *errmsg)
{
    vfs *v = w->v;
    uint8_t h[SNAP_HEADER_SIZE];
    header_encode(h, &w->meta, w->written, w->crc);
    const char *step = "write header";
    int rc = vfs_write_all(v, w->file, h, sizeof h, 0);
    if (rc == 0) {
        step = "fsync";
        rc = v->fsync(v, w->file);
    }
    if (rc == 0) {
        v->close(v, w->file);
        w->file = NULL;
        step = "rename";
        rc = v->rename(v, w->tmp_path, w->final_path);
    }
    if (rc == 0) {
        step = "fsync directory";
        rc = v->sync_dir(v, w->dir);
    }
    if (rc != 0) {
        msg_set(errmsg, "snap: %s: %s failed: %s", base_name(w->tmp_path), step, strerror(-rc));
        bool fatal = rc == -ENOSPC || strncmp(step, "fsync", 5) == 0;
        if (w->file != NULL) {
            v->close(v, w->file);
            w->file = NULL;
            v->unlink(v, w->tmp_path);
        }
        writer_free(w);
        return fatal ? SNAP_EFATAL : SNAP_EIO;
    }
    /* The new snapshot is durable: older ones are garbage (a failure here only leaves them). */
    (void)remove_others(v, w->dir, w->meta.index, false);
    writer_free(w);
    return SNAP_OK;
}

static int reader_open_path(vfs *v, const char *path, snap_reader **out, uint32_t *crc, char *errmsg)
{
    snap_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return SNAP_ENOMEM;
    r->v = v;
    int rc = v->open(v, path, VFS_O_READ, &r->file);
    if (rc != 0) {
        free(r);
        msg_set(errmsg, "snap: %s: open: %s", base_name(path), strerror(-rc));
        return rc == -ENOENT ? SNAP_ENOENT : SNAP_EIO;
    }
    uint8_t h[SNAP_HEADER_SIZE];
    uint64_t file_size = 0;
    rc = v->size(v, r->file, &file_size);
    const char *bad = NULL;
    if (rc == 0 && file_size < SNAP_HEADER_SIZE)
        bad = "file shorter than the header";
    if (rc == 0 && bad == NULL)
        rc = vfs_read_all(v, r->file, h, sizeof h, 0);
    if (rc == 0 && bad == NULL)
        bad = header_decode(h, &r->meta, &r->size, crc);
    if (rc == 0 && bad == NULL && file_size != SNAP_HEADER_SIZE + r->size)
        bad = "file size differs from the header's data length";
    if (rc != 0 || bad != NULL) {
        if (bad != NULL)
            msg_set(errmsg, "snap: %s offset 0: %s: refusing to start", base_name(path), bad);
        else
            msg_set(errmsg, "snap: %s: read header: %s", base_name(path), strerror(-rc));
        v->close(v, r->file);
        free(r);
        return bad != NULL ? SNAP_ECORRUPT : SNAP_EIO;
    }
    *out = r;
    return SNAP_OK;
}

/* Index of the newest snap-*.snap in dir, 0 if none. */
int snap_newest_index(const char *dir, vfs *v, raft_index *index)
{
    char **names;
    size_t n;
    int rc = v->list(v, dir, &names, &n);
    if (rc != 0)
        return rc;
    *index = 0;
    for (size_t i = 0; i < n; i++) {
        raft_index idx = parse_name(names[i], "snap");
        if (idx > *index)
            *index = idx;
    }
    vfs_list_free(names, n);
    return 0;
}

int snap_reader_open(const char *dir, vfs *v, raft_index index, snap_reader **out, char *errmsg)
{
    if (index == 0) {
        int rc = snap_newest_index(dir, v, &index);
        if (rc != 0) {
            msg_set(errmsg, "snap: %s: list: %s", dir, strerror(-rc));
            return SNAP_EIO;
        }
        if (index == 0) {
            msg_set(errmsg, "snap: %s: no snapshot", dir);
            return SNAP_ENOENT;
        }
    }
    char *path = snap_path(dir, index, "snap");
    if (path == NULL)
        return SNAP_ENOMEM;
    uint32_t crc;
    int rc = reader_open_path(v, path, out, &crc, errmsg);
    free(path);
    return rc;
}

const raft_snapshot_meta *snap_reader_meta(const snap_reader *r)
{
    return &r->meta;
}

uint64_t snap_reader_size(const snap_reader *r)
{
    return r->size;
}

int snap_reader_read(snap_reader *r, uint64_t offset, void *buf, size_t len, size_t *n)
{
    if (offset > r->size)
        return SNAP_EINVAL;
    if (len > r->size - offset)
        len = (size_t)(r->size - offset);
    int rc = vfs_read_all(r->v, r->file, buf, len, SNAP_HEADER_SIZE + offset);
    if (rc != 0)
        return SNAP_EIO;
    *n = len;
    return SNAP_OK;
}

void snap_reader_close(snap_reader *r)
{
    if (r == NULL)
        return;
    r->v->close(r->v, r->file);
    free(r);
}

int snap_load_newest(const char *dir, vfs *v, bool cleanup, raft_snapshot_meta *meta,
                     uint64_t *size, char *errmsg)
{
    memset(meta, 0, sizeof *meta);
    *size = 0;
    raft_index index;
    int rc = snap_newest_index(dir, v, &index);
    if (rc != 0) {
        msg_set(errmsg, "snap: %s: list: %s", dir, strerror(-rc));
        return SNAP_EIO;
    }
    if (index != 0) {
        char *path = snap_path(dir, index, "snap");
        if (path == NULL)
            return SNAP_ENOMEM;
        snap_reader *r;
        uint32_t want;
        rc = reader_open_path(v, path, &r, &want, errmsg);
        if (rc == SNAP_OK && r->meta.index != index) {
            msg_set(errmsg, "snap: %s offset 8: index %llu differs from the file name: refusing to start",
                    base_name(path), (unsigned long long)r->meta.index);
            rc = SNAP_ECORRUPT;
        }
        if (rc == SNAP_OK) {
            /* Verify the data in 1 MiB chunks. */
            size_t chunk = 1u << 20;
            uint8_t *buf = malloc(chunk);
            uint32_t crc = 0;
            for (uint64_t off = 0; buf != NULL && off < r->size && rc == SNAP_OK;) {
                size_t got = 0;
                rc = snap_reader_read(r, off, buf, chunk, &got);
                if (rc == SNAP_OK && got == 0)
                    rc = SNAP_EIO;
                crc = crc32c(crc, buf, got);
                off += got;
            }
            if (buf == NULL)
                rc = SNAP_ENOMEM;
            free(buf);
            if (rc == SNAP_EIO)
                msg_set(errmsg, "snap: %s: read: I/O error", base_name(path));
            if (rc == SNAP_OK && crc != want) {
                msg_set(errmsg, "snap: %s offset %d: data crc mismatch (stored 0x%08x, computed 0x%08x): refusing to start",
                        base_name(path), SNAP_HEADER_SIZE, want, crc);
                rc = SNAP_ECORRUPT;
            }
            if (rc == SNAP_OK) {
                *meta = r->meta;
                *size = r->size;
            }
            snap_reader_close(r);
        }
        free(path);
        if (rc != SNAP_OK)
            return rc;
    }
    if (cleanup) {
        rc = remove_others(v, dir, index, true);
        if (rc != 0) {
            msg_set(errmsg, "snap: %s: removing old snapshots: %s", dir, strerror(-rc));
            return SNAP_EIO;
        }
    }
    return SNAP_OK;
}
