/*
 * fixture.h -- a tiny in-memory cluster of raft cores for unit tests: an instant, lossless
 * network (with per-link cuts), synchronous "disk", and the Ready loop of raft.h done exactly.
 */
#ifndef RAFTKV_TEST_FIXTURE_H
#define RAFTKV_TEST_FIXTURE_H

#include "raft.h"

#define FX_MAX 7
#define FX_MAX_APPLIED 4096

typedef struct fx_node {
    raft *r;
    bool up;
    /* durable state, as the caller would keep it */
    raft_hard_state hs;
    raft_snapshot_meta snap;
    raft_entry *log; /* owned copies */
    size_t log_len;
    /* state machine: applied entry (index, term) */
    raft_index applied[FX_MAX_APPLIED];
    raft_term applied_term[FX_MAX_APPLIED];
    size_t n_applied;
    raft_index last_applied;
    raft_read_state reads[64];
    size_t n_reads;
} fx_node;

typedef struct fx {
    int n;
    fx_node nodes[FX_MAX];
    bool cut[FX_MAX + 1][FX_MAX + 1]; /* cut[a][b]: messages a -> b are lost */
    raft_config cfg;
    uint64_t delivered;
} fx;

/* Creates n nodes (ids 1..n) with cfg as the template (id, conf, seed filled in). */
void fx_init(fx *f, int n, const raft_config *tmpl);
void fx_free(fx *f);
/* Runs every node's Ready loop and delivers messages until quiet (or max rounds). */
void fx_pump(fx *f);
void fx_tick(fx *f, int node);     /* one tick on one node, then pump */
void fx_tick_all(fx *f, int ticks); /* ticks every live node, pumping after each */
raft *fx_r(fx *f, int id);
int fx_leader(fx *f); /* the id of a live leader with the highest term, 0 if none */
int fx_elect(fx *f, int id); /* campaign on id and pump; returns the leader afterwards */
void fx_crash(fx *f, int id);
void fx_restart(fx *f, int id);
void fx_isolate(fx *f, int id, bool isolated);
/* Proposes on the leader and pumps; returns the entry index (0 on failure). */
raft_index fx_propose(fx *f, const char *text);

#endif
