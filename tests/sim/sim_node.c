/*
 * sim_node.c -- one simulated server: a Raft core, its asynchronous disk, its durable store and
 * its state machine.
 *
 * The Ready loop runs exactly as raft.h describes, with the disk made slow: sim_node_pump takes a
 * Ready and schedules its write to complete after a random disk delay; meanwhile the node keeps
 * receiving messages, ticks, proposals and reads. When the write completes (sim_node_disk_done)
 * the snapshot / truncation / entries / hard state land in the durable store, THEN the messages go
 * out, committed entries are applied and reads answered, and raft_advance closes the Ready. On
 * some seeds a leader's APPEND/SNAPSHOT messages leave as soon as the Ready is taken (the thesis
 * §10.2.1 exception in raft.h).
 *
 * A crash throws away the core, the in-flight Ready (never written) and the state machine; a
 * restart rebuilds the core with raft_new(cfg, &restore) from exactly the durable store, and the
 * state machine from the durable snapshot (applied = snapshot index).
 *
 * Durable store invariant: entries are contiguous from snap.index + 1, each with its own malloc'd
 * bytes. The harness checks the core's side of the contract as it goes (appends without gaps,
 * entries applied only once durable, snapshots to install actually received) and reports a
 * "contract" violation otherwise.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

void sim_sm_encode(const sim_sm *sm, uint8_t out[SIM_SNAP_BYTES])
{
    uint64_t words[4] = {sm->applied, sm->applied_term, sm->chain, sm->n_normal};
    for (int w = 0; w < 4; w++)
        for (int b = 0; b < 8; b++)
            out[w * 8 + b] = (uint8_t)(words[w] >> (8 * b));
}

void sim_sm_decode(sim_sm *sm, const uint8_t in[SIM_SNAP_BYTES])
{
    uint64_t words[4] = {0, 0, 0, 0};
    for (int w = 0; w < 4; w++)
        for (int b = 0; b < 8; b++)
            words[w] |= (uint64_t)in[w * 8 + b] << (8 * b);
    sm->applied = words[0];
    sm->applied_term = words[1];
    sm->chain = words[2];
    sm->n_normal = words[3];
}

uint64_t sim_entry_hash(const raft_entry *e)
{
    return sim_hash(e->data, e->len, (uint64_t)e->type + 1);
}

/* ---- the durable store ---- */

static raft_index store_last(const sim_store *st)
{
    return st->snap.index + st->n_entries;
}

static const raft_entry *store_entry(const sim_store *st, raft_index index)
{
    if (index <= st->snap.index || index > store_last(st))
        return NULL;
    return &st->entries[index - st->snap.index - 1];
}

static raft_term store_term(const sim_store *st, raft_index index, bool *known)
{
    *known = true;
    if (index == 0)
        return 0;
    if (index == st->snap.index)
        return st->snap.term;
    const raft_entry *e = store_entry(st, index);
    if (e)
        return e->term;
    *known = false;
    return 0;
}

static void store_truncate(sim_store *st, raft_index from)
{
    while (st->n_entries > 0 && store_last(st) >= from) {
        st->n_entries--;
        free((void *)st->entries[st->n_entries].data);
    }
}

/* Drops entries up to and including `upto` (they are covered by the new snapshot). */
static void store_drop_prefix(sim_store *st, raft_index old_snap_index, raft_index upto)
{
    size_t drop = 0;
    while (drop < st->n_entries && old_snap_index + drop + 1 <= upto) {
        free((void *)st->entries[drop].data);
        drop++;
    }
    memmove(st->entries, st->entries + drop, (st->n_entries - drop) * sizeof(raft_entry));
    st->n_entries -= drop;
}

static void store_append(sim_store *st, const raft_entry *e)
{
    if (st->n_entries == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        raft_entry *grown = realloc(st->entries, cap * sizeof(*grown));
        if (!grown)
            abort();
        st->entries = grown;
        st->cap = cap;
    }
    raft_entry copy = *e;
    if (e->len > 0) {
        uint8_t *bytes = malloc(e->len);
        if (!bytes)
            abort();
        memcpy(bytes, e->data, e->len);
        copy.data = bytes;
    } else {
        copy.data = NULL;
    }
    st->entries[st->n_entries++] = copy;
}

/* Installs a snapshot durably. A snapshot from the leader replaces the whole log (raft.h: "the
 * stored log then restarts after snapshot.index"); a local one (keep_after) covers a prefix of
 * entries this node holds, so the entries after it stay. */
static void store_install_snapshot(sim_store *st, const raft_snapshot_meta *meta,
                                   const uint8_t data[SIM_SNAP_BYTES], bool keep_after)
{
    if (keep_after && meta->index <= store_last(st))
        store_drop_prefix(st, st->snap.index, meta->index);
    else
        store_truncate(st, st->snap.index + 1);
    st->snap = *meta;
    memcpy(st->snap_data, data, SIM_SNAP_BYTES);
    st->snap_len = SIM_SNAP_BYTES;
}

static void store_free(sim_store *st)
{
    store_truncate(st, st->snap.index + 1);
    free(st->entries);
    memset(st, 0, sizeof(*st));
}

void sim_node_free(sim_node *n)
{
    if (n->r) {
        if (n->inflight)
            raft_advance(n->r, &n->rd);
        raft_free(n->r);
        n->r = NULL;
    }
    store_free(&n->store);
    free(n->reads);
    free(n->writes);
    n->reads = NULL;
    n->writes = NULL;
}

/* ---- lifecycle ---- */

void sim_node_start(sim *s, int slot, bool restart)
{
    sim_node *n = &s->nodes[slot];
    n->id = (raft_id)slot + 1;
    raft_config cfg = s->base_cfg;
    cfg.id = (raft_id)slot + 1;
    cfg.seed = sim_rng_next(&s->rng); /* a restart gets fresh election randomness */
    raft_restore restore;
    memset(&restore, 0, sizeof(restore));
    restore.hard_state = n->store.hard_state;
    restore.snapshot = n->store.snap;
    restore.entries = n->store.entries;
    restore.n_entries = n->store.n_entries;
    restore.applied = n->store.snap.index;
    /* The snapshot holds only committed state, so commit >= its index even if the hard state
     * that said so was not written before the crash. */
    if (restore.hard_state.commit < restore.snapshot.index)
        restore.hard_state.commit = restore.snapshot.index;
    bool empty = !restart || (n->store.hard_state.term == 0 && n->store.snap.index == 0 &&
                              n->store.n_entries == 0);
    int rc = raft_new(&cfg, empty ? NULL : &restore, &n->r);
    if (rc != RAFT_OK) {
        n->r = NULL;
        sim_violation(s, SIM_CHECK_CONTRACT,
                      "raft_new for node %d (restart=%d) failed: %s; hard state term=%llu "
                      "vote=%llu commit=%llu, snapshot %llu/%llu, %zu entries",
                      slot + 1, restart ? 1 : 0, raft_strerror(rc),
                      (unsigned long long)restore.hard_state.term,
                      (unsigned long long)restore.hard_state.vote,
                      (unsigned long long)restore.hard_state.commit,
                      (unsigned long long)restore.snapshot.index,
                      (unsigned long long)restore.snapshot.term, restore.n_entries);
        return;
    }
    n->up = true;
    n->inflight = false;
    memset(&n->sm, 0, sizeof(n->sm));
    if (n->store.snap_len)
        sim_sm_decode(&n->sm, n->store.snap_data);
    n->last_snap_applied = n->sm.applied;
    memset(n->rx_snap, 0, sizeof(n->rx_snap));
    n->n_reads = 0;
    n->n_writes = 0;
    n->vote_term = 0;
    n->vote_mask = 0;
    if (restart) {
        n->restarts++;
        sim_trace(s,
                  "node %d restarts: term=%llu vote=%llu commit=%llu snapshot=%llu "
                  "entries=%zu (last %llu)",
                  slot + 1, (unsigned long long)restore.hard_state.term,
                  (unsigned long long)restore.hard_state.vote,
                  (unsigned long long)restore.hard_state.commit,
                  (unsigned long long)restore.snapshot.index, restore.n_entries,
                  (unsigned long long)store_last(&n->store));
        if (n->store.snap_len)
            sim_check_sm_install(s, slot, &n->sm);
    }
    sim_check_node_started(s, slot);
    /* Nodes tick at the same rate with different phases, like unsynchronised clocks. */
    sim_schedule(s, s->now + sim_rng_range(&s->rng, 1, SIM_TICK_US), SIM_EV_TICK, slot, 0, NULL);
    sim_node_pump(s, slot);
}

void sim_node_crash(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    if (!n->up)
        return;
    sim_trace(s, "node %d crashes%s (durable: term=%llu commit=%llu snapshot=%llu last=%llu)",
              slot + 1, n->inflight ? " with a Ready in flight" : "",
              (unsigned long long)n->store.hard_state.term,
              (unsigned long long)n->store.hard_state.commit,
              (unsigned long long)n->store.snap.index, (unsigned long long)store_last(&n->store));
    /* The in-flight Ready was never written; advancing it only releases its memory, since the
     * core is freed right after (raft.h says raft_advance frees what a Ready points to). */
    if (n->inflight)
        raft_advance(n->r, &n->rd);
    raft_free(n->r);
    n->r = NULL;
    n->up = false;
    n->inflight = false;
    n->incarnation++;
    n->crashes++;
    memset(&n->sm, 0, sizeof(n->sm));
    /* Its clients' pending writes and reads never get an answer: they would time out. */
    n->n_reads = 0;
    n->n_writes = 0;
}

int sim_leader_slot(const sim *s)
{
    int best = -1;
    raft_term best_term = 0;
    for (int i = 0; i < s->n_nodes; i++) {
        const sim_node *n = &s->nodes[i];
        if (n->up && raft_get_role(n->r) == RAFT_LEADER && raft_get_term(n->r) >= best_term) {
            best = i;
            best_term = raft_get_term(n->r);
        }
    }
    return best;
}

/* ---- the Ready loop ---- */

static bool early_type(uint8_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_SNAPSHOT;
}

void sim_node_pump(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    if (!n->up || n->inflight || s->stop || !raft_has_ready(n->r))
        return;
    raft_ready_get(n->r, &n->rd);
    n->inflight = true;
    n->early_sent = false;
    const raft_ready *rd = &n->rd;
    bool to_persist =
        rd->snapshot.index || rd->truncate_from || rd->n_entries || rd->hard_state_changed;
    sim_trace(s,
              "node %d ready: role=%s leader=%llu snap=%llu trunc=%llu entries=%zu%s%llu..%llu "
              "hs=%s%llu/%llu/%llu msgs=%zu committed=%zu reads=%zu",
              slot + 1, raft_role_name(rd->role), (unsigned long long)rd->leader,
              (unsigned long long)rd->snapshot.index, (unsigned long long)rd->truncate_from,
              rd->n_entries, rd->n_entries ? " " : " -",
              (unsigned long long)(rd->n_entries ? rd->entries[0].index : 0),
              (unsigned long long)(rd->n_entries ? rd->entries[rd->n_entries - 1].index : 0),
              rd->hard_state_changed ? "" : "(same)", (unsigned long long)rd->hard_state.term,
              (unsigned long long)rd->hard_state.vote, (unsigned long long)rd->hard_state.commit,
              rd->n_msgs, rd->n_committed, rd->n_reads);
    if (s->early_send) {
        for (size_t i = 0; i < rd->n_msgs; i++)
            if (early_type(rd->msgs[i].type))
                sim_net_send(s, &rd->msgs[i]);
        n->early_sent = true;
    }
    uint64_t delay = 0;
    if (to_persist) {
        delay = sim_rng_range(&s->rng, s->disk_min_us, s->disk_max_us);
        if (s->disk_tail_permille && sim_rng_permille(&s->rng, s->disk_tail_permille))
            delay *= sim_rng_range(&s->rng, 10, 30);
    }
    sim_schedule(s, s->now + delay, SIM_EV_DISK, slot, 0, NULL);
}

static void answer_reads(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    size_t kept = 0;
    for (size_t i = 0; i < n->n_reads; i++) {
        if (n->reads[i].index <= n->sm.applied)
            sim_check_read_answered(s, slot, n->reads[i].request_id, n->sm.applied);
        else
            n->reads[kept++] = n->reads[i];
    }
    n->n_reads = kept;
}

static void apply_entry(sim *s, int slot, const raft_entry *e)
{
    sim_node *n = &s->nodes[slot];
    if (e->index != n->sm.applied + 1) {
        sim_violation(s, SIM_CHECK_SM_SAFETY,
                      "node %d was handed entry %llu (term %llu) to apply but has applied %llu",
                      slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                      (unsigned long long)n->sm.applied);
        return;
    }
    const raft_entry *stored = store_entry(&n->store, e->index);
    if (!stored || stored->term != e->term) {
        sim_violation(s, SIM_CHECK_CONTRACT,
                      "node %d applies entry %llu term %llu that is not durable (store has "
                      "term %llu, last %llu)",
                      slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                      (unsigned long long)(stored ? stored->term : 0),
                      (unsigned long long)store_last(&n->store));
        return;
    }
    uint64_t entry_hash = sim_entry_hash(e);
    n->sm.chain = sim_mix(sim_mix(n->sm.chain, e->index), sim_mix(e->term, entry_hash));
    n->sm.applied = e->index;
    n->sm.applied_term = e->term;
    if (e->type == RAFT_ENTRY_NORMAL)
        n->sm.n_normal++;
    sim_check_applied(s, slot, e, n->sm.chain);
    sim_client_applied(s, slot, e);
}

static void take_local_snapshot(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    if (n->sm.applied <= n->store.snap.index ||
        n->sm.applied - n->last_snap_applied < s->snap_every)
        return;
    raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = n->sm.applied;
    meta.term = n->sm.applied_term;
    meta.conf = *raft_get_conf(n->r);
    uint8_t data[SIM_SNAP_BYTES];
    sim_sm_encode(&n->sm, data);
    /* Written synchronously: the snapshot must be durable before the core forgets the log. */
    store_install_snapshot(&n->store, &meta, data, true);
    n->last_snap_applied = n->sm.applied;
    int rc = raft_compact(n->r, meta.index, s->snap_trailing);
    if (rc != RAFT_OK)
        sim_violation(s, SIM_CHECK_CONTRACT, "raft_compact(node %d, %llu, %u) failed: %s", slot + 1,
                      (unsigned long long)meta.index, s->snap_trailing, raft_strerror(rc));
    sim_trace(s, "node %d snapshot at %llu (term %llu), trailing %u", slot + 1,
              (unsigned long long)meta.index, (unsigned long long)meta.term, s->snap_trailing);
    if (s->opt->demo && !s->said_snapshot) {
        s->said_snapshot = true; /* every node does this every snap_every entries: say it once */
        sim_say(s,
                "node %d took a snapshot at index %llu and compacted its log (every node "
                "snapshots every %u entries, keeping %u)",
                slot + 1, (unsigned long long)meta.index, s->snap_every, s->snap_trailing);
    }
}

static bool install_snapshot(sim *s, int slot, const raft_snapshot_meta *meta)
{
    sim_node *n = &s->nodes[slot];
    int found = -1;
    for (int i = 0; i < 4; i++)
        if (n->rx_snap[i].meta.index == meta->index && n->rx_snap[i].meta.term == meta->term)
            found = i;
    if (found < 0) {
        sim_violation(s, SIM_CHECK_CONTRACT,
                      "node %d's Ready installs snapshot %llu/%llu that it never received",
                      slot + 1, (unsigned long long)meta->index, (unsigned long long)meta->term);
        return false;
    }
    sim_sm sm;
    sim_sm_decode(&sm, n->rx_snap[found].data);
    if (sm.applied != meta->index || sm.applied < n->sm.applied) {
        sim_violation(s, SIM_CHECK_CONTRACT,
                      "node %d installs snapshot %llu whose state is at %llu while it applied "
                      "%llu",
                      slot + 1, (unsigned long long)meta->index, (unsigned long long)sm.applied,
                      (unsigned long long)n->sm.applied);
        return false;
    }
    store_install_snapshot(&n->store, meta, n->rx_snap[found].data, false);
    n->sm = sm;
    n->last_snap_applied = sm.applied;
    sim_check_sm_install(s, slot, &sm);
    sim_trace(s, "node %d installed snapshot %llu/%llu", slot + 1, (unsigned long long)meta->index,
              (unsigned long long)meta->term);
    if (s->opt->demo)
        sim_say(s, "node %d installed a snapshot at index %llu sent by the leader", slot + 1,
                (unsigned long long)meta->index);
    return true;
}

void sim_node_disk_done(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    raft_ready *rd = &n->rd;
    sim_store *st = &n->store;
    sim_trace(s, "node %d disk write done", slot + 1);

    /* 1-3: the write itself. */
    if (rd->snapshot.index != 0 && !install_snapshot(s, slot, &rd->snapshot))
        return;
    if (rd->truncate_from != 0) {
        if (rd->truncate_from <= st->snap.index) {
            sim_violation(s, SIM_CHECK_CONTRACT,
                          "node %d truncates from %llu, inside its snapshot (%llu)", slot + 1,
                          (unsigned long long)rd->truncate_from,
                          (unsigned long long)st->snap.index);
            return;
        }
        store_truncate(st, rd->truncate_from);
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const raft_entry *e = &rd->entries[i];
        if (e->index != store_last(st) + 1) {
            sim_violation(s, SIM_CHECK_LOG_MATCHING,
                          "node %d appends entry %llu (term %llu) to a log ending at %llu: the "
                          "log would have a %s",
                          slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                          (unsigned long long)store_last(st),
                          e->index > store_last(st) ? "gap" : "duplicate");
            return;
        }
        bool known;
        raft_term prev = store_term(st, e->index - 1, &known);
        sim_check_durable_entry(s, slot, e, prev, known);
        store_append(st, e);
    }
    if (rd->hard_state_changed) {
        if (rd->hard_state.term < st->hard_state.term)
            sim_violation(s, SIM_CHECK_CONTRACT, "node %d persists term %llu after term %llu",
                          slot + 1, (unsigned long long)rd->hard_state.term,
                          (unsigned long long)st->hard_state.term);
        st->hard_state = rd->hard_state;
    }

    /* 4: only now may the messages leave. */
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (!(n->early_sent && early_type(rd->msgs[i].type)))
            sim_net_send(s, &rd->msgs[i]);

    /* 5: apply, then answer the reads that are now satisfied. */
    for (size_t i = 0; i < rd->n_committed && !s->stop; i++)
        apply_entry(s, slot, &rd->committed[i]);
    for (size_t i = 0; i < rd->n_reads; i++) {
        if (n->n_reads == n->cap_reads) {
            size_t cap = n->cap_reads ? n->cap_reads * 2 : 16;
            sim_pending_read *grown = realloc(n->reads, cap * sizeof(*grown));
            if (!grown)
                abort();
            n->reads = grown;
            n->cap_reads = cap;
        }
        n->reads[n->n_reads].request_id = rd->reads[i].request_id;
        n->reads[n->n_reads].index = rd->reads[i].index;
        n->n_reads++;
    }
    answer_reads(s, slot);

    raft_advance(n->r, rd);
    n->inflight = false;
    if (s->stop)
        return;
    take_local_snapshot(s, slot);
    sim_node_pump(s, slot);
}
