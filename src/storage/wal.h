/*
 * wal.h -- the segmented write-ahead log of a raftkv node: entries, hard state, truncations and
 * snapshot markers, with group commit and crash recovery.
 *
 * FILES. A WAL directory holds segments named %020llu.seg by sequence number (1, 2, ...), each
 * preallocated to opts.segment_bytes (default 64 MiB). A segment starts with a 40-byte header and a
 * hard-state record, then 8-byte aligned records, each framed with its type, length, index, term and
 * a CRC32C; docs/STORAGE.md has the formats byte by byte.
 *
 * THE LOG IS APPEND-ONLY. A suffix truncation is a TRUNCATE record, a snapshot install a SNAPSHOT
 * record (the log restarts after it); bytes already written are never overwritten. So after a
 * crash only the last, unsynced bytes of the newest segment can be damaged, and a bad record
 * followed by a valid one is corruption, never a torn write.
 *
 * DURABILITY. wal_append / wal_set_hard_state / wal_truncate / wal_reset only buffer; wal_sync writes
 * the buffer and covers all of it with ONE fdatasync (group commit). Nothing is durable before
 * wal_sync returns WAL_OK. Segments are preallocated so fdatasync flushes data, not metadata.
 *
 * RECOVERY (wal_open). Every record's checksum is verified. A torn tail of the newest segment (the
 * last record incomplete or failing its checksum, nothing valid after it) is cut, with a log line
 * through opts.log. Anything else -- a bad record followed by valid ones, a missing segment, a bad
 * segment header, an index that does not follow -- is WAL_ECORRUPT with a message naming the file
 * and offset: the WAL refuses to open.
 *
 * FAILURE. An I/O error while writing or syncing (EIO, ENOSPC, ...) makes the wal permanently
 * failed: that call and every later mutating call return WAL_EFATAL, the message says why. A failed
 * fsync is never retried.
 *
 * THREADS. A wal is not thread-safe: one thread at a time (bench/wal's writer thread shows group
 * commit across threads built on top of it).
 */
#ifndef RAFTKV_WAL_H
#define RAFTKV_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "vfs.h"

enum {
    WAL_OK = 0,
    WAL_EIO = -1,      /* an I/O error while reading (open, wal_read) */
    WAL_ECORRUPT = -2, /* the files are damaged beyond a torn tail; nothing was changed */
    WAL_ENOMEM = -3,
    WAL_EINVAL = -4,   /* bad argument (non-contiguous append, truncate below the base, ...) */
    WAL_EFATAL = -5,   /* a write or sync failed: the wal is failed for good */
};
const char *wal_strerror(int rc);

#define WAL_ERRMSG_SIZE 512
#define WAL_DEFAULT_SEGMENT_BYTES (64ull << 20)

typedef void (*wal_log_fn)(void *ctx, const char *line);

typedef struct wal_opts {
    uint64_t segment_bytes; /* roll to a new segment past this size (a bigger record gets one alone) */
    uint64_t cache_bytes;   /* payload bytes of recent appends kept in memory for wal_read */
    uint64_t seed;          /* seeds the per-segment checksum salt (deterministic tests) */
    bool read_only;         /* wal_open only: verify, repair nothing (raftkv-wal check) */
    wal_log_fn log;         /* recovery notes (torn tail cut, unfinished segment removed); may be NULL */
    void *log_ctx;
} wal_opts;

/* 64 MiB segments, 64 MiB cache, seed 0, read-write, no log. */
void wal_opts_default(wal_opts *opts);

typedef enum wal_record_type {
    WAL_REC_ENTRY = 1,      /* index, term, entry_type, payload = entry data */
    WAL_REC_HARD_STATE = 2, /* payload = term, vote, commit (3 x u64) */
    WAL_REC_TRUNCATE = 3,   /* index = first index dropped */
    WAL_REC_SNAPSHOT = 4,   /* index, term of an installed snapshot: the log restarts after it */
} wal_record_type;

/* One record as seen by wal_check's callback; pointers valid during the callback only. */
typedef struct wal_record {
    const char *segment; /* file name */
    uint64_t offset;     /* of the record in that file */
    uint8_t type;        /* wal_record_type */
    uint8_t entry_type;
    raft_index index;
    raft_term term;
    uint32_t len;
    const uint8_t *data;
    raft_hard_state hard_state; /* WAL_REC_HARD_STATE */
} wal_record;

/* What wal_open read back. entries is the live log after replay: contiguous, ascending; their data
 * points into the segments as read (read-only mappings when the vfs can map). */
typedef struct wal_loaded {
    raft_hard_state hard_state;
    raft_index base_index; /* last SNAPSHOT record (0 if none): entries start after it */
    raft_term base_term;
    raft_entry *entries;
    size_t n_entries;
    void *bufs_; /* own the entries' data (heap copies or mappings of the segments) */
    size_t n_bufs_;
    vfs *vfs_;
} wal_loaded;
/* Frees what wal_open put in loaded (idempotent; safe on a zeroed struct). */
void wal_loaded_free(wal_loaded *loaded);

typedef struct wal wal;

/*
 * Opens (creating the first segment if there is none) the WAL in dir, which must exist, and
 * recovers it. On WAL_OK *out owns a new wal (wal_close) and *loaded owns the recovered state
 * (wal_loaded_free; independent of the wal's lifetime). On failure nothing is allocated and errmsg
 * (WAL_ERRMSG_SIZE bytes, may be NULL) says what and where. v must outlive the wal.
 */
int wal_open(const char *dir, vfs *v, const wal_opts *opts, wal **out, wal_loaded *loaded,
             char *errmsg);

/* Verifies dir read-only as wal_open would, calling cb (may be NULL) for every valid record in
 * order. WAL_OK: sound (a torn tail is reported through opts->log, not an error). */
int wal_check(const char *dir, vfs *v, const wal_opts *opts,
              void (*cb)(void *ctx, const wal_record *rec), void *ctx, char *errmsg);

/* Closes files and frees memory; buffered, unsynced records are dropped (they were never durable). */
void wal_close(wal *w);

/* Buffers entries; entries[0].index must be wal_last_index()+1 (or anything after a fresh
 * wal_reset / on an empty log), indexes contiguous. Data is copied. */
int wal_append(wal *w, const raft_entry *entries, size_t n);
int wal_set_hard_state(wal *w, const raft_hard_state *hs);
/* Drops entries >= from (base_index < from <= last+1). */
int wal_truncate(wal *w, raft_index from);
/* Drops the whole log: a snapshot at (index, term) was installed; the next entry is index+1. */
int wal_reset(wal *w, raft_index index, raft_term term);
/* Writes everything buffered and makes it durable with one fdatasync. */
int wal_sync(wal *w);
/* Removes the oldest segments whose every entry is <= index (never the newest one). */
int wal_compact(wal *w, raft_index index);

/* First and last live index (first > last when empty); base = the snapshot marker or compaction. */
raft_index wal_first_index(const wal *w);
raft_index wal_last_index(const wal *w);
/* Term of a live entry; 0 if not in the log. */
raft_term wal_term(const wal *w, raft_index index);
/*
 * Reads live entries [lo, hi): *entries and their data are in one allocation *entries that the
 * caller frees with free(). Recent appends come from memory, older ones from the segments (every
 * checksum verified). WAL_EINVAL if the range is not in the log.
 */
int wal_read(wal *w, raft_index lo, raft_index hi, raft_entry **entries, size_t *n);

const char *wal_errmsg(const wal *w);
bool wal_failed(const wal *w);

typedef struct wal_stats {
    uint64_t syncs;
    uint64_t bytes_written;
    uint64_t segments_created;
    uint64_t segments_removed;
    uint64_t n_segments;
} wal_stats;
wal_stats wal_get_stats(const wal *w);

#endif /* RAFTKV_WAL_H */
