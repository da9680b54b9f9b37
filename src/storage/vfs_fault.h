/*
 * vfs_fault.h -- an in-memory vfs (see vfs.h) that simulates power loss and disk faults, for tests
 * and the simulator. Deterministic: every random choice comes from the seed given to vfs_fault_new.
 *
 * THE DURABILITY MODEL
 *   - Each file keeps its DURABLE content (as of its last fsync/fdatasync) and its CURRENT content
 *     (what reads see). Writes, truncations and preallocations since the last sync of that file are
 *     kept, in global order, in a list of pending operations.
 *   - Names (create, rename, unlink) are CURRENT at once and DURABLE once their directory is synced
 *     with sync_dir. mkdir is durable at once (the tests' directories exist before they start).
 *   - vfs_fault_crash() is a power loss: every file goes back to its durable content. With
 *     VFS_FAULT_TORN, a random prefix of the pending operations is kept, in order, the last one
 *     torn (a random prefix of its bytes): a disk that wrote part of the queue. Names either all go
 *     back to their durable state or, with VFS_FAULT_KEEP_NAMES, all unsynced name changes are kept
 *     (a file system that journaled them); both are consistent outcomes of a real crash.
 *   - Handles opened before a crash are dead: every operation on them but close returns -EIO.
 *
 * CRASH POINTS. Every mutating operation (pwrite, fsync, fdatasync, sync_dir, preallocate, truncate,
 * rename, unlink, creating open) is one numbered crash point. vfs_fault_crash_at(v, n) makes the
 * n-th one (counting from 1 since vfs_fault_new) the moment power fails: that operation does not
 * complete (a pwrite becomes a pending write, so a TORN crash may keep part of it) and it and every
 * later operation return -EIO until the test calls vfs_fault_crash().
 *
 * THREADS. Not thread-safe. OWNERSHIP. vfs_fault_new returns a table freed by vfs_fault_free; the
 * caller closes every file first.
 */
#ifndef RAFTKV_VFS_FAULT_H
#define RAFTKV_VFS_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "vfs.h"

/* Operation kinds, for counting and for failure injection. */
typedef enum vfs_fault_op {
    VFS_OP_ANY = 0,
    VFS_OP_OPEN,
    VFS_OP_PREAD,
    VFS_OP_PWRITE,
    VFS_OP_FDATASYNC,
    VFS_OP_FSYNC,
    VFS_OP_PREALLOCATE,
    VFS_OP_TRUNCATE,
    VFS_OP_SIZE,
    VFS_OP_RENAME,
    VFS_OP_UNLINK,
    VFS_OP_LIST,
    VFS_OP_MKDIR,
    VFS_OP_SYNC_DIR,
    VFS_OP_COUNT_
} vfs_fault_op;

/* vfs_fault_crash() flags */
enum {
    VFS_FAULT_TORN = 1u << 0,       /* keep a random prefix of the pending writes, last one torn */
    VFS_FAULT_KEEP_NAMES = 1u << 1, /* unsynced creates/renames/unlinks survive the crash */
};

/* Returns a new empty in-memory file system, or NULL when out of memory. */
vfs *vfs_fault_new(uint64_t seed);
void vfs_fault_free(vfs *v);

/* Power loss now (see the model above). Also clears crash_at and the "down" state. */
void vfs_fault_crash(vfs *v, unsigned flags);

/* Arms the crash point n (1-based, counted over the whole life of v); 0 disarms. */
void vfs_fault_crash_at(vfs *v, uint64_t n);
/* Crash points passed so far (the number of mutating operations). */
uint64_t vfs_fault_crash_points(const vfs *v);
/* True once the armed crash point was reached (every operation fails until vfs_fault_crash). */
bool vfs_fault_is_down(const vfs *v);

/* The nth next operation of that kind (VFS_OP_ANY: of any kind), n >= 1, fails with -err and has
 * no effect. One shot; a new call replaces the previous one. */
void vfs_fault_fail_nth(vfs *v, vfs_fault_op op, uint64_t n, int err);
/* Every operation of that kind fails with -err from now on; err == 0 stops it. */
void vfs_fault_fail_all(vfs *v, vfs_fault_op op, int err);
/* When on, every pwrite of more than one byte writes a random 1..len-1 bytes. */
void vfs_fault_short_writes(vfs *v, bool on);
/* Flips one bit of a stored file, in both its durable and current content. -ENOENT: no such
 * file; -EINVAL: offset beyond its size. */
int vfs_fault_flip_bit(vfs *v, const char *path, uint64_t offset, unsigned bit);
/* Operations of that kind performed so far (successful or not). */
uint64_t vfs_fault_count(const vfs *v, vfs_fault_op op);

#endif /* RAFTKV_VFS_FAULT_H */
