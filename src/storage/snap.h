/*
 * snap.h -- snapshot files: written in chunks to a temporary file and installed atomically, read in
 * chunks from any offset (so a transfer to a follower can resume), the newest valid one found at
 * start.
 *
 * FILES. snap-%020llu.snap (by index) in the storage directory; a writer works on
 * snap-%020llu.tmp. A 176-byte header (magic, version, index, term, raft_conf, data length, data
 * CRC32C, header CRC32C; docs/STORAGE.md) precedes the state machine's bytes, which are opaque here.
 *
 * INSTALL (snap_writer_finish): write the header, fsync the file, rename .tmp -> .snap, fsync the
 * directory; then older .snap files are removed. A crash at any point leaves either the old or the
 * new snapshot installed, never a partial one; leftover .tmp files are removed by snap_load_newest.
 *
 * ERRORS. SNAP_EFATAL: an fsync failed or the disk is full while installing; the caller (storage)
 * treats it as fatal for the node. Messages name the file and offset.
 *
 * THREADS. A writer or reader is used by one thread at a time; different writers/readers may run on
 * different threads over vfs_posix (a snapshot is written while the node keeps serving).
 */
#ifndef RAFTKV_SNAP_H
#define RAFTKV_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "vfs.h"

enum {
    SNAP_OK = 0,
    SNAP_EIO = -1,
    SNAP_ECORRUPT = -2, /* the newest snapshot fails its checks */
    SNAP_ENOMEM = -3,
    SNAP_EINVAL = -4,   /* bad argument (chunk at the wrong offset, read beyond the end, ...) */
    SNAP_ENOENT = -5,   /* no such snapshot */
    SNAP_EFATAL = -6,   /* fsync failed or ENOSPC while installing: stop the node */
};
const char *snap_strerror(int rc);

#define SNAP_ERRMSG_SIZE 512
#define SNAP_HEADER_SIZE 176

typedef struct snap_writer snap_writer;

/* Starts a snapshot covering meta in dir (creates the .tmp file, replacing a leftover one). On
 * success *out owns the writer until finish or abort. errmsg may be NULL. */
int snap_writer_begin(const char *dir, vfs *v, const raft_snapshot_meta *meta, snap_writer **out,
                      char *errmsg);
/* Appends a chunk; offset must equal snap_writer_offset() (a resumed transfer asks for it first). */
int snap_writer_write(snap_writer *w, uint64_t offset, const void *data, size_t len);
/* Bytes written so far. */
uint64_t snap_writer_offset(const snap_writer *w);
/* The index of the snapshot being written. */
raft_index snap_writer_meta_index(const snap_writer *w);
/* Installs the snapshot (see INSTALL) and frees the writer, whatever the result. */
int snap_writer_finish(snap_writer *w, char *errmsg);
/* Drops the temporary file and frees the writer. */
void snap_writer_abort(snap_writer *w);

typedef struct snap_reader snap_reader;

/* Opens the snapshot with that index (0: the newest) and checks its header. */
int snap_reader_open(const char *dir, vfs *v, raft_index index, snap_reader **out, char *errmsg);
const raft_snapshot_meta *snap_reader_meta(const snap_reader *r);
uint64_t snap_reader_size(const snap_reader *r); /* data bytes */
/* Reads up to len data bytes at offset; *n < len only at the end. */
int snap_reader_read(snap_reader *r, uint64_t offset, void *buf, size_t len, size_t *n);
void snap_reader_close(snap_reader *r);

/* Index of the newest installed snapshot in dir by its file name (0 if none); no verification.
 * Returns 0 or a negative errno from the vfs. */
int snap_newest_index(const char *dir, vfs *v, raft_index *index);

/*
 * Finds the newest snapshot in dir and verifies it completely (header and data checksum).
 * meta->index == 0 when there is none. With cleanup, removes leftover .tmp files and every older
 * snapshot. SNAP_ECORRUPT (with the file and offset in errmsg) when the newest one is damaged:
 * no silent fallback to an older one.
 */
int snap_load_newest(const char *dir, vfs *v, bool cleanup, raft_snapshot_meta *meta,
                     uint64_t *size, char *errmsg);

#endif /* RAFTKV_SNAP_H */
