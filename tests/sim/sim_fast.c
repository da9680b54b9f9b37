/*
 * sim_fast.c -- the nil-externality fast path under simulation (raft.h FAST PATH,
 * docs/NILEXT.md).
 *
 * CLIENTS. SIM_FAST_SESSIONS sessions, one write in flight each. A write (header + a payload
 * derived from its session and seq) is sent to every node, each copy delayed and maybe lost like a
 * network message. A node takes it with raft_fast_accept and acknowledges once the Ready holding
 * it is durable (sim_node.c calls sim_fast_ready_taken / sim_fast_ready_saved); the ack travels
 * back the same way. The client keeps acks apart by term and is done when, in one term, the node
 * that took it as leader and every voter of that leader's configuration acknowledged. A write not
 * done within FAST_TIMEOUT_US is abandoned (its outcome unknown) and the session moves on.
 *
 * D-LOG ON DISK. src/storage has no d-log yet, so the harness keeps what each node's disk would
 * hold: the entries of every Ready whose save succeeded, minus those below a barrier's
 * fast_drop_below, handed back to raft_new at a restart (those the snapshot already applied are
 * left out, as the daemon will do). A crash loses the Ready in flight and its acks.
 *
 * CHECKS (SIM_CHECK_FAST unless said):
 *  - a FAST entry is applied at most once per session and seq (the state machine skips a
 *    duplicate); when a write is first applied anywhere, no write that had completed before it
 *    started may still be unapplied;
 *  - when a leader appends a new write (a proposal or a fast write), every completed write not
 *    applied anywhere yet, completed in its term or an earlier one, must already be in its log;
 *  - stale-read: a read returns a state holding every fast write completed before it started;
 *  - at the end of a run that converged, every completed fast write was applied.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define FAST_TIMEOUT_US 400000u
#define FAST_MAX_PAYLOAD 96u

static void *grow(void *items, size_t *cap, size_t len, size_t size)
{
    if (len < *cap)
        return items;
    size_t cap2 = *cap ? *cap * 2 : 32;
    void *grown = realloc(items, cap2 * size);
    if (!grown)
        abort();
    *cap = cap2;
    return grown;
}

/* The write's bytes: header, then a payload derived from (session, seq). */
static uint32_t op_data(const sim_fast_op *op, uint8_t *buf)
{
    raft_fast_header(buf, op->session, op->seq);
    uint32_t len = (uint32_t)(sim_mix(op->session, op->seq) % FAST_MAX_PAYLOAD);
    for (uint32_t i = 0; i < len; i++)
        buf[RAFT_FAST_HEADER + i] = (uint8_t)sim_mix(op->seq, i);
    return RAFT_FAST_HEADER + len;
}

static bool session_idle(const sim *s, int k)
{
    if (s->fast_busy[k] == 0)
        return true;
    const sim_fast_op *op = &s->fast_ops[s->fast_busy[k] - 1];
    return op->done_at != 0 || s->now - op->start > FAST_TIMEOUT_US;
}

static uint64_t net_delay(sim *s)
{
    const sim_net_params *p = &s->net.params;
    uint64_t d = sim_rng_range(&s->rng, p->delay_min_us, p->delay_max_us);
    if (p->tail_permille && sim_rng_permille(&s->rng, p->tail_permille))
        d *= sim_rng_range(&s->rng, p->tail_mult_min, p->tail_mult_max);
    return d;
}

void sim_fast_fire(sim *s)
{
    int k = (int)sim_rng_below(&s->rng, SIM_FAST_SESSIONS);
    if (!session_idle(s, k))
        return;
    s->fast_ops = grow(s->fast_ops, &s->cap_fast_ops, s->n_fast_ops, sizeof(sim_fast_op));
    sim_fast_op *op = &s->fast_ops[s->n_fast_ops];
    memset(op, 0, sizeof(*op));
    op->session = (uint8_t)(k + 1);
    op->seq = ++s->fast_next_seq[k];
    op->start = s->now;
    s->fast_busy[k] = ++s->n_fast_ops;
    s->fast_stats.started++;
    sim_trace(s, "client fast write %u/%llu sent to every node", op->session,
              (unsigned long long)op->seq);
    for (int i = 0; i < s->n_nodes; i++)
        if (!sim_rng_permille(&s->rng, s->net.params.drop_permille))
            sim_schedule(s, s->now + net_delay(s), SIM_EV_FAST, i, s->n_fast_ops - 1, NULL);
}

void sim_fast_deliver(sim *s, int slot, uint64_t opi)
{
    sim_node *n = &s->nodes[slot];
    if (!n->up)
        return;
    sim_fast_op *op = &s->fast_ops[opi];
    uint8_t buf[RAFT_FAST_HEADER + FAST_MAX_PAYLOAD];
    uint32_t len = op_data(op, buf);
    raft_fast_ack ack;
    int rc = raft_fast_accept(n->r, buf, len, &ack);
    sim_trace(s, "node %d takes fast write %u/%llu: %s (term %llu, index %llu)", slot + 1,
              op->session, (unsigned long long)op->seq, raft_strerror(rc),
              (unsigned long long)(rc == RAFT_OK ? ack.term : 0),
              (unsigned long long)(rc == RAFT_OK ? ack.index : 0));
    if (rc != RAFT_OK)
        return;
    if (ack.index != 0)
        sim_fast_check_leader_append(s, slot, "a fast write");
    n->fast_acks = grow(n->fast_acks, &n->cap_fast_acks, n->n_fast_acks, sizeof(sim_fast_pending));
    n->fast_acks[n->n_fast_acks++] = (sim_fast_pending){.op = opi, .ack = ack};
    sim_node_pump(s, slot);
}

void sim_fast_ready_taken(sim *s, int slot)
{
    (void)s;
    sim_node *n = &s->nodes[slot];
    for (size_t i = 0; i < n->n_fast_acks; i++)
        n->fast_acks[i].in_ready = true;
}

static bool drop_below(const raft_entry *e, raft_term below) { return e->term < below; }

void sim_fast_ready_saved(sim *s, int slot, const raft_ready *rd)
{
    sim_node *n = &s->nodes[slot];
    for (size_t i = 0; i < rd->n_fast; i++) {
        n->fast_durable = grow(n->fast_durable, &n->cap_fast_durable, n->n_fast_durable,
                               sizeof(raft_entry));
        raft_entry e = rd->fast[i];
        uint8_t *data = malloc(e.len);
        if (!data)
            abort();
        memcpy(data, e.data, e.len);
        e.data = data;
        n->fast_durable[n->n_fast_durable++] = e;
    }
    if (rd->fast_drop_below) {
        size_t kept = 0;
        for (size_t i = 0; i < n->n_fast_durable; i++) {
            if (drop_below(&n->fast_durable[i], rd->fast_drop_below))
                free((void *)n->fast_durable[i].data);
            else
                n->fast_durable[kept++] = n->fast_durable[i];
        }
        n->n_fast_durable = kept;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n->n_fast_acks; i++) {
        sim_fast_pending *p = &n->fast_acks[i];
        if (!p->in_ready) {
            n->fast_acks[kept++] = *p;
            continue;
        }
        if (sim_rng_permille(&s->rng, s->net.params.drop_permille))
            continue;
        raft_fast_ack *ack = malloc(sizeof(*ack));
        if (!ack)
            abort();
        *ack = p->ack;
        sim_schedule(s, s->now + net_delay(s), SIM_EV_FAST_ACK, slot, p->op, ack);
    }
    n->n_fast_acks = kept;
}

void sim_fast_restore(sim *s, int slot, const sim_sm *sm, raft_restore *restore)
{
    sim_node *n = &s->nodes[slot];
    n->n_fast_acks = 0; /* lost with the process */
    size_t kept = 0;
    for (size_t i = 0; i < n->n_fast_durable; i++) {
        uint64_t session, seq;
        raft_entry *e = &n->fast_durable[i];
        if (raft_fast_id(e, &session, &seq) && session >= 1 && session <= SIM_FAST_SESSIONS &&
            seq <= sm->fast_seq[session - 1]) {
            free((void *)e->data); /* applied in the snapshot: done with */
            continue;
        }
        n->fast_durable[kept++] = *e;
    }
    n->n_fast_durable = kept;
    restore->fast = n->fast_durable;
    restore->n_fast = n->n_fast_durable;
}

static void add_unapplied(sim *s, uint64_t opi)
{
    s->fast_unapplied = grow(s->fast_unapplied, &s->cap_fast_unapplied, s->n_fast_unapplied,
                             sizeof(uint64_t));
    s->fast_unapplied[s->n_fast_unapplied++] = opi;
}

void sim_fast_ack(sim *s, int slot, uint64_t opi, const raft_fast_ack *ack)
{
    sim_fast_op *op = &s->fast_ops[opi];
    if (op->done_at != 0 || s->now - op->start > FAST_TIMEOUT_US)
        return; /* done already, or the client gave up */
    int t = -1;
    for (int i = 0; i < SIM_FAST_TERMS && t < 0; i++)
        if (op->acks[i].term == ack->term || op->acks[i].term == 0)
            t = i;
    if (t < 0)
        return;
    op->acks[t].term = ack->term;
    op->acks[t].mask |= 1u << slot;
    if (ack->index != 0) {
        op->acks[t].leader = (raft_id)slot + 1;
        op->acks[t].conf = ack->conf;
    }
    if (op->acks[t].leader == 0)
        return;
    const raft_conf *conf = &op->acks[t].conf;
    for (uint32_t v = 0; v < conf->n_voters; v++)
        if (!(op->acks[t].mask & (1u << (conf->voters[v] - 1))))
            return;
    op->done_at = s->now;
    op->done_term = ack->term;
    s->fast_stats.completed++;
    if (op->seq > s->fast_done_seq[op->session - 1])
        s->fast_done_seq[op->session - 1] = op->seq;
    sim_trace(s, "client fast write %u/%llu done (term %llu, leader %llu)", op->session,
              (unsigned long long)op->seq, (unsigned long long)ack->term,
              (unsigned long long)op->acks[t].leader);
    if (op->applied == 0)
        add_unapplied(s, opi);
}

static sim_fast_op *find_op(sim *s, uint64_t session, uint64_t seq)
{
    for (size_t i = s->n_fast_ops; i > 0; i--) {
        sim_fast_op *op = &s->fast_ops[i - 1];
        if (op->session == session && op->seq == seq)
            return op;
    }
    return NULL;
}

bool sim_fast_applied(sim *s, int slot, const raft_entry *e)
{
    sim_node *n = &s->nodes[slot];
    uint64_t session, seq;
    if (!raft_fast_id(e, &session, &seq) || session < 1 || session > SIM_FAST_SESSIONS) {
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d applies a FAST entry %llu without a "
                      "session header", slot + 1, (unsigned long long)e->index);
        return false;
    }
    if (seq <= n->sm.fast_seq[session - 1]) {
        s->fast_stats.applied_dup++;
        return false; /* a duplicate, or a write the session gave up before a later one */
    }
    n->sm.fast_seq[session - 1] = seq;
    sim_fast_op *op = find_op(s, session, seq);
    if (op == NULL || op->applied != 0)
        return true;
    op->applied = e->index;
    size_t kept = 0;
    for (size_t i = 0; i < s->n_fast_unapplied; i++) {
        sim_fast_op *w = &s->fast_ops[s->fast_unapplied[i]];
        if (w == op)
            continue;
        if (w->applied == 0 && w->done_at < op->start) {
            sim_violation(s, SIM_CHECK_FAST,
                          "fast write %u/%llu (started t=%.3fs) applied at index %llu on node %d, "
                          "before fast write %u/%llu that completed at t=%.3fs",
                          op->session, (unsigned long long)op->seq, (double)op->start / 1e6,
                          (unsigned long long)e->index, slot + 1, w->session,
                          (unsigned long long)w->seq, (double)w->done_at / 1e6);
        }
        if (w->applied == 0)
            s->fast_unapplied[kept++] = s->fast_unapplied[i];
    }
    s->n_fast_unapplied = kept;
    return true;
}

static bool in_log(raft *r, const sim_fast_op *w)
{
    for (raft_index i = raft_last_index(r); i >= raft_first_index(r) && i > 0; i--) {
        const raft_entry *e = raft_entry_at(r, i);
        uint64_t session, seq;
        if (e && raft_fast_id(e, &session, &seq) && session == w->session && seq == w->seq)
            return true;
    }
    return false;
}

void sim_fast_check_leader_append(sim *s, int slot, const char *what)
{
    raft *r = s->nodes[slot].r;
    for (size_t i = 0; i < s->n_fast_unapplied; i++) {
        const sim_fast_op *w = &s->fast_ops[s->fast_unapplied[i]];
        /* A leader of an older term (deposed, not knowing it) cannot have it; its appends never
         * commit over the newer term's leader. */
        if (w->applied == 0 && w->done_at != 0 && w->done_at < s->now &&
            raft_get_term(r) >= w->done_term && !in_log(r, w))
            sim_violation(s, SIM_CHECK_FAST,
                          "leader node %d (term %llu) appends %s while fast write %u/%llu, "
                          "completed at t=%.3fs, is neither applied nor in its log",
                          slot + 1, (unsigned long long)raft_get_term(r), what, w->session,
                          (unsigned long long)w->seq, (double)w->done_at / 1e6);
    }
}

void sim_fast_read_started(sim *s, sim_read *rd)
{
    memcpy(rd->min_fast_seq, s->fast_done_seq, sizeof(rd->min_fast_seq));
}

void sim_fast_read_answered(sim *s, int slot, const sim_read *rd, uint64_t request_id)
{
    const sim_node *n = &s->nodes[slot];
    for (int k = 0; k < SIM_FAST_SESSIONS; k++)
        if (n->sm.fast_seq[k] < rd->min_fast_seq[k])
            sim_violation(s, SIM_CHECK_STALE_READ,
                          "read %llu on node %d (started t=%.3fs) returned a state without fast "
                          "write %d/%llu, which completed before it started (state has seq %llu)",
                          (unsigned long long)request_id, slot + 1, (double)rd->start_time / 1e6,
                          k + 1, (unsigned long long)rd->min_fast_seq[k],
                          (unsigned long long)n->sm.fast_seq[k]);
}

void sim_fast_check_end(sim *s)
{
    for (size_t i = 0; i < s->n_fast_ops; i++) {
        const sim_fast_op *op = &s->fast_ops[i];
        if (op->done_at != 0 && op->applied == 0) {
            sim_violation(s, SIM_CHECK_FAST,
                          "fast write %u/%llu completed at t=%.3fs but was never applied (the "
                          "cluster converged at t=%.3fs)",
                          op->session, (unsigned long long)op->seq, (double)op->done_at / 1e6,
                          (double)s->now / 1e6);
            return;
        }
    }
}

void sim_fast_free_node(sim_node *n)
{
    for (size_t i = 0; i < n->n_fast_durable; i++)
        free((void *)n->fast_durable[i].data);
    free(n->fast_durable);
    free(n->fast_acks);
    n->fast_durable = NULL;
    n->fast_acks = NULL;
    n->n_fast_durable = n->n_fast_acks = 0;
}

void sim_fast_free(sim *s)
{
    free(s->fast_ops);
    free(s->fast_unapplied);
}
