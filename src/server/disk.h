/*
 * disk.h -- the daemon's disk thread: one dedicated thread that runs jobs IN ORDER, so the loop
 * thread never waits on a write or an fsync (ticks, heartbeats and elections keep running).
 *
 * A job is two functions: work() runs on the disk thread, then done() runs on the loop thread
 * (woken through an eventfd). Jobs run and complete in submission order: a storage_save, a snapshot
 * chunk and a compaction submitted one after another reach the disk in that order, which is what
 * makes a single storage object safe to use without locks (storage.h: one thread at a time).
 *
 * OWNERSHIP. The caller allocates the job (usually embedded in a bigger struct) and owns it again
 * when done() runs. disk_close() waits for every submitted job to finish and runs their done().
 * THREADS. disk_submit / disk_pending / disk_close: loop thread only.
 */
#ifndef RAFTKV_DISK_H
#define RAFTKV_DISK_H

#include <stddef.h>
#include <uv.h>

typedef struct disk_job disk_job;
struct disk_job {
    void (*work)(disk_job *job); /* disk thread */
    void (*done)(disk_job *job); /* loop thread */
    disk_job *next_;
};

typedef struct disk disk;

/* Starts the thread. Returns NULL (after logging why) if it cannot. */
disk *disk_start(uv_loop_t *loop);
void disk_submit(disk *d, disk_job *job);
/* Jobs submitted whose done() has not run yet. */
size_t disk_pending(const disk *d);
/* Runs every submitted job to completion (done() included), stops the thread, frees d. Its
 * uv_poll is closed on the loop: run the loop once more before closing it. */
void disk_close(disk *d);

#endif /* RAFTKV_DISK_H */
