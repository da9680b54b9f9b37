/*
 * node_snap.c -- snapshots of the node: taking our own without stopping service, receiving the
 * leader's, and loading one into the key-value store.
 *
 * TAKING. Every snapshot_threshold applied entries, kv_snapshot_begin() fixes a point-in-time view
 * at the applied index; the loop thread then serializes it one chunk at a time (kv_snapshot_next)
 * and each chunk is written by a disk job; the next chunk is produced when the previous one is
 * written, so the loop keeps serving between chunks and memory stays at one chunk. Once the file is
 * installed (storage_snapshot_finish: fsync + rename), the core compacts its log
 * (raft_compact(index, snapshot_trailing)) and the WAL drops the segments behind it.
 *
 * RECEIVING. Chunks from the leader arrive in order on one connection; the first (offset 0)
 * starts a writer, each chunk is written by a disk job (the transport is paused while more than
 * four chunks wait for the disk), the last one installs the file and only then is the
 * RAFT_MSG_SNAPSHOT stepped into the core; its Ready (rd.snapshot) resets the WAL and
 * ready_work() reads the file back into a kv_restore. A chunk beyond what we hold is ignored: a
 * broken transfer never installs. After a disconnect the leader starts over at offset 0; if we
 * still hold a part of that same snapshot we keep it and ask the leader to skip ahead
 * (transport_snap_resume), otherwise we restart cleanly.
 *
 * Disk jobs run in submission order, so a writer is begun, written, finished or aborted in the
 * order the loop decided; the writers themselves are touched only on the disk thread.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "members.h"
#include "node_int.h"
#include "snap.h"

enum job_kind {
    LOCAL_BEGIN, LOCAL_WRITE, LOCAL_FINISH, LOCAL_ABORT, COMPACT,
    RECV_BEGIN, RECV_WRITE, RECV_FINISH, RECV_ABORT,
};

typedef struct snap_job {
    disk_job base;
    node *n;
    enum job_kind kind;
    uint64_t gen;
    raft_snapshot_meta meta;
    uint64_t offset;
    uint8_t *data;
    size_t len;
    raft_index compact_to;
    raft_msg msg; /* RECV_FINISH: what to step once installed */
    int rc;
    char err[SNAP_ERRMSG_SIZE];
} snap_job;

/* ---- disk thread ---------------------------------------------------------------------------- */

static int write_chunk(snap_writer **w, bool *failed, snap_job *j)
{
    if (*failed || *w == NULL) {
        snprintf(j->err, sizeof j->err, "an earlier step failed");
        return -1;
    }
    int rc = snap_writer_write(*w, j->offset, j->data, j->len);
    if (rc != SNAP_OK) {
        snprintf(j->err, sizeof j->err, "write at offset %" PRIu64 ": %s", j->offset,
                 snap_strerror(rc));
        snap_writer_abort(*w);
        *w = NULL;
        *failed = true;
        /* j->rc holds storage codes: a full disk stops the node (snap.h), other errors retry. */
        return rc == SNAP_EFATAL ? STORAGE_EFATAL : STORAGE_EIO;
    }
    return STORAGE_OK;
}

static int begin(node *n, snap_writer **w, bool *failed, snap_job *j)
{
    if (*w != NULL)
        snap_writer_abort(*w);
    *w = NULL;
    *failed = false;
    int rc = storage_snapshot_begin(n->st, &j->meta, w);
    if (rc != STORAGE_OK) {
        snprintf(j->err, sizeof j->err, "%s", storage_errmsg(n->st));
        *failed = true;
    }
    return rc;
}

static int finish(node *n, snap_writer **w, bool *failed, snap_job *j)
{
    if (*failed || *w == NULL) {
        snprintf(j->err, sizeof j->err, "an earlier step failed");
        return -1;
    }
    int rc = storage_snapshot_finish(n->st, *w); /* frees the writer whatever happens */
    *w = NULL;
    if (rc != STORAGE_OK)
        snprintf(j->err, sizeof j->err, "%s", storage_errmsg(n->st));
    return rc;
}

static void abort_writer(snap_writer **w)
{
    if (*w != NULL)
        snap_writer_abort(*w);
    *w = NULL;
}

static void snap_work(disk_job *job)
{
    snap_job *j = (snap_job *)job;
    node *n = j->n;
    switch (j->kind) {
    case LOCAL_BEGIN: j->rc = begin(n, &n->snap.writer, &n->snap.failed, j); break;
    case LOCAL_WRITE: j->rc = write_chunk(&n->snap.writer, &n->snap.failed, j); break;
    case LOCAL_FINISH: j->rc = finish(n, &n->snap.writer, &n->snap.failed, j); break;
    case LOCAL_ABORT: abort_writer(&n->snap.writer); break;
    case RECV_BEGIN: j->rc = begin(n, &n->recv.writer, &n->recv.failed, j); break;
    case RECV_WRITE: j->rc = write_chunk(&n->recv.writer, &n->recv.failed, j); break;
    case RECV_FINISH: j->rc = finish(n, &n->recv.writer, &n->recv.failed, j); break;
    case RECV_ABORT: abort_writer(&n->recv.writer); break;
    case COMPACT:
        j->rc = storage_compact(n->st, j->compact_to);
        if (j->rc != STORAGE_OK)
            snprintf(j->err, sizeof j->err, "%s", storage_errmsg(n->st));
        break;
    }
}

kv_restore *node_snap_read(node *n, raft_index index, node_book *book, char *err, size_t errlen)
{
    book->n = 0;
    char msg[SNAP_ERRMSG_SIZE] = "";
    snap_reader *r;
    int rc = snap_reader_open(n->cfg.data_dir, &n->disk_vfs, index, &r, msg);
    if (rc != SNAP_OK) {
        snprintf(err, errlen, "open snapshot %" PRIu64 ": %s: %s", index, snap_strerror(rc), msg);
        return NULL;
    }
    kv_restore *kr = kv_restore_begin(&n->kv_cfg);
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    uint64_t size = snap_reader_size(r), off = 0;
    int krc = kr != NULL && buf != NULL ? KV_OK : KV_ENOMEM;
    while (krc == KV_OK && off < size) {
        size_t got = 0;
        rc = snap_reader_read(r, off, buf, cap, &got);
        if (rc != SNAP_OK || got == 0) {
            snprintf(err, errlen, "read snapshot %" PRIu64 " at %" PRIu64 ": %s", index, off,
                     snap_strerror(rc));
            krc = KV_ECORRUPT;
            break;
        }
        size_t skip = 0;
        if (off == 0) { /* the address book first, if the snapshot has one (members.h) */
            char why[160];
            int mrc = members_snap_parse(buf, got, book->peers, &book->n, &skip, why, sizeof why);
            if (mrc == MEMBERS_SNAP_CORRUPT) {
                snprintf(err, errlen, "snapshot %" PRIu64 ": %s", index, why);
                krc = KV_ECORRUPT;
                break;
            }
        }
        krc = kv_restore_feed(kr, buf + skip, got - skip);
        if (krc != KV_OK)
            snprintf(err, errlen, "snapshot %" PRIu64 ": %s", index,
                     kr != NULL ? kv_restore_error(kr) : "out of memory");
        off += got;
    }
    if (krc == KV_ENOMEM)
        snprintf(err, errlen, "snapshot %" PRIu64 ": out of memory", index);
    free(buf);
    snap_reader_close(r);
    if (krc != KV_OK) {
        kv_restore_free(kr);
        return NULL;
    }
    return kr;
}

/* ---- loop thread ---------------------------------------------------------------------------- */

static void snap_done(disk_job *job);
static void recv_unpause(node *n);

static snap_job *job_new(node *n, enum job_kind kind)
{
    snap_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        node_fatal(n, "snapshot", "out of memory");
    j->base.work = snap_work;
    j->base.done = snap_done;
    j->n = n;
    j->kind = kind;
    return j;
}

static void submit(node *n, snap_job *j)
{
    if (j->kind >= RECV_BEGIN)
        n->recv.jobs++;
    disk_submit(n->dk, &j->base);
}

int node_snap_load(node *n, const raft_snapshot_meta *meta)
{
    raft_index index = meta->index;
    char err[SNAP_ERRMSG_SIZE + 64];
    node_book book;
    kv_restore *kr = node_snap_read(n, index, &book, err, sizeof err);
    if (kr == NULL) {
        log_printf("cannot load the snapshot in %s: %s", n->cfg.data_dir, err);
        return -1;
    }
    char source[64];
    snprintf(source, sizeof source, "the snapshot at index %" PRIu64, index);
    node_learn(n, book.peers, book.n, &meta->conf, index, source);
    int rc = kv_restore_finish(kr, n->kv);
    if (rc != KV_OK)
        log_printf("cannot load the snapshot in %s: %s", n->cfg.data_dir, kv_restore_error(kr));
    kv_restore_free(kr);
    return rc == KV_OK ? 0 : -1;
}

/* Serializes the next chunk of our snapshot and hands it to the disk (or finishes). */
static void local_next(node *n)
{
    snap_local *s = &n->snap;
    size_t cap = (size_t)n->cfg.snapshot_chunk_bytes;
    if (cap < MEMBERS_SNAP_OVERHEAD + MEMBERS_MAX_BYTES)
        cap = MEMBERS_SNAP_OVERHEAD + MEMBERS_MAX_BYTES;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        node_fatal(n, "snapshot", "out of memory");
    /* The address book heads the file, so a node that joins from it can reach every member. */
    size_t len = s->bytes == 0 ? members_snap_encode(n->cfg.peers, n->cfg.n_peers, buf, cap) : 0;
    if (len == 0)
        len = kv_snapshot_next(s->it, buf, cap);
    snap_job *j = job_new(n, len > 0 ? LOCAL_WRITE : LOCAL_FINISH);
    j->gen = s->gen;
    j->meta = s->meta;
    if (len > 0) {
        j->data = buf;
        j->len = len;
        j->offset = s->bytes;
        s->bytes += len;
    } else {
        free(buf);
        kv_snapshot_end(s->it);
        s->it = NULL;
    }
    submit(n, j);
}

/* A partial transfer nobody continues (the leader changed, or no longer needs it) would block
 * our own snapshots forever: drop it after this long without a chunk. */
#define RECV_IDLE_MS 60000

void node_snap_maybe_take(node *n)
{
    snap_local *s = &n->snap;
    if (n->recv.active && uv_now(n->loop) - n->recv.last_chunk_ms > RECV_IDLE_MS) {
        log_printf("snapshot from node %" PRIu64 ": no chunk for %d s, dropping the partial "
                   "transfer", n->recv.from, RECV_IDLE_MS / 1000);
        n->recv.active = false;
        recv_unpause(n);
        submit(n, job_new(n, RECV_ABORT));
    }
    if (s->active || n->recv.active || n->recv.jobs > 0 || n->stopping ||
        n->cfg.snapshot_threshold == 0 || n->applied_since_snapshot < n->cfg.snapshot_threshold)
        return;
    /* Entries applied early may not be in a Ready yet (raft_compact would refuse): later. */
    if (kv_applied_index(n->kv) > raft_handed_index(n->r))
        return;
    kv_snapshot *it;
    if (kv_snapshot_begin(n->kv, &it) != KV_OK)
        return;
    raft_index index = kv_snapshot_index(it);
    raft_snapshot_meta current = raft_get_snapshot(n->r);
    raft_term term = raft_term_at(n->r, index);
    if (term == 0 && index == current.index)
        term = current.term;
    raft_conf conf;
    if (index <= current.index || term == 0 || raft_conf_at(n->r, index, &conf) != RAFT_OK) {
        kv_snapshot_end(it); /* nothing new to capture */
        n->applied_since_snapshot = 0;
        return;
    }
    n->applied_since_snapshot = 0;
    s->active = true;
    s->gen++;
    s->it = it;
    s->bytes = 0;
    s->meta.index = index;
    s->meta.term = term;
    s->meta.conf = conf; /* the voters at the snapshot's index, not the newest */
    snap_job *j = job_new(n, LOCAL_BEGIN);
    j->gen = s->gen;
    j->meta = s->meta;
    submit(n, j);
}

void node_snap_abort_local(node *n)
{
    snap_local *s = &n->snap;
    if (!s->active)
        return;
    kv_snapshot_end(s->it);
    s->it = NULL;
    s->active = false;
    s->gen++;
    submit(n, job_new(n, LOCAL_ABORT));
}

static void recv_unpause(node *n)
{
    if (n->recv.paused) {
        n->recv.paused = false;
        if (n->tp != NULL)
            transport_pause(n->tp, n->recv.from, false);
    }
}

void node_snap_stop(node *n)
{
    node_snap_abort_local(n);
    n->recv.active = false;
    n->recv.paused = false; /* the transport is closed */
    submit(n, job_new(n, RECV_ABORT));
}

static bool is_fatal(int rc)
{
    return rc == STORAGE_EFATAL;
}

static void local_done(node *n, snap_job *j)
{
    snap_local *s = &n->snap;
    if (j->kind == LOCAL_ABORT || j->gen != s->gen || !s->active)
        return; /* abandoned meanwhile */
    if (j->rc != 0) {
        if (is_fatal(j->rc))
            node_fatal(n, "snapshot", j->err);
        log_printf("snapshot at index %" PRIu64 " failed: %s (will retry later)", s->meta.index,
                   j->err);
        kv_snapshot_end(s->it);
        s->it = NULL;
        s->active = false;
        return;
    }
    if (j->kind != LOCAL_FINISH) {
        local_next(n);
        return;
    }
    s->active = false;
    log_printf("snapshot taken: index %" PRIu64 " term %" PRIu64 ", %" PRIu64 " bytes",
               s->meta.index, s->meta.term, s->bytes);
    raft_index trailing = n->cfg.snapshot_trailing;
    raft_compact(n->r, s->meta.index, trailing); /* may refuse if a newer snapshot arrived */
    snap_job *c = job_new(n, COMPACT);
    c->compact_to = s->meta.index > trailing ? s->meta.index - trailing : 0;
    submit(n, c);
}

static void recv_done(node *n, snap_job *j)
{
    snap_recv *r = &n->recv;
    r->jobs--;
    if (j->kind == RECV_WRITE) {
        r->queued_bytes -= j->len;
        if (r->queued_bytes <= n->cfg.snapshot_chunk_bytes)
            recv_unpause(n);
    }
    if (j->kind == RECV_ABORT)
        return;
    if (j->rc != 0) {
        if (is_fatal(j->rc))
            node_fatal(n, "snapshot install", j->err);
        if (j->gen == r->gen) {
            log_printf("snapshot from node %" PRIu64 " (index %" PRIu64 "): not installed: %s",
                       r->from, j->meta.index, j->err);
            r->active = false;
            recv_unpause(n);
        }
        return;
    }
    if (j->kind == RECV_FINISH && !n->stopping) {
        log_printf("snapshot from node %" PRIu64 " written (index %" PRIu64 " term %" PRIu64
                   "); installing it", j->msg.from, j->meta.index, j->meta.term);
        raft_step(n->r, &j->msg);
    }
}

static void snap_done(disk_job *job)
{
    snap_job *j = (snap_job *)job;
    node *n = j->n;
    if (j->kind == COMPACT) {
        if (j->rc != STORAGE_OK)
            node_fatal(n, "log compaction", j->err);
    } else if (j->kind >= RECV_BEGIN) {
        recv_done(n, j);
    } else {
        local_done(n, j);
    }
    free(j->data);
    free(j);
    node_try_finish_stop(n);
}

void node_snap_on_chunk(void *ctx, const raft_msg *msg, uint64_t offset, uint64_t total,
                        const uint8_t *data, size_t len)
{
    node *n = ctx;
    snap_recv *r = &n->recv;
    if (n->stopping)
        return;
    bool same = r->active && r->from == msg->from && r->meta.index == msg->snapshot.index &&
                r->meta.term == msg->snapshot.term && r->total == total;
    if (offset == 0 && same && r->next_offset > 0) {
        /* The leader restarted a transfer we partly hold (a disconnect): ask it to skip ahead. */
        log_printf("snapshot from node %" PRIu64 ": resuming at offset %" PRIu64 " of %" PRIu64,
                   msg->from, r->next_offset, total);
        transport_snap_resume(n->tp, msg->from, r->meta.index, r->meta.term, r->next_offset);
    } else if (offset == 0) {
        if (msg->snapshot.index <= raft_commit_index(n->r)) {
            raft_step(n->r, msg); /* stale: the core answers with where we are */
            return;
        }
        recv_unpause(n);
        if (r->active || r->jobs > 0)
            submit(n, job_new(n, RECV_ABORT));
        node_snap_abort_local(n);
        r->active = true;
        r->gen++;
        r->from = msg->from;
        r->meta = msg->snapshot;
        r->next_offset = 0;
        r->total = total;
        log_printf("snapshot from node %" PRIu64 ": receiving index %" PRIu64 " term %" PRIu64
                   ", %" PRIu64 " bytes", msg->from, msg->snapshot.index, msg->snapshot.term,
                   total);
        snap_job *j = job_new(n, RECV_BEGIN);
        j->gen = r->gen;
        j->meta = r->meta;
        submit(n, j);
    }
    if (!r->active || r->from != msg->from || r->meta.index != msg->snapshot.index ||
        r->meta.term != msg->snapshot.term || total != r->total)
        return; /* part of a broken or superseded transfer: the leader will restart it */
    r->last_chunk_ms = uv_now(n->loop);
    /* Take the part of the chunk that continues what we hold (chunks may overlap it after a
     * resume); a chunk from beyond it means a gap: ignore it, the leader times out and retries. */
    if (offset > r->next_offset || offset + len < r->next_offset)
        return;
    size_t skip = (size_t)(r->next_offset - offset);
    data += skip;
    len -= skip;
    offset += skip;
    if (len > 0) {
        snap_job *j = job_new(n, RECV_WRITE);
        j->gen = r->gen;
        j->meta = r->meta;
        j->offset = offset;
        j->len = len;
        j->data = malloc(len);
        if (j->data == NULL)
            node_fatal(n, "snapshot", "out of memory");
        memcpy(j->data, data, len);
        r->next_offset += len;
        r->queued_bytes += len;
        submit(n, j);
        if (!r->paused && r->queued_bytes > 4 * n->cfg.snapshot_chunk_bytes) {
            r->paused = true;
            transport_pause(n->tp, r->from, true);
        }
    }
    if (r->next_offset == total) {
        snap_job *j = job_new(n, RECV_FINISH);
        j->gen = r->gen;
        j->meta = r->meta;
        j->msg = *msg;
        j->msg.n_entries = 0;
        j->msg.entries = NULL;
        r->active = false;
        submit(n, j);
    }
}
