/*
 * vfs.h -- the file-I/O seam of src/storage (in the spirit of SQLite's VFS and canonical raft's
 * raft_io). Every byte the WAL and the snapshot code read or write goes through a `vfs` table, so
 * the same code runs on the real file system (vfs_posix.c) and on an in-memory one that injects
 * crashes, I/O errors, short writes and bit flips (vfs_fault.c, see vfs_fault.h).
 *
 * CONVENTIONS
 *   - Every function returns 0 on success or a negative errno (-EIO, -ENOSPC, -ENOENT, ...).
 *   - Paths are full paths ("dir/name"); directories are one level deep in our use.
 *   - pwrite may write fewer bytes than asked (*written < len): callers loop. pread returns fewer
 *     bytes only at end of file.
 *   - fdatasync makes the file's data (and the size, if it changed) durable; fsync also the rest of
 *     the inode's metadata. Neither makes the file's NAME durable: that takes sync_dir on its
 *     directory (after create, rename, unlink).
 *   - preallocate(off, len) reserves space and extends the size to at least off+len; the new bytes
 *     read as zeros.
 *   - A failed fsync/fdatasync leaves the durability of earlier writes UNKNOWN; callers must treat
 *     it as fatal and never retry (PostgreSQL's "fsyncgate").
 *
 * OWNERSHIP. open() allocates a vfs_file that close() frees (close frees it even when it returns an
 * error). list() returns an array of malloc'd names that the caller frees with vfs_list_free().
 *
 * THREADS. A vfs_posix table is stateless and may be used from any thread; a vfs_fault table is
 * not thread-safe (it is for single-threaded tests and the simulator).
 *
 * VERSIONING. `version` is VFS_VERSION for tables built against this header; fields may be added at
 * the end in later versions, so callers check version before using them (map/unmap: version >= 2).
 */
#ifndef RAFTKV_VFS_H
#define RAFTKV_VFS_H

#include <stddef.h>
#include <stdint.h>

#define VFS_VERSION 2

/* open() flags */
enum {
    VFS_O_READ = 0,        /* read-only */
    VFS_O_RDWR = 1u << 0,  /* read and write */
    VFS_O_CREATE = 1u << 1, /* create if missing */
    VFS_O_EXCL = 1u << 2,  /* with CREATE: fail with -EEXIST if it exists */
    VFS_O_TRUNC = 1u << 3, /* truncate to 0 on open */
};

typedef struct vfs_file vfs_file; /* opaque, defined by each implementation */

typedef struct vfs vfs;
struct vfs {
    int version; /* VFS_VERSION */
    const char *name; /* "posix", "fault" */
    void *ctx;   /* implementation state */

    int (*open)(vfs *v, const char *path, unsigned flags, vfs_file **out);
    int (*close)(vfs *v, vfs_file *f);
    int (*pread)(vfs *v, vfs_file *f, void *buf, size_t len, uint64_t offset, size_t *nread);
    int (*pwrite)(vfs *v, vfs_file *f, const void *buf, size_t len, uint64_t offset,
                  size_t *written);
    int (*fdatasync)(vfs *v, vfs_file *f);
    int (*fsync)(vfs *v, vfs_file *f);
    int (*preallocate)(vfs *v, vfs_file *f, uint64_t offset, uint64_t len);
    int (*truncate)(vfs *v, vfs_file *f, uint64_t size);
    int (*size)(vfs *v, vfs_file *f, uint64_t *size);
    int (*rename)(vfs *v, const char *from, const char *to);
    int (*unlink)(vfs *v, const char *path);
    int (*list)(vfs *v, const char *dir, char ***names, size_t *n_names); /* no "." / ".." */
    int (*mkdir)(vfs *v, const char *path); /* -EEXIST if it exists */
    int (*sync_dir)(vfs *v, const char *path);

    /* Version 2. May be NULL (callers then pread). map: a read-only view of bytes [0, len) of f,
     * valid until unmap(addr, len) even after f is closed; it must not be written through, and
     * the file must not shrink while it is mapped. Recovery uses it to read segments without
     * copying them. */
    int (*map)(vfs *v, vfs_file *f, uint64_t len, const void **addr);
    void (*unmap)(vfs *v, const void *addr, uint64_t len);
};

/* The real file system. Returns a static table (never NULL). */
vfs *vfs_posix(void);

/* Frees what list() returned. */
void vfs_list_free(char **names, size_t n_names);

/* Helpers that loop over short transfers: write all len bytes / read exactly len bytes (-ENODATA
 * when the file ends first). */
int vfs_write_all(vfs *v, vfs_file *f, const void *buf, size_t len, uint64_t offset);
int vfs_read_all(vfs *v, vfs_file *f, void *buf, size_t len, uint64_t offset);

#endif /* RAFTKV_VFS_H */
