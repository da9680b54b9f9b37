/*
 * transport.h -- TCP between the nodes of a cluster: handshake, framing, bounded send queues,
 * reconnects and snapshot streaming. Runs on the loop thread; knows nothing of Raft's rules (it
 * only carries raft_msg values encoded by raft_codec.h).
 *
 * CONNECTIONS. Every node dials every other node and uses that OUTBOUND connection only to send;
 * what it receives comes in on the connections other nodes dialed (INBOUND). One direction per
 * connection means no tie-breaking between simultaneous dials. A lost outbound connection is
 * redialed with exponential backoff (50 ms doubling to 2 s, +-25% jitter), reset on success.
 * Host names are resolved off the loop at every dial (uv_getaddrinfo), so a peer may move.
 *
 * FRAMES. [u32 length][u8 kind][length bytes of payload], little-endian:
 *   HELLO   (dialer)   u32 magic "RKV1", u16 version, u8 flags (1 = has secret), u64 from, u64 to,
 *                      32-byte nonce_c, u16 n + n bytes cluster_id
 *   WELCOME (acceptor) u64 id, 32-byte nonce_s, 32-byte mac_s
 *   AUTH    (dialer)   32-byte mac_c
 *   REFUSE  (acceptor) the reason, text; then the acceptor closes
 *   MSG                one raft_msg (raft_codec)
 *   SNAP               u64 offset, u64 total, u32 n + n bytes raft_msg (RAFT_MSG_SNAPSHOT), data
 *   SNAP_RESUME        u64 index, u64 term, u64 offset: the receiver already holds the snapshot
 *                      (index, term) up to offset; the sender skips ahead to it
 * With a cluster_secret, mac_s = HMAC-SHA256(secret, "raftkv-s" | transcript) and mac_c the same
 * with "raftkv-c", transcript = cluster_id | from | to | nonce_c | nonce_s: both sides prove they
 * hold the secret and a recorded handshake cannot be replayed (fresh nonces). Without a secret the
 * macs are zero and only cluster id, version and node ids are checked. A refusal is logged on
 * both sides, one line each.
 *
 * QUEUES. Frames bound for a peer are batched and written with one uv_write (writev) per flush.
 * The bytes queued and in flight per peer are bounded by peer_queue_bytes: past it (or while the
 * peer is not connected) a Raft message is DROPPED and counted -- Raft tolerates loss, unbounded
 * buffering it does not. One frame is always accepted into an empty queue, so a message larger
 * than the bound still goes out.
 *
 * SNAPSHOTS. A RAFT_MSG_SNAPSHOT given to transport_send starts a stream of SNAP frames read in
 * chunk_bytes pieces from the snapshot file (snap_reader, snapshot dir), paced by the queue bound.
 * The receiver gets each chunk through on_snap_chunk. A disconnect ends the stream and calls
 * on_snap_failed; the core then retries from offset 0, and a receiver that kept the part it had
 * answers with transport_snap_resume, which makes the sender skip to where it stopped.
 *
 * OWNERSHIP. transport_start copies the config (peers included). Callback arguments are valid only
 * during the call. transport_close closes every handle; the transport is freed by the loop's close
 * callbacks, so run the loop after it.
 */
#ifndef RAFTKV_TRANSPORT_H
#define RAFTKV_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"
#include "raft.h"

typedef struct transport transport;

typedef struct transport_config {
    raft_id self;
    const node_peer *peers; /* every node, self included */
    uint32_t n_peers;
    const char *cluster_id;
    const char *secret;     /* "" or NULL: no authentication */
    uint64_t queue_bytes;
    uint64_t chunk_bytes;
    const char *snapshot_dir; /* where snap-*.snap files are read from */
    uint32_t handshake_timeout_ms; /* connections still in their handshake are closed; 0 = 5000 */
} transport_config;

typedef struct transport_cbs {
    void *ctx;
    /* A message from an authenticated peer (msg->from is that peer). */
    void (*on_msg)(void *ctx, const raft_msg *msg);
    /* One chunk of a snapshot stream from msg->from. */
    void (*on_snap_chunk)(void *ctx, const raft_msg *msg, uint64_t offset, uint64_t total,
                          const uint8_t *data, size_t len);
    /* A snapshot we were sending to peer did not complete. */
    void (*on_snap_failed)(void *ctx, raft_id peer);
} transport_cbs;

typedef struct transport_stats {
    uint64_t msgs_sent;
    uint64_t msgs_dropped;   /* queue full or peer not connected */
    uint64_t msgs_received;
    uint64_t bytes_sent;
    uint64_t handshakes_refused;
    uint64_t snapshots_sent;
} transport_stats;

/* Binds the peer listener (self's host and peer_port) and starts dialing. 0 or a negative libuv
 * error (logged). */
int transport_start(uv_loop_t *loop, const transport_config *cfg, const transport_cbs *cbs,
                    transport **out);
/* A node learned while running (a membership change named its addresses): dialed from now on,
 * and its handshakes accepted. 0 (also when it is known already, or is self), UV_ENOSPC when
 * RAFT_MAX_NODES are known. The peer is copied. */
int transport_add_peer(transport *t, const node_peer *peer);
/* A node forgotten (to make room for another, or it moved: add_peer follows): its
 * outbound connection is closed and it is dialed no more, but its inbound connections stay and
 * its handshakes are still accepted (the last 64 ids forgotten): this node may be the one that
 * lags, and the node, added back since, may lead. Its memory goes once its last handle has
 * closed. Nothing when it is unknown. */
void transport_remove_peer(transport *t, raft_id id);
/* Queues msg for msg->to (encoded now; msg may be freed on return). */
void transport_send(transport *t, const raft_msg *msg);
/* Writes every queued frame (one uv_write per peer). Call after a batch of sends. */
void transport_flush(transport *t);
/* Receiver side: asks peer (the sender of snapshot index/term) to continue at offset. Best
 * effort: if it is lost, the sender just streams everything again. */
void transport_snap_resume(transport *t, raft_id peer, raft_index index, raft_term term,
                           uint64_t offset);
/* Stops / resumes reading from every inbound connection of peer (receiver back-pressure). */
void transport_pause(transport *t, raft_id peer, bool pause);
bool transport_connected(const transport *t, raft_id peer);
transport_stats transport_get_stats(const transport *t);
void transport_close(transport *t);

#endif /* RAFTKV_TRANSPORT_H */
