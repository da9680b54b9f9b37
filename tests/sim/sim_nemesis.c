/*
 * sim_nemesis.c -- fault profiles and the fault schedule.
 *
 * A profile fixes the network, disk, client and snapshot parameters of a run and which faults the
 * nemesis may inject: partitions (symmetric split, one-way cut, leader isolated, bridge node),
 * crashes/restarts (power losses, mid-save on some seeds, and injected disk errors), or both. During the fault phase the nemesis fires every few dozen ticks and
 * toggles faults; at its end sim_nemesis_heal removes every fault (links, loss, crashed nodes) and
 * the liveness phase starts. The demo follows a fixed script instead (sim_script_fire).
 */
#include "sim.h"

#include <string.h>

static const char *const profile_names[SIM_PROFILE_COUNT] = {
    "calm", "lossy", "partitions", "crashes", "everything", "churn",
};

const char *sim_profile_name(int profile)
{
    return profile >= 0 && profile < SIM_PROFILE_COUNT ? profile_names[profile] : "?";
}

int sim_profile_parse(const char *name)
{
    for (int i = 0; i < SIM_PROFILE_COUNT; i++)
        if (strcmp(name, profile_names[i]) == 0)
            return i;
    return -1;
}

void sim_nemesis_setup(sim *s)
{
    sim_rng *rng = &s->rng;
    sim_net_params *np = &s->net.params;
    np->delay_min_us = 200;
    np->delay_max_us = (uint32_t)sim_rng_range(rng, 1000, 3000);
    np->tail_permille = 5;
    np->tail_mult_min = 10;
    np->tail_mult_max = 50;
    np->drop_permille = 0;
    np->dup_permille = 0;
    s->disk_min_us = 100;
    s->disk_max_us = (uint32_t)sim_rng_range(rng, 500, 3000);
    s->disk_tail_permille = 10;
    s->snap_every = (uint32_t)sim_rng_range(rng, 16, 128);
    s->snap_trailing = (uint32_t)sim_rng_range(rng, 0, 8);
    s->client_gap_min_us = 500;
    s->client_gap_max_us = (uint32_t)sim_rng_range(rng, 4000, 16000);
    s->read_permille = (uint32_t)sim_rng_range(rng, 150, 350);
    s->nemesis_gap_min_ticks = 10;
    s->nemesis_gap_max_ticks = 50;
    /* Disks: small WAL segments so runs roll and compact them; crashes mid-save on 3 seeds in 4,
     * torn power losses often on half the seeds, injected disk errors on a third. */
    static const uint64_t segment_sizes[3] = {64u << 10, 128u << 10, 256u << 10};
    s->segment_bytes = segment_sizes[sim_rng_below(rng, 3)];
    s->midsave_permille = sim_rng_permille(rng, 750) ? (uint32_t)sim_rng_range(rng, 300, 1000) : 0;
    s->torn_permille = sim_rng_permille(rng, 500) ? (uint32_t)sim_rng_range(rng, 500, 1000)
                                                  : (uint32_t)sim_rng_range(rng, 0, 300);
    s->disk_error_permille = sim_rng_permille(rng, 333) ? (uint32_t)sim_rng_range(rng, 1, 5) : 0;
    switch (s->profile) {
    case SIM_PROFILE_CALM:
        break;
    case SIM_PROFILE_LOSSY:
        np->drop_permille = (uint32_t)sim_rng_range(rng, 20, 150);
        np->dup_permille = (uint32_t)sim_rng_range(rng, 10, 50);
        np->tail_permille = (uint32_t)sim_rng_range(rng, 20, 60);
        break;
    case SIM_PROFILE_PARTITIONS:
    case SIM_PROFILE_CRASHES:
        np->drop_permille = (uint32_t)sim_rng_range(rng, 0, 10);
        np->tail_permille = (uint32_t)sim_rng_range(rng, 5, 20);
        break;
    case SIM_PROFILE_EVERYTHING:
        np->drop_permille = (uint32_t)sim_rng_range(rng, 10, 80);
        np->dup_permille = (uint32_t)sim_rng_range(rng, 0, 30);
        np->tail_permille = (uint32_t)sim_rng_range(rng, 10, 40);
        break;
    case SIM_PROFILE_CHURN:
        /* Leaders die often, with entries replicated to only some followers: the Figure 8
         * setting where counting old-term replicas commits entries that are later lost. */
        np->drop_permille = (uint32_t)sim_rng_range(rng, 0, 200);
        np->tail_permille = 30;
        s->client_gap_max_us = 3000;
        s->nemesis_gap_min_ticks = 3;
        s->nemesis_gap_max_ticks = 25;
        /* One entry per append, so a follower can hold an old-term entry without the new
         * leader's no-op behind it. */
        s->base_cfg.max_entries_per_msg = 1;
        break;
    default:
        break;
    }
    s->doom_snapshot_permille = 250;
    s->doom_save_permille = 1;
    /* A node stopped by a disk error or an aimed power loss needs the nemesis to restart it. */
    if (s->profile != SIM_PROFILE_CRASHES && s->profile != SIM_PROFILE_EVERYTHING &&
        s->profile != SIM_PROFILE_CHURN) {
        s->disk_error_permille = 0;
        s->doom_snapshot_permille = 0;
        s->doom_save_permille = 0;
    }
}

static int random_slot(sim *s, bool want_up)
{
    int slots[SIM_MAX_NODES], count = 0;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].up == want_up)
            slots[count++] = i;
    return count ? slots[sim_rng_below(&s->rng, (uint64_t)count)] : -1;
}

static uint32_t random_side(sim *s)
{
    uint32_t all = (1u << s->n_nodes) - 1;
    uint32_t mask;
    do
        mask = (uint32_t)sim_rng_below(&s->rng, all + 1);
    while (mask == 0 || mask == all);
    return mask;
}

static void partition_action(sim *s)
{
    bool any_cut = false;
    for (int a = 0; a < s->n_nodes; a++)
        for (int b = 0; b < s->n_nodes; b++)
            any_cut |= s->net.cut[a][b];
    if (any_cut && sim_rng_permille(&s->rng, 400)) {
        sim_net_heal(s);
        sim_trace(s, "nemesis: network healed");
        return;
    }
    sim_net_heal(s);
    const char *kind = "";
    switch (sim_rng_below(&s->rng, 4)) {
    case 0:
        sim_net_split(s, random_side(s));
        kind = "symmetric split";
        break;
    case 1: {
        int cuts = (int)sim_rng_range(&s->rng, 1, (uint64_t)s->n_nodes);
        for (int i = 0; i < cuts; i++) {
            int from = (int)sim_rng_below(&s->rng, (uint64_t)s->n_nodes);
            int to = (int)sim_rng_below(&s->rng, (uint64_t)s->n_nodes);
            if (from != to)
                sim_net_cut_one_way(s, from, to);
        }
        kind = "one-way cuts";
        break;
    }
    case 2: {
        int leader = sim_leader_slot(s);
        if (leader < 0)
            leader = (int)sim_rng_below(&s->rng, (uint64_t)s->n_nodes);
        sim_net_isolate(s, leader);
        kind = "leader isolated";
        break;
    }
    default: {
        int bridge = (int)sim_rng_below(&s->rng, (uint64_t)s->n_nodes);
        sim_net_bridge(s, bridge, random_side(s));
        kind = "bridge node";
        break;
    }
    }
    if (s->opt->trace) {
        char cuts[512];
        sim_net_describe(s, cuts, sizeof(cuts));
        sim_trace(s, "nemesis: %s, cut links: %s", kind, cuts);
    }
}

static void crash_action(sim *s, bool prefer_leader)
{
    int down = random_slot(s, false);
    if (down >= 0 && sim_rng_permille(&s->rng, 500)) {
        sim_trace(s, "nemesis: restart node %d", down + 1);
        sim_node_start(s, down, true);
        return;
    }
    int victim = -1;
    if (prefer_leader || sim_rng_permille(&s->rng, 300))
        victim = sim_leader_slot(s);
    if (victim < 0)
        victim = random_slot(s, true);
    if (victim < 0)
        return;
    sim_trace(s, "nemesis: crash node %d", victim + 1);
    sim_node_crash(s, victim);
}

void sim_nemesis_fire(sim *s)
{
    if (s->phase != SIM_PHASE_FAULTS)
        return;
    switch (s->profile) {
    case SIM_PROFILE_PARTITIONS:
        partition_action(s);
        break;
    case SIM_PROFILE_CRASHES:
        crash_action(s, false);
        break;
    case SIM_PROFILE_EVERYTHING:
        if (sim_rng_permille(&s->rng, 500))
            partition_action(s);
        else
            crash_action(s, false);
        break;
    case SIM_PROFILE_CHURN:
        if (sim_rng_permille(&s->rng, 150)) {
            int leader = sim_leader_slot(s);
            sim_net_heal(s);
            if (leader >= 0 && sim_rng_permille(&s->rng, 500))
                sim_net_isolate(s, leader);
            sim_trace(s, "nemesis: churn network change");
        } else {
            crash_action(s, true);
        }
        break;
    default:
        return; /* calm and lossy have no nemesis */
    }
    sim_schedule(s,
                 s->now + SIM_TICK_US * sim_rng_range(&s->rng, s->nemesis_gap_min_ticks,
                                                      s->nemesis_gap_max_ticks),
                 SIM_EV_NEMESIS, 0, 0, NULL);
}

/* Churn: a leader sometimes dies right after its commit index moves, before its followers
 * learn it -- the moment Figure 8 is about. */
void sim_nemesis_after_step(sim *s)
{
    if (s->profile != SIM_PROFILE_CHURN || s->phase != SIM_PHASE_FAULTS)
        return;
    for (int i = 0; i < s->n_nodes; i++) {
        sim_node *n = &s->nodes[i];
        if (!n->up || raft_get_role(n->r) != RAFT_LEADER) {
            s->nemesis_commit[i] = 0;
            continue;
        }
        raft_index commit = raft_commit_index(n->r);
        bool advanced = s->nemesis_commit[i] != 0 && commit > s->nemesis_commit[i];
        s->nemesis_commit[i] = commit;
        if (advanced && sim_rng_permille(&s->rng, 300)) {
            sim_trace(s, "nemesis: crash leader %d right after it committed %llu", i + 1,
                      (unsigned long long)commit);
            sim_node_crash(s, i);
            s->nemesis_commit[i] = 0;
        }
    }
}

/* The kinds of change the nemesis asks for: exactly one node changes its role among none,
 * learner and voter (raft.h MEMBERSHIP CHANGE). */
enum {
    CHANGE_ADD_VOTER,
    CHANGE_REMOVE_VOTER,
    CHANGE_ADD_LEARNER,
    CHANGE_PROMOTE,
    CHANGE_DEMOTE,
    CHANGE_REMOVE_LEARNER,
    CHANGE_KINDS
};
static const char *const change_names[CHANGE_KINDS] = {
    "add voter", "remove voter", "add learner", "promote learner", "demote voter",
    "remove learner",
};
_Static_assert(CHANGE_KINDS == SIM_MEMBER_KINDS, "a counter per kind of change");

void sim_member_stats_add(sim_member_stats *to, const sim_member_stats *from)
{
    to->seeds += from->seeds;
    to->proposed += from->proposed;
    to->refused += from->refused;
    to->leader_removed += from->leader_removed;
    to->leader_demoted += from->leader_demoted;
    for (int k = 0; k < SIM_MEMBER_KINDS; k++)
        to->by_kind[k] += from->by_kind[k];
}

static void remove_id(raft_id *ids, uint32_t *n, uint32_t k)
{
    ids[k] = ids[--*n];
}

/* One change at the leader, through raft_propose_conf: a node outside its configuration added as
 * a voter or as a learner (restarted if it is down), a learner promoted or removed, a voter
 * removed or demoted to learner -- the leader itself included. The context names the change, so
 * configuration entries carry bytes of their own. */
void sim_nemesis_member(sim *s)
{
    if (s->phase != SIM_PHASE_FAULTS)
        return;
    int leader = sim_leader_slot(s);
    if (leader >= 0) {
        raft *r = s->nodes[leader].r;
        raft_conf next = *raft_get_conf(r);
        int outside[SIM_MAX_NODES], n_outside = 0;
        for (int i = 0; i < s->n_nodes; i++)
            if (!raft_conf_has_member(&next, (raft_id)i + 1))
                outside[n_outside++] = i;
        int kind, slot;
        if ((s->opt->test_bugs & RAFT_BUG_CONF_ANY) && n_outside > 0) {
            /* The bug hunt: every node outside plus one voter, a set whose majorities need not
             * meet the old ones' (a two-node change where one is allowed). */
            raft_id keep = next.voters[sim_rng_below(&s->rng, next.n_voters)];
            next.n_voters = 0;
            for (int i = 0; i < n_outside; i++)
                next.voters[next.n_voters++] = (raft_id)outside[i] + 1;
            next.voters[next.n_voters++] = keep;
            for (int i = 0; i < n_outside; i++)
                if (!s->nodes[outside[i]].up)
                    sim_node_start(s, outside[i], true);
            kind = CHANGE_ADD_VOTER;
            slot = outside[0];
        } else {
            /* Any kind the configuration allows (there is always one: 3+ nodes), a voter added
             * or removed twice as often as the others: a removal is what loses a write the
             * removed voter alone had (FAST_CONF_CHANGE was caught 13 times less often with all
             * six kinds even). */
            int kinds[2 * CHANGE_KINDS], n_kinds = 0;
            if (n_outside > 0) {
                kinds[n_kinds++] = CHANGE_ADD_VOTER;
                kinds[n_kinds++] = CHANGE_ADD_VOTER;
                kinds[n_kinds++] = CHANGE_ADD_LEARNER;
            }
            if (next.n_voters > 1) {
                kinds[n_kinds++] = CHANGE_REMOVE_VOTER;
                kinds[n_kinds++] = CHANGE_REMOVE_VOTER;
                kinds[n_kinds++] = CHANGE_DEMOTE;
            }
            if (next.n_learners > 0) {
                kinds[n_kinds++] = CHANGE_PROMOTE;
                kinds[n_kinds++] = CHANGE_REMOVE_LEARNER;
            }
            kind = kinds[sim_rng_below(&s->rng, (uint64_t)n_kinds)];
            uint32_t k;
            switch (kind) {
            case CHANGE_ADD_VOTER:
            case CHANGE_ADD_LEARNER:
                slot = outside[sim_rng_below(&s->rng, (uint64_t)n_outside)];
                if (kind == CHANGE_ADD_VOTER)
                    next.voters[next.n_voters++] = (raft_id)slot + 1;
                else
                    next.learners[next.n_learners++] = (raft_id)slot + 1;
                if (!s->nodes[slot].up)
                    sim_node_start(s, slot, true);
                break;
            case CHANGE_REMOVE_VOTER:
            case CHANGE_DEMOTE:
                k = (uint32_t)sim_rng_below(&s->rng, next.n_voters);
                slot = (int)next.voters[k] - 1;
                remove_id(next.voters, &next.n_voters, k);
                if (kind == CHANGE_DEMOTE)
                    next.learners[next.n_learners++] = (raft_id)slot + 1;
                break;
            default: /* CHANGE_PROMOTE, CHANGE_REMOVE_LEARNER */
                k = (uint32_t)sim_rng_below(&s->rng, next.n_learners);
                slot = (int)next.learners[k] - 1;
                remove_id(next.learners, &next.n_learners, k);
                if (kind == CHANGE_PROMOTE)
                    next.voters[next.n_voters++] = (raft_id)slot + 1;
                break;
            }
        }
        char ctx[40];
        int len = snprintf(ctx, sizeof(ctx), "%s node %d", change_names[kind], slot + 1);
        raft_index index = 0;
        int rc = raft_propose_conf(r, &next, ctx, (uint32_t)len, &index, NULL);
        sim_trace(s, "nemesis: leader %d proposes to %s: %s (index %llu)", leader + 1, ctx,
                  raft_strerror(rc), (unsigned long long)index);
        if (rc == RAFT_OK) {
            sim_member_stats *st = &s->member_stats;
            st->proposed++;
            st->by_kind[kind]++;
            st->leader_removed += kind == CHANGE_REMOVE_VOTER && slot == leader;
            st->leader_demoted += kind == CHANGE_DEMOTE && slot == leader;
            if (s->n_confs < sizeof(s->confs) / sizeof(s->confs[0]))
                s->confs[s->n_confs++] = next;
            sim_node_pump(s, leader);
        } else if (rc == RAFT_ECONFBUSY) {
            s->member_stats.refused++;
        } else {
            sim_violation(s, SIM_CHECK_CONTRACT, "raft_propose_conf(%s) on leader %d: %s", ctx,
                          leader + 1, raft_strerror(rc));
        }
    }
    sim_schedule(s, s->now + SIM_TICK_US * sim_rng_range(&s->rng, 20, 80), SIM_EV_MEMBER, 0, 0,
                 NULL);
}

void sim_nemesis_heal(sim *s)
{
    sim_net_heal(s);
    s->net.params.drop_permille = 0;
    s->net.params.dup_permille = 0;
    s->net.params.tail_permille = 0;
    for (int i = 0; i < s->n_nodes; i++)
        if (!s->nodes[i].up)
            sim_node_start(s, i, true);
    s->phase = SIM_PHASE_LIVENESS;
    s->liveness_deadline = s->now + (uint64_t)s->opt->liveness_ticks * SIM_TICK_US;
    sim_trace(s, "nemesis: final heal; liveness must hold within %u ticks", s->opt->liveness_ticks);
    if (s->opt->demo)
        sim_say(s, "all faults healed, every node up; waiting for the cluster to converge");
    sim_schedule(s, s->now, SIM_EV_CLIENT, 0, 0, NULL);
}

/* The demo's scenario: a fixed sequence, so the story is the same every time. */
enum {
    SCRIPT_CRASH_LEADER = 1,
    SCRIPT_RESTART,
    SCRIPT_ISOLATE_LEADER,
    SCRIPT_HEAL,
    SCRIPT_SPLIT,
};

void sim_script_fire(sim *s, uint64_t action)
{
    int leader = sim_leader_slot(s);
    switch (action) {
    case SCRIPT_CRASH_LEADER:
        if (leader < 0)
            return;
        s->script_victim = leader;
        sim_say(s, "node %d (the leader of term %llu) crashes", leader + 1,
                (unsigned long long)raft_get_term(s->nodes[leader].r));
        sim_node_crash(s, leader);
        break;
    case SCRIPT_RESTART:
        if (s->script_victim < 0 || s->nodes[s->script_victim].up)
            return;
        sim_node_start(s, s->script_victim, true);
        sim_say(s, "node %d restarts and recovers from its disk: snapshot at %llu, %zu log entries",
                s->script_victim + 1,
                (unsigned long long)s->nodes[s->script_victim].durable.snap.index,
                s->nodes[s->script_victim].durable.n_entries);
        break;
    case SCRIPT_ISOLATE_LEADER:
        if (leader < 0)
            return;
        sim_say(s, "network partition: node %d (leader of term %llu) is cut off from the rest",
                leader + 1, (unsigned long long)raft_get_term(s->nodes[leader].r));
        sim_net_isolate(s, leader);
        break;
    case SCRIPT_HEAL:
        sim_net_heal(s);
        sim_say(s, "partition healed");
        break;
    case SCRIPT_SPLIT: {
        /* The leader plus one follower against the other three: the majority side must elect. */
        int partner = leader < 0 ? 0 : (leader + 1) % s->n_nodes;
        uint32_t side = (leader < 0 ? 1u : 1u << leader) | 1u << partner;
        sim_net_split(s, side);
        char who[32] = "";
        size_t used = 0;
        for (int i = 0; i < s->n_nodes; i++)
            if (side & (1u << i))
                used += (size_t)snprintf(who + used, sizeof(who) - used, "%s%d", used ? "," : "",
                                         i + 1);
        sim_say(s, "network partition: nodes {%s} | the other %d nodes", who,
                s->n_nodes - __builtin_popcount(side));
        break;
    }
    default:
        break;
    }
}
