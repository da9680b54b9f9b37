/*
 * wal.c -- segmented, append-only write-ahead log (contract in wal.h, formats in docs/STORAGE.md).
 *
 * SEGMENT HEADER (40 bytes, little-endian)
 *     0  u32 magic 0x4C574B52 ("RKWL")     16  u64 first index (last index + 1 at creation)
 *     4  u32 format version (1)            24  u64 preallocated size of the file
 *     8  u64 sequence number (= file name) 32  u32 salt (seeds every record CRC of the segment)
 *                                          36  u32 CRC32C of bytes 0..35
 * RECORD (32-byte header + payload padded with zeros to a multiple of 8)
 *     0  u32 CRC32C seeded with the salt, over bytes 4 .. end of padding
 *     4  u8  type (wal_record_type)   5 u8 entry type   6 u16 zero
 *     8  u32 payload length          12 u32 zero
 *    16  u64 index                   24 u64 term
 * A record header of 32 zero bytes marks the end of the data (segments are preallocated with zeros).
 * The salt makes a record copied from another segment or file (e.g. a WAL stored as a value inside
 * an entry) fail its checksum, so the "valid record after a bad one" test cannot be fooled by it.
 *
 * INVARIANTS
 *   - Only the newest segment is written; an older one was fdatasync'ed in full before the newer one
 *     was created, and a new segment (header + hard state record) is fsync'ed and its directory
 *     synced before any record goes into it. Hence damage after a crash is confined to the tail of
 *     the newest segment, which is what recovery accepts to cut.
 *   - Every segment begins with the hard state current at its creation, so removing older segments
 *     never loses the latest hard state.
 *   - slots[i] describes the live entry base + 1 + i.
 */
#include "wal.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"

#define SEG_MAGIC 0x4C574B52u
#define SEG_VERSION 1u
#define SEG_HEADER_SIZE 40u
/* header + the hard state record written at creation */
#define SEG_CREATION_SIZE (SEG_HEADER_SIZE + REC_HEADER_SIZE + HARD_STATE_LEN)
#define REC_HEADER_SIZE 32u
#define HARD_STATE_LEN 24u
#define SEG_NAME_LEN 24 /* 20 digits + ".seg" */
#define MAX_RECORD_LEN (1u << 30)

typedef struct wal_seg {
    uint64_t seq;
    uint32_t salt;
    raft_index max_index; /* largest entry index written in it (superseded ones included) */
} wal_seg;

/* The cache of recent payloads is an arena of chunks, evicted oldest chunk first: appends copy
 * into it without a malloc per entry (STYLE: batch, don't churn). */
typedef struct cache_chunk {
    struct cache_chunk *next;
    size_t cap, used;
    raft_index max_index; /* largest index copied into it */
    uint8_t mem[];
} cache_chunk;

typedef struct wal_slot {
    raft_term term;
    uint64_t seq;    /* segment holding the record */
    uint64_t offset; /* of the record header */
    uint32_t len;
    uint8_t type;
    const uint8_t *cached; /* copy of the payload in the cache arena, or NULL */
} wal_slot;

struct wal {
    char *dir;
    vfs *v;
    wal_opts opts;
    wal_seg *segs;
    size_t n_segs, cap_segs;
    vfs_file *file;     /* newest segment */
    uint64_t write_off; /* end of the bytes written to it */
    uint64_t zeroed_to; /* bytes below it were written (data or zeros), not just preallocated */
    uint8_t *buf;       /* records not yet written, to go at write_off */
    size_t buf_len, buf_cap;
    raft_index base; /* live entries are base+1 .. base+n_slots */
    raft_term base_term;
    wal_slot *slots;
    size_t n_slots, cap_slots;
    size_t cache_lo; /* slots below this hold no cached copy */
    uint64_t cached_bytes; /* capacity of the chunks */
    cache_chunk *cache_head, *cache_tail;
    raft_hard_state hs;
    bool failed;
    wal_stats stats;
    char errmsg[WAL_ERRMSG_SIZE];
};

const char *wal_strerror(int rc)
{
    switch (rc) {
    case WAL_OK: return "ok";
    case WAL_EIO: return "I/O error";
    case WAL_ECORRUPT: return "log corrupt";
    case WAL_ENOMEM: return "out of memory";
    case WAL_EINVAL: return "invalid argument";
    case WAL_EFATAL: return "log failed (write or sync error)";
    default: return "unknown error";
    }
}

void wal_opts_default(wal_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->segment_bytes = WAL_DEFAULT_SEGMENT_BYTES;
    opts->cache_bytes = 64ull << 20;
}

static uint64_t pad8(uint64_t n)
{
    return (n + 7u) & ~(uint64_t)7u;
}

static void seg_name(char out[SEG_NAME_LEN + 1], uint64_t seq)
{
    snprintf(out, SEG_NAME_LEN + 1, "%020llu.seg", (unsigned long long)seq);
}

static char *path_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(len);
    if (path != NULL)
        snprintf(path, len, "%s/%s", dir, name);
    return path;
}

static void msg_set(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_set(char *errmsg, const char *fmt, ...)
{
    if (errmsg == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, WAL_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

static void wal_log(const wal *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wal_log(const wal *w, const char *fmt, ...)
{
    if (w->opts.log == NULL)
        return;
    char line[WAL_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    w->opts.log(w->opts.log_ctx, line);
}

static void seg_name(char out[SEG_NAME_LEN + 1], uint64_t seq);

/* Marks the wal failed for good; returns WAL_EFATAL. file: what the failed call was about (a
 * segment name, or NULL for the newest segment). */
static int wal_fail(wal *w, const char *file, const char *what, int err)
{
    if (!w->failed) {
        char name[SEG_NAME_LEN + 1] = "";
        if (file == NULL && w->n_segs > 0) {
            seg_name(name, w->segs[w->n_segs - 1].seq);
            file = name;
        }
        w->failed = true;
        msg_set(w->errmsg, "wal: %s: %s failed: %s; the log is failed for good: stop the node (a failed write or fsync is never retried)",
                file ? file : w->dir, what, strerror(-err));
    }
    return WAL_EFATAL;
}

static uint32_t salt_for(uint64_t seed, uint64_t seq)
{
    uint64_t z = seed ^ (seq * 0x9E3779B97F4A7C15ull) ^ 0xD6E8FEB86659FD93ull;
    z = (z ^ (z >> 32)) * 0xD6E8FEB86659FD93ull;
    z = (z ^ (z >> 32)) * 0xD6E8FEB86659FD93ull;
    return (uint32_t)(z ^ (z >> 32));
}

/* ---- buffers ---- */

static int buf_reserve(wal *w, size_t extra)
{
    size_t need = w->buf_len + extra;
    if (need <= w->buf_cap)
        return 0;
    size_t cap = w->buf_cap ? w->buf_cap : 64 * 1024;
    while (cap < need)
        cap *= 2;
    uint8_t *grown = realloc(w->buf, cap);
    if (grown == NULL)
        return WAL_ENOMEM;
    w->buf = grown;
    w->buf_cap = cap;
    return 0;
}

/* Frames one record at the end of the buffer (space reserved by the caller). */
static void record_encode(uint8_t *out, uint32_t salt, uint8_t type, uint8_t entry_type,
                          raft_index index, raft_term term, const void *data, uint32_t len)
{
    size_t padded = (size_t)pad8(len);
    memset(out, 0, REC_HEADER_SIZE + padded);
    out[4] = type;
    out[5] = entry_type;
    le_put32(out + 8, len);
    le_put64(out + 16, index);
    le_put64(out + 24, term);
    if (len > 0)
        memcpy(out + REC_HEADER_SIZE, data, len);
    le_put32(out, crc32c(salt, out + 4, REC_HEADER_SIZE - 4 + padded));
}

static int slots_reserve(wal *w, size_t extra)
{
    size_t need = w->n_slots + extra;
    if (need <= w->cap_slots)
        return 0;
    size_t cap = w->cap_slots ? w->cap_slots : 1024;
    while (cap < need)
        cap *= 2;
    wal_slot *grown = realloc(w->slots, cap * sizeof *grown);
    if (grown == NULL)
        return WAL_ENOMEM;
    w->slots = grown;
    w->cap_slots = cap;
    return 0;
}

static int segs_push(wal *w, uint64_t seq, uint32_t salt)
{
    if (w->n_segs == w->cap_segs) {
        size_t cap = w->cap_segs ? w->cap_segs * 2 : 16;
        wal_seg *grown = realloc(w->segs, cap * sizeof *grown);
        if (grown == NULL)
            return WAL_ENOMEM;
        w->segs = grown;
        w->cap_segs = cap;
    }
    w->segs[w->n_segs].seq = seq;
    w->segs[w->n_segs].salt = salt;
    w->segs[w->n_segs].max_index = 0;
    w->n_segs++;
    return 0;
}

static wal_seg *newest(wal *w)
{
    assert(w->n_segs > 0);
    return &w->segs[w->n_segs - 1];
}

static void slot_uncache(wal *w, wal_slot *slot)
{
    (void)w;
    slot->cached = NULL; /* the bytes go when their chunk is evicted */
}

/* Drops the oldest chunk; slots whose copy may live in it lose it (a later chunk may hold a
 * re-appended index after a truncation: losing that copy too only costs a read from disk). */
static void cache_evict_head(wal *w)
{
    cache_chunk *head = w->cache_head;
    size_t pos = w->cache_lo;
    while (pos < w->n_slots && w->base + 1 + pos <= head->max_index)
        w->slots[pos++].cached = NULL;
    w->cache_lo = pos;
    w->cache_head = head->next;
    if (w->cache_head == NULL)
        w->cache_tail = NULL;
    w->cached_bytes -= head->cap;
    free(head);
}

/* Copies a payload into the cache; NULL when it does not fit the cache or memory is short. */
static const uint8_t *cache_put(wal *w, raft_index index, const uint8_t *data, uint32_t len)
{
    uint64_t limit = w->opts.cache_bytes;
    if (limit == 0 || len > limit)
        return NULL;
    cache_chunk *tail = w->cache_tail;
    if (tail == NULL || tail->cap - tail->used < len) {
        size_t chunk = (size_t)(limit / 8);
        chunk = chunk < 4096 ? 4096 : chunk > (1u << 20) ? (1u << 20) : chunk;
        if (chunk < len)
            chunk = len;
        tail = malloc(sizeof *tail + chunk);
        if (tail == NULL)
            return NULL;
        tail->next = NULL;
        tail->cap = chunk;
        tail->used = 0;
        tail->max_index = 0;
        if (w->cache_tail != NULL)
            w->cache_tail->next = tail;
        else
            w->cache_head = tail;
        w->cache_tail = tail;
        w->cached_bytes += chunk;
    }
    uint8_t *copy = tail->mem + tail->used;
    if (len > 0)
        memcpy(copy, data, len);
    tail->used += len;
    if (index > tail->max_index)
        tail->max_index = index;
    return copy;
}

/* ---- writing ---- */

/* Zeroes are written this far ahead of the data. A write into preallocated (unwritten) blocks
 * makes the next fdatasync commit the filesystem journal as well: measured on ext4 here, 220 us
 * instead of 96 us per fdatasync. Writing real zeros ahead, a chunk at a time, pays that once per
 * chunk instead of once per sync. The zeros are what the format expects past the end anyway. */
#define ZERO_AHEAD_BYTES (1u << 20)

static int zero_ahead(wal *w, uint64_t end)
{
    static const uint8_t zeros[64 * 1024];
    if (end <= w->zeroed_to)
        return 0;
    uint64_t from = end;
    uint64_t to = from + ZERO_AHEAD_BYTES;
    if (to > w->opts.segment_bytes)
        to = w->opts.segment_bytes;
    for (uint64_t off = from; off < to; off += sizeof zeros) {
        size_t len = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
        int rc = vfs_write_all(w->v, w->file, zeros, len, off);
        if (rc != 0)
            return wal_fail(w, NULL, "write (zeroing ahead)", rc);
    }
    w->zeroed_to = to > end ? to : end;
    return 0;
}

/* Writes the buffer at write_off (no sync). */
static int flush_buffer(wal *w)
{
    if (w->buf_len == 0)
        return 0;
    int rc = vfs_write_all(w->v, w->file, w->buf, w->buf_len, w->write_off);
    if (rc != 0)
        return wal_fail(w, NULL, "write", rc);
    if ((rc = zero_ahead(w, w->write_off + w->buf_len)) != 0)
        return rc;
    w->write_off += w->buf_len;
    w->stats.bytes_written += w->buf_len;
    w->buf_len = 0;
    return 0;
}

/* Durably finishes the current segment (if any) and creates the next one. */
static int roll_segment(wal *w)
{
    int rc;
    if (w->file != NULL) {
        if ((rc = flush_buffer(w)) != 0)
            return rc;
        if ((rc = w->v->fdatasync(w->v, w->file)) != 0)
            return wal_fail(w, NULL, "fdatasync", rc);
        w->stats.syncs++;
        w->v->close(w->v, w->file);
        w->file = NULL;
    }
    uint64_t seq = w->n_segs ? newest(w)->seq + 1 : 1;
    uint32_t salt = salt_for(w->opts.seed, seq);
    char name[SEG_NAME_LEN + 1];
    seg_name(name, seq);
    char *path = path_join(w->dir, name);
    if (path == NULL)
        return WAL_ENOMEM;
    rc = w->v->open(w->v, path, VFS_O_RDWR | VFS_O_CREATE | VFS_O_EXCL, &w->file);
    free(path);
    if (rc != 0) {
        w->file = NULL;
        return wal_fail(w, name, "create", rc);
    }
    if ((rc = segs_push(w, seq, salt)) != 0)
        return rc;
    /* Header + the current hard state, as one write. */
    assert(w->buf_len == 0);
    if (buf_reserve(w, SEG_CREATION_SIZE) != 0)
        return WAL_ENOMEM;
    uint8_t *h = w->buf;
    le_put32(h, SEG_MAGIC);
    le_put32(h + 4, SEG_VERSION);
    le_put64(h + 8, seq);
    le_put64(h + 16, w->base + w->n_slots + 1);
    le_put64(h + 24, w->opts.segment_bytes);
    le_put32(h + 32, salt);
    le_put32(h + 36, crc32c(0, h, 36));
    uint8_t hs[HARD_STATE_LEN];
    le_put64(hs, w->hs.term);
    le_put64(hs + 8, w->hs.vote);
    le_put64(hs + 16, w->hs.commit);
    record_encode(h + SEG_HEADER_SIZE, salt, WAL_REC_HARD_STATE, 0, 0, 0, hs, HARD_STATE_LEN);
    w->buf_len = SEG_CREATION_SIZE;
    w->write_off = 0;
    w->zeroed_to = 0;
    /* Preallocate first so later fdatasyncs never have to flush a size change. */
    if ((rc = w->v->preallocate(w->v, w->file, 0, w->opts.segment_bytes)) != 0)
        return wal_fail(w, NULL, "preallocate", rc);
    if ((rc = flush_buffer(w)) != 0)
        return rc;
    if ((rc = w->v->fsync(w->v, w->file)) != 0)
        return wal_fail(w, NULL, "fsync", rc);
    if ((rc = w->v->sync_dir(w->v, w->dir)) != 0)
        return wal_fail(w, w->dir, "fsync of the directory", rc);
    w->stats.syncs += 2;
    w->stats.segments_created++;
    return 0;
}

/* Makes room for a record of `size` bytes, rolling the segment when it would overflow. */
static int reserve_record(wal *w, size_t size)
{
    uint64_t end = w->write_off + w->buf_len;
    uint64_t empty_end = SEG_CREATION_SIZE;
    if (end + size > w->opts.segment_bytes && end > empty_end) {
        int rc = roll_segment(w);
        if (rc != 0)
            return rc;
    }
    return buf_reserve(w, size);
}

static int append_record(wal *w, uint8_t type, uint8_t entry_type, raft_index index,
                         raft_term term, const void *data, uint32_t len, uint64_t *offset)
{
    size_t size = REC_HEADER_SIZE + (size_t)pad8(len);
    int rc = reserve_record(w, size);
    if (rc != 0)
        return rc;
    *offset = w->write_off + w->buf_len;
    record_encode(w->buf + w->buf_len, newest(w)->salt, type, entry_type, index, term, data, len);
    w->buf_len += size;
    return 0;
}

static int check_usable(const wal *w)
{
    return w->failed ? WAL_EFATAL : 0;
}

int wal_append(wal *w, const raft_entry *entries, size_t n)
{
    if (w->failed)
        return WAL_EFATAL;
    if (n == 0)
        return WAL_OK;
    raft_index last = w->base + w->n_slots;
    if ((w->n_slots > 0 || w->base > 0) && entries[0].index != last + 1) {
        msg_set(w->errmsg, "wal: append of index %llu, expected %llu", (unsigned long long)entries[0].index,
                (unsigned long long)(last + 1));
        return WAL_EINVAL;
    }
    if (entries[0].index == 0)
        return WAL_EINVAL;
    for (size_t i = 1; i < n; i++)
        if (entries[i].index != entries[0].index + i)
            return WAL_EINVAL;
    if (slots_reserve(w, n) != 0)
        return WAL_ENOMEM;
    if (w->n_slots == 0)
        w->base = entries[0].index - 1; /* an empty log starts where it is told */
    for (size_t i = 0; i < n; i++) {
        const raft_entry *e = &entries[i];
        if (e->len > MAX_RECORD_LEN)
            return WAL_EINVAL;
        uint64_t offset;
        int rc = append_record(w, WAL_REC_ENTRY, e->type, e->index, e->term, e->data, e->len, &offset);
        if (rc != 0)
            return rc;
        wal_slot *slot = &w->slots[w->n_slots++];
        slot->term = e->term;
        slot->seq = newest(w)->seq;
        slot->offset = offset;
        slot->len = e->len;
        slot->type = e->type;
        if (e->index > newest(w)->max_index)
            newest(w)->max_index = e->index;
        slot->cached = cache_put(w, e->index, e->data, e->len);
        while (w->cached_bytes > w->opts.cache_bytes && w->cache_head != w->cache_tail)
            cache_evict_head(w);
    }
    return WAL_OK;
}

int wal_set_hard_state(wal *w, const raft_hard_state *hs)
{
    int rc = check_usable(w);
    if (rc != 0)
        return rc;
    uint8_t payload[HARD_STATE_LEN];
    le_put64(payload, hs->term);
    le_put64(payload + 8, hs->vote);
    le_put64(payload + 16, hs->commit);
    uint64_t offset;
    rc = append_record(w, WAL_REC_HARD_STATE, 0, 0, 0, payload, HARD_STATE_LEN, &offset);
    if (rc == 0)
        w->hs = *hs;
    return rc;
}

static void drop_slots_from(wal *w, size_t pos)
{
    for (size_t i = pos; i < w->n_slots; i++)
        slot_uncache(w, &w->slots[i]);
    w->n_slots = pos;
    if (w->cache_lo > pos)
        w->cache_lo = pos;
}

int wal_truncate(wal *w, raft_index from)
{
    int rc = check_usable(w);
    if (rc != 0)
        return rc;
    if (from <= w->base || from > w->base + w->n_slots + 1) {
        msg_set(w->errmsg, "wal: truncate from %llu outside the log (%llu..%llu)",
                (unsigned long long)from, (unsigned long long)(w->base + 1),
                (unsigned long long)(w->base + w->n_slots));
        return WAL_EINVAL;
    }
    uint64_t offset;
    rc = append_record(w, WAL_REC_TRUNCATE, 0, from, 0, NULL, 0, &offset);
    if (rc == 0)
        drop_slots_from(w, (size_t)(from - w->base - 1));
    return rc;
}

int wal_reset(wal *w, raft_index index, raft_term term)
{
    int rc = check_usable(w);
    if (rc != 0)
        return rc;
    uint64_t offset;
    rc = append_record(w, WAL_REC_SNAPSHOT, 0, index, term, NULL, 0, &offset);
    if (rc != 0)
        return rc;
    drop_slots_from(w, 0);
    w->base = index;
    w->base_term = term;
    return WAL_OK;
}

int wal_sync(wal *w)
{
    int rc = check_usable(w);
    if (rc != 0)
        return rc;
    if (w->buf_len == 0)
        return WAL_OK;
    if ((rc = flush_buffer(w)) != 0)
        return rc;
    if ((rc = w->v->fdatasync(w->v, w->file)) != 0)
        return wal_fail(w, NULL, "fdatasync", rc);
    w->stats.syncs++;
    return WAL_OK;
}

int wal_compact(wal *w, raft_index index)
{
    int rc = check_usable(w);
    if (rc != 0)
        return rc;
    size_t removed = 0;
    while (removed + 1 < w->n_segs && w->segs[removed].max_index <= index)
        removed++;
    if (removed == 0)
        return WAL_OK;
    for (size_t i = 0; i < removed; i++) {
        char name[SEG_NAME_LEN + 1];
        seg_name(name, w->segs[i].seq);
        char *path = path_join(w->dir, name);
        if (path == NULL)
            return WAL_ENOMEM;
        rc = w->v->unlink(w->v, path);
        free(path);
        if (rc != 0 && rc != -ENOENT)
            return wal_fail(w, name, "unlink", rc);
        w->stats.segments_removed++;
    }
    /* Not needed for safety (replay accepts the older segments), but frees the names for good. */
    if ((rc = w->v->sync_dir(w->v, w->dir)) != 0)
        return wal_fail(w, w->dir, "fsync of the directory", rc);
    uint64_t first_kept = w->segs[removed].seq;
    memmove(w->segs, w->segs + removed, (w->n_segs - removed) * sizeof *w->segs);
    w->n_segs -= removed;
    /* Entries whose records went with the removed segments leave the index. */
    size_t drop = 0;
    while (drop < w->n_slots && w->slots[drop].seq < first_kept)
        drop++;
    if (drop > 0) {
        for (size_t i = 0; i < drop; i++)
            slot_uncache(w, &w->slots[i]);
        w->base_term = w->slots[drop - 1].term;
        memmove(w->slots, w->slots + drop, (w->n_slots - drop) * sizeof *w->slots);
        w->n_slots -= drop;
        w->base += drop;
        w->cache_lo = w->cache_lo > drop ? w->cache_lo - drop : 0;
    }
    return WAL_OK;
}

/* ---- reading ---- */

raft_index wal_first_index(const wal *w)
{
    return w->base + 1;
}

raft_index wal_last_index(const wal *w)
{
    return w->base + w->n_slots;
}

raft_term wal_term(const wal *w, raft_index index)
{
    if (index == w->base)
        return w->base_term;
    if (index <= w->base || index > w->base + w->n_slots)
        return 0;
    return w->slots[index - w->base - 1].term;
}

const char *wal_errmsg(const wal *w)
{
    return w->errmsg;
}

bool wal_failed(const wal *w)
{
    return w->failed;
}

wal_stats wal_get_stats(const wal *w)
{
    wal_stats s = w->stats;
    s.n_segments = w->n_segs;
    return s;
}

static const wal_seg *seg_by_seq(const wal *w, uint64_t seq)
{
    for (size_t i = 0; i < w->n_segs; i++)
        if (w->segs[i].seq == seq)
            return &w->segs[i];
    return NULL;
}

/* Reads and verifies the record of one slot from its segment into out (len bytes). */
static int read_slot(wal *w, const wal_slot *slot, vfs_file **file, uint64_t *file_seq, uint8_t *out)
{
    char name[SEG_NAME_LEN + 1];
    seg_name(name, slot->seq);
    if (slot->seq == newest(w)->seq && slot->offset >= w->write_off) {
        /* Still in the write buffer. */
        memcpy(out, w->buf + (slot->offset - w->write_off) + REC_HEADER_SIZE, slot->len);
        return WAL_OK;
    }
    vfs_file *f = w->file;
    if (slot->seq != newest(w)->seq) {
        if (*file == NULL || *file_seq != slot->seq) {
            if (*file != NULL)
                w->v->close(w->v, *file);
            *file = NULL;
            char *path = path_join(w->dir, name);
            if (path == NULL)
                return WAL_ENOMEM;
            int rc = w->v->open(w->v, path, VFS_O_READ, file);
            free(path);
            if (rc != 0) {
                *file = NULL;
                msg_set(w->errmsg, "wal: %s: open: %s", name, strerror(-rc));
                return WAL_EIO;
            }
            *file_seq = slot->seq;
        }
        f = *file;
    }
    size_t size = REC_HEADER_SIZE + (size_t)pad8(slot->len);
    uint8_t *rec = malloc(size);
    if (rec == NULL)
        return WAL_ENOMEM;
    int rc = vfs_read_all(w->v, f, rec, size, slot->offset);
    if (rc != 0) {
        free(rec);
        msg_set(w->errmsg, "wal: %s offset %llu: read: %s", name, (unsigned long long)slot->offset,
                strerror(-rc));
        return WAL_EIO;
    }
    const wal_seg *seg = seg_by_seq(w, slot->seq);
    uint32_t stored = le_get32(rec);
    uint32_t computed = crc32c(seg ? seg->salt : 0, rec + 4, size - 4);
    if (stored != computed) {
        free(rec);
        msg_set(w->errmsg, "wal: %s offset %llu: record crc mismatch on read (stored 0x%08x, computed 0x%08x)",
                name, (unsigned long long)slot->offset, stored, computed);
        return WAL_ECORRUPT;
    }
    memcpy(out, rec + REC_HEADER_SIZE, slot->len);
    free(rec);
    return WAL_OK;
}

int wal_read(wal *w, raft_index lo, raft_index hi, raft_entry **entries_out, size_t *n_out)
{
    if (lo <= w->base || hi < lo || hi > w->base + w->n_slots + 1)
        return WAL_EINVAL;
    size_t n = (size_t)(hi - lo);
    size_t first = (size_t)(lo - w->base - 1);
    size_t total = n * sizeof(raft_entry);
    for (size_t i = 0; i < n; i++)
        total += w->slots[first + i].len;
    uint8_t *mem = malloc(total ? total : 1);
    if (mem == NULL)
        return WAL_ENOMEM;
    raft_entry *entries = (raft_entry *)(void *)mem;
    uint8_t *data = mem + n * sizeof(raft_entry);
    vfs_file *file = NULL;
    uint64_t file_seq = 0;
    int rc = WAL_OK;
    for (size_t i = 0; i < n && rc == WAL_OK; i++) {
        const wal_slot *slot = &w->slots[first + i];
        entries[i].index = lo + i;
        entries[i].term = slot->term;
        entries[i].type = slot->type;
        entries[i].len = slot->len;
        entries[i].data = slot->len ? data : NULL;
        if (slot->cached != NULL)
            memcpy(data, slot->cached, slot->len);
        else if (slot->len > 0)
            rc = read_slot(w, slot, &file, &file_seq, data);
        data += slot->len;
    }
    if (file != NULL)
        w->v->close(w->v, file);
    if (rc != WAL_OK) {
        free(mem);
        return rc;
    }
    *entries_out = entries;
    *n_out = n;
    return WAL_OK;
}

/* ---- recovery ---- */

/* A segment's bytes during recovery: a mapping (vfs map) or a heap copy. */
typedef struct wal_buf {
    const uint8_t *ptr;
    size_t len;
    bool mapped;
} wal_buf;

static void buf_release(vfs *v, wal_buf *b)
{
    if (b->ptr == NULL)
        return;
    if (b->mapped)
        v->unmap(v, b->ptr, b->len);
    else
        free((void *)b->ptr);
    b->ptr = NULL;
}

typedef struct replay {
    wal *w;
    void (*cb)(void *ctx, const wal_record *rec);
    void *cb_ctx;
    char *errmsg;
    wal_buf *bufs;  /* bufs[i]: segment i as read (records up to ends[i]) */
    size_t *ends;   /* ends[i]: end of the records in segs[i] */
    size_t n_bufs;
    bool base_known;
    bool base_is_marker; /* base set by a SNAPSHOT record, not inferred from the first entry */
} replay;

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Checks the record at pos; on success *size is its full size. Sets *why for a bad one. */
static bool record_valid(const uint8_t *buf, size_t used, size_t pos, uint32_t salt, size_t *size,
                         const char **why, uint32_t *stored, uint32_t *computed)
{
    *why = NULL;
    if (pos + REC_HEADER_SIZE > used) {
        *why = "incomplete record header";
        return false;
    }
    const uint8_t *r = buf + pos;
    uint8_t type = r[4];
    uint32_t len = le_get32(r + 8);
    if (type < WAL_REC_ENTRY || type > WAL_REC_SNAPSHOT || le_get32(r + 12) != 0 || r[6] || r[7]) {
        *why = "bad record type";
        return false;
    }
    if (len > MAX_RECORD_LEN || pos + REC_HEADER_SIZE + pad8(len) > used) {
        *why = "record length beyond the end of the file";
        return false;
    }
    size_t full = REC_HEADER_SIZE + (size_t)pad8(len);
    *stored = le_get32(r);
    *computed = crc32c(salt, r + 4, full - 4);
    if (*stored != *computed) {
        *why = "record crc mismatch";
        return false;
    }
    if ((type == WAL_REC_HARD_STATE && len != HARD_STATE_LEN) ||
        ((type == WAL_REC_TRUNCATE || type == WAL_REC_SNAPSHOT) && len != 0)) {
        *why = "bad record length for its type";
        return false;
    }
    *size = full;
    return true;
}

/* First offset >= from (8-aligned) holding a valid record, or 0. */
static size_t find_valid_after(const uint8_t *buf, size_t used, size_t from, uint32_t salt)
{
    for (size_t pos = from; pos + REC_HEADER_SIZE <= used; pos += 8) {
        if (buf[pos + 4] < WAL_REC_ENTRY || buf[pos + 4] > WAL_REC_SNAPSHOT)
            continue;
        size_t size;
        const char *why;
        uint32_t s, c;
        if (record_valid(buf, used, pos, salt, &size, &why, &s, &c))
            return pos;
    }
    return 0;
}

/* Applies one valid record to the replay state. */
static int replay_record(replay *rp, const char *name, size_t seg_idx, size_t pos, const uint8_t *r)
{
    wal *w = rp->w;
    wal_record rec = {
        .segment = name, .offset = pos, .type = r[4], .entry_type = r[5],
        .len = le_get32(r + 8), .index = le_get64(r + 16), .term = le_get64(r + 24),
        .data = r + REC_HEADER_SIZE,
    };
    switch (rec.type) {
    case WAL_REC_ENTRY: {
        raft_index last = w->base + w->n_slots;
        if (w->n_slots == 0 && !rp->base_known) {
            w->base = rec.index - 1; /* first entry after a compaction */
        } else if (rec.index != last + 1 && !(w->n_slots == 0 && w->base == 0)) {
            /* (an empty log that never had a base takes any first index, as wal_append does) */
            msg_set(rp->errmsg, "wal: %s offset %zu: entry index %llu does not follow %llu: refusing to start",
                    name, pos, (unsigned long long)rec.index, (unsigned long long)last);
            return WAL_ECORRUPT;
        }
        if (w->n_slots == 0)
            w->base = rec.index - 1;
        rp->base_known = true;
        if (slots_reserve(w, 1) != 0)
            return WAL_ENOMEM;
        wal_slot *slot = &w->slots[w->n_slots++];
        slot->term = rec.term;
        slot->seq = w->segs[seg_idx].seq;
        slot->offset = pos;
        slot->len = rec.len;
        slot->type = rec.entry_type;
        slot->cached = NULL;
        if (rec.index > w->segs[seg_idx].max_index)
            w->segs[seg_idx].max_index = rec.index;
        break;
    }
    case WAL_REC_HARD_STATE:
        rec.hard_state.term = le_get64(rec.data);
        rec.hard_state.vote = le_get64(rec.data + 8);
        rec.hard_state.commit = le_get64(rec.data + 16);
        w->hs = rec.hard_state;
        break;
    case WAL_REC_TRUNCATE:
        if (rec.index <= w->base + w->n_slots) {
            if (rec.index <= w->base) {
                if (rp->base_is_marker) {
                    msg_set(rp->errmsg, "wal: %s offset %zu: truncate from %llu below the snapshot at %llu: refusing to start",
                            name, pos, (unsigned long long)rec.index, (unsigned long long)w->base);
                    return WAL_ECORRUPT;
                }
                /* The log's start was only inferred from the first entry left after compaction:
                 * the truncated entries below it went with the removed segments. */
                drop_slots_from(w, 0);
                w->base = rec.index - 1;
            } else {
                drop_slots_from(w, (size_t)(rec.index - w->base - 1));
            }
        }
        break;
    case WAL_REC_SNAPSHOT:
        drop_slots_from(w, 0);
        w->base = rec.index;
        w->base_term = rec.term;
        rp->base_known = true;
        rp->base_is_marker = true;
        break;
    default:
        assert(0 && "record_valid accepted an unknown type");
    }
    if (rp->cb != NULL)
        rp->cb(rp->cb_ctx, &rec);
    return WAL_OK;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Reads a whole file, through a mapping when the vfs offers one. */
static int read_file(wal *w, const char *name, wal_buf *out, char *errmsg)
{
    char *path = path_join(w->dir, name);
    if (path == NULL)
        return WAL_ENOMEM;
    vfs_file *f;
    int rc = w->v->open(w->v, path, VFS_O_READ, &f);
    free(path);
    if (rc != 0) {
        msg_set(errmsg, "wal: %s: open: %s", name, strerror(-rc));
        return WAL_EIO;
    }
    uint64_t size = 0;
    rc = w->v->size(w->v, f, &size);
    memset(out, 0, sizeof *out);
    out->len = (size_t)size;
    if (rc == 0 && size > 0 && w->v->version >= 2 && w->v->map != NULL) {
        const void *addr;
        if (w->v->map(w->v, f, size, &addr) == 0) {
            out->ptr = addr;
            out->mapped = true;
        }
    }
    if (rc == 0 && out->ptr == NULL) {
        uint8_t *buf = malloc(size ? (size_t)size : 1);
        if (buf == NULL) {
            w->v->close(w->v, f);
            return WAL_ENOMEM;
        }
        rc = vfs_read_all(w->v, f, buf, (size_t)size, 0);
        out->ptr = buf;
        if (rc != 0)
            buf_release(w->v, out);
    }
    w->v->close(w->v, f);
    if (rc != 0) {
        msg_set(errmsg, "wal: %s: read: %s", name, strerror(-rc));
        return WAL_EIO;
    }
    return WAL_OK;
}

/* Zeroes [from, to) of a segment and syncs it: cuts a torn tail so appends continue cleanly. */
static int zero_range(wal *w, const char *name, uint64_t from, uint64_t to, char *errmsg)
{
    char *path = path_join(w->dir, name);
    if (path == NULL)
        return WAL_ENOMEM;
    vfs_file *f;
    int rc = w->v->open(w->v, path, VFS_O_RDWR, &f);
    free(path);
    if (rc == 0) {
        size_t len = (size_t)(to - from);
        uint8_t *zeros = calloc(1, len ? len : 1);
        rc = zeros ? vfs_write_all(w->v, f, zeros, len, from) : -ENOMEM;
        free(zeros);
        if (rc == 0)
            rc = w->v->fdatasync(w->v, f);
        w->v->close(w->v, f);
    }
    if (rc != 0) {
        msg_set(errmsg, "wal: %s: cutting the torn tail at offset %llu: %s", name,
                (unsigned long long)from, strerror(-rc));
        return WAL_EIO;
    }
    return WAL_OK;
}

static int seg_remove(wal *w, const char *name, char *errmsg)
{
    char *path = path_join(w->dir, name);
    if (path == NULL)
        return WAL_ENOMEM;
    int rc = w->v->unlink(w->v, path);
    free(path);
    if (rc == 0)
        rc = w->v->sync_dir(w->v, w->dir);
    if (rc != 0) {
        msg_set(errmsg, "wal: %s: removing an unfinished segment: %s", name, strerror(-rc));
        return WAL_EIO;
    }
    return WAL_OK;
}

static void wal_free(wal *w)
{
    if (w == NULL)
        return;
    if (w->file != NULL)
        w->v->close(w->v, w->file);
    while (w->cache_head != NULL) {
        cache_chunk *next = w->cache_head->next;
        free(w->cache_head);
        w->cache_head = next;
    }
    free(w->slots);
    free(w->segs);
    free(w->buf);
    free(w->dir);
    free(w);
}

/* Replays every segment; leaves the wal ready to append (unless read-only). */
static int recover(wal *w, replay *rp)
{
    char *errmsg = rp->errmsg;
    char **names = NULL;
    size_t n_names = 0;
    int rc = w->v->list(w->v, w->dir, &names, &n_names);
    if (rc != 0) {
        msg_set(errmsg, "wal: %s: list: %s", w->dir, strerror(-rc));
        return WAL_EIO;
    }
    uint64_t *seqs = calloc(n_names + 1, sizeof *seqs);
    size_t n_seqs = 0;
    if (seqs == NULL) {
        vfs_list_free(names, n_names);
        return WAL_ENOMEM;
    }
    for (size_t i = 0; i < n_names; i++) {
        const char *nm = names[i];
        if (strlen(nm) != SEG_NAME_LEN || strcmp(nm + 20, ".seg") != 0)
            continue;
        if (strspn(nm, "0123456789") != 20)
            continue;
        seqs[n_seqs++] = strtoull(nm, NULL, 10);
    }
    vfs_list_free(names, n_names);
    qsort(seqs, n_seqs, sizeof *seqs, compare_u64);
    for (size_t i = 1; i < n_seqs; i++) {
        if (seqs[i] != seqs[i - 1] + 1) {
            char name[SEG_NAME_LEN + 1];
            seg_name(name, seqs[i - 1] + 1);
            msg_set(errmsg, "wal: %s offset 0: missing segment (found %020llu.seg and %020llu.seg): refusing to start",
                    name, (unsigned long long)seqs[i - 1], (unsigned long long)seqs[i]);
            free(seqs);
            return WAL_ECORRUPT;
        }
    }
    rp->n_bufs = n_seqs;
    rp->bufs = calloc(n_seqs + 1, sizeof *rp->bufs);
    rp->ends = calloc(n_seqs + 1, sizeof *rp->ends);
    if (rp->bufs == NULL || rp->ends == NULL) {
        free(seqs);
        return WAL_ENOMEM;
    }
    rc = WAL_OK;
    uint64_t torn_from = 0, torn_to = 0; /* torn tail of the newest segment, if any */
    const char *torn_why = NULL;
    bool drop_newest = false;
    for (size_t i = 0; i < n_seqs && rc == WAL_OK; i++) {
        char name[SEG_NAME_LEN + 1];
        seg_name(name, seqs[i]);
        bool is_newest = i + 1 == n_seqs;
        if ((rc = read_file(w, name, &rp->bufs[i], errmsg)) != WAL_OK)
            break;
        const uint8_t *buf = rp->bufs[i].ptr;
        size_t used = rp->bufs[i].len;
        /* Header. */
        const char *bad = NULL;
        if (used < SEG_HEADER_SIZE)
            bad = "file shorter than the segment header";
        else if (le_get32(buf) != SEG_MAGIC)
            bad = "bad magic";
        else if (le_get32(buf + 36) != crc32c(0, buf, 36))
            bad = "header crc mismatch";
        else if (le_get32(buf + 4) != SEG_VERSION)
            bad = "unsupported format version";
        else if (le_get64(buf + 8) != seqs[i])
            bad = "sequence number differs from the file name";
        if (bad != NULL) {
            /* Creation writes header + hard state in one write, then syncs: a crash during it can
             * only leave the newest segment with nothing beyond those bytes. */
            size_t creation = SEG_CREATION_SIZE;
            if (is_newest && (used <= creation || all_zero(buf + creation, used - creation))) {
                wal_log(w, "wal: %s offset 0: %s in an unfinished newest segment: %s", name, bad,
                        w->opts.read_only ? "would be removed at open" : "removed");
                drop_newest = true;
                break;
            }
            msg_set(errmsg, "wal: %s offset 0: %s: refusing to start", name, bad);
            rc = WAL_ECORRUPT;
            break;
        }
        uint32_t salt = le_get32(buf + 32);
        /* Creation writes the header and a HARD_STATE record together and syncs before any other
         * record: a newest segment with a valid header, no valid HARD_STATE first and nothing after
         * the creation bytes is an unfinished creation torn inside those bytes. Keeping it would
         * leave it without the hard state, and compacting the older segments would then lose the
         * term and vote. */
        if (is_newest && (used <= SEG_CREATION_SIZE ||
                          all_zero(buf + SEG_CREATION_SIZE, used - SEG_CREATION_SIZE))) {
            size_t hs_size;
            const char *hs_why;
            uint32_t hs_stored, hs_computed;
            bool hs_ok = record_valid(buf, used, SEG_HEADER_SIZE, salt, &hs_size, &hs_why,
                                      &hs_stored, &hs_computed) &&
                         buf[SEG_HEADER_SIZE + 4] == WAL_REC_HARD_STATE;
            if (!hs_ok) {
                wal_log(w, "wal: %s offset %u: no hard state after the header in an unfinished newest segment: %s",
                        name, (unsigned)SEG_HEADER_SIZE,
                        w->opts.read_only ? "would be removed at open" : "removed");
                drop_newest = true;
                break;
            }
        }
        /* Preallocation fixed the size before any record went in: a shorter file holding records
         * was cut (by a tool, a copy, a file system), which a torn write cannot explain. */
        uint64_t prealloc = le_get64(buf + 24);
        if (used < prealloc && used > SEG_CREATION_SIZE &&
            !all_zero(buf + SEG_CREATION_SIZE, used - SEG_CREATION_SIZE)) {
            msg_set(errmsg, "wal: %s offset %zu: file is %zu bytes, shorter than the %llu it was preallocated to (truncated): refusing to start",
                    name, used, used, (unsigned long long)prealloc);
            rc = WAL_ECORRUPT;
            break;
        }
        if ((rc = segs_push(w, seqs[i], salt)) != WAL_OK)
            break;
        /* Records. */
        size_t pos = SEG_HEADER_SIZE;
        while (pos < used) {
            size_t size;
            const char *why;
            uint32_t stored = 0, computed = 0;
            size_t header_bytes = used - pos < REC_HEADER_SIZE ? used - pos : REC_HEADER_SIZE;
            if (all_zero(buf + pos, header_bytes))
                break; /* end of the data (a full segment may end in fewer than 32 zero bytes) */
            if (!record_valid(buf, used, pos, salt, &size, &why, &stored, &computed)) {
                size_t next = find_valid_after(buf, used, pos + 8, salt);
                char detail[96] = "";
                if (stored != computed)
                    snprintf(detail, sizeof detail, " (stored 0x%08x, computed 0x%08x)", stored, computed);
                if (next != 0) {
                    msg_set(errmsg, "wal: %s offset %zu: %s%s, followed by valid records (offset %zu): refusing to start",
                            name, pos, why, detail, next);
                    rc = WAL_ECORRUPT;
                } else if (!is_newest) {
                    msg_set(errmsg, "wal: %s offset %zu: %s%s in a segment that is not the newest: refusing to start",
                            name, pos, why, detail);
                    rc = WAL_ECORRUPT;
                } else {
                    torn_why = why;
                }
                break;
            }
            if ((rc = replay_record(rp, name, i, pos, buf + pos)) != WAL_OK)
                break;
            pos += size;
        }
        if (rc != WAL_OK)
            break;
        /* Anything non-zero past the end of the data? */
        size_t last_nonzero = used;
        while (last_nonzero > pos && buf[last_nonzero - 1] == 0)
            last_nonzero--;
        if (last_nonzero > pos) {
            if (torn_why == NULL) {
                size_t next = find_valid_after(buf, used, pos + 8, salt);
                if (next != 0 || !is_newest) {
                    msg_set(errmsg, "wal: %s offset %zu: zeroed record header followed by %s (offset %zu): refusing to start",
                            name, pos, next ? "valid records" : "non-zero bytes", next ? next : last_nonzero - 1);
                    rc = WAL_ECORRUPT;
                    break;
                }
                torn_why = "garbage after the end of the data";
            }
            torn_from = pos;
            torn_to = last_nonzero;
        }
        rp->ends[i] = pos;
        /* A heap copy keeps only the bytes that hold records (the rest is preallocated zeros). */
        if (!rp->bufs[i].mapped) {
            uint8_t *shrunk = realloc((void *)rp->bufs[i].ptr, pos ? pos : 1);
            if (shrunk != NULL) {
                rp->bufs[i].ptr = shrunk;
                rp->bufs[i].len = pos;
            }
        }
    }
    size_t n_read = n_seqs;
    if (rc == WAL_OK && drop_newest) {
        n_read = n_seqs - 1;
        char name[SEG_NAME_LEN + 1];
        seg_name(name, seqs[n_seqs - 1]);
        buf_release(w->v, &rp->bufs[n_read]);
        if (!w->opts.read_only)
            rc = seg_remove(w, name, errmsg);
    }
    if (rc == WAL_OK && torn_why != NULL) {
        char name[SEG_NAME_LEN + 1];
        seg_name(name, seqs[n_read - 1]);
        wal_log(w, "wal: %s offset %llu: torn tail (%s), %llu bytes %s", name,
                (unsigned long long)torn_from, torn_why, (unsigned long long)(torn_to - torn_from),
                w->opts.read_only ? "would be cut at open" : "cut");
        if (!w->opts.read_only)
            rc = zero_range(w, name, torn_from, torn_to, errmsg);
    }
    if (rc == WAL_OK) {
        w->write_off = n_read > 0 ? rp->ends[n_read - 1] : 0;
        w->zeroed_to = w->write_off; /* unknown beyond: zeroed again, harmlessly */
    }
    free(seqs);
    return rc;
}

static void replay_free(replay *rp)
{
    if (rp->bufs != NULL)
        for (size_t i = 0; i < rp->n_bufs; i++)
            buf_release(rp->w->v, &rp->bufs[i]);
    free(rp->bufs);
    free(rp->ends);
    rp->bufs = NULL;
    rp->ends = NULL;
}

static int wal_new(const char *dir, vfs *v, const wal_opts *opts, wal **out)
{
    wal *w = calloc(1, sizeof *w);
    if (w == NULL)
        return WAL_ENOMEM;
    w->dir = strdup(dir);
    if (w->dir == NULL) {
        free(w);
        return WAL_ENOMEM;
    }
    w->v = v;
    if (opts != NULL)
        w->opts = *opts;
    else
        wal_opts_default(&w->opts);
    if (w->opts.segment_bytes < 4096)
        w->opts.segment_bytes = 4096;
    *out = w;
    return WAL_OK;
}

/* Moves the live entries' data out of the replay buffers into loaded. */
static int build_loaded(wal *w, replay *rp, wal_loaded *loaded)
{
    memset(loaded, 0, sizeof *loaded);
    loaded->hard_state = w->hs;
    loaded->base_index = rp->base_known ? w->base : 0;
    loaded->base_term = w->base_term;
    if (w->n_slots > 0) {
        loaded->entries = calloc(w->n_slots, sizeof *loaded->entries);
        if (loaded->entries == NULL)
            return WAL_ENOMEM;
    }
    uint64_t first_seq = w->n_segs ? w->segs[0].seq : 0;
    for (size_t i = 0; i < w->n_slots; i++) {
        const wal_slot *slot = &w->slots[i];
        raft_entry *e = &loaded->entries[i];
        e->index = w->base + 1 + i;
        e->term = slot->term;
        e->type = slot->type;
        e->len = slot->len;
        e->data = slot->len ? rp->bufs[slot->seq - first_seq].ptr + slot->offset + REC_HEADER_SIZE : NULL;
    }
    loaded->n_entries = w->n_slots;
    loaded->bufs_ = rp->bufs;
    loaded->n_bufs_ = rp->n_bufs;
    loaded->vfs_ = w->v;
    rp->bufs = NULL;
    return WAL_OK;
}

void wal_loaded_free(wal_loaded *loaded)
{
    if (loaded == NULL)
        return;
    wal_buf *bufs = loaded->bufs_;
    for (size_t i = 0; i < loaded->n_bufs_; i++)
        buf_release(loaded->vfs_, &bufs[i]);
    free(bufs);
    free(loaded->entries);
    memset(loaded, 0, sizeof *loaded);
}

/* What recovery read may have been written but never synced (the previous process died between
 * its write and its fdatasync, while the OS kept the pages): sync it all now, before anything read
 * back is treated as durable -- else a later power loss could take entries already acknowledged. */
static int sync_recovered(wal *w, char *errmsg)
{
    for (size_t i = 0; i < w->n_segs; i++) {
        char name[SEG_NAME_LEN + 1];
        seg_name(name, w->segs[i].seq);
        vfs_file *f = w->file;
        int rc = 0;
        if (i + 1 < w->n_segs || f == NULL) {
            char *path = path_join(w->dir, name);
            rc = path ? w->v->open(w->v, path, VFS_O_READ, &f) : -ENOMEM;
            free(path);
        }
        if (rc == 0) {
            rc = w->v->fdatasync(w->v, f);
            if (f != w->file)
                w->v->close(w->v, f);
        }
        if (rc != 0) {
            msg_set(errmsg, "wal: %s: sync of the recovered segment: %s", name, strerror(-rc));
            return WAL_EIO;
        }
    }
    int rc = w->v->sync_dir(w->v, w->dir);
    if (rc != 0) {
        msg_set(errmsg, "wal: %s: sync of the directory: %s", w->dir, strerror(-rc));
        return WAL_EIO;
    }
    return WAL_OK;
}

int wal_open(const char *dir, vfs *v, const wal_opts *opts, wal **out, wal_loaded *loaded,
             char *errmsg)
{
    wal *w;
    int rc = wal_new(dir, v, opts, &w);
    if (rc != WAL_OK) {
        msg_set(errmsg, "wal: out of memory");
        return rc;
    }
    replay rp = {.w = w, .errmsg = errmsg};
    rc = recover(w, &rp);
    if (rc == WAL_OK && !w->opts.read_only) {
        if (w->n_segs == 0) {
            rc = roll_segment(w);
        } else {
            char name[SEG_NAME_LEN + 1];
            seg_name(name, newest(w)->seq);
            char *path = path_join(dir, name);
            rc = path ? v->open(v, path, VFS_O_RDWR, &w->file) : -ENOMEM;
            free(path);
            if (rc != 0) {
                w->file = NULL;
                msg_set(errmsg, "wal: %s: open for append: %s", name, strerror(-rc));
                rc = WAL_EIO;
            }
        }
        if (rc == WAL_EFATAL)
            msg_set(errmsg, "%s", w->errmsg);
        if (rc == WAL_OK)
            rc = sync_recovered(w, errmsg);
    }
    if (rc == WAL_OK)
        rc = build_loaded(w, &rp, loaded);
    replay_free(&rp);
    if (rc != WAL_OK) {
        wal_free(w);
        return rc;
    }
    w->cache_lo = w->n_slots; /* nothing loaded at open is cached: the caller holds it */
    if (!rp.base_known)
        w->base_term = 0;
    *out = w;
    return WAL_OK;
}

int wal_check(const char *dir, vfs *v, const wal_opts *opts,
              void (*cb)(void *ctx, const wal_record *rec), void *ctx, char *errmsg)
{
    wal_opts ro;
    if (opts != NULL)
        ro = *opts;
    else
        wal_opts_default(&ro);
    ro.read_only = true;
    wal *w;
    int rc = wal_new(dir, v, &ro, &w);
    if (rc != WAL_OK)
        return rc;
    replay rp = {.w = w, .errmsg = errmsg, .cb = cb, .cb_ctx = ctx};
    rc = recover(w, &rp);
    replay_free(&rp);
    wal_free(w);
    return rc;
}

void wal_close(wal *w)
{
    wal_free(w);
}
