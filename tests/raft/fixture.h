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
/* Idem, but only 1..voters are in the initial configuration; the others wait to be added. */
void fx_init_voters(fx *f, int n, int voters, const raft_config *tmpl);
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

/*
 * Single-core helpers ("cx_"): drive one core by hand with raft_msg values and look at exactly
 * what its Ready holds. A cx_ready is a deep copy of one Ready (entry data included), so a test
 * can inspect it, and step its messages into other cores, after raft_advance freed the original.
 */
#define CX_MAX_MSGS 128
#define CX_MAX_ENTRIES 512
#define CX_MAX_DATA (64 * 1024)

typedef struct cx_ready {
    bool got; /* false: the core had no Ready */
    raft_role role;
    raft_id leader;
    raft_snapshot_meta snapshot;
    raft_index truncate_from;
    size_t n_entries;
    raft_entry entries[CX_MAX_ENTRIES];
    bool hard_state_changed;
    raft_hard_state hard_state;
    size_t n_msgs;
    raft_msg msgs[CX_MAX_MSGS];
    size_t n_committed;
    raft_entry committed[CX_MAX_ENTRIES];
    size_t n_reads;
    raft_read_state reads[CX_MAX_MSGS];
    /* storage the copies point into */
    raft_entry msg_entries[CX_MAX_ENTRIES];
    size_t n_msg_entries;
    uint8_t data[CX_MAX_DATA];
    size_t n_data;
} cx_ready;

/* Config for node `id` in a cluster of voters 1..n: election 10, heartbeat 1, pre-vote and
 * check-quorum OFF (tests that need them turn them on), otherwise raft_config_default. */
raft_config cx_config(raft_id id, int n);
/* raft_new with a restore holding entries 1..n_terms of the given terms (empty data), the hard
 * state hs and applied = hs.commit. Fails the test when raft_new fails. */
raft *cx_new(const raft_config *cfg, const raft_term *terms, size_t n_terms, raft_hard_state hs);
/* Takes one Ready (if any), copies it into *out, advances. Returns out->got. */
bool cx_take(raft *r, cx_ready *out);
/* Takes Readies until there is none; *out then holds the union (messages, entries, committed,
 * reads appended in order; the last hard state / truncate / snapshot seen). Returns the number
 * of Readies taken. */
int cx_drain(raft *r, cx_ready *out);
/* A message with type, from, to and term set, all else 0. */
raft_msg cx_msg(int type, raft_id from, raft_id to, raft_term term);
/* Count / find the messages of a type (0: any) addressed to `to` (0: anyone). */
size_t cx_count(const cx_ready *rd, int type, raft_id to);
const raft_msg *cx_find(const cx_ready *rd, int type, raft_id to);
/* Makes r (a follower of a cluster 1..n) leader by hand: campaigns and feeds it granted
 * pre-votes/votes from the other voters, then drains the Readies into *out (may be NULL). */
void cx_make_leader(raft *r, cx_ready *out);

#endif
