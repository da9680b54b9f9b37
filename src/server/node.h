/*
 * node.h -- the node driver: one raftkv node on one libuv loop.
 *
 * It glues together the pure Raft core (src/raft), durable storage (src/storage, written on a disk
 * thread), the key-value state machine (src/kv), the peer transport and the clock. Client
 * front-ends (the text protocol, RESP) sit on top of this API and never touch the core directly.
 *
 * WRITES. node_write() proposes a kv command on the leader. Its callback fires exactly once:
 *   NODE_OK with the kv_result once the entry is committed and applied locally (durable on a
 *   majority: the Ready contract of raft.h guarantees nothing is acknowledged earlier);
 *   NODE_ENOTLEADER at once on a non-leader (node_leader() tells where to go);
 *   NODE_ELOST when leadership changed before the entry was applied with its term (it may or may not
 *   commit later: the outcome is unknown to the client), NODE_ETIMEOUT after write_timeout_ms
 *   (unknown too), NODE_ESTOPPING when the node shuts down (unknown).
 * READS. node_read() is a linearizable barrier (ReadIndex, on any node): its callback fires with
 *   NODE_OK once the local state machine has applied everything committed before the call; the
 *   front-end then reads node_kv() directly, with node_now_ms() for expiry. NODE_ENOLEADER /
 *   NODE_ETIMEOUT / NODE_ESTOPPING otherwise.
 * OWNERSHIP. The command passed to node_write is encoded (copied) before the call returns. Callback
 *   contexts are the caller's; a front-end that closes a connection with requests in flight must
 *   keep the context alive until the callbacks fire (or use node_cancel()).
 * THREADS. Every function is called on the loop thread; callbacks run on it too.
 */
#ifndef RAFTKV_NODE_H
#define RAFTKV_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "kv_cmd.h"
#include "kv_store.h"
#include "raft.h"

typedef struct node node;

enum {
    NODE_OK = 0,
    NODE_ENOTLEADER = -1, /* not the leader; node_leader() says who is, if known */
    NODE_ENOLEADER = -2,  /* no leader known right now (an election is under way) */
    NODE_ETIMEOUT = -3,   /* no outcome within the bounded wait: outcome unknown */
    NODE_ELOST = -4,      /* leadership changed before the write applied: outcome unknown */
    NODE_ETOOBIG = -5,    /* command larger than the configured limit */
    NODE_EBUSY = -6,      /* too much uncommitted data; retry later */
    NODE_ESTOPPING = -7,  /* shutting down */
    NODE_ENOMEM = -8,
    NODE_EMEMBER = -9,   /* not a valid membership change (unknown node, already / not a voter,
                            the last voter) */
    NODE_ECONFBUSY = -10, /* a membership change is still in progress; retry later */
    NODE_EUNSAFE = -11,   /* the change would leave fewer voters this leader hears from than a
                             majority of the new configuration (etcd's strict check) */
    NODE_ESESSION = -12,  /* fast path: the leader knows no such session (RAFTKV.REGISTER) */
    NODE_EFASTOFF = -13,  /* fast path: not enabled on this node (fast_path in raft.json) */
    NODE_ESTALE = -14,    /* fast path: the leader applied that seq of the session already */
    NODE_ELAGGING = -15,  /* a learner to promote has not caught up (NODE_PROMOTE_MAX_LAG) */
};
const char *node_strerror(int rc);

/* Where a node can be reached (from the peers file, or learned: members.h). */
typedef struct node_peer {
    raft_id id;
    char host[256];
    uint16_t peer_port;
    uint16_t client_port; /* text protocol */
    uint16_t resp_port;   /* RESP2 */
    bool spare;           /* "voter": false -- outside the initial configuration, added later
                             with RAFTKV.MEMBER ADD (the log and snapshots then say who votes) */
    bool learned;         /* from an address book (a configuration entry, a snapshot), not from
                             this node's peers file: may be forgotten for room once it is no
                             longer a voter (evict_one in node.c) */
    uint64_t addr_index;  /* the log index of the book the address came from (0: the peers
                             file): only a newer book moves it (node_learn) */
    bool given;           /* the address was given by RAFTKV.MEMBER ADD (carried in books, and
                             kept): the cluster owns it; it moves a peers-file address too */
} node_peer;

typedef void (*node_write_cb)(void *ctx, int status, const kv_result *result);
typedef void (*node_read_cb)(void *ctx, int status);

/* Propose cmd (cmd->now_ms is set by the node from its clock). Returns 0 when the callback will
 * fire later, or a negative NODE_E* code (and the callback never fires). */
int node_write(node *n, const kv_cmd *cmd, node_write_cb cb, void *ctx);
/* Linearizable read barrier; same return convention. */
int node_read(node *n, node_read_cb cb, void *ctx);
/* What a membership change does to node `id`. A learner gets the log like a follower but never
 * votes, campaigns or counts in a majority: a node is added as one to catch up, then promoted
 * (etcd's learners; thesis §4.2.1). */
typedef enum node_member_op {
    NODE_MEMBER_ADD = 0,         /* a new voter */
    NODE_MEMBER_ADD_LEARNER = 1, /* a new learner */
    NODE_MEMBER_PROMOTE = 2,     /* a learner becomes a voter */
    NODE_MEMBER_REMOVE = 3,      /* a voter or a learner leaves */
    NODE_MEMBER_DEMOTE = 4,      /* a voter becomes a learner (keeps the log, stops counting) */
} node_member_op;
/* A learner is promoted only once its log ends within this many entries of the commit index. */
#define NODE_PROMOTE_MAX_LAG 1000
/* Membership change on the leader (op above; removing the leader itself included: it hands over
 * once the change commits). A node this cluster does not know yet (not in the peers files, never
 * added) needs addr, its addresses (addr->id == id), to be added; a known one takes NULL or the
 * same addresses. The entry carries every address the leader knows (members.h), so each node
 * learns the new one. Same return and callback convention as node_write (the kv_result is
 * empty): NODE_OK once the change is committed and applied here. NODE_EMEMBER, NODE_ECONFBUSY,
 * NODE_EUNSAFE, NODE_ELAGGING, NODE_ENOTLEADER at once. NODE_EUNSAFE: after a change of the
 * voters, the voters this leader hears from (that acknowledged an entry and answered within an
 * election timeout; never a voter being added) would not be a majority -- adding a fourth node
 * while one of three is down would stop all writes. One voter may still grow to two (that check
 * could never pass), as etcd allows. NODE_ELAGGING: a learner to promote did not answer within
 * an election timeout, or its log ends more than NODE_PROMOTE_MAX_LAG entries before the commit
 * index. */
int node_change_member(node *n, raft_id id, node_member_op op, const node_peer *addr,
                       node_write_cb cb, void *ctx);
/* FAST PATH (docs/NILEXT.md): takes a nil-externalizing write (SET or MSET, reply without a
 * version) of a client session on this node -- its client sends it to every node. cb fires once:
 * NODE_OK with the ack once it is durable here (the client is done when, in one term, the leader
 * and every voter of ack->conf acknowledged; the leader's ack has index != 0), or an error
 * (NODE_ESTOPPING). Returns NODE_EFASTOFF, NODE_ENOLEADER (a follower that knows no leader),
 * NODE_EBUSY (a leader recovering), NODE_ESESSION (a leader that knows no such session),
 * NODE_ESTALE (a leader that applied this seq of the session already: seqs must rise),
 * NODE_ETOOBIG at once. A session is opened with a KV_OP_REGISTER write (node_write): its id is
 * the entry's index (kv_result.version). */
typedef void (*node_fast_cb)(void *ctx, int status, const raft_fast_ack *ack);
/* Whether the fast path is on here (fast_path in raft.json). */
bool node_fast_path(const node *n);
int node_fast_write(node *n, uint64_t session, uint64_t seq, const kv_cmd *cmd, node_fast_cb cb,
                    void *ctx);

/* Forget every pending callback with this ctx (a closing connection); they never fire. */
void node_cancel(node *n, void *ctx);

kv_store *node_kv(node *n);
uint64_t node_now_ms(const node *n); /* wall clock in ms, plus the test-only clock offset */
bool node_is_leader(const node *n);
/* A spare or a removed node: neither a voter nor a learner of the configuration in force here,
 * and not leading (a leader removing itself leads until the change commits). It hears from no
 * leader and gets no entries, so it has no leader to name or wait for and serves no reads. */
bool node_is_outside(const node *n);
/* Whether id is a voter of the configuration in force here. */
bool node_votes(const node *n, raft_id id);
/* Whether id is a learner of the configuration in force here. */
bool node_learns(const node *n, raft_id id);
/* Why op cannot be done to `id` here (addr or NULL as node_change_member takes it) -- "is
 * unknown (...)", "is a voter at another address (...)", "is already a voter", "is a learner:
 * promote it ...", "is already a learner", "is not a learner ...", "is not a voter or a learner",
 * "is the last voter", ... -- or NULL. */
const char *node_member_refusal(const node *n, raft_id id, node_member_op op,
                                const node_peer *addr);
/* A voter of the configuration in force here other than this node, with its addresses: where a
 * spare or a removed node sends clients. False when there is none. */
bool node_some_voter(const node *n, node_peer *out);
/* The current leader's addresses; false when no leader is known. */
bool node_leader(const node *n, node_peer *out);
const node_peer *node_self(const node *n);
/* Every node of the cluster (the peers file, and the nodes learned from membership changes), in id
 * order. Valid until the next loop callback (a node learned later is inserted in order). */
const node_peer *node_peers(const node *n, uint32_t *count);

typedef struct node_peer_status {
    raft_id id;
    raft_index match; /* leader's view; 0 on followers */
    bool connected;
} node_peer_status;

typedef struct node_info {
    raft_id id;
    raft_role role;
    raft_term term;
    raft_id leader;
    raft_index commit;
    raft_index applied;
    raft_index last_index;
    raft_index snapshot_index;
    uint32_t n_peers;
    node_peer_status peers[RAFT_MAX_NODES];
    raft_conf voters;    /* the configuration in force here (it may not be committed yet) */
    bool conf_pending;   /* ... and it is not committed yet */
    uint64_t writes_ok;
    uint64_t reads_ok;
    uint64_t fsyncs;
    uint64_t loop_polls; /* loop iterations that did not sleep because of poll_us */
    /* Peer transport (added after the fields above; zero when unknown). */
    uint64_t peer_msgs_sent;
    uint64_t peer_msgs_dropped;   /* send queue full or peer unreachable (Raft retries) */
    uint64_t peer_msgs_received;
    uint64_t handshakes_refused;
    uint64_t snapshots_sent;
} node_info;
void node_get_info(const node *n, node_info *out);

/* The front-end's "write the replies now": called once per loop iteration in which committed
 * writes were applied or reads answered, before that iteration's peer messages are sent, so a
 * client's reply never waits behind them (they are not needed for it: a committed entry is durable
 * on a majority already). It runs inside the node's callback: it must only write, never call
 * node_write / node_read. NULL turns it off; the front-end's own flush still runs later. */
void node_set_reply_flush(node *n, void (*flush)(void *ctx), void *ctx);

/* ---- lifecycle (raftkvd's main; not for the front-ends) ------------------------------------- */

struct config;    /* config.h */
struct uv_loop_s; /* uv_loop_t */

/* Opens the storage in cfg->data_dir, recovers the core and the key-value store from it (snapshot
 * + log), starts the disk thread, the peer transport and the timers on loop. 0 on success, or -1
 * after logging one line that says why (the caller exits 1). cfg is copied. */
int node_start(struct uv_loop_s *loop, const struct config *cfg, node **out);
/* Graceful stop: refuses new requests, fails pending ones with NODE_ESTOPPING, closes the
 * transport, lets in-flight disk work finish, closes the storage, then calls done(ctx) on the
 * loop. node_free afterwards (once the loop has run the close callbacks). */
/* Re-arms the node's per-iteration work (applying, answering, the Ready loop) so it runs before
 * the prepare callbacks started earlier, e.g. the front-ends' flush: libuv runs the most recently
 * started prepare handle first, and replies produced before the flush leave in the same loop
 * iteration. Only a saving: the front-ends flush late replies correctly either way. */
void node_run_first(node *n);
void node_stop(node *n, void (*done)(void *ctx), void *ctx);
void node_free(node *n);
/* The configuration the node runs with (max_value_bytes, forward_to_leader, timeouts...). */
const struct config *node_config(const node *n);

#endif /* RAFTKV_NODE_H */
