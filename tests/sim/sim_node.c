/*
 * sim_node.c -- one simulated server: a Raft core, its asynchronous disk and its state machine.
 *
 * The Ready loop runs exactly as raft.h describes, with the disk made slow: sim_node_pump takes a
 * Ready and schedules its write to complete after a random disk delay; meanwhile the node keeps
 * receiving messages, ticks, proposals and reads. When the write completes (sim_node_disk_done)
 * the snapshot / truncation / entries / hard state go through the real storage (sim_disk.c:
 * snapshot writer + storage_save, one fdatasync), THEN the messages go out, committed entries are
 * applied and reads answered, and raft_advance closes the Ready. On some seeds a leader's
 * APPEND/SNAPSHOT messages leave as soon as the Ready is taken (the thesis §10.2.1 exception in
 * raft.h).
 *
 * A crash throws away the core, the in-flight Ready (its write possibly cut by the power loss, see
 * sim_disk.c) and the state machine; a restart runs storage recovery and rebuilds the core with
 * raft_new(cfg, &restore) from exactly what storage_open returned, and the state machine from the
 * snapshot file (applied = snapshot index). A save that fails with an injected disk error stops
 * the node the same way.
 *
 * The harness checks the core's side of the contract as it goes (appends without gaps, entries
 * applied only once storage acknowledged them, snapshots to install actually received) and
 * reports a "contract" violation otherwise.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define SM_WORDS (4 + SIM_FAST_SESSIONS)
_Static_assert(SM_WORDS * 8 == SIM_SNAP_BYTES, "SIM_SNAP_BYTES holds the state machine");

void sim_sm_encode(const sim_sm *sm, uint8_t out[SIM_SNAP_BYTES])
{
    uint64_t words[SM_WORDS] = {sm->applied, sm->applied_term, sm->chain, sm->n_normal};
    for (int k = 0; k < SIM_FAST_SESSIONS; k++)
        words[4 + k] = sm->fast_seq[k];
    for (int w = 0; w < SM_WORDS; w++)
        for (int b = 0; b < 8; b++)
            out[w * 8 + b] = (uint8_t)(words[w] >> (8 * b));
}

void sim_sm_decode(sim_sm *sm, const uint8_t in[SIM_SNAP_BYTES])
{
    uint64_t words[SM_WORDS] = {0};
    for (int w = 0; w < SM_WORDS; w++)
        for (int b = 0; b < 8; b++)
            words[w] |= (uint64_t)in[w * 8 + b] << (8 * b);
    sm->applied = words[0];
    sm->applied_term = words[1];
    sm->chain = words[2];
    sm->n_normal = words[3];
    for (int k = 0; k < SIM_FAST_SESSIONS; k++)
        sm->fast_seq[k] = words[4 + k];
}

uint64_t sim_entry_hash(const raft_entry *e)
{
    return sim_hash(e->data, e->len, (uint64_t)e->type + 1);
}

/* The bytes of a snapshot this node received over the network, or NULL. */
static const uint8_t *received_bytes(const sim_node *n, const raft_snapshot_meta *meta)
{
    for (int i = 0; i < 4; i++)
        if (n->rx_snap[i].meta.index == meta->index && n->rx_snap[i].meta.index != 0 &&
            n->rx_snap[i].meta.term == meta->term)
            return n->rx_snap[i].data;
    return NULL;
}

void sim_node_free(sim_node *n)
{
    if (n->r) {
        if (n->inflight)
            raft_advance(n->r, &n->rd);
        raft_free(n->r);
        n->r = NULL;
    }
    sim_disk_free(n);
    sim_fast_free_node(n);
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
    storage_loaded loaded;
    sim_sm sm;
    if (!sim_disk_open(s, slot, &loaded, &sm))
        return; /* recovery failed or lost something: reported */
    raft_restore restore;
    storage_loaded_restore(&loaded, &restore);
    sim_fast_restore(s, slot, &sm, &restore);
    bool empty = restore.hard_state.term == 0 && restore.snapshot.index == 0 &&
                 restore.n_entries == 0 && restore.n_fast == 0;
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
        storage_loaded_free(&loaded);
        return;
    }
    n->up = true;
    n->inflight = false;
    n->sm = sm;
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
                  (unsigned long long)sim_durable_last(&n->durable));
        if (restore.snapshot.index)
            sim_check_sm_install(s, slot, &n->sm);
    }
    storage_loaded_free(&loaded); /* raft_new copied the entries */
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
              (unsigned long long)n->durable.hard_state.term,
              (unsigned long long)n->durable.hard_state.commit,
              (unsigned long long)n->durable.snap.index,
              (unsigned long long)sim_durable_last(&n->durable));
    /* The disk first: the in-flight Ready's write may be cut by the power loss. */
    const raft_ready *rd = n->inflight ? &n->rd : NULL;
    sim_disk_crash(s, slot, rd, rd && rd->snapshot.index ? received_bytes(n, &rd->snapshot) : NULL);
    /* The in-flight Ready was never (completely) written; advancing it only releases its memory,
     * since the core is freed right after (raft.h says raft_advance frees what a Ready points to). */
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
    n->n_fast_acks = 0;
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

static void apply_early(sim *s, int slot);

void sim_node_pump(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    if (n->up && s->early_apply && !s->stop)
        apply_early(s, slot);
    if (!n->up || n->inflight || s->stop || !raft_has_ready(n->r))
        return;
    raft_ready_get(n->r, &n->rd);
    n->inflight = true;
    n->early_sent = false;
    sim_fast_ready_taken(s, slot);
    const raft_ready *rd = &n->rd;
    bool to_persist = rd->snapshot.index || rd->truncate_from || rd->n_entries ||
                      rd->hard_state_changed || rd->n_fast || rd->fast_drop_below;
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
    n->doomed = false;
    if (to_persist) {
        delay = sim_rng_range(&s->rng, s->disk_min_us, s->disk_max_us);
        if (s->disk_tail_permille && sim_rng_permille(&s->rng, s->disk_tail_permille))
            delay *= sim_rng_range(&s->rng, 10, 30);
        /* Aimed power losses: inside the writes recovery finds hardest (a snapshot install
         * whose WAL record is lost, a segment roll), which random crashes rarely hit. */
        if (s->doom_snapshot_permille && s->phase == SIM_PHASE_FAULTS)
            n->doomed = sim_rng_permille(&s->rng, rd->snapshot.index ? s->doom_snapshot_permille
                                                                     : s->doom_save_permille);
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

/* Durable on a majority of the voters of some configuration of the run: which one committed the
 * entry depends on the leader's log at that moment, which the harness does not track. Learners
 * hold entries too but never count, so their copies are left out. */
static bool durable_on_majority(const sim *s, const raft_entry *e)
{
    uint32_t durable_mask = 0;
    for (int j = 0; j < s->n_nodes; j++) {
        const sim_durable *d = &s->nodes[j].durable;
        const sim_durable_entry *st = sim_durable_at(d, e->index);
        if (d->snap.index >= e->index || (st && st->term == e->term))
            durable_mask |= 1u << j;
    }
    for (uint32_t c = 0; c < s->n_confs; c++) {
        uint32_t count = 0;
        for (uint32_t v = 0; v < s->confs[c].n_voters; v++)
            count += (durable_mask >> (s->confs[c].voters[v] - 1)) & 1u;
        if (count > s->confs[c].n_voters / 2)
            return true;
    }
    return false;
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
    const sim_durable_entry *stored = sim_durable_at(&n->durable, e->index);
    bool durable = stored && stored->term == e->term;
    /* Applied early (raft.h, APPLYING EARLY), an entry need not be on this node's disk yet, but
     * commitment means a majority's storage acknowledged it. */
    if (!durable && s->early_apply)
        durable = durable_on_majority(s, e);
    if (!durable) {
        sim_violation(s, SIM_CHECK_CONTRACT,
                      "node %d applies entry %llu term %llu that is not durable (storage "
                      "acknowledged term %llu there, last %llu)",
                      slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                      (unsigned long long)(stored ? stored->term : 0),
                      (unsigned long long)sim_durable_last(&n->durable));
        return;
    }
    if (e->type == RAFT_ENTRY_FAST)
        sim_fast_applied(s, slot, e); /* its session's seq moves, or it is a duplicate */
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
    if (n->sm.applied <= n->durable.snap.index ||
        n->sm.applied - n->last_snap_applied < s->snap_every)
        return;
    if (n->sm.applied > raft_handed_index(n->r))
        return; /* applied early, not in a Ready yet: raft_compact would refuse */
    raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = n->sm.applied;
    meta.term = n->sm.applied_term;
    if (meta.index <= raft_get_snapshot(n->r).index)
        return; /* a snapshot received is newer: nothing to compact (raft_compact: no-op) */
    if (raft_conf_at(n->r, meta.index, &meta.conf) != RAFT_OK) {
        sim_violation(s, SIM_CHECK_CONTRACT, "raft_conf_at(node %d, %llu) failed", slot + 1,
                      (unsigned long long)meta.index);
        return;
    }
    uint8_t data[SIM_SNAP_BYTES];
    sim_sm_encode(&n->sm, data);
    /* Written synchronously: the snapshot must be durable before the core forgets the log. The
     * WAL keeps the same `trailing` entries behind it as the core. */
    raft_index compact_to = meta.index > s->snap_trailing ? meta.index - s->snap_trailing : 0;
    if (!sim_disk_snapshot(s, slot, &meta, data, compact_to))
        return;
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

/* The snapshot a Ready installs must be one the node received, holding the state at its index
 * and not behind what the node applied. Returns its bytes (and decoded state) or NULL. */
static const uint8_t *snapshot_to_install(sim *s, int slot, const raft_snapshot_meta *meta,
                                          sim_sm *sm)
{
    sim_node *n = &s->nodes[slot];
    const uint8_t *data = received_bytes(n, meta);
    if (!data) {
        sim_violation(s, SIM_CHECK_CONTRACT,
                      "node %d's Ready installs snapshot %llu/%llu that it never received",
                      slot + 1, (unsigned long long)meta->index, (unsigned long long)meta->term);
        return NULL;
    }
    sim_sm_decode(sm, data);
    if (sm->applied != meta->index || sm->applied < n->sm.applied) {
        sim_violation(s, SIM_CHECK_CONTRACT,
                      "node %d installs snapshot %llu whose state is at %llu while it applied "
                      "%llu",
                      slot + 1, (unsigned long long)meta->index, (unsigned long long)sm->applied,
                      (unsigned long long)n->sm.applied);
        return NULL;
    }
    return data;
}

static void learn_reads(sim_node *n, const raft_read_state *reads, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (n->n_reads == n->cap_reads) {
            size_t cap = n->cap_reads ? n->cap_reads * 2 : 16;
            sim_pending_read *grown = realloc(n->reads, cap * sizeof(*grown));
            if (!grown)
                abort();
            n->reads = grown;
            n->cap_reads = cap;
        }
        n->reads[n->n_reads].request_id = reads[i].request_id;
        n->reads[n->n_reads].index = reads[i].index;
        n->n_reads++;
    }
}

/* Between Readies: what is committed is applied, and known reads answered, at once. */
static void apply_early(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    raft_entry *entries;
    size_t count = raft_take_committed(n->r, &entries);
    if (count)
        sim_trace(s, "node %d applies %zu entries early (%llu..%llu)", slot + 1, count,
                  (unsigned long long)entries[0].index,
                  (unsigned long long)entries[count - 1].index);
    for (size_t i = 0; i < count && !s->stop; i++)
        apply_entry(s, slot, &entries[i]);
    free(entries);
    raft_read_state *reads;
    size_t n_reads = raft_take_reads(n->r, &reads);
    learn_reads(n, reads, n_reads);
    free(reads);
    if (count + n_reads > 0)
        answer_reads(s, slot);
}

void sim_node_disk_done(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    raft_ready *rd = &n->rd;
    if (n->doomed && s->phase == SIM_PHASE_FAULTS) { /* after the heal nothing restarts it */
        sim_trace(s, "node %d: the power fails during its disk write", slot + 1);
        sim_node_crash(s, slot);
        return;
    }
    sim_trace(s, "node %d disk write done", slot + 1);

    /* 1-3: the write itself, through the storage. */
    sim_sm snap_sm;
    const uint8_t *snap_data = NULL;
    if (rd->snapshot.index != 0 &&
        !(snap_data = snapshot_to_install(s, slot, &rd->snapshot, &snap_sm)))
        return;
    int rc = sim_disk_save(s, slot, rd, snap_data);
    if (rc == SIM_DISK_VIOLATION)
        return;
    if (rc == SIM_DISK_STOPPED) {
        sim_node_crash(s, slot); /* a failed write or fsync stops the node: never retried */
        return;
    }
    if (snap_data) {
        n->sm = snap_sm;
        n->last_snap_applied = snap_sm.applied;
        sim_check_sm_install(s, slot, &snap_sm);
        sim_trace(s, "node %d installed snapshot %llu/%llu", slot + 1,
                  (unsigned long long)rd->snapshot.index, (unsigned long long)rd->snapshot.term);
        if (s->opt->demo)
            sim_say(s, "node %d installed a snapshot at index %llu sent by the leader", slot + 1,
                    (unsigned long long)rd->snapshot.index);
    }

    sim_fast_ready_saved(s, slot, rd); /* its d-log entries are durable: acknowledge them */

    /* 4: only now may the messages leave. */    for (size_t i = 0; i < rd->n_msgs; i++)
        if (!(n->early_sent && early_type(rd->msgs[i].type)))
            sim_net_send(s, &rd->msgs[i]);

    /* 5: apply, then answer the reads that are now satisfied. */
    for (size_t i = 0; i < rd->n_committed && !s->stop; i++)
        apply_entry(s, slot, &rd->committed[i]);
    learn_reads(n, rd->reads, rd->n_reads);
    answer_reads(s, slot);

    raft_advance(n->r, rd);
    n->inflight = false;
    if (s->stop)
        return;
    take_local_snapshot(s, slot);
    sim_node_pump(s, slot);
}
