/*
 * storage.h -- the durable state of one raftkv node: the facade over wal.h and snap.h that the
 * server and the simulator drive from their Ready loop (see raft.h, THE LOOP).
 *
 *     storage_open(dir, vfs, &opts, &st, &loaded);     -> hard state, snapshot meta, entries
 *     storage_loaded_restore(&loaded, &restore);  raft_new(&cfg, &restore, &r);  storage_loaded_free
 *     loop:  raft_ready_get(r, &rd);
 *            if (rd.snapshot.index) { write the received snapshot with storage_snapshot_begin /
 *                                     snap_writer_write / storage_snapshot_finish }
 *            storage_save(st, &rd);                    -> everything in rd durable, ONE fdatasync
 *            send rd.msgs, apply rd.committed ...;  raft_advance(r, &rd);
 *     after a local snapshot at index A: storage_compact(st, A - trailing)
 *
 * WHAT storage_save PERSISTS, in the order raft.h prescribes, as WAL records covered by one
 * fdatasync: rd.snapshot (index != 0: the log restarts after it, its file must already be installed),
 * rd.truncate_from (entries >= it dropped), rd.entries, rd.hard_state (if changed). Nothing of it is
 * durable before storage_save returns STORAGE_OK; after that all of it is.
 *
 * RECOVERY (storage_open). The newest snapshot is verified completely, then the WAL replayed with
 * every checksum verified (a torn tail of the newest segment is cut and logged through opts.log).
 * Entries at or below the snapshot are dropped; the ones after it are returned only if they belong
 * on top of it (the entry at the snapshot index has the snapshot's term, or the log restarts right
 * after it); otherwise the WAL is reset to the snapshot. Corruption (bad record followed by valid
 * ones, missing segment, damaged snapshot, a WAL that refers to a missing snapshot) is
 * STORAGE_ECORRUPT with a message naming the file and offset: the node must not start.
 *
 * FAILURE. A failed write or fsync, or ENOSPC, makes the storage permanently failed: that call and
 * every later one return STORAGE_EFATAL; storage_errmsg() says why. Stop the node; never retry.
 *
 * OWNERSHIP. storage_open's *st is freed by storage_close; *loaded by storage_loaded_free (it does
 * not depend on st, but its entries may point into read-only mappings of the segment files: free
 * it once raft_new has copied them). The vfs must outlive st and loaded.
 *
 * THREADS. One thread at a time per storage object (the loop thread). A snapshot may be produced
 * on another thread with snap_writer_begin(storage_dir(st), vfs, ...) / snap_writer_write over
 * vfs_posix; hand the writer back to the loop thread for storage_snapshot_finish (which makes a
 * failed install fatal for st), or call snap_writer_finish there and stop the node on SNAP_EFATAL.
 *
 * SIMULATION. Deterministic over vfs_fault: no clock, no randomness but opts.seed. Give each
 * simulated node its own vfs_fault (a power loss is per vfs) and small segments (segment_bytes
 * 64 KiB..1 MiB: recovery reads whole segments). A node crash is: storage_close(st);
 * vfs_fault_crash(v, flags); storage_open(...) -> raft_new with storage_loaded_restore().
 * vfs_fault_fail_nth(v, VFS_OP_FDATASYNC, n, EIO) makes the node's storage fail (STORAGE_EFATAL).
 */
#ifndef RAFTKV_STORAGE_H
#define RAFTKV_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "snap.h"
#include "vfs.h"
#include "wal.h"

enum {
    STORAGE_OK = 0,
    STORAGE_EIO = -1,      /* I/O error while reading; nothing changed */
    STORAGE_ECORRUPT = -2, /* damaged files: refuse to start (message names file and offset) */
    STORAGE_ENOMEM = -3,
    STORAGE_EINVAL = -4,   /* bad argument (the storage stays usable) */
    STORAGE_EFATAL = -5,   /* a write/fsync failed or the disk is full: failed for good */
};
const char *storage_strerror(int rc);

#define STORAGE_ERRMSG_SIZE 512

typedef struct storage_opts {
    uint64_t segment_bytes; /* WAL segment size (default 64 MiB) */
    uint64_t cache_bytes;   /* recent entries kept in memory for storage_entries (default 64 MiB) */
    uint64_t seed;          /* WAL checksum salts */
    wal_log_fn log;         /* recovery notes, one line each; may be NULL */
    void *log_ctx;
} storage_opts;
void storage_opts_default(storage_opts *opts);

typedef struct storage_loaded {
    raft_hard_state hard_state;   /* commit clamped into [snapshot.index, last entry] */
    raft_snapshot_meta snapshot;  /* index 0: none */
    uint64_t snapshot_bytes;      /* its data length (read it with snap_reader_open) */
    const raft_entry *entries;    /* contiguous from snapshot.index + 1 */
    size_t n_entries;
    char errmsg[STORAGE_ERRMSG_SIZE]; /* why storage_open failed */
    wal_loaded wal_;              /* owns the entries */
} storage_loaded;
void storage_loaded_free(storage_loaded *loaded);
/* Fills a raft_restore pointing into loaded (valid while loaded is). applied = snapshot index. */
void storage_loaded_restore(const storage_loaded *loaded, raft_restore *restore);

typedef struct storage storage;

/* Opens (creating dir and an empty log if needed) and recovers. On STORAGE_OK *st and *loaded are
 * the caller's; on failure nothing is allocated and loaded->errmsg says why. */
int storage_open(const char *dir, vfs *v, const storage_opts *opts, storage **st,
                 storage_loaded *loaded);
/* Persists what rd asks (see above) with one fdatasync. */
int storage_save(storage *st, const raft_ready *rd);
/* Removes WAL segments whose entries are all <= index. STORAGE_EINVAL (nothing removed) when no
 * installed snapshot covers index: compact to (snapshot index - entries kept for followers). */
int storage_compact(storage *st, raft_index index);
/* Reads entries [lo, hi) (one allocation, free() it). STORAGE_EINVAL outside the stored log. */
int storage_entries(storage *st, raft_index lo, raft_index hi, raft_entry **entries, size_t *n);
raft_index storage_first_index(const storage *st);
raft_index storage_last_index(const storage *st);

/* Snapshot writing through the storage, so a failed install fails the storage like a failed
 * fsync of the log. snap_writer_write in between. */
int storage_snapshot_begin(storage *st, const raft_snapshot_meta *meta, snap_writer **w);
int storage_snapshot_finish(storage *st, snap_writer *w);

const char *storage_errmsg(const storage *st);
const char *storage_dir(const storage *st);
bool storage_failed(const storage *st);
wal_stats storage_wal_stats(const storage *st);
void storage_close(storage *st);

#endif /* RAFTKV_STORAGE_H */
