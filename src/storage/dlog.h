/*
 * dlog.h -- the durability log of the nil-externality fast path (raft.h FAST PATH,
 * docs/NILEXT.md): the fast writes a node took and acknowledged, kept until the core says they
 * are no longer needed. A file of its own ("dlog" in the storage directory), beside the WAL:
 * d-log entries carry no log index, so the WAL's compaction by index could not keep them.
 *
 * FORMAT (little-endian). Header: u32 magic "RKVD", u32 version (1). Then records:
 *   u32 CRC-32C of the rest of the record, u32 payload length, u8 kind, payload:
 *     kind 1 ENTRY  u64 term the write was taken in, then its bytes (header + command)
 *     kind 2 DROP   u64 term: every entry before it taken in a lower term is gone
 * Replaying the records in order gives the d-log. A rewrite (dlog_rewrite) writes the live entries
 * to "dlog.tmp", syncs it, renames it over "dlog" and syncs the directory: a crash leaves the old
 * file or the new one.
 *
 * RECOVERY (dlog_open). A damaged record with nothing valid after it -- the tail is zeros, or no
 * later offset holds a well-formed record (length, checksum, kind) -- is a torn write: the file is
 * truncated before it (and synced; dlog_cut says where). A damaged record followed by a valid one
 * is corruption: DLOG_ECORRUPT, naming the file and both offsets -- never skipped, never cut.
 * A missing file is an empty d-log.
 *
 * FAILURE. A failed write or sync makes the dlog failed for good (DLOG_EFATAL): the node stops.
 * OWNERSHIP. dlog_open returns the entries in one block (array, then data) the caller frees.
 * THREADS. One thread at a time (the node's disk thread, or its loop thread between jobs).
 */
#ifndef RAFTKV_DLOG_H
#define RAFTKV_DLOG_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "vfs.h"

enum {
    DLOG_OK = 0,
    DLOG_EIO = -1,
    DLOG_ECORRUPT = -2,
    DLOG_ENOMEM = -3,
    DLOG_EFATAL = -4, /* a write or sync failed: stop the node, never retry */
};

#define DLOG_ERRMSG_SIZE 512

typedef struct dlog dlog;

/* Opens (creating if missing) dir/dlog and reads it back: *entries (a block the caller frees,
 * NULL when empty) and *n. errmsg (DLOG_ERRMSG_SIZE, may be NULL) says why on failure. */
int dlog_open(const char *dir, vfs *v, dlog **out, raft_entry **entries, size_t *n,
              char *errmsg);
/* Appends entries (type RAFT_ENTRY_FAST) and, if drop_below != 0, a DROP record, then one
 * fdatasync. Nothing to do when n == 0 and drop_below == 0. */
int dlog_append(dlog *d, const raft_entry *entries, size_t n, raft_term drop_below);
/* Bytes in the file: the caller rewrites it once it is much larger than what is live. */
uint64_t dlog_size(const dlog *d);
/* The torn tail dlog_open cut: its length (0: none) and offset (*at), for the caller's log. */
uint64_t dlog_cut(const dlog *d, uint64_t *at);
/* Replaces the file with exactly these entries (atomically, see above). */
int dlog_rewrite(dlog *d, const raft_entry *entries, size_t n);
const char *dlog_errmsg(const dlog *d);
void dlog_close(dlog *d);

#endif /* RAFTKV_DLOG_H */
