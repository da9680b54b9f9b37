/*
 * raft.c -- the Raft protocol: elections (with pre-vote and check-quorum), log replication (with
 * fast back-off, probing, pipelining and batching), commitment, snapshots, ReadIndex and
 * single-server membership change.
 *
 * Section numbers refer to the Raft paper ("In Search of an Understandable Consensus Algorithm",
 * extended version) and to Ongaro's thesis ("Consensus: Bridging Theory and Practice").
 *
 * State kept here, beyond Figure 2:
 *  - handed_index: entries <= handed_index were given to the caller in some Ready for persistence;
 *    persisted_index: the caller confirmed (raft_advance) that entries <= it are durable. Only
 *    persisted entries count toward the leader's own vote in the commit quorum.
 *  - pending_truncate: a follower dropped entries that may already be on the caller's disk; the
 *    next Ready tells the caller to drop them too (before appending the replacements).
 *  - per follower progress: PROBE (one append at a time until the follower's log position is
 *    found), REPLICATE (stream up to max_inflight_msgs appends), SNAPSHOT (waiting for an install).
 *  - read queue: ReadIndex requests waiting for a heartbeat round; each carries a sequence number
 *    and a follower's heartbeat response acknowledges every read up to the number it echoes.
 *  - conf_index: where the configuration in force came from (the newest configuration entry in
 *    the log, or the snapshot's index, or 0 for raft_config.conf); a change is pending while it is
 *    above the commit index. prs and votes are aligned with conf.voters and remapped on a change.
 *
 * Invariants (asserted where cheap): commit_index never decreases; applied <= commit; a leader
 * never truncates its own log; entries committed are never truncated.
 */
#include "raft.h"
#include "raft_codec.h"
#include "raft_log.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#ifdef RAFT_TEST_BUGS
#define BUG(r, bit) (((r)->cfg.test_bugs & (bit)) != 0)
#else
#define BUG(r, bit) 0
#endif

enum { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

typedef struct progress {
    raft_id id;
    raft_index match;
    raft_index next;
    int state;
    bool probe_sent;          /* PROBE: an append is outstanding; wait for an answer or a beat */
    raft_index pending_snapshot;
    uint32_t snapshot_ticks;
    bool recent_active;       /* heard from since the last check-quorum round */
    uint32_t idle_ticks;      /* leader ticks since it last heard from this follower */
    uint64_t read_ack;        /* highest ReadIndex sequence this follower confirmed */
    raft_index *inflight;     /* ring of last indexes of appends in flight (REPLICATE) */
    uint32_t inflight_start;
    uint32_t inflight_count;
} progress;

typedef struct read_req {
    uint64_t request_id;
    raft_id from;
    raft_index index;
    uint64_t seq;
} read_req;

/* A growable array of T; grow() keeps the array unchanged on failure. */
#define VEC(T)                                                                                     \
    struct {                                                                                       \
        T *items;                                                                                  \
        size_t len, cap;                                                                           \
    }

typedef VEC(raft_msg) msg_vec;
typedef VEC(read_req) read_vec;
typedef VEC(raft_read_state) read_state_vec;
typedef VEC(raft_entry) entry_vec; /* FAST PATH: each entry's data is its own allocation */

static int vec_grow(void **items, size_t *cap, size_t len, size_t item_size)
{
    if (len < *cap)
        return RAFT_OK;
    size_t cap2 = *cap ? *cap * 2 : 16;
    void *grown = realloc(*items, cap2 * item_size);
    if (!grown)
        return RAFT_ENOMEM;
    *items = grown;
    *cap = cap2;
    return RAFT_OK;
}
#define VEC_PUSH(v, value)                                                                         \
    (vec_grow((void **)&(v).items, &(v).cap, (v).len, sizeof(*(v).items)) == RAFT_OK               \
         ? ((v).items[(v).len++] = (value), RAFT_OK)                                               \
         : RAFT_ENOMEM)

struct raft {
    raft_config cfg;
    raft_conf conf;
    raft_index conf_index;        /* see the header comment */
    progress prs[RAFT_MAX_NODES]; /* aligned with conf.voters, then conf.learners (members());
                                     the slots past them are spare */

    /* Persistent state (Figure 2) and what was last handed out of it. */
    raft_term term;
    raft_id vote;
    raft_index commit;
    raft_hard_state handed_hs;

    raft_log log;
    raft_snapshot_meta snapshot;  /* latest snapshot known to the caller */
    raft_snapshot_meta pending_snapshot; /* received, to hand out in the next Ready */
    raft_index handed_index;
    raft_index persisted_index;
    raft_index pending_truncate;
    raft_index applied;

    raft_role role;
    raft_id leader;
    uint32_t election_elapsed;
    uint32_t heartbeat_elapsed;
    uint32_t quorum_elapsed; /* leader: ticks since the last check-quorum round */
    uint32_t randomized_timeout;
    uint64_t rng;
    uint8_t votes[RAFT_MAX_NODES]; /* 0 unknown, 1 granted, 2 refused */

    bool committed_in_term; /* leader: an entry of its own term is committed (ReadIndex §6.4) */
    uint32_t removed_snapshot_ticks; /* leader: ticks until tell_removed may send a snapshot */
    bool bcast_pending;     /* leader: proposals appended since the last broadcast */
    bool read_bcast_pending; /* leader: reads queued since the last heartbeat broadcast */
    uint64_t uncommitted_bytes;
    uint64_t read_seq;
    read_vec reads;         /* leader: waiting for confirmation, in seq order */
    read_vec reads_waiting; /* leader: waiting for the first commit of the term */

    msg_vec msgs;
    read_state_vec read_states;

    /* FAST PATH (docs/NILEXT.md). */
    entry_vec dlog;          /* fast writes taken and not known committed, in the order taken */
    uint64_t dlog_bytes;     /* their data: bounded by max_uncommitted_bytes */
    entry_vec dlog_new;      /* ... those taken since the last Ready (copies, to persist) */
    raft_term dlog_drop;     /* stored d-log entries below this term may go (next Ready) */
    bool fast_recovering;    /* leader: collecting d-logs; no fast write, proposal or read yet */
    uint64_t fast_round;     /* leader: the collection round (FAST_COLLECT context) */
    uint32_t fast_elapsed;   /* leader: ticks since the collection was last sent */
    bool fast_answered[RAFT_MAX_NODES]; /* aligned with conf.voters */
    entry_vec fast_answers[RAFT_MAX_NODES];
    raft_index fast_last;    /* leader: last FAST or BARRIER entry it appended in its term */

    bool ready_outstanding;
    bool ready_snapshot; /* the outstanding Ready installs a snapshot: nothing is applied early */
    raft_stats stats;
};

/* Storage a Ready owns: freed by raft_advance. */
typedef struct ready_owned {
    msg_vec msgs;
    raft_entry *entries;   /* block: entry array followed by their data */
    raft_entry *committed; /* idem */
    raft_read_state *reads;
    raft_entry *fast;      /* block, like entries */
    raft_index last_index; /* last entry of rd.entries and its term, for advance */
    raft_term last_term;
} ready_owned;

/* ---------------------------------------------------------------------------------------------- */
/* Small helpers */

const char *raft_strerror(int rc)
{
    switch (rc) {
    case RAFT_OK: return "ok";
    case RAFT_ENOMEM: return "out of memory";
    case RAFT_EINVAL: return "invalid argument";
    case RAFT_ENOTLEADER: return "not the leader";
    case RAFT_ENOLEADER: return "no known leader";
    case RAFT_ETOOBIG: return "entry larger than max_entry_bytes";
    case RAFT_EBUSY: return "too many uncommitted bytes";
    case RAFT_ECORRUPT: return "inconsistent state";
    case RAFT_ECONFBUSY: return "a configuration change is in progress";
    default: return "unknown error";
    }
}

const char *raft_role_name(raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "?";
}

const char *raft_msg_type_name(int type)
{
    static const char *names[] = {"?",         "append",      "append-resp",   "vote",
                                  "vote-resp", "prevote",     "prevote-resp",  "heartbeat",
                                  "heartbeat-resp", "snapshot", "read-index", "read-index-resp",
                                  "fast-collect", "fast-state"};
    _Static_assert(sizeof names / sizeof names[0] == RAFT_MSG_TYPE_MAX + 1, "a name per type");
    return (type >= 1 && type <= RAFT_MSG_TYPE_MAX) ? names[type] : "?";
}

/* splitmix64: tiny, good enough for election jitter, fully determined by the seed. */
static uint64_t rng_next(raft *r)
{
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void reset_randomized_timeout(raft *r)
{
    uint32_t spread = r->cfg.election_tick_max - r->cfg.election_tick;
    r->randomized_timeout = r->cfg.election_tick + (uint32_t)(rng_next(r) % spread);
}

static size_t quorum(const raft *r)
{
    return r->conf.n_voters / 2 + 1;
}

/* The only voter is this node: nothing needs anybody else's confirmation. */
static bool alone(const raft *r)
{
    return r->conf.n_voters == 1 && r->conf.voters[0] == r->cfg.id;
}

static int voter_slot(const raft *r, raft_id id);

static bool is_voter(const raft *r)
{
    return voter_slot(r, r->cfg.id) >= 0;
}

/* Voters and learners: the nodes the leader replicates to (prs[0 .. members - 1]). */
static uint32_t members(const raft *r)
{
    return raft_conf_members(&r->conf);
}

static progress *progress_of(raft *r, raft_id id)
{
    for (uint32_t i = 0; i < members(r); i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static int voter_slot(const raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->conf.n_voters; i++)
        if (r->conf.voters[i] == id)
            return (int)i;
    return -1;
}

static raft_term last_term(const raft *r)
{
    return raft_log_term(&r->log, raft_log_last(&r->log));
}

/* entries copied into one block (array, then data): what a message or a Ready hands out. NULL
 * when out of memory. */
static raft_entry *entries_block(const raft_entry *entries, size_t n)
{
    size_t bytes = n * sizeof(raft_entry);
    for (size_t i = 0; i < n; i++)
        bytes += entries[i].len;
    raft_entry *block = malloc(bytes);
    if (!block)
        return NULL;
    uint8_t *data = (uint8_t *)(block + n);
    for (size_t i = 0; i < n; i++) {
        block[i] = entries[i];
        block[i].data = NULL;
        if (entries[i].len > 0) {
            memcpy(data, entries[i].data, entries[i].len);
            block[i].data = data;
            data += entries[i].len;
        }
    }
    return block;
}

/* Queues a message; the entries given are copied into one block owned by the message. */
static void send(raft *r, raft_msg m, const raft_entry *entries, uint32_t n_entries)
{
    m.from = r->cfg.id;
    if (m.term == 0)
        m.term = r->term;
    m.n_entries = 0;
    m.entries = NULL;
    if (n_entries > 0) {
        m.entries = entries_block(entries, n_entries);
        if (!m.entries)
            return; /* as if the network lost it: Raft retries */
        m.n_entries = n_entries;
    }
    if (VEC_PUSH(r->msgs, m) != RAFT_OK)
        free((void *)m.entries);
}

static void free_msgs(msg_vec *v)
{
    for (size_t i = 0; i < v->len; i++)
        free((void *)v->items[i].entries);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

static void push_read_state(raft *r, uint64_t request_id, raft_index index)
{
    raft_read_state rs = {.request_id = request_id, .index = index};
    (void)VEC_PUSH(r->read_states, rs); /* on ENOMEM the read is dropped; callers time out */
}

/* ---------------------------------------------------------------------------------------------- */
/* Progress and inflight window */

static void inflight_reset(progress *pr)
{
    pr->inflight_start = 0;
    pr->inflight_count = 0;
}

static bool inflight_full(const raft *r, const progress *pr)
{
    return pr->inflight_count >= r->cfg.max_inflight_msgs;
}

static void inflight_add(const raft *r, progress *pr, raft_index last)
{
    assert(!inflight_full(r, pr));
    uint32_t slot = (pr->inflight_start + pr->inflight_count) % r->cfg.max_inflight_msgs;
    pr->inflight[slot] = last;
    pr->inflight_count++;
}

/* Frees every inflight append whose last index is <= index (acknowledged). */
static void inflight_free_to(const raft *r, progress *pr, raft_index index)
{
    while (pr->inflight_count > 0 && pr->inflight[pr->inflight_start] <= index) {
        pr->inflight_start = (pr->inflight_start + 1) % r->cfg.max_inflight_msgs;
        pr->inflight_count--;
    }
}

static void progress_become_probe(progress *pr)
{
    /* After a snapshot, continue right after it; else from the known match. */
    if (pr->state == PR_SNAPSHOT) {
        raft_index from = pr->pending_snapshot > pr->match ? pr->pending_snapshot : pr->match;
        pr->next = from + 1;
    } else {
        pr->next = pr->match + 1;
    }
    pr->state = PR_PROBE;
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    inflight_reset(pr);
}

static void progress_become_replicate(progress *pr)
{
    pr->state = PR_REPLICATE;
    pr->next = pr->match + 1;
    pr->probe_sent = false;
    inflight_reset(pr);
}

/* Nothing known of the follower yet: probe from the end of the log. */
static void progress_reset(progress *pr, raft_index last, bool recent_active)
{
    pr->match = 0;
    pr->next = last + 1;
    pr->state = PR_PROBE;
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    pr->snapshot_ticks = 0;
    pr->recent_active = recent_active;
    pr->idle_ticks = 0;
    pr->read_ack = 0;
    inflight_reset(pr);
}

static bool progress_paused(const raft *r, const progress *pr)
{
    switch (pr->state) {
    case PR_PROBE: return pr->probe_sent;
    case PR_REPLICATE: return inflight_full(r, pr);
    default: return true;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Configuration */

/* A configuration the core can run: 0..RAFT_MAX_NODES distinct nonzero ids (at least one unless
 * allow_empty). */
static int validate_conf(const raft_conf *conf, bool allow_empty)
{
    bool ok = (allow_empty && raft_conf_members(conf) == 0) || raft_codec_conf_valid(conf);
    return ok ? RAFT_OK : RAFT_EINVAL;
}

/* The voters a configuration entry names; false if e is not a valid configuration entry. */
static bool entry_conf(const raft_entry *e, raft_conf *out)
{
    const uint8_t *ctx;
    uint32_t ctx_len;
    return e != NULL && e->type == RAFT_ENTRY_CONFIG && e->len > 0 &&
           raft_codec_conf_decode(e->data, e->len, out, &ctx, &ctx_len, NULL, 0) == RAFT_OK;
}

bool raft_conf_has(const raft_conf *conf, raft_id id)
{
    for (uint32_t i = 0; i < conf->n_voters; i++)
        if (conf->voters[i] == id)
            return true;
    return false;
}

bool raft_conf_has_learner(const raft_conf *conf, raft_id id)
{
    for (uint32_t i = 0; i < conf->n_learners; i++)
        if (conf->learners[i] == id)
            return true;
    return false;
}

bool raft_conf_has_member(const raft_conf *conf, raft_id id)
{
    return raft_conf_has(conf, id) || raft_conf_has_learner(conf, id);
}

/* 0 not a member, 1 learner, 2 voter. */
static int conf_role(const raft_conf *conf, raft_id id)
{
    return raft_conf_has(conf, id) ? 2 : raft_conf_has_learner(conf, id) ? 1 : 0;
}

/* Exactly one node changes its role (thesis §4.1: the voters then differ by at most one node, so
 * any two majorities overlap; learners count in none). */
static bool one_change(const raft_conf *from, const raft_conf *to)
{
    uint32_t changes = 0;
    for (uint32_t i = 0; i < raft_conf_members(to); i++) {
        raft_id id = raft_conf_member(to, i);
        changes += conf_role(from, id) != conf_role(to, id);
    }
    for (uint32_t i = 0; i < raft_conf_members(from); i++)
        changes += !raft_conf_has_member(to, raft_conf_member(from, i));
    return changes == 1;
}

/* Makes conf the one in force (it came from the entry or snapshot at `index`). Per-member state
 * follows its member: one that stays (voter or learner, in either role) keeps its progress, a
 * voter that stays keeps its vote, a new one starts probing from the end of the log. Every
 * progress slot keeps its own inflight ring (spares go to the end). */
static void set_conf(raft *r, const raft_conf *conf, raft_index index)
{
    progress old[RAFT_MAX_NODES];
    uint8_t old_votes[RAFT_MAX_NODES];
    memcpy(old, r->prs, sizeof(old));
    memcpy(old_votes, r->votes, sizeof(old_votes));
    bool used[RAFT_MAX_NODES] = {false};
    int from[RAFT_MAX_NODES];
    uint32_t n = raft_conf_members(conf);
    for (uint32_t i = 0; i < n; i++) {
        from[i] = -1;
        for (uint32_t j = 0; j < members(r); j++)
            if (!used[j] && old[j].id == raft_conf_member(conf, i)) {
                from[i] = (int)j;
                used[j] = true;
                break;
            }
    }
    memset(r->votes, 0, sizeof(r->votes));
    raft_index last = raft_log_last(&r->log);
    for (uint32_t i = 0; i < n; i++) {
        if (from[i] >= 0) {
            r->prs[i] = old[from[i]];
            if (i < conf->n_voters && (uint32_t)from[i] < r->conf.n_voters)
                r->votes[i] = old_votes[from[i]];
            continue;
        }
        uint32_t j = 0;
        while (used[j])
            j++;
        used[j] = true;
        r->prs[i] = old[j];
        r->prs[i].id = raft_conf_member(conf, i);
        progress_reset(&r->prs[i], last, true); /* a check-quorum round to answer */
    }
    uint32_t k = n;
    for (uint32_t j = 0; j < RAFT_MAX_NODES; j++)
        if (!used[j])
            r->prs[k++] = old[j];
    r->conf = *conf;
    r->conf_index = index;
}

/* The configuration in force at index (>= the snapshot's index, <= the last entry); *at says
 * where it came from. */
static raft_conf conf_at(const raft *r, raft_index index, raft_index *at)
{
    if (r->conf_index <= index) {
        *at = r->conf_index;
        return r->conf;
    }
    raft_index floor = r->snapshot.index > r->log.offset ? r->snapshot.index : r->log.offset;
    raft_conf c;
    for (raft_index i = index; i > floor; i--) {
        if (entry_conf(raft_log_get(&r->log, i), &c)) {
            *at = i;
            return c;
        }
    }
    *at = r->snapshot.index;
    return r->snapshot.index != 0 ? r->snapshot.conf : r->cfg.conf;
}

/* Who may campaign: a voter, and a node whose own removal is not committed yet. A removed node
 * or one not added yet just follows. The exception: a leader that removed itself and lost its
 * quorum before the change committed may hold the only log the remaining voters accept; if it
 * did not campaign (counting their votes, not its own), nobody could win. */
static bool promotable(const raft *r)
{
    if (is_voter(r) ||
        (BUG(r, RAFT_BUG_LEARNER_CAMPAIGNS) && raft_conf_has_learner(&r->conf, r->cfg.id)))
        return true;
    if (r->conf_index <= r->commit)
        return false;
    raft_index at;
    raft_conf before = conf_at(r, r->conf_index - 1, &at);
    return raft_conf_has(&before, r->cfg.id);
}

static void fast_recovery_clear(raft *r);
static void fast_recovery_start(raft *r);

/* ---------------------------------------------------------------------------------------------- */
/* Role changes */

static void reset_term(raft *r, raft_term term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = 0;
    }
    r->leader = 0;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->quorum_elapsed = 0;
    reset_randomized_timeout(r);
    memset(r->votes, 0, sizeof(r->votes));
    r->committed_in_term = false;
    r->bcast_pending = false;
    r->read_bcast_pending = false;
    r->reads.len = 0;
    r->reads_waiting.len = 0;
    fast_recovery_clear(r);
}

static void set_leader(raft *r, raft_id leader)
{
    if (leader != r->leader && leader != 0)
        r->stats.leader_changes++;
    r->leader = leader;
}

static void become_follower(raft *r, raft_term term, raft_id leader)
{
    reset_term(r, term);
    r->role = RAFT_FOLLOWER;
    set_leader(r, leader);
}

static void become_pre_candidate(raft *r)
{
    /* Pre-vote changes neither term nor vote (thesis §9.6): a node that cannot win disturbs no one. */
    r->role = RAFT_PRE_CANDIDATE;
    r->leader = 0;
    r->election_elapsed = 0;
    reset_randomized_timeout(r);
    memset(r->votes, 0, sizeof(r->votes));
}

static void become_candidate(raft *r)
{
    reset_term(r, r->term + 1);
    r->vote = r->cfg.id;
    r->role = RAFT_CANDIDATE;
}

static void send_append(raft *r, progress *pr, bool send_if_empty);
static void bcast_append(raft *r);
static void bcast_heartbeat(raft *r);

static void become_leader(raft *r)
{
    reset_term(r, r->term);
    r->role = RAFT_LEADER;
    set_leader(r, r->cfg.id);
    raft_index last = raft_log_last(&r->log);
    for (uint32_t i = 0; i < members(r); i++) {
        progress *pr = &r->prs[i];
        progress_reset(pr, last, pr->id == r->cfg.id); /* the others must prove it in time */
    }
    r->uncommitted_bytes = raft_log_bytes(&r->log, r->commit, last);
    /* A no-op of the new term lets the leader commit (and learn) everything before it (§5.4.2, §8). */
    if (raft_log_append(&r->log, r->term, RAFT_ENTRY_NOOP, NULL, 0) == RAFT_OK)
        bcast_append(r);
    r->fast_last = 0;
    if (r->cfg.fast_path)
        fast_recovery_start(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* Elections */

/* A vote (or pre-vote) request in `term` to every other voter, with where our log ends. */
static void ask_voters(raft *r, int type, raft_term term)
{
    for (uint32_t i = 0; i < r->conf.n_voters; i++) {
        if (r->conf.voters[i] == r->cfg.id)
            continue;
        raft_msg m = {.type = (uint8_t)type,
                      .to = r->conf.voters[i],
                      .term = term,
                      .index = raft_log_last(&r->log),
                      .log_term = last_term(r)};
        send(r, m, NULL, 0);
    }
}

static void campaign(raft *r, bool pre)
{
    r->stats.elections++;
    raft_term term;
    int type;
    if (pre) {
        become_pre_candidate(r);
        term = r->term + 1;
        type = RAFT_MSG_PREVOTE;
    } else {
        become_candidate(r);
        term = r->term;
        type = RAFT_MSG_VOTE;
    }
    int self = voter_slot(r, r->cfg.id);
    if (self >= 0)
        r->votes[self] = 1; /* (a node campaigning for its own removal counts only the others) */
    if (alone(r)) { /* a single-node cluster wins at once */
        if (pre)
            campaign(r, false);
        else
            become_leader(r);
        return;
    }
    ask_voters(r, type, term);
}

static void poll_vote(raft *r, raft_id from, bool granted)
{
    int slot = voter_slot(r, from);
    if (slot < 0 || r->votes[slot] != 0)
        return;
    r->votes[slot] = granted ? 1 : 2;
    size_t yes = 0, no = 0;
    for (uint32_t i = 0; i < r->conf.n_voters; i++) {
        yes += r->votes[i] == 1;
        no += r->votes[i] == 2;
    }
    if (yes >= quorum(r)) {
        if (r->role == RAFT_PRE_CANDIDATE)
            campaign(r, false);
        else
            become_leader(r);
    } else if (no >= quorum(r)) {
        become_follower(r, r->term, 0);
    }
}

static bool log_up_to_date(const raft *r, raft_term term, raft_index index)
{
    raft_term lt = last_term(r);
    return term > lt || (term == lt && index >= raft_log_last(&r->log));
}

static void handle_vote_request(raft *r, const raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0) ||
                    (pre && m->term > r->term);
    if (!pre && BUG(r, RAFT_BUG_DOUBLE_VOTE))
        can_vote = true;
    bool up_to_date = log_up_to_date(r, m->log_term, m->index) || BUG(r, RAFT_BUG_VOTE_ANY_LOG);
    raft_msg resp = {.type = (uint8_t)(pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP),
                     .to = m->from};
    if (can_vote && up_to_date) {
        /* A granted pre-vote answers in the candidate's future term so it counts it (§9.6). */
        resp.term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    } else {
        resp.term = r->term;
        resp.reject = true;
    }
    send(r, resp, NULL, 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* Replication: the leader's side */

static void send_snapshot(raft *r, progress *pr)
{
    if (r->snapshot.index == 0)
        return; /* cannot happen: entries are only compacted behind a snapshot */
    raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .to = pr->id, .snapshot = r->snapshot};
    pr->state = PR_SNAPSHOT;
    pr->pending_snapshot = r->snapshot.index;
    pr->snapshot_ticks = 0;
    pr->probe_sent = false;
    inflight_reset(pr);
    send(r, m, NULL, 0);
}

/* Sends the entries from pr->next on, within the batching limits; an empty append when there is
 * nothing new and send_if_empty (to probe or to carry the commit index). */
static void send_append(raft *r, progress *pr, bool send_if_empty)
{
    if (r->role != RAFT_LEADER || pr->id == r->cfg.id || progress_paused(r, pr))
        return;
    raft_index prev = pr->next - 1;
    if (prev < r->log.offset) {
        send_snapshot(r, pr);
        return;
    }
    raft_index last = raft_log_last(&r->log);
    uint32_t n = 0;
    uint64_t bytes = 0;
    while (prev + n < last && n < r->cfg.max_entries_per_msg) {
        const raft_entry *e = raft_log_get(&r->log, prev + n + 1);
        if (n > 0 && bytes + e->len > r->cfg.max_bytes_per_msg)
            break;
        bytes += e->len;
        n++;
    }
    if (n == 0 && !send_if_empty)
        return;
    raft_msg m = {.type = RAFT_MSG_APPEND,
                  .to = pr->id,
                  .index = prev,
                  .log_term = raft_log_term(&r->log, prev),
                  .commit = r->commit};
    send(r, m, n ? raft_log_get(&r->log, prev + 1) : NULL, n);
    if (pr->state == PR_REPLICATE) {
        if (n > 0) {
            pr->next = prev + n + 1; /* optimistic: stream the next batch without waiting */
            inflight_add(r, pr, prev + n);
        }
    } else {
        pr->probe_sent = true;
    }
}

static void bcast_append(raft *r)
{
    for (uint32_t i = 0; i < members(r); i++)
        send_append(r, &r->prs[i], true);
    r->bcast_pending = false;
}

/* Sends pr whatever is new, as many batches as its window takes. */
static void stream(raft *r, progress *pr)
{
    for (;;) {
        raft_index before = pr->next;
        bool was_probe = pr->state == PR_PROBE;
        send_append(r, pr, false);
        if (was_probe || pr->state != PR_REPLICATE || pr->next == before)
            return;
    }
}

/* Streams proposals made since the last Ready to followers that can take them. */
static void flush_proposals(raft *r)
{
    for (uint32_t i = 0; i < members(r); i++)
        stream(r, &r->prs[i]);
    r->bcast_pending = false;
}

static void bcast_heartbeat(raft *r)
{
    for (uint32_t i = 0; i < members(r); i++) {
        progress *pr = &r->prs[i];
        if (pr->id == r->cfg.id)
            continue;
        /* Never let a follower commit past what it is known to hold (it may hold a stale tail). */
        raft_index commit = pr->match < r->commit ? pr->match : r->commit;
        raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .to = pr->id, .commit = commit,
                      .context = r->read_seq};
        send(r, m, NULL, 0);
    }
    r->read_bcast_pending = false; /* this round confirms every read queued so far */
}

/* One heartbeat round for all the reads queued since the last one (ReadIndex batching): it
 * carries the newest read_seq, so its echoes confirm them all. */
static void flush_reads(raft *r)
{
    if (r->read_bcast_pending && r->role == RAFT_LEADER)
        bcast_heartbeat(r);
    r->read_bcast_pending = false;
}

static void release_read(raft *r, const read_req *rq)
{
    if (rq->from == r->cfg.id) {
        push_read_state(r, rq->request_id, rq->index);
    } else {
        raft_msg m = {.type = RAFT_MSG_READ_INDEX_RESP, .to = rq->from, .index = rq->index,
                      .context = rq->request_id};
        send(r, m, NULL, 0);
    }
}

/* Releases every queued read that a quorum confirmed by echoing its sequence number (§6.4). */
static void process_reads(raft *r)
{
    size_t done = 0;
    while (done < r->reads.len) {
        const read_req *rq = &r->reads.items[done];
        size_t acks = 0;
        for (uint32_t i = 0; i < r->conf.n_voters; i++)
            acks += r->prs[i].id == r->cfg.id || r->prs[i].read_ack >= rq->seq;
        /* An index past the commit is a fast entry of ours: released once it commits, so the
         * entry at that index is the one the read must see (a new leader may replace it). */
        if (acks < quorum(r) || rq->index > r->commit)
            break;
        release_read(r, rq);
        done++;
    }
    if (done > 0) {
        memmove(r->reads.items, r->reads.items + done, (r->reads.len - done) * sizeof(read_req));
        r->reads.len -= done;
    }
}

static void leader_read(raft *r, uint64_t request_id, raft_id from)
{
    read_req rq = {.request_id = request_id, .from = from, .index = r->commit};
    /* Every fast write this leader acknowledged is in its log, maybe not committed yet: a read
     * must see it, so it waits for it to apply (FAST PATH). */
    if (r->fast_last > rq.index && !BUG(r, RAFT_BUG_FAST_READ_COMMIT))
        rq.index = r->fast_last;
    if (!r->committed_in_term || r->fast_recovering) {
        /* The commit index may still lag what earlier leaders committed: wait for the no-op. */
        (void)VEC_PUSH(r->reads_waiting, rq);
        return;
    }
    if ((alone(r) && rq.index <= r->commit) || BUG(r, RAFT_BUG_READ_NO_CONFIRM)) {
        release_read(r, &rq);
        return;
    }
    rq.seq = ++r->read_seq;
    if (VEC_PUSH(r->reads, rq) == RAFT_OK)
        r->read_bcast_pending = true; /* sent with the next messages taken: reads share it */
}

/* Reads that waited for the first commit of the term and the fast-path recovery. */
static void release_waiting_reads(raft *r)
{
    if (!r->committed_in_term || r->fast_recovering)
        return;
    size_t n = r->reads_waiting.len;
    r->reads_waiting.len = 0;
    for (size_t i = 0; i < n; i++) {
        read_req rq = r->reads_waiting.items[i];
        leader_read(r, rq.request_id, rq.from);
    }
}

/* Advances the commit index to the highest index stored on a quorum -- but only by counting
 * entries of the current term (§5.4.2, Figure 8). Returns whether it moved. */
static bool maybe_commit(raft *r)
{
    raft_index matches[RAFT_MAX_NODES];
    uint32_t n = r->conf.n_voters;
    for (uint32_t i = 0; i < n; i++)
        matches[i] = r->prs[i].id == r->cfg.id ? r->persisted_index : r->prs[i].match;
    /* insertion sort, descending: n <= 16 */
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && matches[j] > matches[j - 1]; j--) {
            raft_index t = matches[j];
            matches[j] = matches[j - 1];
            matches[j - 1] = t;
        }
    raft_index q = matches[quorum(r) - 1];
    if (q <= r->commit)
        return false;
    if (raft_log_term(&r->log, q) != r->term && !BUG(r, RAFT_BUG_COMMIT_OLD_TERM))
        return false;
    uint64_t freed = raft_log_bytes(&r->log, r->commit, q);
    r->uncommitted_bytes = freed < r->uncommitted_bytes ? r->uncommitted_bytes - freed : 0;
    r->commit = q;
    if (!r->committed_in_term && raft_log_term(&r->log, q) == r->term) {
        r->committed_in_term = true;
        release_waiting_reads(r);
    }
    return true;
}

/* The leader's commit index moved: tell everyone. If it committed the configuration that removed
 * this node, step down: it was leading a cluster it is no longer part of (thesis §4.2.2). */
static void leader_commit_moved(raft *r)
{
    bcast_append(r);
    if (r->fast_last > 0)
        process_reads(r); /* reads waiting for fast entries to commit */
    if (!is_voter(r) && r->commit >= r->conf_index)
        become_follower(r, r->term, 0);
}

/* The follower's hint says where its log can match ours; returns the next index to try. */
static raft_index next_from_hint(const raft *r, const raft_msg *m)
{
    if (m->hint_term == 0)
        return m->hint_index;
    /* Skip past all of the follower's entries of the conflicting term -- unless we hold that term
     * too, in which case our entries of it may match and we resume right after our last one. */
    raft_index i = m->index < raft_log_last(&r->log) ? m->index : raft_log_last(&r->log);
    while (i > r->log.offset && raft_log_term(&r->log, i) > m->hint_term)
        i--;
    if (i > r->log.offset && raft_log_term(&r->log, i) == m->hint_term)
        return i + 1;
    return m->hint_index;
}

static void handle_append_resp(raft *r, progress *pr, const raft_msg *m)
{
    if (m->reject) {
        if (pr->state == PR_SNAPSHOT)
            return;
        if (pr->state == PR_REPLICATE) {
            if (m->index <= pr->match)
                return; /* stale */
        } else if (m->index != pr->next - 1) {
            return; /* answer to an older probe */
        }
        raft_index next = next_from_hint(r, m);
        if (next > m->index)
            next = m->index; /* the rejected index itself does not match */
        if (next <= pr->match)
            next = pr->match + 1;
        if (next < 1)
            next = 1;
        pr->state = PR_PROBE;
        inflight_reset(pr);
        pr->next = next;
        pr->probe_sent = false;
        send_append(r, pr, true);
        return;
    }
    bool was_paused = progress_paused(r, pr);
    if (m->index > pr->match) {
        pr->match = m->index;
        if (pr->next < m->index + 1)
            pr->next = m->index + 1;
    } else if (pr->state != PR_PROBE || m->index + 1 < pr->next) {
        /* Stale: nothing new learnt. Below next - 1 in probe it cannot answer the current probe
         * (a success there reports at least its prev): e.g. the answer "index 0" a follower gives
         * a stale term's heartbeat, which would otherwise restart replication at index 1. */
        return;
    }
    switch (pr->state) {
    case PR_PROBE: progress_become_replicate(pr); break;
    case PR_SNAPSHOT:
        if (pr->match >= pr->pending_snapshot) {
            progress_become_probe(pr);
            progress_become_replicate(pr);
        }
        break;
    case PR_REPLICATE: inflight_free_to(r, pr, m->index); break;
    }
    if (maybe_commit(r))
        leader_commit_moved(r);
    else if (was_paused)
        send_append(r, pr, false);
    if (r->role == RAFT_LEADER)
        stream(r, pr); /* keep the window full */
}

static void fast_answer(raft *r, const raft_msg *m);

static void step_leader(raft *r, const raft_msg *m)
{
    progress *pr = progress_of(r, m->from);
    if (pr == NULL) {
        /* Not a voter (removed, or not added yet): only its reads are served. */
        if (m->type == RAFT_MSG_READ_INDEX)
            leader_read(r, m->context, m->from);
        else
            r->stats.msgs_dropped++;
        return;
    }
    pr->recent_active = true;
    pr->idle_ticks = 0;
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP: handle_append_resp(r, pr, m); break;
    case RAFT_MSG_HEARTBEAT_RESP:
        pr->probe_sent = false;
        if (pr->state == PR_REPLICATE && inflight_full(r, pr))
            inflight_free_to(r, pr, pr->inflight[pr->inflight_start]); /* let one more through */
        /* An empty append at next - 1 repairs a follower whose appends were lost: it rejects,
         * and the leader probes back to where the follower really is. */
        if (pr->match < raft_log_last(&r->log))
            send_append(r, pr, true);
        if (m->context > pr->read_ack)
            pr->read_ack = m->context;
        process_reads(r);
        break;
    case RAFT_MSG_READ_INDEX: leader_read(r, m->context, m->from); break;
    case RAFT_MSG_FAST_STATE: fast_answer(r, m); break;
    default: break; /* votes of a finished election, stray messages */
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Replication: the follower's side */

static void commit_to(raft *r, raft_index commit)
{
    if (commit > r->commit || (BUG(r, RAFT_BUG_COMMIT_REGRESS) && commit != r->commit))
        r->commit = commit;
}

static void truncate_from(raft *r, raft_index from)
{
    assert(from > r->commit);
    raft_log_truncate(&r->log, from);
    if (from <= r->handed_index) {
        /* Already given to the caller (maybe already on disk): the next Ready drops it there. */
        if (r->pending_truncate == 0 || from < r->pending_truncate)
            r->pending_truncate = from;
        r->handed_index = from - 1;
        if (r->persisted_index >= from)
            r->persisted_index = from - 1;
    }
    if (r->conf_index >= from) {
        raft_index at;
        raft_conf c = conf_at(r, from - 1, &at);
        set_conf(r, &c, at); /* the change was never committed: its configuration goes with it */
    }
}

static void handle_append(raft *r, const raft_msg *m)
{
    raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
    for (uint32_t i = 0; i < m->n_entries; i++) {
        raft_conf c;
        if (m->entries[i].type == RAFT_ENTRY_CONFIG && !entry_conf(&m->entries[i], &c)) {
            r->stats.msgs_dropped++; /* a configuration we could not follow: refuse it all */
            return;
        }
    }
    if (m->index < r->commit) {
        /* Everything up to our commit index matches any leader's log (Leader Completeness). */
        resp.index = r->commit;
        send(r, resp, NULL, 0);
        return;
    }
    raft_index last = raft_log_last(&r->log);
    bool matches = m->index <= last && raft_log_term(&r->log, m->index) == m->log_term;
    if (BUG(r, RAFT_BUG_SKIP_PREV_CHECK) && m->index <= last)
        matches = true;
    if (!matches) {
        resp.reject = true;
        resp.index = m->index;
        if (m->index > last) {
            resp.hint_index = last + 1;
        } else {
            raft_term conflict = raft_log_term(&r->log, m->index);
            raft_index first = m->index;
            while (first - 1 > r->commit && raft_log_term(&r->log, first - 1) == conflict)
                first--;
            resp.hint_index = first;
            resp.hint_term = conflict;
        }
        send(r, resp, NULL, 0);
        return;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        raft_index index = m->index + 1 + i;
        if (index <= raft_log_last(&r->log)) {
            if (raft_log_term(&r->log, index) == e->term)
                continue; /* already have it (a duplicate or reordered append) */
            truncate_from(r, index);
        }
        if (raft_log_append(&r->log, e->term, e->type, e->data, e->len) != RAFT_OK)
            return; /* out of memory: answer nothing, the leader retries */
        raft_conf c;
        if (entry_conf(e, &c))
            set_conf(r, &c, index);
    }
    raft_index last_new = m->index + m->n_entries;
    commit_to(r, m->commit < last_new ? m->commit : last_new);
    resp.index = last_new;
    send(r, resp, NULL, 0);
}

static void handle_heartbeat(raft *r, const raft_msg *m)
{
    raft_index last = raft_log_last(&r->log);
    commit_to(r, m->commit < last ? m->commit : last);
    raft_msg resp = {.type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .context = m->context};
    send(r, resp, NULL, 0);
}

static void handle_snapshot(raft *r, const raft_msg *m)
{
    const raft_snapshot_meta *s = &m->snapshot;
    raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
    if (s->index > r->commit && validate_conf(&s->conf, false) != RAFT_OK) {
        /* No configuration we could run (an empty one would make a quorum of one). */
        r->stats.msgs_dropped++;
        return;
    }
    if (s->index <= r->commit) {
        resp.index = r->commit;
    } else if (raft_log_term(&r->log, s->index) == s->term) {
        /* We hold the snapshot's last entry: just learn that it is committed. */
        commit_to(r, s->index);
        resp.index = s->index;
    } else {
        raft_log_reset(&r->log, s->index, s->term);
        r->commit = s->index;
        r->snapshot = *s;
        r->pending_snapshot = *s;
        set_conf(r, &s->conf, s->index);
        if (r->handed_index > s->index) {
            if (r->pending_truncate == 0 || s->index + 1 < r->pending_truncate)
                r->pending_truncate = s->index + 1;
        }
        r->handed_index = s->index;
        if (r->persisted_index > s->index)
            r->persisted_index = s->index;
        resp.index = s->index;
    }
    send(r, resp, NULL, 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* Step */

/* Any other node: a leader or candidate may be a voter this node has not heard of yet (its log
 * lags the change that added it). Answers from non-voters are dropped where they arrive. */
static bool known_sender(const raft *r, raft_id id)
{
    return id != 0 && id != r->cfg.id;
}

/* A vote request from outside the leader's configuration: most likely a node it removed that does
 * not know it (it lacks the entry, or its commit), and so campaigns (see promotable) and never
 * stops, as no leader talks to it. If its log matches ours where it ends (its request says where)
 * and that is committed, the leader sends it the committed entries that follow (one batch) with
 * the commit index: once it holds and commits its removal, it stops. If its log ends before our
 * compaction point or differs from ours there, it gets our snapshot instead (at most one every
 * snapshot_timeout_tick), whose configuration it takes. Its answers are dropped. */
static void tell_removed(raft *r, const raft_msg *m)
{
    /* A member (a learner asking while cut off, say) gets what it lacks by replication. */
    if (r->role != RAFT_LEADER || raft_conf_has_member(&r->conf, m->from) ||
        m->index > r->commit)
        return;
    bool matches = m->index >= r->log.offset &&
                   raft_log_term(&r->log, m->index) == m->log_term;
    if (!matches) {
        if (r->snapshot.index > m->index && r->removed_snapshot_ticks == 0) {
            raft_msg snap = {.type = RAFT_MSG_SNAPSHOT, .to = m->from, .snapshot = r->snapshot};
            send(r, snap, NULL, 0);
            r->removed_snapshot_ticks = r->cfg.snapshot_timeout_tick;
        }
        return;
    }
    uint32_t n = 0;
    uint64_t bytes = 0;
    while (m->index + n < r->commit && n < r->cfg.max_entries_per_msg) {
        const raft_entry *e = raft_log_get(&r->log, m->index + n + 1);
        if (n > 0 && bytes + e->len > r->cfg.max_bytes_per_msg)
            break;
        bytes += e->len;
        n++;
    }
    raft_msg a = {.type = RAFT_MSG_APPEND, .to = m->from, .index = m->index,
                  .log_term = m->log_term, .commit = m->index + n};
    send(r, a, n ? raft_log_get(&r->log, m->index + 1) : NULL, n);
}

/* What a non-voter answers the leader (to tell_removed) is dropped before its term is looked
 * at: a removed node campaigning in a higher term would otherwise depose the leader. */
static bool non_voter_answer(const raft *r, const raft_msg *m)
{
    return r->role == RAFT_LEADER && !raft_conf_has_member(&r->conf, m->from) &&
           (m->type == RAFT_MSG_APPEND_RESP || m->type == RAFT_MSG_HEARTBEAT_RESP);
}

int raft_step(raft *r, const raft_msg *m)
{
    if (m->to != r->cfg.id || !known_sender(r, m->from) || m->type < 1 ||
        m->type > RAFT_MSG_TYPE_MAX) {
        r->stats.msgs_dropped++;
        return RAFT_OK;
    }
    if (non_voter_answer(r, m)) {
        r->stats.msgs_dropped++;
        return RAFT_OK;
    }
    bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
    if (vote_req)
        tell_removed(r, m);
    if (m->term > r->term) {
        if (vote_req && r->cfg.check_quorum && r->leader != 0 &&
            r->election_elapsed < r->cfg.election_tick) {
            /* We heard from a live leader within the minimum election timeout: this candidate
             * cannot be legitimate, and a term bump would depose a healthy leader (§6, §9.6). */
            return RAFT_OK;
        }
        if (m->type == RAFT_MSG_PREVOTE || (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* Pre-votes never change terms. */
        } else {
            bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                               m->type == RAFT_MSG_SNAPSHOT || m->type == RAFT_MSG_FAST_COLLECT;
            become_follower(r, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
            /* A stale leader (e.g. back from a partition) learns our term and steps down. */
            raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from};
            send(r, resp, NULL, 0);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            raft_msg resp = {.type = RAFT_MSG_PREVOTE_RESP, .to = m->from, .reject = true};
            send(r, resp, NULL, 0);
        } else if (m->type == RAFT_MSG_VOTE) {
            /* Tell a candidate behind us our term (Figure 2). Needed once configurations differ:
             * a node campaigning in a configuration without the candidate never sends it its
             * own higher term, and the two would raise their terms side by side for ever. */
            raft_msg resp = {.type = RAFT_MSG_VOTE_RESP, .to = m->from, .reject = true};
            send(r, resp, NULL, 0);
        }
        return RAFT_OK;
    }

    if (vote_req) {
        handle_vote_request(r, m);
        return RAFT_OK;
    }
    switch (r->role) {
    case RAFT_LEADER: step_leader(r, m); return RAFT_OK;
    case RAFT_PRE_CANDIDATE:
    case RAFT_CANDIDATE:
        if (m->type == RAFT_MSG_VOTE_RESP && r->role == RAFT_CANDIDATE) {
            poll_vote(r, m->from, !m->reject);
            return RAFT_OK;
        }
        if (m->type == RAFT_MSG_PREVOTE_RESP && r->role == RAFT_PRE_CANDIDATE) {
            poll_vote(r, m->from, !m->reject);
            return RAFT_OK;
        }
        if (m->type != RAFT_MSG_APPEND && m->type != RAFT_MSG_HEARTBEAT &&
            m->type != RAFT_MSG_SNAPSHOT && m->type != RAFT_MSG_FAST_COLLECT)
            return RAFT_OK;
        /* A leader exists for our term: stand down and follow it. */
        become_follower(r, m->term, m->from);
        break;
    case RAFT_FOLLOWER: break;
    }

    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        set_leader(r, m->from);
        if (m->type == RAFT_MSG_APPEND)
            handle_append(r, m);
        else if (m->type == RAFT_MSG_HEARTBEAT)
            handle_heartbeat(r, m);
        else
            handle_snapshot(r, m);
        break;
    case RAFT_MSG_FAST_COLLECT: {
        /* Our d-log, as it is: in this term we are past the one the entries were taken in. */
        set_leader(r, m->from);
        raft_msg resp = {.type = RAFT_MSG_FAST_STATE, .to = m->from, .context = m->context};
        send(r, resp, r->dlog.items, (uint32_t)r->dlog.len);
        break;
    }
    case RAFT_MSG_READ_INDEX_RESP:
        if (!m->reject)
            push_read_state(r, m->context, m->index);
        break;
    case RAFT_MSG_READ_INDEX: {
        raft_msg resp = {.type = RAFT_MSG_READ_INDEX_RESP, .to = m->from, .reject = true,
                         .context = m->context};
        send(r, resp, NULL, 0);
        break;
    }
    default: break;
    }
    return RAFT_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Tick, propose, read, compact */

static void fast_collect(raft *r);
static void fast_recovery_finish(raft *r);

/* A learner that heard from no leader for an election timeout asks the voters where it stands,
 * with a pre-vote request it never counts (it stays a follower, and a pre-vote changes nobody's
 * term or vote). The leader answers a non-voter's request as it answers a removed node's
 * (tell_removed): a learner that was removed -- the leader stops replicating to it the moment
 * the change is in its log, so the removal never reaches it -- gets the entries that say so and
 * stops asking; one that was merely cut off gets entries it would have had anyway. */
static void learner_ask(raft *r)
{
    r->leader = 0; /* no leader heard from: its reads would wait for nothing */
    r->election_elapsed = 0;
    reset_randomized_timeout(r);
    ask_voters(r, RAFT_MSG_PREVOTE, r->term + 1);
}

void raft_tick(raft *r)
{
    if (r->role == RAFT_LEADER && r->fast_recovering) {
        fast_recovery_finish(r); /* after an allocation failure */
        /* Answers lost, or voters down: ask again, but once per election timeout (an answer
         * may be a large d-log still on its way). */
        if (r->fast_recovering && ++r->fast_elapsed >= r->cfg.election_tick)
            fast_collect(r);
    }
    if (r->role != RAFT_LEADER) {
        r->election_elapsed++;
        if (r->election_elapsed >= r->randomized_timeout) {
            if (promotable(r))
                campaign(r, r->cfg.pre_vote);
            else if (raft_conf_has_learner(&r->conf, r->cfg.id))
                learner_ask(r);
        }
        return;
    }
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->removed_snapshot_ticks > 0)
        r->removed_snapshot_ticks--;
    for (uint32_t i = 0; i < members(r); i++) {
        progress *pr = &r->prs[i];
        if (pr->idle_ticks < UINT32_MAX)
            pr->idle_ticks++;
        if (pr->state == PR_SNAPSHOT && ++pr->snapshot_ticks >= r->cfg.snapshot_timeout_tick)
            progress_become_probe(pr); /* the install was lost: start over */
    }
    if (r->election_elapsed >= r->cfg.election_tick)
        r->election_elapsed = 0; /* the lease window of a vote request (step) */
    if (++r->quorum_elapsed >= r->cfg.check_quorum_tick) {
        r->quorum_elapsed = 0;
        if (r->cfg.check_quorum) {
            size_t active = 0;
            for (uint32_t i = 0; i < members(r); i++) { /* a learner promoted later starts fresh */
                progress *pr = &r->prs[i];
                active += i < r->conf.n_voters && (pr->id == r->cfg.id || pr->recent_active);
                pr->recent_active = false;
            }
            if (active < quorum(r)) {
                become_follower(r, r->term, 0); /* cut off from a majority: stop serving (§6.2) */
                return;
            }
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
        r->heartbeat_elapsed = 0;
        if (!BUG(r, RAFT_BUG_NO_HEARTBEAT))
            bcast_heartbeat(r);
    }
}

void raft_campaign(raft *r)
{
    if (r->role != RAFT_LEADER && promotable(r))
        campaign(r, r->cfg.pre_vote);
}

int raft_propose(raft *r, uint8_t type, const void *data, uint32_t len, raft_index *index,
                 raft_term *term)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (type != RAFT_ENTRY_NORMAL && type != RAFT_ENTRY_NOOP)
        return RAFT_EINVAL;
    if (r->cfg.max_entry_bytes && len > r->cfg.max_entry_bytes)
        return RAFT_ETOOBIG;
    if (r->fast_recovering && !BUG(r, RAFT_BUG_FAST_PROPOSE_EARLY))
        return RAFT_EBUSY; /* it must follow the fast writes being recovered */
    if (r->cfg.max_uncommitted_bytes && r->uncommitted_bytes > 0 &&
        r->uncommitted_bytes + len > r->cfg.max_uncommitted_bytes)
        return RAFT_EBUSY;
    int rc = raft_log_append(&r->log, r->term, type, data, len);
    if (rc != RAFT_OK)
        return rc;
    r->uncommitted_bytes += len;
    r->bcast_pending = true; /* sent at the next Ready: proposals in between share messages */
    if (index)
        *index = raft_log_last(&r->log);
    if (term)
        *term = r->term;
    return RAFT_OK;
}

int raft_propose_conf(raft *r, const raft_conf *next, const void *ctx, uint32_t ctx_len,
                      raft_index *index, raft_term *term)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (validate_conf(next, false) != RAFT_OK ||
        (!one_change(&r->conf, next) && !BUG(r, RAFT_BUG_CONF_ANY)) ||
        (ctx_len > 0 && ctx == NULL))
        return RAFT_EINVAL;
    /* Until an entry of this term commits, an earlier leader's uncommitted change may still win
     * over ours: two changes in flight could make disjoint majorities. */
    if (!r->committed_in_term || r->conf_index > r->commit || r->fast_recovering)
        return RAFT_ECONFBUSY;
    size_t size = raft_codec_conf_size(next, ctx_len);
    if (size > UINT32_MAX || (r->cfg.max_entry_bytes && size > r->cfg.max_entry_bytes))
        return RAFT_ETOOBIG;
    uint8_t *data = malloc(size);
    if (!data)
        return RAFT_ENOMEM;
    int rc = raft_codec_conf_encode(next, ctx, ctx_len, data, size, NULL);
    if (rc == RAFT_OK)
        rc = raft_log_append(&r->log, r->term, RAFT_ENTRY_CONFIG, data, (uint32_t)size);
    free(data);
    if (rc != RAFT_OK)
        return rc;
    raft_index at = raft_log_last(&r->log);
    set_conf(r, next, at);
    r->uncommitted_bytes += size;
    r->bcast_pending = true;
    if (index)
        *index = at;
    if (term)
        *term = r->term;
    return RAFT_OK;
}

int raft_read_index(raft *r, uint64_t request_id)
{
    if (r->role == RAFT_LEADER) {
        leader_read(r, request_id, r->cfg.id);
        return RAFT_OK;
    }
    if (r->leader == 0)
        return RAFT_ENOLEADER;
    raft_msg m = {.type = RAFT_MSG_READ_INDEX, .to = r->leader, .context = request_id};
    send(r, m, NULL, 0);
    return RAFT_OK;
}

int raft_compact(raft *r, raft_index index, raft_index trailing)
{
    /* Beyond handed_index the snapshot would cover entries the stored log has not got yet. */
    if (index > r->applied || index > r->handed_index)
        return RAFT_EINVAL;
    if (index <= r->snapshot.index)
        return RAFT_OK;
    raft_index at;
    raft_conf conf = conf_at(r, index, &at); /* before the snapshot moves: it bounds the search */
    r->snapshot.index = index;
    r->snapshot.term = raft_log_term(&r->log, index);
    r->snapshot.conf = conf;
    assert(r->snapshot.term != 0);
    if (index > trailing)
        raft_log_compact(&r->log, index - trailing);
    return RAFT_OK;
}

void raft_report_snapshot_failed(raft *r, raft_id peer)
{
    if (r->role != RAFT_LEADER)
        return;
    progress *pr = progress_of(r, peer);
    if (pr && pr->state == PR_SNAPSHOT)
        progress_become_probe(pr);
}

/* ---------------------------------------------------------------------------------------------- */
/* Ready / advance */

static raft_hard_state hard_state(const raft *r)
{
    raft_hard_state hs = {.term = r->term, .vote = r->vote, .commit = r->commit};
    return hs;
}

static bool hard_state_changed(const raft *r)
{
    return r->term != r->handed_hs.term || r->vote != r->handed_hs.vote ||
           r->commit != r->handed_hs.commit;
}

static raft_index apply_limit(const raft *r)
{
    raft_index last = raft_log_last(&r->log);
    return r->commit < last ? r->commit : last;
}

bool raft_has_ready(const raft *r)
{
    if (r->ready_outstanding)
        return false;
    return r->msgs.len > 0 || r->bcast_pending || r->read_bcast_pending ||
           r->pending_snapshot.index != 0 ||
           r->pending_truncate != 0 || r->handed_index < raft_log_last(&r->log) ||
           hard_state_changed(r) || r->applied < apply_limit(r) || r->read_states.len > 0 ||
           r->dlog_new.len > 0 || r->dlog_drop != 0;
}

/* Copies entries (from, to] of the log into one block: array then data. */
static raft_entry *copy_entries(const raft *r, raft_index from, raft_index to, size_t *n_out)
{
    *n_out = 0;
    if (to <= from)
        return NULL;
    size_t n = (size_t)(to - from);
    size_t bytes = n * sizeof(raft_entry) + raft_log_bytes(&r->log, from, to);
    raft_entry *block = malloc(bytes);
    if (!block)
        return NULL;
    uint8_t *data = (uint8_t *)(block + n);
    for (size_t i = 0; i < n; i++) {
        const raft_entry *e = raft_log_get(&r->log, from + 1 + i);
        assert(e != NULL);
        block[i] = *e;
        if (e->len) {
            memcpy(data, e->data, e->len);
            block[i].data = data;
            data += e->len;
        }
    }
    *n_out = n;
    return block;
}

/* Whether m depends on nothing that is not durable yet (see SENDING EARLY in raft.h). Votes and
 * their answers depend on the persisted term and vote; append answers on the persisted log. */
static bool sendable_early(const raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_VOTE:
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_APPEND_RESP: return false;
    default: return true;
    }
}

size_t raft_take_messages(raft *r, raft_msg **msgs)
{
    *msgs = NULL;
    /* A leader replicates proposals while its own write is in flight (thesis §10.2.1). */
    if (r->bcast_pending && r->role == RAFT_LEADER)
        flush_proposals(r);
    flush_reads(r);
    size_t n = 0;
    for (size_t i = 0; i < r->msgs.len; i++)
        n += sendable_early(&r->msgs.items[i]);
    if (n == 0)
        return 0;
    raft_msg *out = malloc(n * sizeof(raft_msg));
    if (!out)
        return 0; /* they go out with the next Ready instead */
    size_t taken = 0, kept = 0;
    for (size_t i = 0; i < r->msgs.len; i++) {
        if (sendable_early(&r->msgs.items[i]))
            out[taken++] = r->msgs.items[i];
        else
            r->msgs.items[kept++] = r->msgs.items[i];
    }
    r->msgs.len = kept;
    *msgs = out;
    return n;
}

void raft_messages_free(raft_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)msgs[i].entries);
    free(msgs);
}

static void fast_committed(raft *r, const raft_entry *entries, size_t n);

/* Copies the committed entries not handed out yet and marks them applied. NULL when there are
 * none, or on ENOMEM (they are handed out later instead). */
static raft_entry *take_committed(raft *r, size_t *n)
{
    raft_index limit = apply_limit(r);
    raft_entry *block = copy_entries(r, r->applied, limit, n);
    if (block) {
        r->applied = limit;
        fast_committed(r, block, *n);
    }
    return block;
}

size_t raft_take_committed(raft *r, raft_entry **entries)
{
    *entries = NULL;
    /* A snapshot on its way in replaces the state machine: entries after it wait for it. */
    if (r->ready_snapshot || r->pending_snapshot.index != 0)
        return 0;
    size_t n;
    *entries = take_committed(r, &n);
    return *entries ? n : 0;
}

size_t raft_take_reads(raft *r, raft_read_state **reads)
{
    *reads = r->read_states.items;
    size_t n = r->read_states.len;
    memset(&r->read_states, 0, sizeof(r->read_states));
    return n;
}

static void fast_vec_clear(entry_vec *v);

void raft_ready_get(raft *r, raft_ready *rd)
{
    assert(!r->ready_outstanding);
    memset(rd, 0, sizeof(*rd));
    if (r->bcast_pending && r->role == RAFT_LEADER)
        flush_proposals(r);
    flush_reads(r);
    ready_owned *own = calloc(1, sizeof(*own));
    if (!own)
        return; /* an empty Ready: nothing happens, the caller retries later */
    rd->internal_ = own;
    r->ready_outstanding = true;
    rd->role = r->role;
    rd->leader = r->leader;

    if (r->pending_snapshot.index != 0) {
        rd->snapshot = r->pending_snapshot;
        memset(&r->pending_snapshot, 0, sizeof(r->pending_snapshot));
        if (r->applied < rd->snapshot.index)
            r->applied = rd->snapshot.index;
        r->ready_snapshot = true;
    }
    rd->truncate_from = r->pending_truncate;
    r->pending_truncate = 0;

    raft_index last = raft_log_last(&r->log);
    if (r->handed_index < last) {
        size_t n;
        own->entries = copy_entries(r, r->handed_index, last, &n);
        if (own->entries) {
            rd->entries = own->entries;
            rd->n_entries = n;
            own->last_index = last;
            own->last_term = raft_log_term(&r->log, last);
            r->handed_index = last;
        }
    }
    if (hard_state_changed(r)) {
        rd->hard_state_changed = true;
        rd->hard_state = hard_state(r);
        rd->must_sync = r->term != r->handed_hs.term || r->vote != r->handed_hs.vote;
        r->handed_hs = rd->hard_state;
    }
    if (r->dlog_new.len > 0) {
        own->fast = entries_block(r->dlog_new.items, r->dlog_new.len);
        if (own->fast) {
            rd->fast = own->fast;
            rd->n_fast = r->dlog_new.len;
            fast_vec_clear(&r->dlog_new);
        }
    }
    rd->fast_drop_below = r->dlog_drop;
    r->dlog_drop = 0;
    rd->must_sync = rd->must_sync || rd->snapshot.index != 0 || rd->truncate_from != 0 ||
                    rd->n_entries != 0 || rd->n_fast != 0;

    own->msgs = r->msgs;
    memset(&r->msgs, 0, sizeof(r->msgs));
    rd->msgs = own->msgs.items;
    rd->n_msgs = own->msgs.len;

    size_t n_committed;
    own->committed = take_committed(r, &n_committed);
    if (own->committed) {
        rd->committed = own->committed;
        rd->n_committed = n_committed;
    }
    if (r->read_states.len > 0) {
        own->reads = r->read_states.items;
        rd->reads = own->reads;
        rd->n_reads = r->read_states.len;
        memset(&r->read_states, 0, sizeof(r->read_states));
    }
}

void raft_advance(raft *r, raft_ready *rd)
{
    ready_owned *own = rd->internal_;
    r->ready_outstanding = false;
    r->ready_snapshot = false;
    if (!own)
        return;
    if (rd->snapshot.index > r->persisted_index &&
        raft_log_term(&r->log, rd->snapshot.index) == rd->snapshot.term)
        r->persisted_index = rd->snapshot.index;
    /* The newest of this Ready's entries that is still in our log is now durable. */
    for (size_t i = rd->n_entries; i > 0; i--) {
        const raft_entry *e = &rd->entries[i - 1];
        if (raft_log_term(&r->log, e->index) == e->term) {
            if (e->index > r->persisted_index && e->index <= r->handed_index)
                r->persisted_index = e->index;
            break;
        }
    }
    if (r->role == RAFT_LEADER) {
        progress *self = progress_of(r, r->cfg.id);
        if (self != NULL && r->persisted_index > self->match)
            self->match = r->persisted_index;
        if (maybe_commit(r))
            leader_commit_moved(r);
    }
    free_msgs(&own->msgs);
    free(own->entries);
    free(own->committed);
    free(own->reads);
    free(own->fast);
    free(own);
    memset(rd, 0, sizeof(*rd));
}

/* ---------------------------------------------------------------------------------------------- */
/* The nil-externality fast path (raft.h FAST PATH, docs/NILEXT.md) */

void raft_fast_header(uint8_t out[RAFT_FAST_HEADER], uint64_t session, uint64_t seq)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(session >> (8 * i));
        out[8 + i] = (uint8_t)(seq >> (8 * i));
    }
}

bool raft_fast_id(const raft_entry *e, uint64_t *session, uint64_t *seq)
{
    if (e->type != RAFT_ENTRY_FAST || e->len < RAFT_FAST_HEADER || e->data == NULL)
        return false;
    uint64_t a = 0, b = 0;
    for (int i = 7; i >= 0; i--) {
        a = a << 8 | e->data[i];
        b = b << 8 | e->data[8 + i];
    }
    *session = a;
    *seq = b;
    return true;
}

/* Two fast entries are the same write when their (session, seq) headers are. */
static bool fast_same(const raft_entry *a, const raft_entry *b)
{
    return memcmp(a->data, b->data, RAFT_FAST_HEADER) == 0;
}

static int fast_push(entry_vec *v, const raft_entry *e)
{
    raft_entry copy = *e;
    copy.index = 0;
    copy.data = NULL;
    if (e->len > 0) {
        uint8_t *data = malloc(e->len);
        if (!data)
            return RAFT_ENOMEM;
        memcpy(data, e->data, e->len);
        copy.data = data;
    }
    if (VEC_PUSH(*v, copy) != RAFT_OK) {
        free((void *)copy.data);
        return RAFT_ENOMEM;
    }
    return RAFT_OK;
}

static void fast_vec_clear(entry_vec *v)
{
    for (size_t i = 0; i < v->len; i++)
        free((void *)v->items[i].data);
    v->len = 0;
}

/* Removes from v every entry for which drop(entry, arg) holds, keeping the order; returns the
 * bytes of data removed. */
static uint64_t fast_filter(entry_vec *v, bool (*drop)(const raft_entry *, const void *),
                            const void *arg)
{
    size_t kept = 0;
    uint64_t freed = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (drop(&v->items[i], arg)) {
            freed += v->items[i].len;
            free((void *)v->items[i].data);
        } else {
            v->items[kept++] = v->items[i];
        }
    }
    v->len = kept;
    return freed;
}

static bool same_write(const raft_entry *e, const void *arg) { return fast_same(e, arg); }
static bool taken_before(const raft_entry *e, const void *arg)
{
    return e->term < *(const raft_term *)arg;
}

/* Committed entries leave the d-log: a FAST one is in the log for good; a BARRIER of term T
 * means every d-log entry taken before T was recovered into the log or never completed. */
static void fast_committed(raft *r, const raft_entry *entries, size_t n)
{
    if (r->dlog.len == 0 && !r->cfg.fast_path)
        return;
    for (size_t i = 0; i < n; i++) {
        const raft_entry *e = &entries[i];
        if (e->type == RAFT_ENTRY_FAST && e->len >= RAFT_FAST_HEADER) {
            r->dlog_bytes -= fast_filter(&r->dlog, same_write, e);
        } else if (e->type == RAFT_ENTRY_BARRIER) {
            r->dlog_bytes -= fast_filter(&r->dlog, taken_before, &e->term);
            if (e->term > r->dlog_drop)
                r->dlog_drop = e->term;
        }
    }
}

static void fast_recovery_clear(raft *r)
{
    r->fast_recovering = false;
    for (uint32_t i = 0; i < RAFT_MAX_NODES; i++) {
        fast_vec_clear(&r->fast_answers[i]);
        free(r->fast_answers[i].items);
        memset(&r->fast_answers[i], 0, sizeof(r->fast_answers[i]));
        r->fast_answered[i] = false;
    }
}

static void fast_recovery_finish(raft *r);

/* Asks every voter that has not answered this round yet for its d-log. */
static void fast_collect(raft *r)
{
    r->fast_elapsed = 0;
    for (uint32_t i = 0; i < r->conf.n_voters; i++) {
        if (r->conf.voters[i] == r->cfg.id || r->fast_answered[i])
            continue;
        raft_msg m = {.type = RAFT_MSG_FAST_COLLECT, .to = r->conf.voters[i],
                      .context = r->fast_round};
        send(r, m, NULL, 0);
    }
}

static void fast_recovery_start(raft *r)
{
    fast_recovery_clear(r);
    r->fast_recovering = true;
    r->fast_round++;
    int self = voter_slot(r, r->cfg.id);
    if (self >= 0) { /* our own d-log is one answer (a leader removing itself counts the others) */
        for (size_t i = 0; i < r->dlog.len; i++)
            if (fast_push(&r->fast_answers[self], &r->dlog.items[i]) != RAFT_OK) {
                fast_vec_clear(&r->fast_answers[self]);
                self = -1; /* out of memory: ask again at the next tick instead */
                break;
            }
        if (self >= 0)
            r->fast_answered[self] = true;
    }
    fast_collect(r);
    fast_recovery_finish(r); /* a single voter needs no answer */
}

static void fast_answer(raft *r, const raft_msg *m)
{
    int slot = voter_slot(r, m->from);
    if (!r->fast_recovering || m->context != r->fast_round || slot < 0 ||
        r->fast_answered[slot])
        return;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry *e = &m->entries[i];
        uint64_t session, seq;
        if (!raft_fast_id(e, &session, &seq))
            continue; /* not a fast write: no place in a d-log */
        if (fast_push(&r->fast_answers[slot], e) != RAFT_OK) {
            fast_vec_clear(&r->fast_answers[slot]);
            return; /* asked again at the next tick */
        }
    }
    r->fast_answered[slot] = true;
    fast_recovery_finish(r);
}

static bool fast_contains(const entry_vec *v, const raft_entry *e)
{
    for (size_t i = 0; i < v->len; i++)
        if (fast_same(&v->items[i], e))
            return true;
    return false;
}

static bool fast_seen_before(const entry_vec *v, size_t upto, const raft_entry *e)
{
    for (size_t i = 0; i < upto; i++)
        if (fast_same(&v->items[i], e))
            return true;
    return false;
}

/* With a majority of the voters' d-logs: every write found in all of them may have completed
 * (a completed write is in every voter's d-log until it commits), so it goes into the log, in
 * the order of one of them -- any one of those orders agrees with every order all of them share,
 * which is the real-time order of completed writes. Then the barrier. */
static void fast_recovery_finish(raft *r)
{
    if (!r->fast_recovering)
        return;
    size_t answered = 0, first = RAFT_MAX_NODES;
    int self = voter_slot(r, r->cfg.id);
    for (uint32_t i = 0; i < r->conf.n_voters; i++)
        if (r->fast_answered[i]) {
            answered++;
            if (first == RAFT_MAX_NODES || (int)i == self)
                first = i; /* our own order when we vote, else the first answer's */
        }
    if (answered < quorum(r))
        return;
    const entry_vec *base = &r->fast_answers[first];
    for (size_t k = 0; k < base->len && !BUG(r, RAFT_BUG_FAST_NO_RECOVERY); k++) {
        const raft_entry *e = &base->items[k];
        if (fast_seen_before(base, k, e))
            continue;
        bool everywhere = true;
        for (uint32_t i = 0; i < r->conf.n_voters && everywhere; i++)
            if (r->fast_answered[i] && i != first)
                everywhere = fast_contains(&r->fast_answers[i], e);
        if (!everywhere)
            continue;
        if (raft_log_append(&r->log, r->term, RAFT_ENTRY_FAST, e->data, e->len) != RAFT_OK)
            return; /* out of memory: the next answer or tick tries again */
        r->uncommitted_bytes += e->len;
        r->fast_last = raft_log_last(&r->log);
    }
    if (raft_log_append(&r->log, r->term, RAFT_ENTRY_BARRIER, NULL, 0) != RAFT_OK)
        return;
    r->fast_last = raft_log_last(&r->log);
    fast_recovery_clear(r);
    r->bcast_pending = true;
    release_waiting_reads(r);
}

/* A d-log travels in one FAST_STATE message: well below the transport's frame limit. */
#define FAST_DLOG_MAX (64ull << 20)

static uint64_t fast_dlog_limit(const raft *r)
{
    uint64_t limit = r->cfg.max_uncommitted_bytes;
    return limit != 0 && limit < FAST_DLOG_MAX ? limit : FAST_DLOG_MAX;
}

int raft_fast_accept(raft *r, const void *data, uint32_t len, raft_fast_ack *ack)
{
    if (!r->cfg.fast_path || len < RAFT_FAST_HEADER || data == NULL)
        return RAFT_EINVAL;
    if (r->cfg.max_entry_bytes && len > r->cfg.max_entry_bytes)
        return RAFT_ETOOBIG;
    bool leading = r->role == RAFT_LEADER;
    if (!leading && (r->role != RAFT_FOLLOWER || r->leader == 0))
        return RAFT_ENOLEADER;
    if (leading && r->fast_recovering)
        return RAFT_EBUSY;
    /* A configuration change in flight: a write acknowledged by the new voters alone could be
     * missing from the d-log of a voter the change removes, and a leader elected in the old
     * configuration would not recover it (found by review: seeds 101193, 306760). */
    if (leading && r->conf_index > r->commit && !BUG(r, RAFT_BUG_FAST_CONF_CHANGE))
        return RAFT_EBUSY;
    if (leading && r->cfg.max_uncommitted_bytes && r->uncommitted_bytes > 0 &&
        r->uncommitted_bytes + len > r->cfg.max_uncommitted_bytes)
        return RAFT_EBUSY;
    /* A follower's d-log empties only as writes commit: writes nobody orders (a client sending
     * to followers only) must not fill its memory. */
    if (r->dlog_bytes > 0 && r->dlog_bytes + len > fast_dlog_limit(r))
        return RAFT_EBUSY;
    raft_entry e = {.term = r->term, .type = RAFT_ENTRY_FAST, .len = len, .data = data};
    if (fast_push(&r->dlog, &e) != RAFT_OK)
        return RAFT_ENOMEM;
    r->dlog_bytes += len;
    if (fast_push(&r->dlog_new, &e) != RAFT_OK) {
        free((void *)r->dlog.items[--r->dlog.len].data);
        r->dlog_bytes -= len;
        return RAFT_ENOMEM;
    }
    memset(ack, 0, sizeof(*ack));
    if (leading) {
        /* Our log is the order: appended now, before anything proposed after it. */
        if (raft_log_append(&r->log, r->term, RAFT_ENTRY_FAST, data, len) != RAFT_OK) {
            free((void *)r->dlog.items[--r->dlog.len].data);
            r->dlog_bytes -= len;
            free((void *)r->dlog_new.items[--r->dlog_new.len].data);
            return RAFT_ENOMEM;
        }
        r->uncommitted_bytes += len;
        r->bcast_pending = true;
        r->fast_last = raft_log_last(&r->log);
        ack->index = r->fast_last;
    }
    ack->term = r->term;
    ack->leader = r->leader;
    ack->conf = r->conf;
    return RAFT_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Construction */

void raft_config_default(raft_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->election_tick = 10;
    cfg->heartbeat_tick = 1;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
    cfg->max_inflight_msgs = 256;
    cfg->max_entries_per_msg = 512;
    cfg->max_bytes_per_msg = 1u << 20;
    cfg->max_entry_bytes = 16u << 20;
    cfg->max_uncommitted_bytes = 256ull << 20;
}

static int fast_push(entry_vec *v, const raft_entry *e);

static int restore(raft *r, const raft_restore *rs)
{
    const raft_snapshot_meta *s = &rs->snapshot;
    raft_log_init(&r->log, s->index, s->term);
    if (s->index != 0) {
        if (validate_conf(&s->conf, false) != RAFT_OK)
            return RAFT_ECORRUPT;
        r->snapshot = *s;
        r->conf = s->conf;
        r->conf_index = s->index;
    }
    for (size_t i = 0; i < rs->n_entries; i++) {
        const raft_entry *e = &rs->entries[i];
        if (e->index != raft_log_last(&r->log) + 1 || e->term < last_term(r) ||
            (e->len > 0 && e->data == NULL))
            return RAFT_ECORRUPT;
        int rc = raft_log_append(&r->log, e->term, e->type, e->data, e->len);
        if (rc != RAFT_OK)
            return rc;
        if (e->type == RAFT_ENTRY_CONFIG) {
            if (!entry_conf(e, &r->conf))
                return RAFT_ECORRUPT;
            r->conf_index = e->index;
        }
    }
    for (size_t i = 0; i < rs->n_fast; i++) {
        uint64_t session, seq;
        if (!raft_fast_id(&rs->fast[i], &session, &seq) ||
            fast_push(&r->dlog, &rs->fast[i]) != RAFT_OK)
            return RAFT_ECORRUPT;
        r->dlog_bytes += rs->fast[i].len;
    }
    const raft_hard_state *hs = &rs->hard_state;
    r->term = hs->term;
    r->vote = hs->vote;
    if (hs->term < last_term(r)) {
        /* A crash kept entries of a term whose hard-state record it lost (a torn write). Whom we
         * voted for in that term is unknown: take the term and count the vote as cast for
         * ourselves, so we vote for nobody else in it (Election Safety). */
        r->term = last_term(r);
        r->vote = r->cfg.id;
    }
    /* A snapshot is committed by definition; a commit beyond our log cannot be checked, so it is
     * clamped (commit is a hint that may be re-learnt from the leader). */
    raft_index commit = hs->commit > s->index ? hs->commit : s->index;
    if (commit > raft_log_last(&r->log))
        commit = raft_log_last(&r->log);
    r->commit = commit;
    if (rs->applied < s->index || rs->applied > r->commit)
        return RAFT_ECORRUPT;
    r->applied = rs->applied;
    r->handed_index = raft_log_last(&r->log);
    r->persisted_index = r->handed_index;
    r->handed_hs = hard_state(r);
    r->handed_hs = *hs; /* hand out whatever restore changed (clamped commit, raised term) */
    return RAFT_OK;
}

int raft_new(const raft_config *cfg, const raft_restore *rs, raft **out)
{
    *out = NULL;
    if (cfg->id == 0 || cfg->election_tick < 2 || cfg->heartbeat_tick == 0 ||
        cfg->heartbeat_tick >= cfg->election_tick ||
        (cfg->election_tick_max != 0 && cfg->election_tick_max <= cfg->election_tick) ||
        (cfg->check_quorum_tick != 0 && cfg->check_quorum_tick < cfg->election_tick) ||
        cfg->max_inflight_msgs == 0 ||
        cfg->max_entries_per_msg == 0 || cfg->max_bytes_per_msg == 0 ||
        validate_conf(&cfg->conf, true) != RAFT_OK)
        return RAFT_EINVAL;
    raft *r = calloc(1, sizeof(*r));
    if (!r)
        return RAFT_ENOMEM;
    r->cfg = *cfg;
    if (r->cfg.election_tick_max == 0)
        r->cfg.election_tick_max = 2 * r->cfg.election_tick;
    if (r->cfg.snapshot_timeout_tick == 0)
        r->cfg.snapshot_timeout_tick = 10 * r->cfg.election_tick;
    if (r->cfg.check_quorum_tick == 0)
        r->cfg.check_quorum_tick = r->cfg.election_tick;
    r->conf = cfg->conf;
    r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dull);
    raft_log_init(&r->log, 0, 0);
    if (rs) {
        int rc = restore(r, rs);
        if (rc != RAFT_OK) {
            raft_free(r);
            return rc;
        }
    }
    for (uint32_t i = 0; i < RAFT_MAX_NODES; i++) {
        r->prs[i].inflight = calloc(r->cfg.max_inflight_msgs, sizeof(raft_index));
        if (!r->prs[i].inflight) {
            raft_free(r);
            return RAFT_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < members(r); i++)
        r->prs[i].id = raft_conf_member(&r->conf, i);
    r->role = RAFT_FOLLOWER;
    reset_randomized_timeout(r);
    *out = r;
    return RAFT_OK;
}

void raft_free(raft *r)
{
    if (!r)
        return;
    raft_log_free(&r->log);
    for (uint32_t i = 0; i < RAFT_MAX_NODES; i++)
        free(r->prs[i].inflight);
    free_msgs(&r->msgs);
    free(r->reads.items);
    free(r->reads_waiting.items);
    free(r->read_states.items);
    fast_recovery_clear(r);
    fast_vec_clear(&r->dlog);
    fast_vec_clear(&r->dlog_new);
    free(r->dlog.items);
    free(r->dlog_new.items);
    free(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* Accessors */

raft_id raft_self(const raft *r) { return r->cfg.id; }
raft_role raft_get_role(const raft *r) { return r->role; }
raft_term raft_get_term(const raft *r) { return r->term; }
raft_id raft_get_vote(const raft *r) { return r->vote; }
raft_id raft_get_leader(const raft *r) { return r->leader; }
raft_index raft_commit_index(const raft *r) { return r->commit; }
raft_index raft_applied_index(const raft *r) { return r->applied; }
raft_index raft_handed_index(const raft *r) { return r->handed_index; }
raft_index raft_first_index(const raft *r) { return raft_log_first(&r->log); }
raft_index raft_last_index(const raft *r) { return raft_log_last(&r->log); }
raft_term raft_term_at(const raft *r, raft_index index) { return raft_log_term(&r->log, index); }
const raft_entry *raft_entry_at(const raft *r, raft_index index) { return raft_log_get(&r->log, index); }
raft_snapshot_meta raft_get_snapshot(const raft *r) { return r->snapshot; }
const raft_conf *raft_get_conf(const raft *r) { return &r->conf; }
raft_index raft_conf_index(const raft *r) { return r->conf_index; }

int raft_conf_at(const raft *r, raft_index index, raft_conf *out)
{
    if (index < r->snapshot.index || index > raft_log_last(&r->log))
        return RAFT_EINVAL;
    raft_index at;
    *out = conf_at(r, index, &at);
    return RAFT_OK;
}
raft_stats raft_get_stats(const raft *r) { return r->stats; }
size_t raft_fast_pending(const raft *r) { return r->dlog.len; }
size_t raft_fast_dlog(const raft *r, const raft_entry **entries)
{
    *entries = r->dlog.items;
    return r->dlog.len;
}

size_t raft_fast_prune(raft *r, bool (*done)(void *ctx, uint64_t session, uint64_t seq),
                       void *ctx)
{
    size_t kept = 0, before = r->dlog.len;
    for (size_t i = 0; i < r->dlog.len; i++) {
        raft_entry *e = &r->dlog.items[i];
        uint64_t session, seq;
        if (raft_fast_id(e, &session, &seq) && done(ctx, session, seq)) {
            r->dlog_bytes -= e->len;
            free((void *)e->data);
        } else {
            r->dlog.items[kept++] = *e;
        }
    }
    r->dlog.len = kept;
    return before - kept;
}

bool raft_get_progress(const raft *r, raft_id peer, raft_progress_info *out)
{
    if (r->role != RAFT_LEADER)
        return false;
    for (uint32_t i = 0; i < members(r); i++) {
        const progress *pr = &r->prs[i];
        if (pr->id != peer)
            continue;
        out->match = pr->id == r->cfg.id ? r->persisted_index : pr->match;
        out->next = pr->next;
        out->state = pr->state;
        out->recent_active = pr->recent_active;
        out->idle_ticks = pr->id == r->cfg.id ? 0 : pr->idle_ticks;
        return true;
    }
    return false;
}
