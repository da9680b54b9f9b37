/*
 * sim_check.c -- the checkers. Each keeps a small global table so that running all of them after
 * every step costs O(nodes), plus work proportional to what the step changed:
 *
 *   election-safety       term -> the one node seen leading it, over the whole run.
 *   log-matching          (index, term) -> entry hash and previous entry's term, recorded when a
 *                         node's write completes; any disagreement means two logs hold the same
 *                         (index, term) with different contents or different prefixes.
 *   leader-completeness   per commit value c, the smallest term at which some node was seen with
 *                         commit == c, and per index the committed entry's term. A node that
 *                         becomes leader of term L must hold every index i whose suffix-minimum
 *                         term is < L, with that term (or have it inside its snapshot).
 *   state-machine-safety  index -> (term, entry hash, chain hash) of what was applied there; the
 *                         chain hash makes "same index, same chain" mean "same applied prefix".
 *                         Also: two nodes seeing different terms committed at one index.
 *   commit-monotonic      a live node's commit index never decreases (a restart starts over).
 *   stale-read            a read's returned state (the node's applied index) is at least the
 *                         index of every write reported done before the read started.
 *   liveness              run by sim_run after the final heal (see sim_client_liveness).
 *   durability            run at every restart by sim_disk.c: recovery returned everything the
 *                         node's storage acknowledged, and nothing that was never written.
 *   leader-membership     a new leader is a voter of its own configuration, or the voter that
 *                         its configuration's uncommitted change removes or demotes (it may hold
 *                         the only log the others accept); never a learner or an outsider.
 *
 * A violation prints one line naming the check, nodes, terms and indexes, plus a replay command,
 * and stops the run at the end of the step.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

static const char *const check_names[SIM_CHECK_COUNT] = {
    "election-safety",
    "log-matching",
    "leader-completeness",
    "state-machine-safety",
    "commit-monotonic",
    "stale-read",
    "liveness",
    "contract",
    "durability",
    "fast-path",
    "leader-membership",
};

const char *sim_check_name(int check)
{
    return check >= 0 && check < SIM_CHECK_COUNT ? check_names[check] : "?";
}

int sim_check_parse(const char *name)
{
    for (int i = 0; i < SIM_CHECK_COUNT; i++)
        if (strcmp(name, check_names[i]) == 0)
            return i;
    return -1;
}

void sim_violation(sim *s, int check, const char *fmt, ...)
{
    sim_checker *c = &s->chk;
    bool first = c->violated_mask == 0;
    c->step_mask |= 1u << check;
    c->violated_mask |= 1u << check;
    s->stop = true; /* the run ends with this step; later lines of the same step still print */
    if (++c->reported > 4)
        return;
    char details[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(details, sizeof(details), fmt, ap);
    va_end(ap);
    printf("VIOLATION seed=%llu step=%llu check=%s: %s\n", (unsigned long long)s->seed,
           (unsigned long long)s->steps, sim_check_name(check), details);
    if (first)
        printf("replay: %s --from %llu --seeds 1 --trace\n", s->opt->replay_cmd,
               (unsigned long long)s->seed);
    fflush(stdout);
}

/* Grows a zero-filled array so that index `need` is valid. */
static void *grow_zeroed(void *array, size_t *count, size_t need, size_t elem)
{
    if (need < *count)
        return array;
    size_t cap = *count ? *count : 256;
    while (cap <= need)
        cap *= 2;
    uint8_t *grown = realloc(array, cap * elem);
    if (!grown)
        abort();
    memset(grown + *count * elem, 0, (cap - *count) * elem);
    *count = cap;
    return grown;
}

/* ---- leader-completeness ---- */

static void check_new_leader(sim *s, int slot, raft_term term)
{
    sim_checker *c = &s->chk;
    raft *r = s->nodes[slot].r;
    raft_index snap_index = raft_get_snapshot(r).index;
    raft_term running = UINT64_MAX;
    /* Walk down from the highest commit ever seen: `running` is the smallest term at which any
     * node was known to have committed at least i. */
    for (raft_index i = c->max_commit_seen; i > snap_index; i--) {
        if (c->commit_min_term[i] != 0 && c->commit_min_term[i] < running)
            running = c->commit_min_term[i];
        if (running >= term)
            continue;
        raft_term have = raft_term_at(r, i);
        raft_term want = c->committed_term[i];
        if (have == 0 || (want != 0 && have != want)) {
            sim_violation(s, SIM_CHECK_LEADER_COMPLETENESS,
                          "node %d became leader of term %llu without entry %llu (term %llu), "
                          "committed by term %llu; it holds term %llu there, last index %llu",
                          slot + 1, (unsigned long long)term, (unsigned long long)i,
                          (unsigned long long)want, (unsigned long long)running,
                          (unsigned long long)have, (unsigned long long)raft_last_index(r));
            return;
        }
    }
}

static void ensure_commit_tables(sim_checker *c, raft_index commit)
{
    if (commit < c->n_commit)
        return;
    size_t count = c->n_commit;
    c->commit_min_term = grow_zeroed(c->commit_min_term, &count, commit, sizeof(raft_term));
    size_t count2 = c->n_commit;
    c->committed_term = grow_zeroed(c->committed_term, &count2, commit, sizeof(raft_term));
    c->n_commit = count;
}

/* Records that node `slot` (in `term`) has commit index `commit`, and the terms of the entries
 * it newly counts as committed. */
static void observe_commit(sim *s, int slot, raft_term term, raft_index from, raft_index commit)
{
    sim_checker *c = &s->chk;
    if (commit == 0)
        return;
    ensure_commit_tables(c, commit);
    if (c->commit_min_term[commit] == 0 || term < c->commit_min_term[commit])
        c->commit_min_term[commit] = term;
    if (commit > c->max_commit_seen)
        c->max_commit_seen = commit;
    raft *r = s->nodes[slot].r;
    for (raft_index i = from + 1; i <= commit; i++) {
        raft_term t = raft_term_at(r, i);
        if (t == 0)
            continue; /* compacted or installed from a snapshot */
        if (c->committed_term[i] == 0) {
            c->committed_term[i] = t;
        } else if (c->committed_term[i] != t) {
            sim_violation(s, SIM_CHECK_SM_SAFETY,
                          "node %d (term %llu) counts entry %llu of term %llu as committed, but "
                          "an entry of term %llu was committed there before",
                          slot + 1, (unsigned long long)term, (unsigned long long)i,
                          (unsigned long long)t, (unsigned long long)c->committed_term[i]);
            return;
        }
    }
}

/* ---- leader-membership ---- */

static void check_leader_member(sim *s, int slot, raft_term term)
{
    raft *r = s->nodes[slot].r;
    raft_id self = (raft_id)slot + 1;
    const raft_conf *conf = raft_get_conf(r);
    if (raft_conf_has(conf, self))
        return;
    raft_index at = raft_conf_index(r), commit = raft_commit_index(r);
    raft_conf before;
    if (at > commit && raft_conf_at(r, at - 1, &before) == RAFT_OK && raft_conf_has(&before, self))
        return; /* its own removal or demotion, not committed yet */
    sim_violation(s, SIM_CHECK_LEADER_MEMBER,
                  "node %d became leader of term %llu as %s of its configuration (from index "
                  "%llu, commit %llu)",
                  slot + 1, (unsigned long long)term,
                  raft_conf_has_learner(conf, self) ? "a learner" : "no member",
                  (unsigned long long)at, (unsigned long long)commit);
}

/* ---- the per-step pass over all nodes ---- */

static void say_votes(sim *s, int slot, raft_term term)
{
    const sim_node *n = &s->nodes[slot];
    char voters[64] = "";
    size_t used = 0;
    uint32_t mask = n->vote_term == term ? n->vote_mask : 0;
    mask |= 1u << slot;
    for (int i = 0; i < s->n_nodes; i++)
        if (mask & (1u << i))
            used += (size_t)snprintf(voters + used, sizeof(voters) - used, "%s%d", used ? "," : "",
                                     i + 1);
    sim_say(s, "node %d won the election for term %llu with votes from %s", slot + 1,
            (unsigned long long)term, voters);
}

void sim_check_step(sim *s)
{
    sim_checker *c = &s->chk;
    for (int i = 0; i < s->n_nodes && !s->stop; i++) {
        sim_node *n = &s->nodes[i];
        if (!n->up)
            continue;
        raft_role role = raft_get_role(n->r);
        raft_term term = raft_get_term(n->r);
        raft_index commit = raft_commit_index(n->r);
        bool changed_term = term != n->seen_term;

        if (role == RAFT_LEADER) {
            c->leader_of_term = grow_zeroed(c->leader_of_term, &c->n_terms, term, sizeof(raft_id));
            raft_id prior = c->leader_of_term[term];
            if (prior != 0 && prior != n->id) {
                sim_violation(
                    s, SIM_CHECK_ELECTION, "nodes %llu and %llu were both leader of term %llu",
                    (unsigned long long)prior, (unsigned long long)n->id, (unsigned long long)term);
                return;
            }
            c->leader_of_term[term] = n->id;
            if (n->seen_role != RAFT_LEADER || changed_term) {
                c->leaders_elected++;
                if (s->opt->demo)
                    say_votes(s, i, term);
                sim_trace(s, "node %d is leader of term %llu (last index %llu, commit %llu)", i + 1,
                          (unsigned long long)term, (unsigned long long)raft_last_index(n->r),
                          (unsigned long long)commit);
                check_new_leader(s, i, term);
                check_leader_member(s, i, term);
                if (s->stop)
                    return;
            }
        } else if (role == RAFT_CANDIDATE && (n->seen_role != RAFT_CANDIDATE || changed_term)) {
            if (s->opt->demo)
                sim_say(s, "node %d starts an election for term %llu", i + 1,
                        (unsigned long long)term);
        }

        if (commit < n->seen_commit) {
            sim_violation(s, SIM_CHECK_COMMIT_MONOTONIC,
                          "node %d's commit index went from %llu down to %llu (term %llu)", i + 1,
                          (unsigned long long)n->seen_commit, (unsigned long long)commit,
                          (unsigned long long)term);
            return;
        }
        if (commit != n->seen_commit || changed_term) {
            observe_commit(s, i, term, n->seen_commit, commit);
        }
        n->seen_role = role;
        n->seen_term = term;
        n->seen_commit = commit;
    }
}

void sim_check_node_started(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    n->seen_role = raft_get_role(n->r);
    n->seen_term = raft_get_term(n->r);
    n->seen_commit = raft_commit_index(n->r);
    observe_commit(s, slot, n->seen_term, n->durable.snap.index, n->seen_commit);
}

/* ---- log-matching ---- */

static size_t lm_hash(raft_index index, raft_term term)
{
    return (size_t)sim_mix(index, term);
}

static sim_lm_slot *lm_find(sim_checker *c, raft_index index, raft_term term)
{
    size_t mask = c->lm_cap - 1;
    for (size_t i = lm_hash(index, term) & mask;; i = (i + 1) & mask) {
        sim_lm_slot *slot = &c->lm[i];
        if (slot->index == 0 || (slot->index == index && slot->term == term))
            return slot;
    }
}

static void lm_grow(sim_checker *c)
{
    sim_lm_slot *old = c->lm;
    size_t old_cap = c->lm_cap;
    c->lm_cap = old_cap ? old_cap * 2 : 1024;
    c->lm = calloc(c->lm_cap, sizeof(sim_lm_slot));
    if (!c->lm)
        abort();
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].index != 0)
            *lm_find(c, old[i].index, old[i].term) = old[i];
    free(old);
}

void sim_check_durable_entry(sim *s, int slot, const raft_entry *e, raft_term prev_term,
                             bool prev_known)
{
    sim_checker *c = &s->chk;
    if (2 * (c->lm_used + 1) > c->lm_cap)
        lm_grow(c);
    uint64_t hash = sim_entry_hash(e);
    sim_lm_slot *rec = lm_find(c, e->index, e->term);
    if (rec->index == 0) {
        rec->index = e->index;
        rec->term = e->term;
        rec->entry_hash = hash;
        rec->prev_term = prev_known ? prev_term : UINT64_MAX;
        rec->node = (uint8_t)(slot + 1);
        c->lm_used++;
        return;
    }
    if (rec->entry_hash != hash) {
        sim_violation(s, SIM_CHECK_LOG_MATCHING,
                      "node %d wrote entry %llu term %llu (%u bytes, hash %016llx) but node %u "
                      "wrote different contents (hash %016llx) at the same index and term",
                      slot + 1, (unsigned long long)e->index, (unsigned long long)e->term, e->len,
                      (unsigned long long)hash, rec->node, (unsigned long long)rec->entry_hash);
        return;
    }
    if (prev_known && rec->prev_term != UINT64_MAX && rec->prev_term != prev_term) {
        sim_violation(s, SIM_CHECK_LOG_MATCHING,
                      "node %d wrote entry %llu term %llu after an entry of term %llu, but node "
                      "%u holds it after an entry of term %llu: the prefixes differ",
                      slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                      (unsigned long long)prev_term, rec->node, (unsigned long long)rec->prev_term);
        return;
    }
    if (prev_known && rec->prev_term == UINT64_MAX)
        rec->prev_term = prev_term;
}

/* ---- state-machine-safety ---- */

void sim_check_applied(sim *s, int slot, const raft_entry *e, uint64_t chain)
{
    sim_checker *c = &s->chk;
    c->applied = grow_zeroed(c->applied, &c->n_applied, e->index, sizeof(sim_applied_rec));
    sim_applied_rec *rec = &c->applied[e->index];
    uint64_t hash = sim_entry_hash(e);
    if (rec->term == 0) {
        rec->term = e->term;
        rec->entry_hash = hash;
        rec->chain = chain;
        rec->node = (uint8_t)(slot + 1);
        return;
    }
    if (rec->term != e->term || rec->entry_hash != hash) {
        sim_violation(s, SIM_CHECK_SM_SAFETY,
                      "node %d applied entry %llu term %llu (hash %016llx) but node %u applied "
                      "term %llu (hash %016llx) at that index",
                      slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                      (unsigned long long)hash, rec->node, (unsigned long long)rec->term,
                      (unsigned long long)rec->entry_hash);
    } else if (rec->chain != chain) {
        sim_violation(s, SIM_CHECK_SM_SAFETY,
                      "node %d and node %u applied the same entry %llu (term %llu) on top of "
                      "different histories (chain %016llx vs %016llx)",
                      slot + 1, rec->node, (unsigned long long)e->index,
                      (unsigned long long)e->term, (unsigned long long)chain,
                      (unsigned long long)rec->chain);
    }
}

void sim_check_sm_install(sim *s, int slot, const sim_sm *sm)
{
    sim_checker *c = &s->chk;
    if (sm->applied == 0 || sm->applied >= c->n_applied)
        return;
    const sim_applied_rec *rec = &c->applied[sm->applied];
    if (rec->term != 0 && (rec->term != sm->applied_term || rec->chain != sm->chain))
        sim_violation(s, SIM_CHECK_SM_SAFETY,
                      "node %d loaded a snapshot at %llu (term %llu, chain %016llx) but node %u "
                      "applied term %llu, chain %016llx there",
                      slot + 1, (unsigned long long)sm->applied,
                      (unsigned long long)sm->applied_term, (unsigned long long)sm->chain,
                      rec->node, (unsigned long long)rec->term, (unsigned long long)rec->chain);
}

/* ---- stale-read ---- */

void sim_check_read_answered(sim *s, int slot, uint64_t request_id, raft_index applied)
{
    if (request_id == 0 || request_id > s->n_reads)
        return;
    sim_read *rd = &s->reads[request_id - 1];
    if (rd->done)
        return;
    rd->done = 1;
    s->reads_done++;
    sim_trace(s, "read %llu answered on node %d at applied %llu (needs >= %llu)",
              (unsigned long long)request_id, slot + 1, (unsigned long long)applied,
              (unsigned long long)rd->min_index);
    sim_fast_read_answered(s, slot, rd, request_id);
    if (applied < rd->min_index)
        sim_violation(s, SIM_CHECK_STALE_READ,
                      "read %llu on node %d (started t=%.3fs) returned the state at index %llu, "
                      "but a write at index %llu had completed before it started",
                      (unsigned long long)request_id, slot + 1, (double)rd->start_time / 1e6,
                      (unsigned long long)applied, (unsigned long long)rd->min_index);
}

uint64_t sim_check_terms_with_leader(const sim *s)
{
    uint64_t count = 0;
    for (size_t t = 0; t < s->chk.n_terms; t++)
        if (s->chk.leader_of_term[t] != 0)
            count++;
    return count;
}

void sim_check_free(sim_checker *c)
{
    free(c->leader_of_term);
    free(c->commit_min_term);
    free(c->committed_term);
    free(c->applied);
    free(c->lm);
    memset(c, 0, sizeof(*c));
}
