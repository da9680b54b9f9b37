/*
 * node_int.h -- what node.c (lifecycle, the Ready loop, writes and reads) and node_snap.c
 * (snapshots: taking, receiving, restoring) share. Not a public header.
 *
 * INVARIANTS (loop thread):
 *   - at most one Ready is outstanding (ready_busy); its disk job is the only one touching rd;
 *   - every storage call happens in a disk job, or on the loop thread while no disk job is pending
 *     (a follower's Ready, node.c save_inline), so the storage sees one thread at a time, in
 *     submission order;
 *   - writes are kept in proposal (index) order; a write is answered once, when the entry with
 *     its index is applied (NODE_OK if the term matches, NODE_ELOST otherwise), on leadership
 *     loss, timeout or stop.
 */
#ifndef RAFTKV_NODE_INT_H
#define RAFTKV_NODE_INT_H

#include <uv.h>

#include "config.h"
#include "disk.h"
#include "disk_fault.h"
#include "kv_store.h"
#include "node.h"
#include "raft.h"
#include "dlog.h"
#include "storage.h"
#include "transport.h"

/* A fast write taken here, answered once the Ready holding it is durable. */
typedef struct fast_pending {
    struct fast_pending *next;
    raft_fast_ack ack;
    bool in_ready; /* in the Ready being written */
    bool cancelled;
    node_fast_cb cb;
    void *ctx;
} fast_pending;

typedef struct pending {
    struct pending *prev, *next;
    raft_index index;  /* write: proposal index; read: read index once known */
    raft_term term;    /* write: proposal term; read: term it was last asked of us as leader */
    uint64_t read_id;  /* read: request id given to raft_read_index */
    bool index_known;  /* read */
    bool cancelled;    /* in the firing list: do not call */
    uint64_t deadline; /* uv_now ms */
    uint64_t retry_at; /* read: ask again for its index then (the request or answer was lost) */
    node_write_cb write_cb;
    node_read_cb read_cb;
    void *ctx;
    int status;        /* firing list: what to report */
} pending;

/* Test-only injected bugs (config test_bug); 0 in every real deployment. */
enum { NODE_BUG_LOCAL_READS = 1, NODE_BUG_ACK_BEFORE_COMMIT = 2, NODE_BUG_ACK_BEFORE_FSYNC = 3 };

typedef struct pending_list {
    pending *head, *tail;
    size_t n;
} pending_list;

/* An address book read from a snapshot (members.h). */
typedef struct node_book {
    node_peer peers[RAFT_MAX_NODES];
    uint32_t n; /* 0: the snapshot had none */
} node_book;

typedef struct ready_job {
    disk_job base;
    node *n;
    int rc;
    kv_restore *restore; /* snapshot in rd: its state machine, read on the disk thread */
    node_book book;      /* ... and its address book */
    char err[256];
} ready_job;

/* A snapshot of our own state machine being written (kv iterator on the loop thread, file writes
 * in disk jobs), or one received from the leader (chunks written in disk jobs). */
typedef struct snap_local {
    bool active;
    uint64_t gen; /* which snapshot a finished job belongs to (an aborted one's are ignored) */
    kv_snapshot *it;
    raft_snapshot_meta meta;
    uint64_t bytes;
    snap_writer *writer; /* disk thread only */
    bool failed;         /* disk thread: a job failed; the rest are skipped */
} snap_local;

typedef struct snap_recv {
    bool active;       /* accepting chunks */
    unsigned jobs;     /* its disk jobs not done yet */
    uint64_t gen;
    raft_id from;
    raft_snapshot_meta meta;
    uint64_t next_offset;
    uint64_t total;
    uint64_t queued_bytes; /* submitted to the disk, not yet written */
    bool paused;
    uint64_t last_chunk_ms; /* uv_now of the last chunk: a transfer idle too long is dropped */
    snap_writer *writer;   /* disk thread only */
    bool failed;           /* disk thread */
} snap_recv;

struct node {
    uv_loop_t *loop;
    config cfg;
    int test_bug;     /* NODE_BUG_*, 0 = none */
    bool rd_sent;     /* test_bug ack-before-fsync: rd's messages already went out */
    uint64_t early_acks; /* test_bug ack-before-commit: writes proposed since the last answer */
    vfs disk_vfs; /* vfs_posix, or with fsync disabled / faults injected (test flags) */
    disk_fault disk_fault; /* TEST ONLY: --test-disk-fault; disk_vfs points at it when set */
    kv_config kv_cfg;
    raft *r;
    storage *st;
    kv_store *kv;
    disk *dk;
    transport *tp;
    uv_timer_t tick_timer;
    uv_timer_t sweep_timer;
    uv_prepare_t prepare;
    uv_idle_t poll_idle; /* poll_us: active while the leader keeps polling */
    uint64_t last_work_ns; /* uv_hrtime of the last iteration with work (poll_us) */
    void (*reply_flush)(void *ctx); /* node_set_reply_flush */
    void *reply_flush_ctx;
    int open_handles;

    bool ready_busy;
    raft_ready rd;
    ready_job job;
    raft_role last_role;
    raft_term last_term;
    raft_id last_leader;
    raft_conf last_conf; /* the voters last logged (empty at start: the first observe logs them) */

    pending_list writes, reads, firing;
    fast_pending *fast_head, *fast_tail; /* in the order taken */
    dlog *dl;                            /* the fast path's d-log (NULL when fast_path is off) */
    uint64_t dlog_live_bytes;            /* what the last rewrite kept */
    uint64_t fast_ok;
    uint64_t next_read_id;
    uint64_t last_proposal_ms; /* uv_now of the last proposal (idle TICKs, see node.c) */
    uint8_t *enc_buf;
    size_t enc_cap;

    uint64_t applied_since_snapshot;
    snap_local snap;
    snap_recv recv;

    uint64_t writes_ok, reads_ok, fsyncs;
    uint64_t loop_polls; /* iterations that polled instead of sleeping (poll_us) */
    bool stopping, stopped;
    void (*stop_cb)(void *ctx);
    void *stop_ctx;
};

/* node.c */
void node_fatal(node *n, const char *what, const char *why) __attribute__((noreturn));
/* Completes a graceful stop once no disk work is left (every disk job's done() calls it). */
void node_try_finish_stop(node *n);

/* Adds the voters (of voters) in book, which comes from log index at, that this node does not
 * know to its peers and dials them, logging one line each that names source ("the snapshot at
 * index 7", ...); moves a known one whose address came from an older book or from the peers file
 * (index 0); forgets nodes that are no longer voters, learned longest ago, when there is no room
 * (RAFT_MAX_NODES). Non-voters in book are ignored. */
void node_learn(node *n, const node_peer *book, uint32_t count, const raft_conf *voters,
                raft_index at, const char *source);
/* node_learn for every configuration entry among entries, in order. */
void node_learn_entries(node *n, const raft_entry *entries, size_t count);

/* node_snap.c */
/* Loads the newest snapshot's state machine into kv at start. 0, or -1 after logging. */
int node_snap_load(node *n, const raft_snapshot_meta *meta);
/* Starts a local snapshot if the threshold is reached and none is running. */
void node_snap_maybe_take(node *n);
/* A chunk of a snapshot from the leader (transport callback). */
void node_snap_on_chunk(void *ctx, const raft_msg *msg, uint64_t offset, uint64_t total,
                        const uint8_t *data, size_t len);
/* Disk thread: reads the snapshot at index into a kv_restore and its address book into book (NULL
 * + err on failure). */
kv_restore *node_snap_read(node *n, raft_index index, node_book *book, char *err, size_t errlen);
/* Stops the local snapshot (a received one replaces our state, or the node stops). */
void node_snap_abort_local(node *n);
/* Abandons every snapshot in progress (graceful stop). */
void node_snap_stop(node *n);

#endif /* RAFTKV_NODE_INT_H */
