/*
 * transport_snap.c -- streaming snapshots to a peer (transport.h, SNAPSHOTS): a RAFT_MSG_SNAPSHOT
 * becomes SNAP frames of chunk_bytes read from the snapshot file, at most two chunks queued at a
 * time (heartbeats share the connection), and SNAP_RESUME lets a receiver that kept part of the
 * same snapshot skip what it holds. The receiving side only checks and forwards chunks: writing
 * them is the node's business (node_snap.c).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "raft_codec.h"
#include "transport_int.h"
#include "vfs.h"

/* ---- snapshot streams ----------------------------------------------------------------------- */

void tp_snap_end(peer_out *p, bool failed)
{
    if (p->snap == NULL)
        return;
    snap_reader_close(p->snap);
    p->snap = NULL;
    free(p->snap_msg);
    p->snap_msg = NULL;
    if (failed) {
        log_printf("snapshot to peer %llu: stopped at %llu of %llu bytes",
                   (unsigned long long)p->addr.id, (unsigned long long)p->snap_offset,
                   (unsigned long long)p->snap_total);
        if (!p->t->closing && p->t->cbs.on_snap_failed != NULL)
            p->t->cbs.on_snap_failed(p->t->cbs.ctx, p->addr.id);
    } else {
        p->t->stats.snapshots_sent++;
        log_printf("snapshot to peer %llu: sent %llu bytes", (unsigned long long)p->addr.id,
                   (unsigned long long)p->snap_total);
    }
}

void tp_snap_pump(peer_out *p)
{
    transport *t = p->t;
    bool sent = false;
    /* At most two chunks queued: heartbeats and appends share the connection and must not wait
     * behind megabytes of snapshot, and the loop thread reads one chunk at a time. */
    uint64_t limit = 2 * t->cfg.chunk_bytes < t->cfg.queue_bytes ? 2 * t->cfg.chunk_bytes
                                                                  : t->cfg.queue_bytes;
    while (p->snap != NULL && (p->queued == 0 || p->queued < limit)) {
        if (p->c == NULL || p->c->state != C_READY) {
            tp_snap_end(p, true);
            return;
        }
        uint64_t left = p->snap_total - p->snap_offset;
        size_t n = left < t->cfg.chunk_bytes ? (size_t)left : (size_t)t->cfg.chunk_bytes;
        size_t payload = 20 + p->snap_msg_len + n;
        /* A chunk the queue bound would refuse waits for the queue to drain (write_cb pumps
         * again): refused, it would end the snapshot at the same offset on every attempt. */
        if (p->queued > 0 && p->queued + FRAME_HEADER + payload > t->cfg.queue_bytes)
            break;
        uint8_t *f = tp_frame_new(F_SNAP, payload);
        if (f == NULL) {
            tp_snap_end(p, true);
            return;
        }
        uint8_t *q = f + FRAME_HEADER;
        put64(q, p->snap_offset);
        put64(q + 8, p->snap_total);
        put32(q + 16, (uint32_t)p->snap_msg_len);
        memcpy(q + 20, p->snap_msg, p->snap_msg_len);
        size_t got = 0;
        /* The read is a pread of at most chunk_bytes, usually from the page cache. */
        if (n > 0 && (snap_reader_read(p->snap, p->snap_offset, q + 20 + p->snap_msg_len, n,
                                       &got) != SNAP_OK || got != n)) {
            free(f);
            tp_snap_end(p, true);
            return;
        }
        if (!tp_enqueue(p, f)) {
            tp_snap_end(p, true);
            return;
        }
        sent = true;
        p->snap_offset += n;
        p->snap_started = true;
        if (p->snap_offset == p->snap_total)
            tp_snap_end(p, false);
    }
    if (sent)
        tp_flush_peer(p);
}

void tp_snap_start(peer_out *p, const raft_msg *msg, const uint8_t *enc, size_t enc_len)
{
    transport *t = p->t;
    if (p->snap != NULL) {
        /* The core asked for a newer snapshot: the old stream is superseded, not failed (a
         * failure report now would knock the core out of its fresh snapshot state). */
        log_printf("snapshot to peer %llu: index %llu superseded by %llu",
                   (unsigned long long)p->addr.id, (unsigned long long)p->snap_index,
                   (unsigned long long)msg->snapshot.index);
        snap_reader_close(p->snap);
        p->snap = NULL;
        free(p->snap_msg);
        p->snap_msg = NULL;
    }
    char err[SNAP_ERRMSG_SIZE] = "";
    snap_reader *r;
    if (snap_reader_open(t->cfg.snapshot_dir, vfs_posix(), msg->snapshot.index, &r, err) !=
        SNAP_OK) {
        log_printf("snapshot to peer %llu: cannot open snapshot %llu: %s",
                   (unsigned long long)p->addr.id, (unsigned long long)msg->snapshot.index, err);
        if (t->cbs.on_snap_failed != NULL)
            t->cbs.on_snap_failed(t->cbs.ctx, p->addr.id);
        return;
    }
    p->snap_msg = malloc(enc_len);
    if (p->snap_msg == NULL) {
        snap_reader_close(r);
        if (t->cbs.on_snap_failed != NULL)
            t->cbs.on_snap_failed(t->cbs.ctx, p->addr.id);
        return;
    }
    memcpy(p->snap_msg, enc, enc_len);
    p->snap_msg_len = enc_len;
    p->snap = r;
    p->snap_offset = 0;
    p->snap_total = snap_reader_size(r);
    p->snap_index = msg->snapshot.index;
    p->snap_term = msg->snapshot.term;
    p->snap_started = false;
    log_printf("snapshot to peer %llu: sending index %llu term %llu, %llu bytes",
               (unsigned long long)p->addr.id, (unsigned long long)msg->snapshot.index,
               (unsigned long long)msg->snapshot.term, (unsigned long long)p->snap_total);
    tp_snap_pump(p);
}

void tp_on_snap_frame(conn *c, const uint8_t *q, size_t len)
{
    transport *t = c->t;
    raft_msg m;
    char err[160];
    size_t mlen = len >= 20 ? get32(q + 16) : 0;
    if (len < 20 || mlen > len - 20 ||
        raft_codec_msg_decode(q + 20, mlen, &m, err, sizeof err) != RAFT_OK ||
        m.type != RAFT_MSG_SNAPSHOT || m.from != c->peer_id || m.to != t->cfg.self) {
        log_printf("peer %llu: malformed snapshot chunk: closing", (unsigned long long)c->peer_id);
        tp_conn_close(c, NULL);
        return;
    }
    uint64_t offset = get64(q), total = get64(q + 8);
    size_t n = len - 20 - mlen;
    if (offset > total || n > total - offset) {
        log_printf("peer %llu: snapshot chunk at %llu+%zu beyond its total %llu: closing",
                   (unsigned long long)c->peer_id, (unsigned long long)offset, n,
                   (unsigned long long)total);
        raft_codec_msg_release(&m);
        tp_conn_close(c, NULL);
        return;
    }
    t->cbs.on_snap_chunk(t->cbs.ctx, &m, offset, total, q + 20 + mlen, n);
    raft_codec_msg_release(&m);
}

/* The receiver of our snapshot already has its first offset bytes. */
void tp_on_snap_resume(conn *c, const uint8_t *q, size_t len)
{
    peer_out *p = tp_find_out(c->t, c->peer_id);
    if (len != 24 || p == NULL)
        return;
    raft_index index = get64(q);
    raft_term term = get64(q + 8);
    uint64_t offset = get64(q + 16);
    if (p->snap == NULL || p->snap_index != index || p->snap_term != term ||
        offset > p->snap_total || offset <= p->snap_offset)
        return; /* finished, replaced, or we are already past it */
    log_printf("snapshot to peer %llu: resuming at offset %llu of %llu",
               (unsigned long long)p->addr.id, (unsigned long long)offset,
               (unsigned long long)p->snap_total);
    p->snap_offset = offset; /* at the total, the pump sends one empty chunk to finish on */
    tp_snap_pump(p);
}

void transport_snap_resume(transport *t, raft_id peer, raft_index index, raft_term term,
                           uint64_t offset)
{
    peer_out *p = tp_find_out(t, peer);
    if (p == NULL)
        return;
    uint8_t *f = tp_frame_new(F_SNAP_RESUME, 24);
    if (f == NULL)
        return;
    put64(f + FRAME_HEADER, index);
    put64(f + FRAME_HEADER + 8, term);
    put64(f + FRAME_HEADER + 16, offset);
    if (tp_enqueue(p, f))
        tp_flush_peer(p);
}
