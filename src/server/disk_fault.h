/*
 * disk_fault.h -- TEST ONLY: a thin vfs wrapper that makes the real (posix) disk fail on purpose,
 * for raftkvd's --test-disk-fault=KIND:N and the torture harness's `disk` nemesis.
 *
 *   fsync-eio:N  the Nth fdatasync/fsync/sync_dir call after the wrap (from 1) and every later one
 *                returns -EIO without syncing;
 *   enospc:N     once N bytes were written through this vfs, pwrite and preallocate return -ENOSPC.
 *   torn-crash:N the Nth pwrite (from 1) writes only the first half of its bytes, then the process
 *                kills itself with SIGKILL: a crash in the middle of a write, leaving a torn tail
 *                for recovery to find (the written half is in the page cache and survives).
 *   fsync-stall:N:MS  the Nth fdatasync/fsync/sync_dir call sleeps MS ms, then syncs: a disk that
 *                hiccups. Nothing fails; the node must stay a responsive member meanwhile.
 *
 * The storage treats the first three as fatal (a failed write or fsync is never retried), so the node logs
 * one FATAL line and exits 1 without acknowledging what was not durable. raftkvd wraps its vfs
 * once the storage is open, so the counts start after recovery.
 *
 * OWNERSHIP. disk_fault_wrap copies the wrapped table into *df and points v at it: df must outlive
 * every use of v. THREADS. The counters are atomic: the wrapped vfs may be used from any thread.
 */
#ifndef RAFTKV_DISK_FAULT_H
#define RAFTKV_DISK_FAULT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vfs.h"

typedef enum {
    DISK_FAULT_NONE = 0,
    DISK_FAULT_FSYNC_EIO,
    DISK_FAULT_ENOSPC,
    DISK_FAULT_TORN_CRASH,
    DISK_FAULT_FSYNC_STALL
} disk_fault_kind;

typedef struct disk_fault {
    disk_fault_kind kind;
    uint64_t n;           /* fsync-eio: which sync fails; enospc: byte budget; torn-crash: which
                             pwrite is cut; fsync-stall: which sync sleeps */
    uint64_t stall_ms;    /* fsync-stall */
    vfs inner;            /* the wrapped table */
    atomic_uint_fast64_t syncs;   /* sync calls so far */
    atomic_uint_fast64_t written; /* bytes written so far */
    atomic_uint_fast64_t writes;  /* pwrite calls so far */
} disk_fault;

/* Parses "fsync-eio:N", "enospc:N", "torn-crash:N" (N >= 1 for fsync-eio and torn-crash, >= 0
 * for enospc) or "fsync-stall:N:MS" (N >= 1, MS 1..60000); "" gives
 * DISK_FAULT_NONE. Returns 0, or -1 with a message in err naming the spec. */
int disk_fault_parse(const char *spec, disk_fault *out, char *err, size_t errlen);

/* Wraps *v (in place) so its calls go through df's fault; a no-op for DISK_FAULT_NONE. */
void disk_fault_wrap(disk_fault *df, vfs *v);

#endif /* RAFTKV_DISK_FAULT_H */
