/*
 * sim_client.c -- the clients: random writes to whichever node believes it leads, ReadIndex reads
 * on random nodes, and, after the final heal, the liveness probe.
 *
 * Every write has a unique id; its payload (0 bytes to a few KB) is derived from the id. A write is
 * "done" when the node it was proposed to applies an entry with the (index, term) raft_propose
 * returned -- the moment a server would answer its client; the stale-read checker remembers the
 * highest such index. A read records that index when it starts (raft_read_index) and is answered,
 * with the node's applied index as the returned state, once the node's Ready gave it a read index
 * and the node applied that far (sim_node.c).
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define SIM_MAX_PAYLOAD 4096u

static uint32_t payload_size(sim *s)
{
    uint64_t dice = sim_rng_below(&s->rng, 100);
    if (dice < 10)
        return 0;
    if (dice < 70)
        return (uint32_t)sim_rng_range(&s->rng, 1, 64);
    if (dice < 95)
        return (uint32_t)sim_rng_range(&s->rng, 65, 512);
    return (uint32_t)sim_rng_range(&s->rng, 1024, SIM_MAX_PAYLOAD);
}

static void fill_payload(uint64_t id, uint8_t *buf, uint32_t len)
{
    uint64_t word = 0;
    for (uint32_t i = 0; i < len; i++) {
        if (i % 8 == 0)
            word = i == 0 ? id : sim_mix(id, i);
        buf[i] = (uint8_t)(word >> (8 * (i % 8)));
    }
}

static int random_leader(sim *s)
{
    int leaders[SIM_MAX_NODES], count = 0;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].up && raft_get_role(s->nodes[i].r) == RAFT_LEADER)
            leaders[count++] = i;
    return count ? leaders[sim_rng_below(&s->rng, (uint64_t)count)] : -1;
}

/* Proposes one write on `slot`; returns its proposal number + 1, or 0 if refused. */
static uint64_t propose(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    uint8_t payload[SIM_MAX_PAYLOAD];
    uint64_t id = s->n_proposals + 1;
    uint32_t len = payload_size(s);
    fill_payload(id, payload, len);
    raft_index index = 0;
    raft_term term = 0;
    int rc = raft_propose(n->r, RAFT_ENTRY_NORMAL, len ? payload : NULL, len, &index, &term);
    if (rc != RAFT_OK) {
        sim_trace(s, "client write %llu on node %d refused: %s", (unsigned long long)id, slot + 1,
                  raft_strerror(rc));
        return 0;
    }
    if (s->fast)
        sim_fast_check_leader_append(s, slot, "a proposal");
    if (s->n_proposals == s->cap_proposals) {
        size_t cap = s->cap_proposals ? s->cap_proposals * 2 : 256;
        sim_proposal *grown = realloc(s->proposals, cap * sizeof(*grown));
        if (!grown)
            abort();
        s->proposals = grown;
        s->cap_proposals = cap;
    }
    sim_proposal *p = &s->proposals[s->n_proposals++];
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->node = (uint8_t)slot;
    p->len = len;
    p->index = index;
    p->term = term;
    raft_entry shape = {.term = term,
                        .index = index,
                        .type = RAFT_ENTRY_NORMAL,
                        .len = len,
                        .data = len ? payload : NULL};
    p->entry_hash = sim_entry_hash(&shape);
    if (n->n_writes == n->cap_writes) {
        size_t cap = n->cap_writes ? n->cap_writes * 2 : 32;
        sim_pending_write *grown = realloc(n->writes, cap * sizeof(*grown));
        if (!grown)
            abort();
        n->writes = grown;
        n->cap_writes = cap;
    }
    n->writes[n->n_writes++] =
        (sim_pending_write){.proposal = s->n_proposals - 1, .index = index, .term = term};
    sim_trace(s, "client write %llu (%u bytes) proposed on node %d at index %llu term %llu",
              (unsigned long long)id, len, slot + 1, (unsigned long long)index,
              (unsigned long long)term);
    sim_node_pump(s, slot);
    return s->n_proposals;
}

static void start_read(sim *s)
{
    int live[SIM_MAX_NODES], count = 0;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].up)
            live[count++] = i;
    if (count == 0)
        return;
    int slot = live[sim_rng_below(&s->rng, (uint64_t)count)];
    if (s->n_reads == s->cap_reads) {
        size_t cap = s->cap_reads ? s->cap_reads * 2 : 256;
        sim_read *grown = realloc(s->reads, cap * sizeof(*grown));
        if (!grown)
            abort();
        s->reads = grown;
        s->cap_reads = cap;
    }
    uint64_t request_id = s->n_reads + 1;
    sim_read *rd = &s->reads[s->n_reads++];
    memset(rd, 0, sizeof(*rd));
    rd->node = (uint8_t)slot;
    rd->min_index = s->chk.max_completed_write;
    rd->start_time = s->now;
    sim_fast_read_started(s, rd);
    int rc = raft_read_index(s->nodes[slot].r, request_id);
    sim_trace(s, "client read %llu on node %d (must see >= %llu): %s",
              (unsigned long long)request_id, slot + 1, (unsigned long long)rd->min_index,
              raft_strerror(rc));
    if (rc != RAFT_OK)
        rd->done = 1;
    sim_node_pump(s, slot);
}

/* The probe needs (re)proposing when it never was, or when it can no longer commit: another
 * entry was applied at its index, or its leader lost that term before it was applied. */
static bool probe_needed(sim *s)
{
    if (s->probe == 0)
        return true;
    const sim_proposal *p = &s->proposals[s->probe - 1];
    const sim_checker *c = &s->chk;
    if (p->index < c->n_applied && c->applied[p->index].term != 0)
        return c->applied[p->index].term != p->term;
    const sim_node *n = &s->nodes[p->node];
    /* A leader that is not the newest can be one nobody follows any more (a leader that removed
     * itself, without check-quorum or pre-vote to tell it): its client would time out. */
    return !n->up || raft_get_role(n->r) != RAFT_LEADER || raft_get_term(n->r) != p->term ||
           sim_leader_slot(s) != p->node;
}

void sim_client_fire(sim *s)
{
    if (s->phase == SIM_PHASE_FAULTS) {
        if (sim_rng_permille(&s->rng, s->read_permille)) {
            start_read(s);
        } else if (s->fast && sim_rng_permille(&s->rng, 400)) {
            sim_fast_fire(s);
        } else {
            int slot = random_leader(s);
            if (slot >= 0)
                propose(s, slot);
        }
        sim_schedule(s, s->now + sim_rng_range(&s->rng, s->client_gap_min_us, s->client_gap_max_us),
                     SIM_EV_CLIENT, 0, 0, NULL);
    } else if (s->phase == SIM_PHASE_LIVENESS) {
        if (probe_needed(s)) {
            int slot = sim_leader_slot(s);
            if (slot >= 0) {
                uint64_t probe = propose(s, slot);
                if (probe)
                    s->probe = probe;
            }
        }
        sim_schedule(s, s->now + SIM_TICK_US, SIM_EV_CLIENT, 0, 0, NULL);
    }
}

void sim_client_applied(sim *s, int slot, const raft_entry *e)
{
    sim_node *n = &s->nodes[slot];
    size_t kept = 0;
    for (size_t i = 0; i < n->n_writes; i++) {
        sim_pending_write w = n->writes[i];
        if (w.index > e->index) {
            n->writes[kept++] = w;
            continue;
        }
        if (w.index < e->index || w.term != e->term)
            continue; /* overwritten by another leader: the client would time out and retry */
        sim_proposal *p = &s->proposals[w.proposal];
        if (sim_entry_hash(e) != p->entry_hash || e->len != p->len) {
            sim_violation(s, SIM_CHECK_SM_SAFETY,
                          "node %d applied entry %llu term %llu (%u bytes) but the client "
                          "proposed write %llu (%u bytes) there",
                          slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                          e->len, (unsigned long long)p->id, p->len);
            continue;
        }
        p->done = 1;
        s->writes_done++;
        if (e->index > s->chk.max_completed_write)
            s->chk.max_completed_write = e->index;
    }
    n->n_writes = kept;
}

bool sim_client_converged(sim *s)
{
    if (s->probe == 0 || sim_leader_slot(s) < 0)
        return false;
    const sim_proposal *p = &s->proposals[s->probe - 1];
    const sim_checker *c = &s->chk;
    if (p->index >= c->n_applied || c->applied[p->index].term != p->term)
        return false;
    /* Every member of the leader's configuration, voter or learner (learners get the log too); a
     * node outside it gets nothing new. */
    const raft_conf *conf = raft_get_conf(s->nodes[sim_leader_slot(s)].r);
    raft_index commit = 0;
    bool first = true;
    for (int i = 0; i < s->n_nodes; i++) {
        const sim_node *n = &s->nodes[i];
        if (!raft_conf_has_member(conf, (raft_id)i + 1))
            continue;
        if (!n->up || n->sm.applied < p->index)
            return false;
        raft_index node_commit = raft_commit_index(n->r);
        if (!first && node_commit != commit)
            return false;
        commit = node_commit;
        first = false;
    }
    return true;
}
