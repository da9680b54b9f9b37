/*
 * node.c -- the node driver (node.h): start and stop, the Ready loop, writes and reads.
 *
 * THE READY LOOP runs in a uv_prepare callback, i.e. once per loop iteration just before the loop
 * sleeps, so every message stepped and every proposal made during the iteration lands in one
 * Ready (group commit). For a Ready:
 *   1. a leader sends its APPEND/SNAPSHOT messages at once (raft.h's exception);
 *   2. snapshot/truncation/entries/hard state are saved as ONE job (storage_save: one fdatasync).
 *      A leader's goes to the disk thread, so the loop keeps reading clients, stepping
 *      acknowledgements and proposing meanwhile. A follower's runs right here on the loop thread
 *      when the disk thread is idle (save_inline): it has nothing to send before the save is
 *      durable, and the two thread hand-offs cost more than the overlap gains (bench figures in
 *      docs/PERFORMANCE.md); etcd's raft loop does the same for followers;
 *   3. when the job is done (or at once if the Ready had nothing to persist): the other messages
 *      are sent, committed entries applied to the kv store, writes and reads answered, and the
 *      Ready advanced. A storage failure ends the process before anything is sent (fsyncgate).
 * Snapshots live in node_snap.c.
 */
#include "node_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv_cmd.h"
#include "log.h"
#include "members.h"
#include "raft_codec.h"

/* An idle leader with keys proposes a KV_OP_TICK this often (see sweep_cb). */
#define IDLE_TICK_MS 10000

const char *node_strerror(int rc)
{
    switch (rc) {
    case NODE_OK: return "ok";
    case NODE_ENOTLEADER: return "not the leader";
    case NODE_ENOLEADER: return "no leader known";
    case NODE_ETIMEOUT: return "timed out (outcome unknown)";
    case NODE_ELOST: return "leadership lost (outcome unknown)";
    case NODE_ETOOBIG: return "command too large";
    case NODE_EBUSY: return "too much uncommitted data";
    case NODE_ESTOPPING: return "node stopping";
    case NODE_ENOMEM: return "out of memory";
    case NODE_EMEMBER: return "not a valid membership change";
    case NODE_ECONFBUSY: return "a membership change is in progress";
    case NODE_EUNSAFE: return "the change would leave no working majority";
    case NODE_ESESSION: return "unknown fast-path session";
    case NODE_EFASTOFF: return "the fast path is off";
    case NODE_ESTALE: return "that seq of the session was applied already";
    case NODE_ELAGGING: return "the learner has not caught up";
    default: return "unknown error";
    }
}

void node_fatal(node *n, const char *what, const char *why)
{
    (void)n;
    /* Never continue after a failed write or fsync: the durability of earlier writes is unknown
     * (PostgreSQL's fsyncgate). _exit: no atexit work that could touch the failed state. */
    log_printf("FATAL: %s: %s; stopping the node", what, why);
    _exit(1);
}

/* ---- pending lists -------------------------------------------------------------------------- */

static void list_push(pending_list *l, pending *p)
{
    p->next = NULL;
    p->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    l->n++;
}

static void list_unlink(pending_list *l, pending *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    p->prev = p->next = NULL;
    l->n--;
}

/* Calls every callback in the firing list, in order. Callbacks may call node_write/node_read/
 * node_cancel (a cancel marks firing entries instead of freeing them). */
static void fire_all(node *n)
{
    pending *p;
    while ((p = n->firing.head) != NULL) {
        list_unlink(&n->firing, p);
        if (!p->cancelled) {
            if (p->write_cb != NULL)
                p->write_cb(p->ctx, p->status, NULL);
            else
                p->read_cb(p->ctx, p->status);
        }
        free(p);
    }
}

/* Moves p and every request after it in l to the firing list, with status. */
static void fail_from(node *n, pending_list *l, pending *p, int status)
{
    while (p != NULL) {
        pending *next = p->next;
        list_unlink(l, p);
        p->status = status;
        list_push(&n->firing, p);
        p = next;
    }
}

static void fail_list(node *n, pending_list *l, int status)
{
    fail_from(n, l, l->head, status);
}

/* ---- accessors ------------------------------------------------------------------------------ */

kv_store *node_kv(node *n)
{
    return n->kv;
}

uint64_t node_now_ms(const node *n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + n->cfg.clock_offset_ms;
    return ms > 0 ? (uint64_t)ms : 1;
}

bool node_is_leader(const node *n)
{
    return !n->stopping && raft_get_role(n->r) == RAFT_LEADER;
}

bool node_leader(const node *n, node_peer *out)
{
    if (node_is_outside(n))
        return false; /* the leader id it last heard is stale */
    const node_peer *p = config_peer(&n->cfg, raft_get_leader(n->r));
    if (p == NULL)
        return false;
    if (out != NULL)
        *out = *p;
    return true;
}

const node_peer *node_self(const node *n)
{
    return config_peer(&n->cfg, n->cfg.id);
}

const node_peer *node_peers(const node *n, uint32_t *count)
{
    *count = n->cfg.n_peers;
    return n->cfg.peers;
}

const config *node_config(const node *n)
{
    return &n->cfg;
}

/* Same voters and same learners, in any order. */
static bool conf_equal(const raft_conf *a, const raft_conf *b)
{
    if (a->n_voters != b->n_voters || a->n_learners != b->n_learners)
        return false;
    for (uint32_t i = 0; i < a->n_voters; i++)
        if (!raft_conf_has(b, a->voters[i]))
            return false;
    for (uint32_t i = 0; i < a->n_learners; i++)
        if (!raft_conf_has_learner(b, a->learners[i]))
            return false;
    return true;
}

/* "1,2,3", "1,2,3 (learners 4)" or "(none)". */
static void conf_text(const raft_conf *c, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < c->n_voters && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRIu64, i ? "," : "",
                                 c->voters[i]);
    for (uint32_t i = 0; i < c->n_learners && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRIu64, i ? "," : " (learners ",
                                 c->learners[i]);
    if (c->n_learners > 0 && used < cap)
        snprintf(buf + used, cap - used, ")");
    if (c->n_voters == 0)
        snprintf(buf, cap, "(none)");
}

static bool same_address(const node_peer *a, const node_peer *b)
{
    return strcmp(a->host, b->host) == 0 && a->peer_port == b->peer_port &&
           a->client_port == b->client_port && a->resp_port == b->resp_port;
}

/* The committed configuration into *buf, or NULL before the core exists (the log replayed at
 * start). Looked up once per decision: while a change is pending it is a walk back in the log. */
static const raft_conf *committed_conf(const node *n, raft_conf *buf)
{
    return n->r != NULL && raft_conf_at(n->r, raft_commit_index(n->r), buf) == RAFT_OK ? buf
                                                                                       : NULL;
}

/* Whether p may be forgotten to make room for a node being learned: learned from a book (a
 * peers-file node stays), not this node, not a member (voter or learner) of keep (the
 * configuration being learned), of the one in force or of committed (committed_conf), and not
 * the leader. */
static bool evictable(const node *n, const node_peer *p, const raft_conf *keep,
                      const raft_conf *committed)
{
    if (!p->learned || p->id == n->cfg.id || raft_conf_has_member(keep, p->id))
        return false;
    if (n->r == NULL)
        return true; /* replaying the log at start: keep is the newest configuration so far */
    if (committed != NULL && raft_conf_has_member(committed, p->id))
        return false;
    return !raft_conf_has_member(raft_get_conf(n->r), p->id) &&
           raft_get_leader(n->r) != p->id;
}

/* Forgets the evictable node learned longest ago (the smallest addr_index): it is dialed no more
 * and leaves the member list, but its handshakes are still accepted (transport_remove_peer).
 * False when no node can go. Nodes are forgotten only for room, not as soon as they are removed:
 * a node that lags may yet need a removed node that was added back since, and may lead. */
static bool evict_one(node *n, const raft_conf *keep, const char *source)
{
    raft_conf buf;
    const raft_conf *committed = committed_conf(n, &buf);
    uint32_t at = UINT32_MAX;
    for (uint32_t i = 0; i < n->cfg.n_peers; i++)
        if (evictable(n, &n->cfg.peers[i], keep, committed) &&
            (at == UINT32_MAX || n->cfg.peers[i].addr_index < n->cfg.peers[at].addr_index))
            at = i;
    if (at == UINT32_MAX)
        return false;
    node_peer gone = n->cfg.peers[at];
    memmove(&n->cfg.peers[at], &n->cfg.peers[at + 1],
            (n->cfg.n_peers - at - 1) * sizeof n->cfg.peers[0]);
    n->cfg.n_peers--;
    log_printf("forgot node %" PRIu64 " at %s (peer %u), no longer a member, to make room for "
               "the nodes of %s", gone.id, gone.host, gone.peer_port, source);
    if (n->tp != NULL)
        transport_remove_peer(n->tp, gone.id);
    return true;
}

void node_learn(node *n, const node_peer *book, uint32_t count, const raft_conf *voters,
                raft_index at, const char *source)
{
    node_peer take[RAFT_MAX_NODES], added[RAFT_MAX_NODES];
    uint32_t nt = 0;
    for (uint32_t i = 0; i < count; i++) {
        const node_peer *b = &book[i];
        /* A non-member's address is nothing this node needs, and it may be long gone: taking it
         * would bring a forgotten node back. */
        if (b->id == n->cfg.id || !raft_conf_has_member(voters, b->id))
            continue;
        node_peer *known = NULL;
        for (uint32_t k = 0; k < n->cfg.n_peers; k++)
            if (n->cfg.peers[k].id == b->id)
                known = &n->cfg.peers[k];
        if (known == NULL) {
            take[nt] = *b;
            take[nt++].addr_index = at;
            continue;
        }
        if (same_address(known, b)) {
            if (b->given)
                known->given = true; /* the cluster owns it from now on (kept in every book) */
            if (known->learned && at > known->addr_index)
                known->addr_index = at;
            continue;
        }
        /* Another address. One given by RAFTKV.MEMBER ADD belongs to the cluster: it moves any
         * address but a given one from a newer book, and a book without the flag (from a node
         * that spells the host its own way, or an older one) never moves it. Otherwise a learned
         * address follows a newer book, and a peers-file one stays (the operator moves such a
         * node by editing the files; another node's file may spell the host another way). */
        bool newer = at > known->addr_index;
        bool move = b->given ? newer : !known->given && known->learned && newer;
        if (!move) {
            if (!known->learned && !known->given)
                log_printf("node %" PRIu64 ": %s gives %s (peer %u), this node's peers file %s "
                           "(peer %u): the file's is kept", b->id, source, b->host, b->peer_port,
                           known->host, known->peer_port);
            continue;
        }
        log_printf("node %" PRIu64 " moved from %s (peer %u, client %u, resp %u) to %s (peer %u, "
                   "client %u, resp %u), from %s", b->id, known->host, known->peer_port,
                   known->client_port, known->resp_port, b->host, b->peer_port, b->client_port,
                   b->resp_port, source);
        snprintf(known->host, sizeof known->host, "%s", b->host);
        known->peer_port = b->peer_port;
        known->client_port = b->client_port;
        known->resp_port = b->resp_port;
        known->learned = true; /* the file's address is gone: it is the cluster's now */
        known->addr_index = at;
        known->given = b->given;
        if (n->tp != NULL) {
            transport_remove_peer(n->tp, b->id);
            if (transport_add_peer(n->tp, known) != 0)
                log_printf("node %" PRIu64 ": cannot dial its new address (see above)", b->id);
        }
    }
    while (n->cfg.n_peers + nt > RAFT_MAX_NODES && evict_one(n, voters, source))
        ;
    int fresh = members_merge(n->cfg.peers, &n->cfg.n_peers, take, nt, added);
    if (fresh < 0) {
        log_printf("%s names more nodes than the %d this build knows at once: the new ones are "
                   "ignored", source, RAFT_MAX_NODES);
        return;
    }
    for (int i = 0; i < fresh; i++) {
        log_printf("learned node %" PRIu64 " at %s (peer %u, client %u, resp %u) from %s",
                   added[i].id, added[i].host, added[i].peer_port, added[i].client_port,
                   added[i].resp_port, source);
        if (n->tp != NULL && transport_add_peer(n->tp, &added[i]) != 0)
            log_printf("node %" PRIu64 ": cannot dial it (see above)", added[i].id);
    }
}

/* Entries from index from on are replaced (a truncation, a snapshot installed over the log):
 * addresses learned from them no longer block the older books that replace them. */
static void forget_from(node *n, raft_index from)
{
    for (uint32_t i = 0; i < n->cfg.n_peers; i++)
        if (n->cfg.peers[i].learned && n->cfg.peers[i].addr_index >= from)
            n->cfg.peers[i].addr_index = from - 1;
}

void node_learn_entries(node *n, const raft_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const raft_entry *e = &entries[i];
        if (e->type != RAFT_ENTRY_CONFIG)
            continue;
        raft_conf conf;
        const uint8_t *ctx;
        uint32_t ctx_len;
        node_peer book[RAFT_MAX_NODES];
        uint32_t nb = 0;
        char err[160] = "", source[80];
        if (raft_codec_conf_decode(e->data, e->len, &conf, &ctx, &ctx_len, err, sizeof err) != 0)
            continue; /* the core checked the entry */
        snprintf(source, sizeof source, "the configuration entry at index %" PRIu64, e->index);
        if (ctx_len == 0)
            nb = 0; /* no book (an older leader): nothing to learn */
        else if (members_decode(ctx, ctx_len, book, &nb, err, sizeof err) != 0)
            log_printf("%s: %s (its addresses are ignored)", source, err);
        node_learn(n, book, nb, &conf, e->index, source);
    }
}

bool node_votes(const node *n, raft_id id)
{
    return raft_conf_has(raft_get_conf(n->r), id);
}

bool node_learns(const node *n, raft_id id)
{
    return raft_conf_has_learner(raft_get_conf(n->r), id);
}

bool node_is_outside(const node *n)
{
    return !raft_conf_has_member(raft_get_conf(n->r), n->cfg.id) &&
           raft_get_role(n->r) != RAFT_LEADER;
}

bool node_some_voter(const node *n, node_peer *out)
{
    const raft_conf *c = raft_get_conf(n->r);
    for (uint32_t i = 0; i < n->cfg.n_peers; i++) {
        const node_peer *p = &n->cfg.peers[i];
        if (p->id != n->cfg.id && raft_conf_has(c, p->id)) {
            *out = *p;
            return true;
        }
    }
    return false;
}

#define RAFT_MAX_NODES_TEXT "16"
_Static_assert(RAFT_MAX_NODES == 16, "RAFT_MAX_NODES_TEXT says 16");

static const char *const member_op_verbs[] = {"add", "add as a learner", "promote", "remove",
                                               "demote"};

const char *node_member_refusal(const node *n, raft_id id, node_member_op op,
                                const node_peer *addr)
{
    const raft_conf *c = raft_get_conf(n->r);
    bool adding = op == NODE_MEMBER_ADD || op == NODE_MEMBER_ADD_LEARNER;
    bool voter = raft_conf_has(c, id), learner = raft_conf_has_learner(c, id);
    const node_peer *known = config_peer(&n->cfg, id);
    if (known == NULL && (!adding || addr == NULL))
        return "is unknown (add it with its address: host, peer, client and RESP ports)";
    bool room = n->cfg.n_peers < RAFT_MAX_NODES;
    raft_conf buf;
    const raft_conf *committed = room ? NULL : committed_conf(n, &buf);
    for (uint32_t i = 0; i < n->cfg.n_peers && !room; i++) /* a former member, forgotten for room */
        room = evictable(n, &n->cfg.peers[i], c, committed);
    if (known == NULL && !room)
        return "cannot be added: this node knows " RAFT_MAX_NODES_TEXT " nodes, all members, "
               "spares of its peers file or the leader";
    if (known != NULL && addr != NULL && (voter || learner) && !same_address(known, addr))
        return voter ? "is a voter at another address: to move it, remove it, then add it with "
                       "its new address"
                     : "is a learner at another address: to move it, remove it, then add it "
                       "with its new address";
    switch (op) {
    case NODE_MEMBER_ADD:
        if (learner)
            return "is a learner: promote it (RAFTKV.MEMBER PROMOTE) once it has caught up";
        return voter ? "is already a voter" : NULL;
    case NODE_MEMBER_ADD_LEARNER:
        if (voter)
            return "is already a voter";
        return learner ? "is already a learner" : NULL;
    case NODE_MEMBER_PROMOTE:
        if (voter)
            return "is already a voter";
        return learner ? NULL : "is not a learner (add it as one first)";
    case NODE_MEMBER_REMOVE:
        if (!voter && !learner)
            return "is not a voter or a learner";
        return voter && c->n_voters == 1 ? "is the last voter" : NULL;
    case NODE_MEMBER_DEMOTE:
        if (learner)
            return "is already a learner";
        if (!voter)
            return "is not a voter";
        return c->n_voters == 1 ? "is the last voter" : NULL;
    }
    return "is not a valid membership change";
}

void node_get_info(const node *n, node_info *out)
{
    memset(out, 0, sizeof *out);
    out->id = n->cfg.id;
    out->role = raft_get_role(n->r);
    out->term = raft_get_term(n->r);
    out->leader = raft_get_leader(n->r);
    out->commit = raft_commit_index(n->r);
    out->applied = kv_applied_index(n->kv);
    out->last_index = raft_last_index(n->r);
    out->snapshot_index = raft_get_snapshot(n->r).index;
    out->voters = *raft_get_conf(n->r);
    out->conf_pending = raft_conf_index(n->r) > out->commit;
    for (uint32_t i = 0; i < n->cfg.n_peers; i++) {
        raft_id id = n->cfg.peers[i].id;
        if (id == n->cfg.id)
            continue;
        node_peer_status *ps = &out->peers[out->n_peers++];
        ps->id = id;
        raft_progress_info pi;
        if (raft_get_progress(n->r, id, &pi))
            ps->match = pi.match;
        ps->connected = n->tp != NULL && transport_connected(n->tp, id);
    }
    out->writes_ok = n->writes_ok;
    out->reads_ok = n->reads_ok;
    out->fsyncs = n->fsyncs;
    out->loop_polls = n->loop_polls;
    if (n->tp != NULL) {
        transport_stats ts = transport_get_stats(n->tp);
        out->peer_msgs_sent = ts.msgs_sent;
        out->peer_msgs_dropped = ts.msgs_dropped;
        out->peer_msgs_received = ts.msgs_received;
        out->handshakes_refused = ts.handshakes_refused;
        out->snapshots_sent = ts.snapshots_sent;
    }
}

/* ---- writes and reads ----------------------------------------------------------------------- */

static int from_raft(int rc)
{
    switch (rc) {
    case RAFT_OK: return NODE_OK;
    case RAFT_ENOTLEADER: return NODE_ENOTLEADER;
    case RAFT_ENOLEADER: return NODE_ENOLEADER;
    case RAFT_ETOOBIG: return NODE_ETOOBIG;
    case RAFT_EBUSY: return NODE_EBUSY;
    case RAFT_ECONFBUSY: return NODE_ECONFBUSY;
    case RAFT_EINVAL: return NODE_EMEMBER;
    default: return NODE_ENOMEM;
    }
}

/* How many voters of next this leader hears from (itself included), not counting `added`: those
 * that acknowledged an entry and answered within the last election timeout. A connection alone
 * does not count (a stopped process keeps it open), nor a voter just added (match 0). */
static uint32_t voters_heard(node *n, const raft_conf *next, raft_id added, uint32_t window)
{
    uint32_t heard = 0;
    for (uint32_t i = 0; i < next->n_voters; i++) {
        raft_id v = next->voters[i];
        raft_progress_info pi;
        if (v == added)
            continue;
        if (v == n->cfg.id ||
            (raft_get_progress(n->r, v, &pi) && pi.match > 0 && pi.idle_ticks <= window))
            heard++;
    }
    return heard;
}

/* Whether learner id has caught up enough to vote: it answered within the window and its log
 * ends at most NODE_PROMOTE_MAX_LAG entries before the commit index (a learner that keeps up
 * with a busy leader trails it by the appends in flight). */
static bool caught_up(node *n, raft_id id, uint32_t window, raft_index *match)
{
    raft_progress_info pi;
    *match = 0;
    if (!raft_get_progress(n->r, id, &pi))
        return false;
    *match = pi.match;
    /* match 0: it has not answered this leader yet (an add and a new leader reset idle_ticks to
     * 0, which alone proves nothing). */
    return pi.match > 0 && pi.idle_ticks <= window &&
           pi.match + NODE_PROMOTE_MAX_LAG >= raft_commit_index(n->r);
}

/* ids without id (in order). */
static void drop_id(raft_id *ids, uint32_t *n, raft_id id)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < *n; i++)
        if (ids[i] != id)
            ids[kept++] = ids[i];
    *n = kept;
}

int node_change_member(node *n, raft_id id, node_member_op op, const node_peer *addr,
                       node_write_cb cb, void *ctx)
{
    if (n->stopping)
        return NODE_ESTOPPING;
    if (raft_get_role(n->r) != RAFT_LEADER)
        return NODE_ENOTLEADER;
    bool adding = op == NODE_MEMBER_ADD || op == NODE_MEMBER_ADD_LEARNER;
    if (addr != NULL && (!adding || addr->id != id || !members_peer_valid(addr)))
        return NODE_EMEMBER;
    if (node_member_refusal(n, id, op, addr) != NULL)
        return NODE_EMEMBER;
    raft_conf next = *raft_get_conf(n->r);
    bool was_voter = raft_conf_has(&next, id);
    drop_id(next.voters, &next.n_voters, id);
    drop_id(next.learners, &next.n_learners, id);
    if (op == NODE_MEMBER_ADD || op == NODE_MEMBER_PROMOTE)
        next.voters[next.n_voters++] = id;
    else if (op == NODE_MEMBER_ADD_LEARNER || op == NODE_MEMBER_DEMOTE)
        next.learners[next.n_learners++] = id;
    uint32_t window = (uint32_t)(n->cfg.election_timeout_min_ms / n->cfg.tick_ms);
    raft_index match;
    if (op == NODE_MEMBER_PROMOTE && !caught_up(n, id, window, &match)) {
        log_printf("refused to promote node %" PRIu64 ": its log ends at %" PRIu64 ", the commit "
                   "index is %" PRIu64 " (a learner is promoted within %d entries, having "
                   "answered within an election timeout)", id, match, raft_commit_index(n->r),
                   NODE_PROMOTE_MAX_LAG);
        return NODE_ELAGGING;
    }
    /* Learners count in no majority: adding or removing one needs no voter's answer. */
    if (op == NODE_MEMBER_ADD || op == NODE_MEMBER_PROMOTE || op == NODE_MEMBER_DEMOTE ||
        (op == NODE_MEMBER_REMOVE && was_voter)) {
        uint32_t heard = voters_heard(n, &next, op == NODE_MEMBER_ADD ? id : 0, window);
        /* From one voter to two can never pass (the new one is not counted): allowed, as etcd
         * does; the cluster waits for the new node to catch up, as it must. */
        bool one_to_two = op == NODE_MEMBER_ADD && next.n_voters == 2;
        if (heard < next.n_voters / 2 + 1 && !one_to_two) {
            log_printf("refused to %s node %" PRIu64 ": %" PRIu32 " of the %" PRIu32
                       " voters after it would answer, a majority needs %" PRIu32,
                       member_op_verbs[op], id, heard, next.n_voters, next.n_voters / 2 + 1);
            return NODE_EUNSAFE;
        }
    }
    pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NODE_ENOMEM;
    /* Every configuration entry carries the whole address book, the new node's included: any
     * node that reads the entry can reach every member (members.h). */
    node_peer book[RAFT_MAX_NODES];
    uint32_t nb = 0;
    for (uint32_t i = 0; i < n->cfg.n_peers; i++)
        if (raft_conf_has_member(&next, n->cfg.peers[i].id) &&
            !(addr != NULL && n->cfg.peers[i].id == id))
            book[nb++] = n->cfg.peers[i]; /* readers take only the members anyway */
    if (addr != NULL) { /* a node known elsewhere (removed) moves: the entry is newer */
        node_peer given = *addr;
        given.given = true;
        members_merge(book, &nb, &given, 1, NULL);
    }
    uint8_t ctx_buf[MEMBERS_MAX_BYTES];
    size_t ctx_len = members_encode(book, nb, ctx_buf, sizeof ctx_buf);
    if (ctx_len == 0) {
        free(p);
        return NODE_EMEMBER;
    }
    int rc = raft_propose_conf(n->r, &next, ctx_buf, (uint32_t)ctx_len, &p->index, &p->term);
    if (rc != RAFT_OK) {
        free(p);
        return from_raft(rc);
    }
    log_printf("proposed to %s node %" PRIu64 " (configuration entry %" PRIu64 ")",
               member_op_verbs[op], id, p->index);
    p->write_cb = cb;
    p->ctx = ctx;
    n->last_proposal_ms = uv_now(n->loop);
    p->deadline = n->last_proposal_ms + n->cfg.write_timeout_ms;
    list_push(&n->writes, p);
    return NODE_OK;
}

int node_write(node *n, const kv_cmd *cmd, node_write_cb cb, void *ctx)
{
    if (n->stopping)
        return NODE_ESTOPPING;
    if (raft_get_role(n->r) != RAFT_LEADER)
        return NODE_ENOTLEADER;
    kv_cmd c = *cmd;
    c.now_ms = node_now_ms(n);
    size_t size = kv_cmd_encoded_size(&c);
    if (size == 0 || c.value.len > n->cfg.max_value_bytes)
        return NODE_ETOOBIG; /* the front-end validated the command: only a size can be wrong */
    if (size > n->enc_cap) {
        uint8_t *b = realloc(n->enc_buf, size);
        if (b == NULL)
            return NODE_ENOMEM;
        n->enc_buf = b;
        n->enc_cap = size;
    }
    long len = kv_cmd_encode(&c, n->enc_buf, n->enc_cap);
    if (len <= 0)
        return NODE_ETOOBIG;
    pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NODE_ENOMEM;
    int rc = raft_propose(n->r, RAFT_ENTRY_NORMAL, n->enc_buf, (uint32_t)len, &p->index, &p->term);
    if (rc != RAFT_OK) {
        free(p);
        return from_raft(rc);
    }
    p->write_cb = cb;
    p->ctx = ctx;
    if (n->test_bug == NODE_BUG_ACK_BEFORE_COMMIT)
        n->early_acks++; /* answered OK at the next loop iteration (prepare_cb) */
    n->last_proposal_ms = uv_now(n->loop);
    p->deadline = n->last_proposal_ms + n->cfg.write_timeout_ms;
    list_push(&n->writes, p);
    return NODE_OK;
}

/* A read whose index has not come back by then is asked for again: the core drops a ReadIndex
 * request silently when the leader is unreachable or changes (raft.h), and a read should not
 * wait its whole timeout for a message lost during a reconnect. Asking again with the same id is
 * safe: any index the leader confirms after the read began serves it linearizably. */
static uint64_t read_retry_ms(const node *n)
{
    return 2 * n->cfg.heartbeat_ms + 20;
}

int node_read(node *n, node_read_cb cb, void *ctx)
{
    if (n->stopping)
        return NODE_ESTOPPING;
    pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NODE_ENOMEM;
    p->read_id = ++n->next_read_id;
    if (n->test_bug == NODE_BUG_LOCAL_READS) {
        p->read_cb = cb;
        p->ctx = ctx;
        p->index_known = true; /* index 0: whatever is applied here now */
        p->deadline = uv_now(n->loop) + n->cfg.read_timeout_ms;
        list_push(&n->reads, p);
        return NODE_OK;
    }
    if (node_is_outside(n)) {
        /* It receives no entries: it would never apply a read index. */
        free(p);
        return NODE_ENOLEADER;
    }
    if (raft_get_role(n->r) == RAFT_LEADER)
        p->term = raft_get_term(n->r); /* asked of ourselves in this term (see sweep_cb) */
    int rc = raft_read_index(n->r, p->read_id);
    if (rc != RAFT_OK) {
        free(p);
        return rc == RAFT_ENOTLEADER ? NODE_ENOLEADER : from_raft(rc);
    }
    p->read_cb = cb;
    p->ctx = ctx;
    p->deadline = uv_now(n->loop) + n->cfg.read_timeout_ms;
    p->retry_at = uv_now(n->loop) + read_retry_ms(n);
    list_push(&n->reads, p);
    return NODE_OK;
}

void node_cancel(node *n, void *ctx)
{
    pending_list *lists[2] = {&n->writes, &n->reads};
    for (int i = 0; i < 2; i++)
        for (pending *p = lists[i]->head, *next; p != NULL; p = next) {
            next = p->next;
            if (p->ctx == ctx) {
                list_unlink(lists[i], p);
                free(p);
            }
        }
    for (pending *p = n->firing.head; p != NULL; p = p->next)
        if (p->ctx == ctx)
            p->cancelled = true;
    for (fast_pending *f = n->fast_head; f != NULL; f = f->next)
        if (f->ctx == ctx)
            f->cancelled = true;
}

/* ---- the fast path ---------------------------------------------------------------------------- */

bool node_fast_path(const node *n)
{
    return n->cfg.fast_path;
}

int node_fast_write(node *n, uint64_t session, uint64_t seq, const kv_cmd *cmd, node_fast_cb cb,
                    void *ctx)
{
    if (n->stopping)
        return NODE_ESTOPPING;
    if (!n->cfg.fast_path)
        return NODE_EFASTOFF;
    uint64_t last;
    if (raft_get_role(n->r) == RAFT_LEADER) {
        if (!kv_session_seq(n->kv, session, &last))
            return NODE_ESESSION;
        /* Applied already: a client reusing a seq would be told a write succeeded that the
         * state machine skips. */
        if (seq <= last)
            return NODE_ESTALE;
    }
    kv_cmd c = *cmd;
    c.now_ms = node_now_ms(n);
    size_t len = kv_cmd_encoded_size(&c);
    if (len == 0)
        return NODE_ETOOBIG;
    if (n->enc_cap < len + RAFT_FAST_HEADER) {
        uint8_t *grown = realloc(n->enc_buf, len + RAFT_FAST_HEADER);
        if (grown == NULL)
            return NODE_ENOMEM;
        n->enc_buf = grown;
        n->enc_cap = len + RAFT_FAST_HEADER;
    }
    raft_fast_header(n->enc_buf, session, seq);
    if (kv_cmd_encode(&c, n->enc_buf + RAFT_FAST_HEADER, len) != (long)len)
        return NODE_ETOOBIG;
    fast_pending *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NODE_ENOMEM;
    int rc = raft_fast_accept(n->r, n->enc_buf, (uint32_t)(len + RAFT_FAST_HEADER), &f->ack);
    if (rc != RAFT_OK) {
        free(f);
        return rc == RAFT_EINVAL ? NODE_EFASTOFF : from_raft(rc);
    }
    f->cb = cb;
    f->ctx = ctx;
    if (n->fast_tail != NULL)
        n->fast_tail->next = f;
    else
        n->fast_head = f;
    n->fast_tail = f;
    if (f->ack.index != 0)
        n->last_proposal_ms = uv_now(n->loop);
    return NODE_OK;
}

/* The Ready just saved held every fast write taken before it was taken: acknowledge them, in
 * order (all == true: fail everything instead, the node stops). */
static void fast_answer(node *n, bool all, int status)
{
    while (n->fast_head != NULL && (all || n->fast_head->in_ready)) {
        fast_pending *f = n->fast_head;
        n->fast_head = f->next;
        if (n->fast_head == NULL)
            n->fast_tail = NULL;
        if (status == NODE_OK)
            n->fast_ok++;
        if (!f->cancelled && f->cb != NULL)
            f->cb(f->ctx, status, status == NODE_OK ? &f->ack : NULL);
        free(f);
    }
}

/* The stored d-log grows with every fast write and shrinks only when rewritten: rewrite it from
 * the core's once it is 4 times larger than that (and past 1 MiB). */
typedef struct dlog_job {
    disk_job base;
    node *n;
    raft_entry *entries; /* one block */
    size_t count;
    uint64_t bytes;
    int rc;
    char err[DLOG_ERRMSG_SIZE];
} dlog_job;

static void dlog_job_work(disk_job *job)
{
    dlog_job *j = (dlog_job *)job;
    j->rc = dlog_rewrite(j->n->dl, j->entries, j->count);
    if (j->rc != DLOG_OK)
        snprintf(j->err, sizeof j->err, "%s", dlog_errmsg(j->n->dl));
}

static void dlog_job_done(disk_job *job)
{
    dlog_job *j = (dlog_job *)job;
    node *n = j->n;
    if (j->rc != DLOG_OK)
        node_fatal(n, "d-log rewrite", j->err);
    n->dlog_live_bytes = j->bytes;
    free(j->entries);
    free(j);
    node_try_finish_stop(n);
}

static void fast_maybe_rewrite(node *n)
{
    if (n->dl == NULL || n->stopping ||
        dlog_size(n->dl) < 4 * n->dlog_live_bytes + (1u << 20))
        return;
    const raft_entry *live;
    size_t count = raft_fast_dlog(n->r, &live);
    uint64_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += live[i].len + 32;
    dlog_job *j = calloc(1, sizeof *j);
    raft_entry *block = malloc(count * sizeof(raft_entry) + bytes + 1);
    if (j == NULL || block == NULL) {
        free(j);
        free(block);
        return; /* later */
    }
    uint8_t *data = (uint8_t *)(block + count);
    for (size_t i = 0; i < count; i++) {
        block[i] = live[i];
        memcpy(data, live[i].data, live[i].len);
        block[i].data = data;
        data += live[i].len;
    }
    j->base.work = dlog_job_work;
    j->base.done = dlog_job_done;
    j->n = n;
    j->entries = block;
    j->count = count;
    j->bytes = bytes;
    n->dlog_live_bytes = dlog_size(n->dl); /* no second rewrite before this one is done */
    disk_submit(n->dk, &j->base);
}

/* Answers the reads whose index is known and applied. */
static void answer_reads(node *n)
{
    uint64_t applied = kv_applied_index(n->kv);
    for (pending *p = n->reads.head, *next; p != NULL; p = next) {
        next = p->next;
        if (p->index_known && p->index <= applied) {
            list_unlink(&n->reads, p);
            p->status = NODE_OK;
            list_push(&n->firing, p);
            n->reads_ok++;
        }
    }
    fire_all(n);
}

/* Past it: this seq of the session, or a later one, is applied (raft_fast_prune), or the session
 * is closed: its id is at or below the applied index (a session's id is its REGISTER entry's
 * index) and it is not open, so every write of it is skipped. A session the state machine does
 * not know yet is kept: the leader may know it. */
static bool fast_applied(void *ctx, uint64_t session, uint64_t seq)
{
    uint64_t last;
    if (!kv_session_seq(ctx, session, &last))
        return session <= kv_applied_index(ctx);
    return seq <= last;
}

static void sweep_cb(uv_timer_t *timer)
{
    node *n = timer->data;
    uint64_t now = uv_now(n->loop);
    if (n->cfg.fast_path && raft_fast_pending(n->r) > 0)
        raft_fast_prune(n->r, fast_applied, n->kv);
    pending_list *lists[2] = {&n->writes, &n->reads};
    for (int i = 0; i < 2; i++)
        for (pending *p = lists[i]->head, *next; p != NULL; p = next) {
            next = p->next;
            if (p->deadline <= now) {
                list_unlink(lists[i], p);
                p->status = NODE_ETIMEOUT;
                list_push(&n->firing, p);
            }
        }
    fire_all(n);
    bool leader = raft_get_role(n->r) == RAFT_LEADER;
    raft_term term = raft_get_term(n->r);
    for (pending *p = n->reads.head; p != NULL; p = p->next) {
        /* A leader's own queue loses nothing while it stays leader in that term: ask it once. */
        if (p->index_known || p->retry_at > now || (leader && p->term == term))
            continue;
        p->retry_at = now + read_retry_ms(n);
        p->term = leader ? term : 0;
        (void)raft_read_index(n->r, p->read_id); /* no leader known: try at the next turn */
    }
    /* Let idle expired keys be reclaimed: bounded work per sweep. Replicas reclaim only what
     * the APPLY clock says is expired (kv_store.h), and that clock advances only with entries:
     * an idle leader proposes a TICK now and then so expired keys do not stay forever. */
    kv_expire_sweep(n->kv, 64);
    kv_stats ks;
    kv_get_stats(n->kv, &ks);
    if (ks.keys > 0 && raft_get_role(n->r) == RAFT_LEADER &&
        now - n->last_proposal_ms >= IDLE_TICK_MS) {
        kv_cmd tick = {.op = KV_OP_TICK, .now_ms = node_now_ms(n)};
        uint8_t buf[64];
        long len = kv_cmd_encode(&tick, buf, sizeof buf);
        if (len > 0 && raft_propose(n->r, RAFT_ENTRY_NORMAL, buf, (uint32_t)len, NULL, NULL) ==
                           RAFT_OK)
            n->last_proposal_ms = now;
    }
}

/* ---- applying ------------------------------------------------------------------------------- */

static void apply_committed(node *n, const raft_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const raft_entry *e = &entries[i];
        if (e->index <= kv_applied_index(n->kv))
            continue; /* already in the restored snapshot */
        kv_result res;
        memset(&res, 0, sizeof res);
        uint64_t session, seq;
        if (e->type == RAFT_ENTRY_NORMAL) {
            int rc = kv_apply(n->kv, e->index, e->data, e->len, &res);
            if (rc == KV_ENOMEM)
                node_fatal(n, "apply", "out of memory"); /* cannot skip an entry: stop */
            assert(rc == KV_OK);
        } else if (raft_fast_id(e, &session, &seq)) {
            int rc = kv_apply_fast(n->kv, e->index, session, seq, e->data + RAFT_FAST_HEADER,
                                   e->len - RAFT_FAST_HEADER, &res);
            if (rc == KV_ENOMEM)
                node_fatal(n, "apply", "out of memory");
            assert(rc == KV_OK);
        } else {
            kv_skip_to(n->kv, e->index);
        }
        n->applied_since_snapshot++;
        /* Answer the writes up to this index: ours if the term matches, lost otherwise. */
        pending *p;
        while ((p = n->writes.head) != NULL && p->index <= e->index) {
            list_unlink(&n->writes, p);
            bool ours = p->index == e->index && p->term == e->term;
            if (ours)
                n->writes_ok++;
            if (p->write_cb != NULL)
                p->write_cb(p->ctx, ours ? NODE_OK : NODE_ELOST, ours ? &res : NULL);
            free(p);
        }
    }
}

/* ---- the Ready loop ------------------------------------------------------------------------- */

static void observe(node *n)
{
    raft_role role = raft_get_role(n->r);
    raft_term term = raft_get_term(n->r);
    raft_id leader = raft_get_leader(n->r);
    if (term != n->last_term)
        log_printf("term %" PRIu64 " -> %" PRIu64, n->last_term, term);
    if (role != n->last_role)
        log_printf("role %s -> %s (term %" PRIu64 ")", raft_role_name(n->last_role),
                   raft_role_name(role), term);
    if (leader != n->last_leader && leader != 0)
        log_printf("leader is node %" PRIu64 " (term %" PRIu64 ")", leader, term);
    const raft_conf *conf = raft_get_conf(n->r);
    if (!conf_equal(conf, &n->last_conf)) {
        char before[RAFT_MAX_NODES * 21], now[RAFT_MAX_NODES * 21];
        conf_text(&n->last_conf, before, sizeof before);
        conf_text(conf, now, sizeof now);
        log_printf("voters %s -> %s%s", before, now,
                   raft_conf_has(conf, n->cfg.id) ? ""
                   : raft_conf_has_learner(conf, n->cfg.id)
                       ? " (this node is a learner: it gets the log, and never votes or campaigns)"
                       : " (this node is not a voter: it follows, and never campaigns)");
        n->last_conf = *conf;
    }
    if (n->last_role == RAFT_LEADER && role != RAFT_LEADER) {
        /* Writes already committed stay: applying answers them (a leader that removed itself
         * steps down the moment its removal commits, before applying it). */
        pending *p = n->writes.head;
        while (p != NULL && p->index <= raft_commit_index(n->r))
            p = p->next;
        fail_from(n, &n->writes, p, NODE_ELOST);
        fire_all(n);
    }
    n->last_role = role;
    n->last_term = term;
    n->last_leader = leader;
}

/* Writes msgs to their peers (nothing once the node is stopping). */
static void transmit(node *n, const raft_msg *msgs, size_t count)
{
    if (n->stopping || count == 0)
        return;
    for (size_t i = 0; i < count; i++)
        transport_send(n->tp, &msgs[i]);
    transport_flush(n->tp);
}

/* Sends and frees what raft_take_messages handed out: what may leave before any fsync
 * (heartbeats, a leader's appends, read-index traffic), see SENDING EARLY in raft.h. */
static void send_msgs(node *n, raft_msg *msgs, size_t count)
{
    transmit(n, msgs, count);
    if (count > 0)
        raft_messages_free(msgs, count);
}

static bool carries_entries(const raft_msg *msgs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (msgs[i].n_entries > 0)
            return true;
    return false;
}

/* Records the index each read must wait for. */
static void learn_reads(node *n, const raft_read_state *reads, size_t count)
{
    for (size_t i = 0; i < count; i++)
        for (pending *p = n->reads.head; p != NULL; p = p->next)
            if (p->read_id == reads[i].request_id) {
                p->index = reads[i].index;
                p->index_known = true;
                break;
            }
}

/* Applies what is committed and learns the read indexes now, even while a Ready's fsync is in
 * flight (APPLYING EARLY in raft.h): a write is answered once a majority has it. */
static bool apply_early(node *n)
{
    raft_entry *entries;
    size_t n_entries = raft_take_committed(n->r, &entries);
    apply_committed(n, entries, n_entries);
    free(entries);
    raft_read_state *reads;
    size_t n_reads = raft_take_reads(n->r, &reads);
    learn_reads(n, reads, n_reads);
    free(reads);
    if (n_entries + n_reads > 0)
        answer_reads(n);
    return n_entries + n_reads > 0;
}

/* Applies rd's committed entries and learns its read indexes. Idempotent, so it can run both
 * before the disk write (committed entries are durable on a majority already) and after it. */
static void deliver(node *n, const raft_ready *rd)
{
    apply_committed(n, rd->committed, rd->n_committed);
    learn_reads(n, rd->reads, rd->n_reads);
}

static void ready_finish(node *n)
{
    raft_ready *rd = &n->rd;
    if (!n->rd_sent)
        transmit(n, rd->msgs, rd->n_msgs);
    n->rd_sent = false;
    deliver(n, rd);
    raft_advance(n->r, rd);
    n->ready_busy = false;
    answer_reads(n);
    observe(n);
    if (!n->stopping)
        node_snap_maybe_take(n);
}

static void ready_work(disk_job *job)
{
    ready_job *j = (ready_job *)job;
    node *n = j->n;
    if (n->test_bug == NODE_BUG_ACK_BEFORE_FSYNC)
        usleep(300 * 1000); /* the window in which acknowledged state is not on disk */
    j->rc = storage_save(n->st, &n->rd);
    if (j->rc != STORAGE_OK) {
        snprintf(j->err, sizeof j->err, "%s", storage_errmsg(n->st));
        return;
    }
    if (n->dl != NULL && dlog_append(n->dl, n->rd.fast, n->rd.n_fast, n->rd.fast_drop_below) !=
                             DLOG_OK) {
        j->rc = STORAGE_EFATAL;
        snprintf(j->err, sizeof j->err, "%s", dlog_errmsg(n->dl));
        return;
    }
    if (n->rd.snapshot.index != 0)
        j->restore = node_snap_read(n, n->rd.snapshot.index, &j->book, j->err, sizeof j->err);
}

static void ready_done(disk_job *job)
{
    ready_job *j = (ready_job *)job;
    node *n = j->n;
    if (j->rc != STORAGE_OK)
        node_fatal(n, "cannot persist the Ready", j->err);
    n->fsyncs++;
    if (n->rd.snapshot.index != 0) {
        node_snap_abort_local(n); /* an open kv snapshot would make the restore fail */
        if (j->restore == NULL)
            node_fatal(n, "snapshot restore", j->err);
        int rc = kv_restore_finish(j->restore, n->kv);
        if (rc != KV_OK)
            node_fatal(n, "snapshot restore", kv_restore_error(j->restore));
        kv_restore_free(j->restore);
        j->restore = NULL;
        char source[64];
        snprintf(source, sizeof source, "the snapshot at index %" PRIu64, n->rd.snapshot.index);
        node_learn(n, j->book.peers, j->book.n, &n->rd.snapshot.conf, n->rd.snapshot.index,
                   source);
        n->applied_since_snapshot = 0;
        log_printf("snapshot installed: index %" PRIu64 " term %" PRIu64 " (state machine "
                   "replaced)", n->rd.snapshot.index, n->rd.snapshot.term);
    }
    fast_answer(n, false, NODE_OK); /* durable here now (the d-log, and the log on a leader) */
    fast_maybe_rewrite(n);
    ready_finish(n);
    node_try_finish_stop(n);
}

/* A follower's Ready bigger than this (catching up) goes to the disk thread: the loop keeps
 * answering heartbeats and reads while it is written. */
#define SAVE_INLINE_MAX_BYTES (1u << 20)

/* Whether rd is saved on the loop thread instead of the disk thread (step 2 above). Only when no
 * disk job is pending, so the storage still sees one call at a time, in order; never for a
 * snapshot (its restore reads a file) nor under a test bug (which times its own window). */
static bool save_inline(const node *n, const raft_ready *rd)
{
    if (raft_get_role(n->r) == RAFT_LEADER || rd->snapshot.index != 0 ||
        disk_pending(n->dk) != 0 || n->test_bug != 0)
        return false;
    size_t bytes = 0;
    for (size_t i = 0; i < rd->n_entries && bytes <= SAVE_INLINE_MAX_BYTES; i++)
        bytes += rd->entries[i].len;
    return bytes <= SAVE_INLINE_MAX_BYTES;
}

static void process_ready(node *n)
{
    if (n->ready_busy || n->stopped || !raft_has_ready(n->r))
        return;
    raft_ready *rd = &n->rd;
    raft_ready_get(n->r, rd);
    n->ready_busy = true;
    /* What replaced entries taught must not block the books that replace them: a truncation,
     * or a snapshot installed over the whole log (its book is learned once it is saved). */
    if (rd->truncate_from != 0)
        forget_from(n, rd->truncate_from);
    if (rd->snapshot.index != 0)
        forget_from(n, rd->snapshot.index);
    node_learn_entries(n, rd->entries, rd->n_entries);
    /* Every fast write taken since the last Ready is in this one (one d-log entry each), unless the
     * core ran out of memory copying them: mark exactly as many as it carries. */
    size_t carried = rd->n_fast;
    for (fast_pending *f = n->fast_head; f != NULL && carried > 0; f = f->next)
        if (!f->in_ready) {
            f->in_ready = true;
            carried--;
        }
    if (rd->truncate_from != 0)
        log_printf("log truncated from index %" PRIu64 " (conflict with the leader's log)",
                   rd->truncate_from);
    /* A commit-only change needs no fsync (raft.h, must_sync): the commit index is a hint. */
    if (!rd->must_sync) {
        ready_finish(n);
        return;
    }
    if (n->test_bug == NODE_BUG_ACK_BEFORE_FSYNC && !n->stopping) {
        transmit(n, rd->msgs, rd->n_msgs); /* breaks the ordering rule on purpose */
        n->rd_sent = true;
    }
    if (rd->snapshot.index == 0) {
        /* Answer what is committed now instead of after this write: it is on a majority. */
        deliver(n, rd);
        answer_reads(n);
        /* Everything applied is in a Ready now, so a snapshot may cover it (raft_compact). */
        if (!n->stopping)
            node_snap_maybe_take(n);
    }
    memset(&n->job, 0, sizeof n->job);
    n->job.base.work = ready_work;
    n->job.base.done = ready_done;
    n->job.n = n;
    if (save_inline(n, rd)) {
        ready_work(&n->job.base);
        ready_done(&n->job.base);
        return;
    }
    disk_submit(n->dk, &n->job.base);
}

/* Test-only bugs: answers writes that are merely proposed and reads that were never confirmed. */
static void test_bug_answer_early(node *n)
{
    if (n->test_bug == NODE_BUG_LOCAL_READS)
        answer_reads(n);
    if (n->test_bug != NODE_BUG_ACK_BEFORE_COMMIT || n->early_acks == 0)
        return;
    n->early_acks = 0;
    for (pending *p = n->writes.head; p != NULL; p = p->next) {
        if (p->write_cb == NULL)
            continue;
        kv_result res = {.status = KV_ST_OK, .version = p->index};
        node_write_cb cb = p->write_cb;
        p->write_cb = NULL; /* the real outcome, later, is not reported */
        n->writes_ok++;
        cb(p->ctx, NODE_OK, &res);
    }
}

static void poll_idle_cb(uv_idle_t *idle)
{
    (void)idle; /* an active idle handle is what keeps the loop from sleeping */
}

/* poll_us: a leader that had work within the window keeps its loop from sleeping, so the next
 * request or acknowledgement is picked up without a wake-up (on a VM, an inter-processor interrupt
 * through the hypervisor, tens of microseconds). Followers never poll: on a machine shared by
 * several nodes their spinning would take the leader's core. */
static void poll_decide(node *n, bool worked)
{
    if (n->cfg.poll_us == 0)
        return;
    uint64_t now = uv_hrtime();
    if (worked)
        n->last_work_ns = now;
    bool poll = !n->stopping && raft_get_role(n->r) == RAFT_LEADER &&
                now - n->last_work_ns < n->cfg.poll_us * 1000;
    if (poll) {
        n->loop_polls++;
        if (!uv_is_active((uv_handle_t *)&n->poll_idle))
            uv_idle_start(&n->poll_idle, poll_idle_cb);
    } else if (uv_is_active((uv_handle_t *)&n->poll_idle)) {
        uv_idle_stop(&n->poll_idle);
    }
}

static void prepare_cb(uv_prepare_t *prep)
{
    node *n = prep->data;
    observe(n);
    /* Replies before peer messages: a committed write's reply needs nothing that is still to be
     * sent, and a commit advance or heartbeat written first would make the client wait for those
     * socket writes (and for the followers they wake). Appends that carry entries go first: they
     * start the followers' disk writes, the longest step of the next commit. One peer's messages
     * keep their order either way. */
    raft_msg *msgs;
    size_t count = raft_take_messages(n->r, &msgs);
    bool appends_first = carries_entries(msgs, count);
    if (appends_first)
        send_msgs(n, msgs, count);
    bool applied = !n->stopping && apply_early(n);
    if (applied && n->reply_flush != NULL)
        n->reply_flush(n->reply_flush_ctx);
    if (!appends_first)
        send_msgs(n, msgs, count);
    /* Several Readies per iteration when the disk is not involved (e.g. a follower's commit
     * advance), bounded so the loop still polls. */
    for (int i = 0; i < 8 && !n->ready_busy; i++)
        process_ready(n);
    if (n->test_bug)
        test_bug_answer_early(n);
    poll_decide(n, count > 0 || applied);
}

void node_set_reply_flush(node *n, void (*flush)(void *ctx), void *ctx)
{
    n->reply_flush = flush;
    n->reply_flush_ctx = ctx;
}

static void tick_cb(uv_timer_t *timer)
{
    node *n = timer->data;
    raft_tick(n->r);
}

/* ---- transport callbacks -------------------------------------------------------------------- */

static void on_msg(void *ctx, const raft_msg *msg)
{
    node *n = ctx;
    if (n->stopping)
        return;
    raft_step(n->r, msg);
}

static void on_snap_failed(void *ctx, raft_id peer)
{
    node *n = ctx;
    if (!n->stopping)
        raft_report_snapshot_failed(n->r, peer);
}

/* ---- start and stop ------------------------------------------------------------------------- */

static int noop_sync(vfs *v, vfs_file *f)
{
    (void)v;
    (void)f;
    return 0;
}

static int noop_sync_dir(vfs *v, const char *path)
{
    (void)v;
    (void)path;
    return 0;
}

static void storage_log(void *ctx, const char *line)
{
    (void)ctx;
    log_printf("storage: %s", line);
}

static uint64_t random_seed(raft_id id)
{
    uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (id * 0x9e3779b97f4a7c15ull);
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        uint64_t r;
        if (fread(&r, sizeof r, 1, f) == 1)
            seed ^= r;
        fclose(f);
    }
    return seed;
}

static void handle_closed_cb(uv_handle_t *h)
{
    node *n = h->data;
    n->open_handles--;
}

/* node_start's way out once the storage is open: frees what it built, returns -1. */
static int start_failed(node *n, storage_loaded *loaded, raft_entry *fast)
{
    free(fast);
    dlog_close(n->dl);
    storage_loaded_free(loaded);
    storage_close(n->st);
    kv_store_free(n->kv);
    free(n);
    return -1;
}

int node_start(uv_loop_t *loop, const config *cfg, node **out)
{
    node *n = calloc(1, sizeof *n);
    if (n == NULL) {
        log_printf("node: out of memory");
        return -1;
    }
    n->loop = loop;
    n->cfg = *cfg;
    if (strcmp(cfg->test_bug, "local-reads") == 0)
        n->test_bug = NODE_BUG_LOCAL_READS;
    else if (strcmp(cfg->test_bug, "ack-before-commit") == 0)
        n->test_bug = NODE_BUG_ACK_BEFORE_COMMIT;
    else if (strcmp(cfg->test_bug, "ack-before-fsync") == 0)
        n->test_bug = NODE_BUG_ACK_BEFORE_FSYNC;
    if (n->test_bug)
        log_printf("TEST BUG %s injected: this node is UNSAFE on purpose", cfg->test_bug);
    n->disk_vfs = *vfs_posix();
    if (!cfg->fsync) {
        log_printf("WARNING: fsync disabled (--fsync=false): acknowledged writes can be lost");
        n->disk_vfs.fdatasync = noop_sync;
        n->disk_vfs.fsync = noop_sync;
        n->disk_vfs.sync_dir = noop_sync_dir;
    }
    char df_err[160];
    if (disk_fault_parse(cfg->test_disk_fault, &n->disk_fault, df_err, sizeof df_err) != 0) {
        log_printf("%s", df_err); /* config_check already refused it: only a caller bypassing it */
        free(n);
        return -1;
    }
    uint64_t seed = random_seed(cfg->id);
    n->kv_cfg.hash_seed = seed;
    n->kv = kv_store_new(&n->kv_cfg);

    storage_opts so;
    storage_opts_default(&so);
    so.segment_bytes = cfg->segment_bytes;
    so.seed = seed;
    so.log = storage_log;
    storage_loaded loaded;
    memset(&loaded, 0, sizeof loaded);
    int rc = n->kv == NULL ? STORAGE_ENOMEM
                           : storage_open(cfg->data_dir, &n->disk_vfs, &so, &n->st, &loaded);
    if (rc != STORAGE_OK) {
        log_printf("cannot open the storage in %s: %s: %s", cfg->data_dir, storage_strerror(rc),
                   loaded.errmsg);
        kv_store_free(n->kv);
        free(n);
        return -1;
    }
    raft_entry *fast = NULL; /* the stored d-log (fast path) */
    size_t n_fast = 0;
    char dpath[CONFIG_PATH_MAX + 8];
    snprintf(dpath, sizeof dpath, "%s/dlog", cfg->data_dir);
    if (cfg->fast_path || access(dpath, F_OK) == 0) {
        char derr[DLOG_ERRMSG_SIZE] = "";
        int drc = dlog_open(cfg->data_dir, &n->disk_vfs, &n->dl, &fast, &n_fast, derr);
        const char *why = drc != DLOG_OK ? derr : NULL;
        char off[256];
        if (drc == DLOG_OK && !cfg->fast_path && n_fast > 0) {
            /* Without the fast path no recovery runs: those acknowledged writes would vanish. */
            snprintf(off, sizeof off, "it holds %zu fast write(s) but fast_path is off: turn it "
                     "on (on every node), or remove the file if those writes may be lost", n_fast);
            why = off;
        }
        if (why != NULL) {
            log_printf("cannot open the d-log %s: %s", dpath, why);
            return start_failed(n, &loaded, fast);
        }
        uint64_t at, cut = dlog_cut(n->dl, &at);
        if (cut > 0)
            log_printf("d-log %s: torn tail of %" PRIu64 " bytes at offset %" PRIu64 " cut", dpath,
                       cut, at);
        if (!cfg->fast_path) { /* empty: not needed */
            dlog_close(n->dl);
            n->dl = NULL;
        }
    }
    /* Armed only once the storage is open (in place: the storage keeps &n->disk_vfs, and no
     * other thread uses it yet), so the fault hits the running node, not its recovery. */
    if (n->disk_fault.kind != DISK_FAULT_NONE) {
        log_printf("TEST DISK FAULT %s injected: this node's disk will fail on purpose",
                   cfg->test_disk_fault);
        disk_fault_wrap(&n->disk_fault, &n->disk_vfs);
    }
    if (loaded.snapshot.index != 0 && node_snap_load(n, &loaded.snapshot) != 0)
        return start_failed(n, &loaded, fast);

    raft_config rc_cfg;
    raft_config_default(&rc_cfg);
    rc_cfg.id = cfg->id;
    for (uint32_t i = 0; i < cfg->n_peers; i++)
        if (!cfg->peers[i].spare)
            rc_cfg.conf.voters[rc_cfg.conf.n_voters++] = cfg->peers[i].id;
    rc_cfg.election_tick = (uint32_t)(cfg->election_timeout_min_ms / cfg->tick_ms);
    rc_cfg.heartbeat_tick = (uint32_t)(cfg->heartbeat_ms / cfg->tick_ms);
    if (rc_cfg.heartbeat_tick == 0)
        rc_cfg.heartbeat_tick = 1;
    if (rc_cfg.election_tick <= rc_cfg.heartbeat_tick)
        rc_cfg.election_tick = rc_cfg.heartbeat_tick + 1;
    rc_cfg.election_tick_max = (uint32_t)(cfg->election_timeout_max_ms / cfg->tick_ms);
    if (rc_cfg.election_tick_max <= rc_cfg.election_tick)
        rc_cfg.election_tick_max = rc_cfg.election_tick + 1;
    /* Longer than an election timeout: a follower saves on its loop thread (save_inline), so a
     * disk that stalls for a moment silences it; the leader stays, its writes just wait. An
     * isolated leader still steps down, only later; reads never rely on its lease. */
    rc_cfg.check_quorum_tick = cfg->check_quorum_ms != 0
                                   ? (uint32_t)(cfg->check_quorum_ms / cfg->tick_ms)
                                   : 2 * rc_cfg.election_tick_max;
    if (rc_cfg.check_quorum_tick < rc_cfg.election_tick)
        rc_cfg.check_quorum_tick = rc_cfg.election_tick;
    rc_cfg.seed = seed;
    rc_cfg.max_inflight_msgs = (uint32_t)cfg->max_inflight_msgs;
    rc_cfg.max_entries_per_msg = (uint32_t)cfg->max_entries_per_msg;
    rc_cfg.max_bytes_per_msg = cfg->max_bytes_per_msg;
    /* A command holds at most one value limit's worth of values plus up to 1024 keys and their
     * framing (under 1 MiB): the core must not refuse what the front-ends accepted. */
    uint64_t max_entry = cfg->max_value_bytes + (1u << 20);
    if (max_entry > rc_cfg.max_entry_bytes)
        rc_cfg.max_entry_bytes = (uint32_t)max_entry;
    rc_cfg.max_uncommitted_bytes = cfg->max_uncommitted_bytes;
    node_learn_entries(n, loaded.entries, loaded.n_entries);
    raft_restore restore;
    storage_loaded_restore(&loaded, &restore);
    /* Fast writes the snapshot already applied are done with. */
    size_t kept = 0;
    for (size_t i = 0; i < n_fast; i++) {
        uint64_t session, seq, last;
        if (raft_fast_id(&fast[i], &session, &seq) && kv_session_seq(n->kv, session, &last) &&
            seq <= last)
            continue;
        fast[kept++] = fast[i];
    }
    restore.fast = fast;
    restore.n_fast = kept;
    n->dlog_live_bytes = 0;
    for (size_t i = 0; i < kept; i++)
        n->dlog_live_bytes += fast[i].len + 32;
    rc_cfg.fast_path = cfg->fast_path;
    rc = raft_new(&rc_cfg, &restore, &n->r);
    log_printf("recovered from %s: term %" PRIu64 ", vote %" PRIu64 ", commit %" PRIu64
               ", snapshot %" PRIu64 ", %zu log entries", cfg->data_dir, loaded.hard_state.term,
               loaded.hard_state.vote, loaded.hard_state.commit, loaded.snapshot.index,
               loaded.n_entries);
    if (cfg->fast_path)
        log_printf("fast path on: %zu write(s) in the d-log (%zu already applied, dropped)", kept,
                   n_fast - kept);
    free(fast);
    storage_loaded_free(&loaded);
    if (rc != RAFT_OK) {
        log_printf("cannot start the Raft core from %s: %s", cfg->data_dir, raft_strerror(rc));
        dlog_close(n->dl);
        storage_close(n->st);
        kv_store_free(n->kv);
        free(n);
        return -1;
    }
    n->last_term = raft_get_term(n->r);
    n->last_role = raft_get_role(n->r);

    n->dk = disk_start(loop);
    transport_config tc = {
        .self = cfg->id,
        .peers = n->cfg.peers, /* the peers file and what the snapshot and log taught us */
        .n_peers = n->cfg.n_peers,
        .cluster_id = cfg->cluster_id,
        .secret = cfg->cluster_secret,
        .queue_bytes = cfg->peer_queue_bytes,
        .chunk_bytes = cfg->snapshot_chunk_bytes,
        .snapshot_dir = cfg->data_dir,
    };
    transport_cbs cbs = {.ctx = n, .on_msg = on_msg, .on_snap_chunk = node_snap_on_chunk,
                         .on_snap_failed = on_snap_failed};
    if (n->dk == NULL || transport_start(loop, &tc, &cbs, &n->tp) != 0) {
        /* Handles may be open on the loop: the process exits right after this. */
        log_printf("cannot start the node (see above)");
        return -1;
    }
    uv_timer_init(loop, &n->tick_timer);
    uv_timer_init(loop, &n->sweep_timer);
    uv_prepare_init(loop, &n->prepare);
    uv_idle_init(loop, &n->poll_idle);
    n->tick_timer.data = n->sweep_timer.data = n->prepare.data = n->poll_idle.data = n;
    n->open_handles = 4;
    uv_timer_start(&n->tick_timer, tick_cb, cfg->tick_ms, cfg->tick_ms);
    uv_timer_start(&n->sweep_timer, sweep_cb, 50, 50);
    uv_prepare_start(&n->prepare, prepare_cb);
    log_printf("node %" PRIu64 " of %u started: peers on port %u, election timeout %u ticks of "
               "%" PRIu64 " ms, heartbeat %u ticks, check-quorum %u ticks", cfg->id, cfg->n_peers,
               node_self(n)->peer_port, rc_cfg.election_tick, cfg->tick_ms,
               rc_cfg.heartbeat_tick, rc_cfg.check_quorum_tick);
    if (cfg->poll_us != 0)
        log_printf("poll_us %" PRIu64 ": as leader this node polls instead of sleeping for %" PRIu64
                   " us after its last work", cfg->poll_us, cfg->poll_us);
    *out = n;
    return 0;
}

void node_try_finish_stop(node *n)
{
    if (!n->stopping || n->stopped || n->ready_busy || disk_pending(n->dk) > 0)
        return;
    n->stopped = true;
    disk_close(n->dk);
    n->dk = NULL;
    storage_close(n->st);
    n->st = NULL;
    dlog_close(n->dl);
    n->dl = NULL;
    log_printf("stopped: storage closed cleanly");
    if (n->stop_cb != NULL)
        n->stop_cb(n->stop_ctx);
}

void node_run_first(node *n)
{
    uv_prepare_stop(&n->prepare);
    uv_prepare_start(&n->prepare, prepare_cb);
}

void node_stop(node *n, void (*done)(void *ctx), void *ctx)
{
    if (n->stopping)
        return;
    n->stopping = true;
    n->stop_cb = done;
    n->stop_ctx = ctx;
    log_printf("stopping: finishing in-flight disk work");
    uv_timer_stop(&n->tick_timer);
    uv_timer_stop(&n->sweep_timer);
    uv_close((uv_handle_t *)&n->tick_timer, handle_closed_cb);
    uv_close((uv_handle_t *)&n->sweep_timer, handle_closed_cb);
    uv_close((uv_handle_t *)&n->prepare, handle_closed_cb);
    uv_close((uv_handle_t *)&n->poll_idle, handle_closed_cb);
    transport_close(n->tp);
    n->tp = NULL;
    node_snap_stop(n);
    fail_list(n, &n->writes, NODE_ESTOPPING);
    fail_list(n, &n->reads, NODE_ESTOPPING);
    fire_all(n);
    fast_answer(n, true, NODE_ESTOPPING);
    node_try_finish_stop(n);
}

void node_free(node *n)
{
    if (n == NULL)
        return;
    assert(n->stopped && n->open_handles == 0);
    raft_free(n->r);
    kv_store_free(n->kv);
    free(n->enc_buf);
    free(n);
}
