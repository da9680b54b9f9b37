/*
 * raft.h -- the pure Raft consensus core of raftkv.
 *
 * The core is a deterministic state machine in the shape of etcd's raft "Ready" design. It performs
 * no I/O, reads no clock, opens no socket, starts no thread and keeps no global state; randomness
 * (election timeouts) comes from the seed in raft_config. Time advances only through raft_tick().
 *
 * THE LOOP (what a caller -- the server, the simulator, a test -- does):
 *
 *     raft_step(r, msg)       for every message received from a peer
 *     raft_tick(r)            every tick interval (e.g. 10 ms)
 *     raft_propose(r, ...)    for every client write (leader only)
 *     raft_read_index(r, ..)  for every linearizable read
 *
 *     if (raft_has_ready(r)) {
 *         raft_ready rd;
 *         raft_ready_get(r, &rd);
 *         1. if rd.snapshot.index != 0: install the snapshot received from the leader (durably)
 *         2. if rd.truncate_from != 0: durably drop every stored entry with index >= truncate_from
 *         3. append rd.entries durably;  write rd.hard_state durably if rd.hard_state_changed
 *            -- 1..3 must be DURABLE (fsynced) before step 4 --
 *         4. send rd.msgs
 *         5. apply rd.committed to the state machine, in order; answer rd.reads once applied >= index
 *            (committed entries are already durable on a majority, so unless the Ready carries a
 *            snapshot -- install it first -- they may be applied before or during steps 1-3)
 *         raft_advance(r, &rd);           (frees everything rd points to)
 *     }
 *
 * THE ORDERING RULE. Every message in rd.msgs may depend on the state in the same Ready (a vote
 * depends on the persisted vote and term, an append acknowledgement on the persisted entries), so
 * messages MUST NOT be sent before steps 1-3 of the same Ready are durable. The one exception,
 * allowed by the Raft thesis §10.2.1, is messages of type RAFT_MSG_APPEND / RAFT_MSG_SNAPSHOT sent
 * by a leader: they carry only state that is already durable or that the leader does not count
 * until raft_advance() reports it durable, so they may be sent while the leader's own write is in
 * flight. Committed entries may be applied at once (see step 5): commitment means a majority
 * stored them, whatever this node's own disk is doing.
 *
 * SENDING EARLY. Some messages depend on nothing that is not yet durable: heartbeats and their
 * answers, a leader's appends and snapshots, ReadIndex requests and answers, pre-votes and their
 * answers. raft_take_messages() hands those out at once, even while a Ready is outstanding, so a
 * slow fsync never delays heartbeats (and so never causes an election). Votes, vote answers and
 * append answers always wait for their Ready. Taking messages early is optional.
 *
 * APPLYING EARLY. For the same reason raft_take_committed() and raft_take_reads() hand out the
 * committed entries and the known read indexes at once, even while a Ready is outstanding, so a
 * write is answered when a majority has it rather than after this node's next fsync. They hold
 * nothing back while a snapshot is pending or being installed (those entries follow it). Entries
 * and reads taken early do not appear in a later Ready. Taking them early is optional.
 *
 * ONE READY AT A TIME. After raft_ready_get() the caller must call raft_advance() with that Ready
 * before calling raft_ready_get() again. In between it MAY keep calling raft_step, raft_tick,
 * raft_propose, raft_read_index and the accessors: a slow disk does not stall elections or
 * heartbeats. Everything a Ready points to is owned by the Ready (copied out of the core) and stays
 * valid until raft_advance() frees it, whatever the core does meanwhile.
 *
 * OWNERSHIP. The core copies everything it is given (messages, proposal data, restore state): the
 * caller may free or reuse its buffers as soon as a call returns. Pointers returned by accessors
 * are valid until the next mutating call.
 *
 * THREADS. A raft object is not thread-safe; call it from one thread (the server's loop thread).
 *
 * MEMBERSHIP CHANGE (thesis §4.1, one server at a time). raft_propose_conf() appends a
 * RAFT_ENTRY_CONFIG entry naming the new voters and learners, in which exactly one node changes
 * its role (none, learner, voter): a node added or removed as a voter or as a learner, a learner
 * promoted, a voter demoted. The voters then differ by at most one node, so any two majorities
 * overlap; learners never count. A learner receives the log like a follower (and its snapshot
 * installs) and acknowledges it, so it can be promoted once caught up (thesis §4.2.1). A
 * learner that hears from no leader for an election timeout asks the voters with a pre-vote
 * request it never counts: that is how a removed learner, to which the leader sends nothing from
 * the moment the change is in its log, learns its removal (the leader answers it as it answers a
 * removed voter's campaign, below). Every node uses a configuration as soon as the entry is in its log, not
 * when it commits (so a truncated entry takes its configuration away again, and raft_get_conf()
 * may name an uncommitted configuration). The leader takes one change at a time, and only once
 * an entry of its own term is committed (the fix to the single-server algorithm Ongaro posted in
 * 2015). A leader that removes itself keeps leading, without counting itself, until the change
 * commits, then steps down. A node outside its configuration (removed, or started with an empty
 * or foreign conf to be added later) follows any leader and never campaigns, except while its
 * removal is uncommitted as far as it knows: it may then hold the only log the others would
 * elect. A leader answers a vote request from a node outside its configuration with what that
 * node lacks to know its removal committed (the entries, or the snapshot), so it stops.
 * Run membership changes with pre_vote on (raftkvd runs it and check_quorum): a node whose log
 * lags a change, or a removed node that never learnt of it, campaigns in a configuration that
 * is not the cluster's. Without pre-vote its terms rise for nothing: it can duel for seconds with
 * the candidate that could win, and, without check_quorum either, depose leaders (thesis §4.2.3).
 * Configuration
 * entries reach the caller like any other, in rd.entries and rd.committed: raftkv reads the
 * members' addresses from their context (raft_codec_conf_decode). A snapshot's meta must carry
 * the configuration at its index: raft_conf_at().
 *
 * ERRORS. Functions return 0 or a negative RAFT_E* code; raft_strerror() names it. Bad input from
 * the network (a message for another node, a stale term) is not an error: it is ignored or answered
 * as Raft says, and counted.
 */
#ifndef RAFTKV_RAFT_H
#define RAFTKV_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_id;    /* node id; 0 means "none" */
typedef uint64_t raft_term;  /* term; 0 only before the first election */
typedef uint64_t raft_index; /* log index; the first entry has index 1; 0 means "none" */

enum {
    RAFT_OK = 0,
    RAFT_ENOMEM = -1,     /* allocation failed; the core is unchanged */
    RAFT_EINVAL = -2,     /* bad argument (names it in the caller's context) */
    RAFT_ENOTLEADER = -3, /* proposal on a non-leader; raft_leader() says who leads, if known */
    RAFT_ENOLEADER = -4,  /* read on a follower that knows no leader */
    RAFT_ETOOBIG = -5,    /* proposal larger than raft_config.max_entry_bytes */
    RAFT_EBUSY = -6,      /* too many uncommitted bytes (max_uncommitted_bytes); retry later */
    RAFT_ECORRUPT = -7,   /* restore state is inconsistent (gap in entries, decreasing terms, ...) */
    RAFT_ECONFBUSY = -8,  /* a configuration change is uncommitted, or the new leader has not
                             committed an entry of its term yet; retry later */
};
const char *raft_strerror(int rc);

/* Hard limit on cluster size; keeps configurations fixed-size and serializable. */
#define RAFT_MAX_NODES 16

typedef enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
} raft_role;
const char *raft_role_name(raft_role role);

typedef enum raft_entry_type {
    RAFT_ENTRY_NOOP = 0,   /* appended by every new leader (Raft §8); applies as nothing */
    RAFT_ENTRY_NORMAL = 1, /* opaque state-machine command */
    RAFT_ENTRY_CONFIG = 2, /* membership change: raft_codec_conf_encode(new voters, context) */
    RAFT_ENTRY_FAST = 3,   /* nil-externalizing write (FAST PATH below): RAFT_FAST_HEADER bytes of
                              (session, seq), then the opaque command */
    RAFT_ENTRY_BARRIER = 4, /* a leader's fast-path recovery is in the log; applies as nothing */
} raft_entry_type;

typedef struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type;        /* raft_entry_type */
    uint32_t len;        /* bytes in data */
    const uint8_t *data; /* len bytes; NULL when len == 0 */
} raft_entry;

/* A cluster configuration: the voters, and the learners -- members the leader replicates to that
 * never vote, never campaign and never count towards a quorum (a node catching up before it is
 * made a voter). Disjoint sets, at most RAFT_MAX_NODES ids in all. Carried in snapshots and
 * configuration entries. */
typedef struct raft_conf {
    uint32_t n_voters;
    uint32_t n_learners;
    raft_id voters[RAFT_MAX_NODES];
    raft_id learners[RAFT_MAX_NODES];
} raft_conf;

/* The members -- the voters, then the learners -- one by one: the i-th of raft_conf_members(). */
static inline uint32_t raft_conf_members(const raft_conf *conf)
{
    return conf->n_voters + conf->n_learners;
}
static inline raft_id raft_conf_member(const raft_conf *conf, uint32_t i)
{
    return i < conf->n_voters ? conf->voters[i] : conf->learners[i - conf->n_voters];
}

/* What a snapshot covers. The snapshot bytes belong to the caller; the core tracks only this. */
typedef struct raft_snapshot_meta {
    raft_index index; /* last index included; 0 = no snapshot */
    raft_term term;   /* term of that entry */
    raft_conf conf;
} raft_snapshot_meta;

/* Persistent state on all servers (Raft Figure 2), plus the commit index so a restart re-applies
 * less; commit is a hint: losing it is safe, it is never ahead of what a majority stored. */
typedef struct raft_hard_state {
    raft_term term;
    raft_id vote;
    raft_index commit;
} raft_hard_state;

typedef enum raft_msg_type {
    RAFT_MSG_APPEND = 1,         /* AppendEntries */
    RAFT_MSG_APPEND_RESP = 2,    /* its answer */
    RAFT_MSG_VOTE = 3,           /* RequestVote */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PREVOTE = 5,        /* pre-vote (thesis §9.6): does not change anybody's term */
    RAFT_MSG_PREVOTE_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,      /* leader liveness + commit + ReadIndex confirmation round */
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_SNAPSHOT = 9,       /* InstallSnapshot: the transport attaches the snapshot bytes */
    RAFT_MSG_READ_INDEX = 10,    /* follower asks the leader for a read index */
    RAFT_MSG_READ_INDEX_RESP = 11,
    RAFT_MSG_FAST_COLLECT = 12,  /* a new leader asks for a node's d-log (FAST PATH) */
    RAFT_MSG_FAST_STATE = 13,    /* the d-log: entries of type FAST, term = term they were taken */
} raft_msg_type;
#define RAFT_MSG_TYPE_MAX 13
const char *raft_msg_type_name(int type);

/*
 * One message. Field use by type (unused fields are 0):
 *   APPEND           index/log_term = previous entry; entries; commit = leader commit
 *   APPEND_RESP      reject=0: index = last index now matching the leader
 *                    reject=1: index = the rejected prev index; hint_index/hint_term = where the
 *                    leader should continue (conflicting term and its first index, or the
 *                    follower's last index + 1 with hint_term 0)
 *   VOTE, PREVOTE    index/log_term = candidate's last entry; term = the term it campaigns for
 *   *VOTE_RESP       reject = vote refused
 *   HEARTBEAT        commit = min(leader commit, follower match); context = read confirmation seq
 *   HEARTBEAT_RESP   context = echo
 *   SNAPSHOT         snapshot = what to install (the bytes travel beside the message). The meta
 *                    may name a snapshot this leader itself received and has not installed yet:
 *                    the transport must keep incoming snapshot bytes until they are installed, and
 *                    call raft_report_snapshot_failed when it cannot find them.
 *   READ_INDEX       context = the follower's request id
 *   READ_INDEX_RESP  context = echo, index = read index; reject = 1 if the leader refused
 *   FAST_COLLECT     context = the leader's collection round
 *   FAST_STATE       context = echo; entries = every entry of the sender's d-log, in the order
 *                    it took them (index 0, term = the term it was in)
 */
typedef struct raft_msg {
    uint8_t type; /* raft_msg_type */
    raft_id from;
    raft_id to;
    raft_term term;
    raft_term log_term;
    raft_index index;
    raft_index commit;
    bool reject;
    raft_index hint_index;
    raft_term hint_term;
    uint64_t context;
    uint32_t n_entries;
    const raft_entry *entries;
    raft_snapshot_meta snapshot;
} raft_msg;

/* A read whose index is known: answer it once the state machine has applied `index`. */
typedef struct raft_read_state {
    uint64_t request_id; /* as given to raft_read_index */
    raft_index index;
} raft_read_state;

typedef struct raft_ready {
    /* Soft state, for logging and routing; not to be persisted. */
    raft_role role;
    raft_id leader;

    /* To persist, in this order, durably, before sending msgs (see the ordering rule). */
    raft_snapshot_meta snapshot; /* index != 0: install the snapshot that came with it; the
                                    stored log then restarts after snapshot.index */
    raft_index truncate_from;    /* != 0: drop stored entries with index >= truncate_from first */
    const raft_entry *entries;
    size_t n_entries;
    bool hard_state_changed;
    raft_hard_state hard_state;
    /* False when nothing above needs an fsync: no snapshot, truncation or entries, and term and
     * vote unchanged -- only the commit index moved. The caller may then write the hard state
     * without syncing, or not at all (commit is a hint, re-learnt from the leader after a
     * restart), and go straight to steps 4-5: no fsync per commit. */
    bool must_sync;

    /* To send once the above is durable. */
    const raft_msg *msgs;
    size_t n_msgs;

    /* To apply, in order, after the above is durable. */
    const raft_entry *committed;
    size_t n_committed;

    /* Reads whose index is now known (see raft_read_index). */
    const raft_read_state *reads;
    size_t n_reads;

    /* FAST PATH: d-log entries taken since the last Ready, to persist with step 3 (they count in
     * must_sync); once this Ready is durable the caller answers each one's client. Stored d-log
     * entries taken in a term below fast_drop_below (!= 0) may be deleted. */
    const raft_entry *fast;
    size_t n_fast;
    raft_term fast_drop_below;

    void *internal_; /* owned storage; freed by raft_advance */
} raft_ready;

/* Test-only injected bugs, honoured only when the core is built with RAFT_TEST_BUGS. They exist
 * to prove that the simulator's checkers can fail. */
enum {
    RAFT_BUG_COMMIT_OLD_TERM = 1u << 0,   /* count replicas of old-term entries (Figure 8) */
    RAFT_BUG_VOTE_ANY_LOG = 1u << 1,      /* grant votes without the up-to-date log check */
    RAFT_BUG_DOUBLE_VOTE = 1u << 2,       /* vote for every candidate of a term */
    RAFT_BUG_READ_NO_CONFIRM = 1u << 3,   /* answer ReadIndex without a heartbeat round */
    RAFT_BUG_SKIP_PREV_CHECK = 1u << 4,   /* accept appends without the log-matching check */
    RAFT_BUG_COMMIT_REGRESS = 1u << 5,    /* follower takes the leader's commit even if lower */
    RAFT_BUG_NO_HEARTBEAT = 1u << 6,      /* leader never retries a lost append (liveness) */
    RAFT_BUG_CONF_ANY = 1u << 7,          /* take any new voters, not one change at a time */
    RAFT_BUG_FAST_NO_RECOVERY = 1u << 8,  /* a new leader recovers no d-log entry */
    RAFT_BUG_FAST_READ_COMMIT = 1u << 9,  /* read index = commit, ignoring fast entries */
    RAFT_BUG_FAST_PROPOSE_EARLY = 1u << 10, /* take proposals while recovering d-logs */
    RAFT_BUG_FAST_CONF_CHANGE = 1u << 11,   /* take fast writes while a change is uncommitted */
    RAFT_BUG_LEARNER_CAMPAIGNS = 1u << 12,  /* a learner campaigns like a voter */
};

typedef struct raft_config {
    raft_id id;          /* this node; nonzero */
    raft_conf conf;      /* initial voters, used when neither the log nor a snapshot names newer
                            ones. May be empty or omit id: a node waiting to be added */
    uint32_t election_tick;  /* election timeout is random in [election_tick, election_tick_max) */
    uint32_t election_tick_max; /* > election_tick; 0 = 2 * election_tick */
    uint32_t heartbeat_tick; /* leader sends heartbeats every heartbeat_tick ticks; < election_tick */
    uint64_t seed;       /* randomness for election timeouts */
    bool pre_vote;       /* thesis §9.6 */
    bool check_quorum;   /* leader steps down without a majority for check_quorum_tick ticks */
    uint32_t check_quorum_tick;       /* >= election_tick; 0 = election_tick (thesis §6.2). Longer
                                         keeps a leader whose followers went silent for a while
                                         (a follower blocked on a slow disk) */
    uint32_t max_inflight_msgs;       /* appends in flight per follower while streaming; >= 1 */
    uint32_t max_entries_per_msg;     /* batching limit; >= 1 */
    uint64_t max_bytes_per_msg;       /* batching limit (an entry larger than it goes alone) */
    uint32_t max_entry_bytes;         /* proposals larger get RAFT_ETOOBIG; 0 = no limit */
    uint64_t max_uncommitted_bytes;   /* leader refuses proposals past it; 0 = no limit */
    uint32_t snapshot_timeout_tick;   /* a snapshot send not answered in this many ticks is
                                         retried; 0 = 10 * election_tick */
    uint32_t test_bugs;               /* RAFT_BUG_* bits; ignored without RAFT_TEST_BUGS */
    bool fast_path;                   /* the nil-externality fast path (FAST PATH); off by
                                         default. Every node of a cluster must agree */
} raft_config;

/* Sensible defaults: election 10, heartbeat 1, pre-vote and check-quorum on, window 256 msgs,
 * 512 entries / 1 MiB per message, 16 MiB entries, 256 MiB uncommitted. Caller sets id, conf, seed. */
void raft_config_default(raft_config *cfg);

/* What a restarting node read back from its storage. entries must be contiguous, starting at
 * snapshot.index + 1 (or 1 without snapshot). applied: the index the state machine already
 * reflects (the snapshot index after loading a snapshot); entries after it are re-delivered in
 * rd.committed up to hard_state.commit. */
typedef struct raft_restore {
    raft_hard_state hard_state;
    raft_snapshot_meta snapshot;
    const raft_entry *entries;
    size_t n_entries;
    raft_index applied;
    const raft_entry *fast; /* the stored d-log (FAST PATH), in the order it was taken */
    size_t n_fast;
} raft_restore;

typedef struct raft raft;

/* Creates a core. restore may be NULL for a brand-new node. On success *out owns a new core (free
 * with raft_free); on failure nothing is allocated. RAFT_EINVAL: bad config; RAFT_ECORRUPT:
 * inconsistent restore state. */
int raft_new(const raft_config *cfg, const raft_restore *restore, raft **out);
/* Frees the core. A Ready still outstanding must be given to raft_advance first (to discard a
 * crashed node: its effects are moot, but that is what frees the Ready's storage). */
void raft_free(raft *r);

/* Feeds one message addressed to this node. Any other node may send: a leader or candidate may
 * be a voter this node has not heard of yet. Dropped (counted in raft_stats): messages for
 * another node or from id 0 or from itself, of unknown type, a non-voter's answers to the
 * leader, a snapshot whose configuration no node could run, an append carrying a configuration
 * entry that does not decode. */
int raft_step(raft *r, const raft_msg *msg);

/* Advances logical time by one tick. */
void raft_tick(raft *r);

/* Appends a command to the leader's log. On success index and term (may be NULL) say where it went:
 * the command is committed once an applied entry has that index AND that term. */
int raft_propose(raft *r, uint8_t type, const void *data, uint32_t len, raft_index *index,
                 raft_term *term);

/* Appends a configuration change (see MEMBERSHIP CHANGE): `next` is the whole new configuration,
 * one node's role changed from raft_get_conf(); ctx (ctx_len bytes, copied) travels with it
 * in the entry. RAFT_ENOTLEADER; RAFT_EINVAL: next is not a valid one-node change;
 * RAFT_ECONFBUSY: a change is still uncommitted, or this leader has not committed an entry of
 * its term yet; RAFT_ETOOBIG: the encoded entry is above max_entry_bytes. index and term as for
 * raft_propose. */
int raft_propose_conf(raft *r, const raft_conf *next, const void *ctx, uint32_t ctx_len,
                      raft_index *index, raft_term *term);

/*
 * FAST PATH (docs/NILEXT.md): a nil-externalizing write -- one whose reply reveals no state -- is
 * sent by its client to every voter at once. raft_fast_accept takes it on any node: a follower
 * that knows its term's leader keeps it in its d-log; the leader appends it to its log at once
 * (and keeps a d-log copy). Both hand it out in rd.fast; once that Ready is durable the caller
 * answers the client with the ack. The client counts acks of one term: it is done when every
 * voter of ack.conf answered, the leader (ack.index != 0) among them. A new leader first asks a
 * majority for their d-logs (FAST_COLLECT), appends the entries found in every answer in its
 * own d-log's order, then a BARRIER entry; until then it takes no fast write, no proposal and
 * serves no read (RAFT_EBUSY / reads wait). A read's index covers every fast entry the leader
 * appended, and the read is released once that index is committed (a later leader could put
 * another entry at an index not committed yet). The state machine must skip a FAST entry whose (session, seq) it
 * has applied: recovery may append an entry twice.
 */
#define RAFT_FAST_HEADER 16
/* Writes the (session, seq) header a fast write's data starts with. */
void raft_fast_header(uint8_t out[RAFT_FAST_HEADER], uint64_t session, uint64_t seq);
/* Reads it back from an entry of type RAFT_ENTRY_FAST; false if it is not one. */
bool raft_fast_id(const raft_entry *e, uint64_t *session, uint64_t *seq);

typedef struct raft_fast_ack {
    raft_term term;   /* the term the node took it in: only acks of one term count together */
    raft_id leader;   /* that term's leader, as the node knows it */
    raft_index index; /* on the leader: where it went in the log; 0 on a follower */
    raft_conf conf;   /* the voters whose acks the client needs (the leader's is the one) */
} raft_fast_ack;

/* Takes a fast write: data (len >= RAFT_FAST_HEADER, copied) = header + command. RAFT_EINVAL:
 * the fast path is off or the header is missing; RAFT_ENOLEADER: no leader known in this term (a
 * candidate, a node just restarted); RAFT_EBUSY: a leader still recovering or with a
 * configuration change uncommitted, too many uncommitted bytes, or a d-log full (the smaller of
 * max_uncommitted_bytes and 64 MiB: it travels in one message); RAFT_ETOOBIG. */
int raft_fast_accept(raft *r, const void *data, uint32_t len, raft_fast_ack *ack);

/* Asks for a linearizable read. On a leader the confirming heartbeat round leaves with the next
 * messages taken (raft_take_messages or a Ready), so the reads asked in between share one round.
 * Later a Ready carries {request_id, index}: the read may be served
 * once the local state machine has applied index. The read may also be silently dropped (leader
 * change, lost message): callers time out. RAFT_ENOLEADER: a follower knows no leader. */
int raft_read_index(raft *r, uint64_t request_id);

/* The caller holds a snapshot of the state machine at `index`, which its state machine has applied
 * and whose entries a Ready has handed to storage (so index <= raft_applied_index(r) and
 * index <= raft_handed_index(r), else RAFT_EINVAL: entries applied early may be ahead of the
 * stored log; take the snapshot right after raft_ready_get, or later). The core forgets
 * entries up to index - trailing, keeping `trailing` so slow followers catch up from the log. */
int raft_compact(raft *r, raft_index index, raft_index trailing);

/* Tells the leader that sending a snapshot to `peer` failed, so it retries later. */
void raft_report_snapshot_failed(raft *r, raft_id peer);

/* Campaign now (tests, leadership hand-over): as if the election timeout fired. */
void raft_campaign(raft *r);

/* True when a Ready has something to do. Always false while a Ready is outstanding (taken with
 * raft_ready_get and not yet advanced): work done meanwhile waits for the next one, which is how
 * proposals made during a disk write are batched into the next write (group commit). */
bool raft_has_ready(const raft *r);

/* Moves the messages that may be sent before any persistence (see SENDING EARLY) out of the core,
 * in the order they were produced; the others stay for the next Ready. On a leader it first turns
 * the proposals made since the last call into appends (batched), so followers write them while
 * the leader's own disk does. Returns how many; *msgs
 * (NULL when 0) is owned by the caller until raft_messages_free(*msgs, n). May be called at any
 * time, including while a Ready is outstanding. */
size_t raft_take_messages(raft *r, raft_msg **msgs);
void raft_messages_free(raft_msg *msgs, size_t n);
/* Moves the committed entries not yet handed out (see APPLYING EARLY) out of the core, in index
 * order; returns how many. *entries (NULL when 0) is one block owned by the caller: free(*entries).
 * Returns 0 while a snapshot is pending or outstanding. May be called at any time. */
size_t raft_take_committed(raft *r, raft_entry **entries);
/* Moves the read states whose index is known out of the core (see raft_read_index); returns how
 * many. *reads (NULL when 0) is owned by the caller: free(*reads). May be called at any time. */
size_t raft_take_reads(raft *r, raft_read_state **reads);
void raft_ready_get(raft *r, raft_ready *rd);
void raft_advance(raft *r, raft_ready *rd);

/* Read-only accessors. */
raft_id raft_self(const raft *r);
raft_role raft_get_role(const raft *r);
raft_term raft_get_term(const raft *r);
raft_id raft_get_vote(const raft *r);
raft_id raft_get_leader(const raft *r);
raft_index raft_commit_index(const raft *r);
raft_index raft_applied_index(const raft *r);   /* last index handed out to apply */
raft_index raft_handed_index(const raft *r);    /* last entry handed out in rd.entries */
raft_index raft_first_index(const raft *r);     /* first entry still in the log */
raft_index raft_last_index(const raft *r);
raft_term raft_term_at(const raft *r, raft_index index); /* 0 if unknown (compacted or beyond) */
const raft_entry *raft_entry_at(const raft *r, raft_index index); /* NULL if not in memory */
raft_snapshot_meta raft_get_snapshot(const raft *r);
const raft_conf *raft_get_conf(const raft *r); /* in force now: the newest in the log */
/* Where that configuration comes from: its entry's index, the snapshot's index, or 0 for
 * raft_config.conf. A change is uncommitted while it is above raft_commit_index(). */
raft_index raft_conf_index(const raft *r);
/* Whether id is one of conf's voters. */
bool raft_conf_has(const raft_conf *conf, raft_id id);
/* Whether id is one of conf's learners. */
bool raft_conf_has_learner(const raft_conf *conf, raft_id id);
/* Whether id is a voter or a learner of conf: a node that gets the log. */
bool raft_conf_has_member(const raft_conf *conf, raft_id id);
/* The configuration in force at index (the newest configuration entry at or before it, else the
 * snapshot's, else raft_config.conf), for the meta of a snapshot taken at index. RAFT_EINVAL when
 * index is before the latest snapshot or after the last entry. */
int raft_conf_at(const raft *r, raft_index index, raft_conf *out);

/* Leader's view of a follower or learner (for INFO/status). Returns false for unknown peers or on
 * followers. */
typedef struct raft_progress_info {
    raft_index match;
    raft_index next;
    int state; /* 0 probe, 1 replicate, 2 snapshot */
    bool recent_active;
    uint32_t idle_ticks; /* ticks since the leader last heard from it (0 for the leader itself;
                            0 too for a voter just added, whose match is then 0) */
} raft_progress_info;
bool raft_get_progress(const raft *r, raft_id peer, raft_progress_info *out);

typedef struct raft_stats {
    uint64_t msgs_dropped; /* see raft_step */
    uint64_t elections;    /* campaigns started (pre-vote included) */
    uint64_t leader_changes;
} raft_stats;
raft_stats raft_get_stats(const raft *r);
/* FAST PATH: fast writes in this node's d-log (taken, not known committed). */
size_t raft_fast_pending(const raft *r);
/* The d-log itself, in the order taken (for rewriting the stored one): *entries is valid until
 * the next mutating call. */
size_t raft_fast_dlog(const raft *r, const raft_entry **entries);
/* Drops the d-log entries for which done(ctx, session, seq) says the state machine is past
 * them (it applied that seq of the session or a later one: the write is in the log for good, or
 * its client gave up on it), e.g. writes a follower took that no leader ordered yet, or writes
 * a snapshot covered. Returns how many were dropped. The stored d-log sheds them at its next
 * rewrite. */
size_t raft_fast_prune(raft *r, bool (*done)(void *ctx, uint64_t session, uint64_t seq),
                       void *ctx);

#endif /* RAFTKV_RAFT_H */
