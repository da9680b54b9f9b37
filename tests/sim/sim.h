/*
 * sim.h -- shared state of the deterministic Raft simulator (tests/sim).
 *
 * One seed is one whole run of a cluster of pure Raft cores (src/raft/raft.h) driven by a
 * discrete-event loop: an event queue ordered by (virtual time, insertion sequence) holds node
 * ticks, message deliveries, disk-write completions, client operations and nemesis actions. A
 * "step" fires exactly one event, runs that node's Ready handling, then runs every checker.
 * Nothing reads a clock or calls rand(): all randomness comes from one xoshiro256** stream seeded
 * by the run's seed, so a seed replays bit for bit.
 *
 * Files, one job each:
 *   sim_queue.c    the event heap and the PRNG
 *   sim_net.c      network: delays with a long tail, drop, duplicate, partitions
 *   sim_node.c     a node: core + asynchronous disk + state machine, the Ready loop, crash/restart
 *   sim_disk.c     a node's disk: src/storage over a per-node vfs_fault, power loss mid-save,
 *                  recovery, and the durability check against what the node acknowledged
 *   sim_check.c    the safety and liveness checkers
 *   sim_client.c   client writes and ReadIndex reads
 *   sim_fast.c     the nil-externality fast path: clients that send a write to every node and
 *                  count acknowledgements, d-logs kept across crashes, and the fast-path checks
 *   sim_nemesis.c  fault profiles and the fault schedule
 *   sim_run.c      one seed: setup, the event loop, teardown
 *   sim_main.c     CLI: seed ranges, worker processes, bug hunts, the demo
 *
 * Ownership: a sim owns its nodes, queue and checker tables; events own their payloads (packets);
 * everything is freed by sim_destroy. Single-threaded; --jobs forks processes, never threads.
 */
#ifndef RAFTKV_SIM_H
#define RAFTKV_SIM_H

#include "raft.h"
#include "storage.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_MAX_NODES 7
#define SIM_TICK_US 10000u /* one raft_tick every 10 ms of virtual time */
#define SIM_FAST_SESSIONS 4 /* fast-path client sessions (ids 1..4) */
#define SIM_SNAP_BYTES 64u /* serialized state machine (see sim_sm) */

/* ---- PRNG (sim_queue.c): xoshiro256** seeded through splitmix64 ---- */
typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;
void sim_rng_seed(sim_rng *rng, uint64_t seed);
uint64_t sim_rng_next(sim_rng *rng);
uint64_t sim_rng_below(sim_rng *rng, uint64_t bound); /* uniform in [0, bound); bound > 0 */
uint64_t sim_rng_range(sim_rng *rng, uint64_t lo, uint64_t hi); /* uniform in [lo, hi] */
bool sim_rng_permille(sim_rng *rng, uint32_t permille);         /* true with permille/1000 */

/* ---- event queue (sim_queue.c) ---- */
typedef enum sim_event_type {
    SIM_EV_TICK = 0,
    SIM_EV_DELIVER,
    SIM_EV_DISK,
    SIM_EV_CLIENT,
    SIM_EV_NEMESIS,
    SIM_EV_HEAL,
    SIM_EV_SCRIPT, /* demo scenario actions */
    SIM_EV_MEMBER, /* a membership change at the leader */
    SIM_EV_FAST,   /* a fast write reaches a node (arg = its op) */
    SIM_EV_FAST_ACK, /* a node's acknowledgement reaches the client (payload: raft_fast_ack) */
} sim_event_type;

typedef struct sim_event {
    uint64_t time;        /* virtual microseconds */
    uint64_t seq;         /* insertion order: the tie-break that keeps runs deterministic */
    uint8_t type;         /* sim_event_type */
    uint8_t node;         /* 0-based node slot, when it concerns one */
    uint32_t incarnation; /* node incarnation it was scheduled for (ticks, disk) */
    uint64_t arg;
    void *payload; /* owned by the event (a sim_packet for DELIVER) */
} sim_event;

typedef struct sim_queue {
    sim_event *heap;
    size_t n, cap;
    uint64_t next_seq;
} sim_queue;
void sim_queue_push(sim_queue *q, sim_event ev); /* aborts on out-of-memory: a test harness */
bool sim_queue_pop(sim_queue *q, sim_event *out);
void sim_queue_free(sim_queue *q); /* frees remaining payloads with free() */

/* ---- network (sim_net.c) ---- */
typedef struct sim_net_params {
    uint32_t delay_min_us, delay_max_us;   /* usual one-way delay */
    uint32_t tail_permille;                /* chance of a long-tail delay ... */
    uint32_t tail_mult_min, tail_mult_max; /* ... of this many times the usual one */
    uint32_t drop_permille;
    uint32_t dup_permille;
} sim_net_params;

/* A message in flight: the raft_msg deep-copied (entries and their bytes follow in the same
 * allocation) plus the snapshot bytes the transport attaches to RAFT_MSG_SNAPSHOT. */
typedef struct sim_packet {
    raft_msg msg;
    uint32_t snap_len;
    uint8_t snap_data[SIM_SNAP_BYTES];
    size_t alloc_size;
} sim_packet;

typedef struct sim_net {
    sim_net_params params;
    bool cut[SIM_MAX_NODES][SIM_MAX_NODES]; /* cut[a][b]: messages a->b are lost */
    uint64_t sent, dropped, duplicated, delivered;
} sim_net;

/* ---- node (sim_node.c) ---- */

/* The state machine: a hash chain over every applied entry. Its serialized form (SIM_SNAP_BYTES)
 * is the snapshot data. */
typedef struct sim_sm {
    raft_index applied;
    raft_term applied_term;
    uint64_t chain;    /* H(chain before, index, term, entry hash) */
    uint64_t n_normal; /* RAFT_ENTRY_NORMAL entries applied */
    uint64_t fast_seq[SIM_FAST_SESSIONS]; /* the session's last fast write applied */
} sim_sm;

/* The harness's record of what the node's storage ACKNOWLEDGED as durable: every save that
 * returned STORAGE_OK and every installed local snapshot, nothing else. Messages leave only after
 * a save succeeds, so an APPEND_RESP never covers more than this. Entries are kept as (term, hash):
 * the bytes live in the storage. Invariant: entries are contiguous from snap.index + 1. */
typedef struct sim_durable_entry {
    raft_term term;
    uint64_t hash; /* sim_entry_hash */
} sim_durable_entry;

typedef struct sim_durable {
    raft_hard_state hard_state;
    raft_snapshot_meta snap;
    sim_durable_entry *entries;
    size_t n_entries, cap;
} sim_durable;

/* A save that was under way when the node stopped (power lost mid-save, or an injected write or
 * fsync error): any prefix of its operations may have reached the disk. */
typedef struct sim_interrupted {
    bool active;
    raft_snapshot_meta snap; /* index 0: none */
    raft_index truncate_from;
    sim_durable_entry *entries; /* from first_index */
    raft_index first_index;
    size_t n_entries, cap;
    bool hard_state_changed;
    raft_hard_state hard_state;
} sim_interrupted;

/* Context of a node's storage log callback (recovery notes go to the trace). */
typedef struct sim_disk_log {
    struct sim *s;
    int slot;
} sim_disk_log;

typedef struct sim_pending_read {
    uint64_t request_id;
    raft_index index;
} sim_pending_read;

/* A fast write a node took, acknowledged once the Ready holding it is durable. */
typedef struct sim_fast_pending {
    uint64_t op; /* index in sim->fast_ops */
    raft_fast_ack ack;
    bool in_ready; /* in the Ready being written */
} sim_fast_pending;

typedef struct sim_pending_write {
    uint64_t proposal; /* index in sim->proposals */
    raft_index index;
    raft_term term;
} sim_pending_write;

typedef struct sim_node {
    raft_id id; /* slot + 1 */
    bool up;
    uint32_t incarnation; /* bumped by each crash: stale ticks/disk events are ignored */
    raft *r;
    bool inflight; /* a Ready is being written */
    raft_ready rd;
    bool early_sent; /* its APPEND/SNAPSHOT msgs already went out */
    bool doomed;     /* the power fails inside this Ready's write (sim_disk_crash) */
    /* the disk (sim_disk.c): survives crashes; freed by sim_node_free */
    vfs *disk;            /* this node's vfs_fault: a power loss is per disk */
    vfs io;               /* the table storage uses: disk's, or a lying one (SIM_BUG_LYING_FSYNC) */
    storage *st;          /* open while the node is up */
    char dir[16];         /* "n<id>" on its own disk */
    sim_disk_log log_ctx;
    sim_durable durable;
    sim_interrupted interrupted;
    sim_sm sm;
    /* snapshots received over the network, waiting for a Ready to install one */
    struct {
        raft_snapshot_meta meta;
        uint8_t data[SIM_SNAP_BYTES];
    } rx_snap[4];
    uint32_t rx_next;
    sim_pending_read *reads;
    size_t n_reads, cap_reads;
    sim_pending_write *writes;
    size_t n_writes, cap_writes;
    sim_fast_pending *fast_acks;
    size_t n_fast_acks, cap_fast_acks;
    /* the d-log as the disk holds it (the harness keeps it: src/storage has no d-log yet) */
    raft_entry *fast_durable; /* each entry's data is its own allocation */
    size_t n_fast_durable, cap_fast_durable;
    raft_index last_snap_applied; /* sm.applied at the last local snapshot */
    /* checker observations of this incarnation */
    raft_role seen_role;
    raft_term seen_term;
    raft_index seen_commit;
    /* election narration (demo): votes granted to this node in vote_term */
    raft_term vote_term;
    uint32_t vote_mask;
    uint64_t crashes, restarts;
} sim_node;

/* ---- checkers (sim_check.c) ---- */
typedef enum sim_check_id {
    SIM_CHECK_ELECTION = 0,
    SIM_CHECK_LOG_MATCHING,
    SIM_CHECK_LEADER_COMPLETENESS,
    SIM_CHECK_SM_SAFETY,
    SIM_CHECK_COMMIT_MONOTONIC,
    SIM_CHECK_STALE_READ,
    SIM_CHECK_LIVENESS,
    SIM_CHECK_CONTRACT, /* the core broke raft.h's contract in a way the harness can see, or storage
                           failed without an injected fault */
    SIM_CHECK_DURABILITY, /* recovery lost something the node acknowledged, or invented something */
    SIM_CHECK_FAST, /* a completed fast write was lost, or ordered after a write that started
                       after it completed */
    SIM_CHECK_LEADER_MEMBER, /* a node became leader that was not a voter of its configuration
                                (nor the one an uncommitted change removes or demotes) */
    SIM_CHECK_COUNT
} sim_check_id;
const char *sim_check_name(int check);
int sim_check_parse(const char *name); /* -1 if unknown */

typedef struct sim_applied_rec {
    raft_term term; /* 0 = nothing applied here yet */
    uint64_t entry_hash;
    uint64_t chain;
    uint8_t node; /* first node that applied it, for the report */
} sim_applied_rec;

typedef struct sim_lm_slot {
    raft_index index; /* 0 = empty */
    raft_term term;
    raft_term prev_term; /* UINT64_MAX: unknown */
    uint64_t entry_hash;
    uint8_t node; /* first writer, for the report */
} sim_lm_slot;

typedef struct sim_checker {
    raft_id *leader_of_term; /* election-safety: term -> leader id */
    size_t n_terms;
    raft_term *commit_min_term; /* leader-completeness: commit value -> smallest node term seen */
    raft_term *committed_term;  /* index -> term of the committed entry (0 = unknown) */
    size_t n_commit;
    raft_index max_commit_seen;
    sim_applied_rec *applied; /* state-machine-safety: index -> what was applied there */
    size_t n_applied;
    sim_lm_slot *lm; /* log-matching: open-addressed (index, term) -> entry hash, prev term */
    size_t lm_cap, lm_used;
    raft_index max_completed_write; /* stale-read: highest index of a write reported done */
    uint32_t violated_mask;         /* checks violated in this run */
    uint32_t step_mask;             /* checks violated in the current step */
    uint32_t reported;              /* violation lines printed */
    uint64_t leaders_elected;
} sim_checker;

/* ---- clients (sim_client.c) ---- */
typedef struct sim_proposal {
    uint64_t id;
    uint8_t node;
    uint8_t done;
    uint32_t len;
    raft_index index;
    raft_term term;
    uint64_t entry_hash;
} sim_proposal;

typedef struct sim_read {
    uint8_t node;
    uint8_t done;
    raft_index min_index; /* max completed write when the read started */
    uint64_t start_time;
    uint64_t min_fast_seq[SIM_FAST_SESSIONS]; /* fast writes completed when it started */
} sim_read;

/* One fast write of a client session (sim_fast.c). */
#define SIM_FAST_TERMS 4 /* terms whose acknowledgements one write keeps apart */
typedef struct sim_fast_op {
    uint8_t session; /* 1..SIM_FAST_SESSIONS */
    uint64_t seq;
    uint64_t start;
    uint64_t done_at;  /* virtual time it completed; 0 = not (yet) */
    raft_term done_term; /* the term of the acknowledgements that completed it */
    raft_index applied; /* first index it was applied at, anywhere; 0 = not yet */
    struct {
        raft_term term;
        uint32_t mask;     /* nodes that acknowledged in term */
        raft_id leader;    /* the node that acknowledged as leader, 0 if none yet */
        raft_conf conf;    /* the leader's voters */
    } acks[SIM_FAST_TERMS];
} sim_fast_op;

typedef struct sim_fast_stats {
    uint64_t seeds, started, completed, applied_dup; /* applied_dup: FAST entries skipped */
} sim_fast_stats;

/* ---- the run ---- */
typedef enum sim_profile {
    SIM_PROFILE_CALM = 0,
    SIM_PROFILE_LOSSY,
    SIM_PROFILE_PARTITIONS,
    SIM_PROFILE_CRASHES,
    SIM_PROFILE_EVERYTHING,
    SIM_PROFILE_CHURN, /* targeted: leader crashes and isolation, short intervals (Figure 8) */
    SIM_PROFILE_COUNT
} sim_profile;
#define SIM_PROFILE_RANDOM_COUNT 6 /* the seed picks among all of them */
const char *sim_profile_name(int profile);
int sim_profile_parse(const char *name);

typedef enum sim_phase { SIM_PHASE_FAULTS = 0, SIM_PHASE_LIVENESS, SIM_PHASE_DONE } sim_phase;

/* Injected harness bugs (raftkv-sim-bugs): they prove the storage-side checkers can fail. */
enum {
    SIM_BUG_LYING_FSYNC = 1u << 0, /* the disk's fdatasync returns 0 and makes nothing durable */
};

/* Membership changes over a run (printed by sim_main). */
#define SIM_MEMBER_KINDS 6 /* add voter, remove voter, add learner, promote, demote, remove learner */
typedef struct sim_member_stats {
    uint64_t seeds;    /* runs with membership changes */
    uint64_t proposed; /* changes the leader accepted */
    uint64_t refused;  /* raft_propose_conf said busy (a change pending, no commit in term) */
    uint64_t leader_removed; /* accepted changes that removed their own leader */
    uint64_t leader_demoted; /* accepted changes that demoted their own leader to learner */
    uint64_t by_kind[SIM_MEMBER_KINDS]; /* accepted changes of each kind (sim_nemesis.c) */
} sim_member_stats;
void sim_member_stats_add(sim_member_stats *to, const sim_member_stats *from);

/* What the disks went through, summed over a run (printed by sim_main). */
typedef struct sim_disk_stats {
    uint64_t saves;          /* storage_save calls that succeeded */
    uint64_t power_losses;   /* vfs_fault_crash calls */
    uint64_t torn;           /* ... with VFS_FAULT_TORN */
    uint64_t midsave;        /* crashes that interrupted a save (crash point inside it) */
    uint64_t disk_errors;    /* injected EIO/ENOSPC that stopped a node */
    uint64_t recoveries;     /* storage_open after a stop */
    uint64_t tails_cut;      /* recovery notes: torn tail cut */
    uint64_t wal_resets;     /* recovery notes: WAL reset to a snapshot whose record was lost */
    uint64_t other_notes;    /* recovery notes: anything else (unfinished segment removed) */
    uint64_t workarounds;    /* recoveries the harness had to complete (sim_disk.c) */
} sim_disk_stats;

typedef struct sim_options {
    int nodes;   /* 0: the seed picks 3, 5 or 7 */
    int profile; /* -1: the seed picks */
    uint32_t test_bugs;    /* RAFT_BUG_* for the core */
    uint32_t harness_bugs; /* SIM_BUG_* */
    bool process_exits;    /* a node stopped by a disk error keeps its unsynced writes on half
                              the stops (no power loss) */
    bool no_storage_workarounds; /* reproduce the storage bug sim_disk.c works around */
    bool fast;  /* the fast path on every seed (else on a third) */
    bool trace;
    bool demo;
    uint32_t fault_ticks;    /* length of the fault phase */
    uint32_t liveness_ticks; /* bound after the final heal */
    uint32_t stable_ticks;   /* how long convergence must last under one leader */
    const char *replay_cmd;  /* printed after a violation, then " --from S --seeds 1 --trace" */
} sim_options;

typedef struct sim {
    const sim_options *opt;
    uint64_t seed;
    sim_rng rng;
    uint64_t now;
    uint64_t steps;
    sim_queue queue;
    sim_net net;
    int n_nodes;
    int profile;
    sim_node nodes[SIM_MAX_NODES];
    raft_config base_cfg;
    /* Membership (on some seeds): slots past the initial voters start outside the configuration
     * and the nemesis changes one node's role at a time at the leader (adds, removes, promotes
     * and demotes voters and learners). Every configuration ever proposed is kept: an entry
     * applied early must be durable on a majority of the voters of one of them. */
    bool membership;
    raft_conf confs[64];
    uint32_t n_confs;
    sim_member_stats member_stats;
    /* The fast path (on some seeds, see sim_run.c). */
    bool fast;
    sim_fast_op *fast_ops;
    size_t n_fast_ops, cap_fast_ops;
    uint64_t fast_busy[SIM_FAST_SESSIONS];     /* op index + 1 in flight per session, 0 = idle */
    uint64_t fast_next_seq[SIM_FAST_SESSIONS];
    uint64_t fast_done_seq[SIM_FAST_SESSIONS]; /* the highest completed seq per session */
    uint64_t *fast_unapplied; /* completed ops not applied anywhere yet (op indexes) */
    size_t n_fast_unapplied, cap_fast_unapplied;
    sim_fast_stats fast_stats;
    bool early_send; /* leaders send APPEND/SNAPSHOT before their own write completes */
    bool early_apply; /* nodes apply with raft_take_committed/raft_take_reads between Readies */
    uint32_t disk_min_us, disk_max_us, disk_tail_permille;
    uint32_t snap_every; /* local snapshot after this many applied entries */
    uint32_t snap_trailing;
    /* disks (sim_disk.c) */
    uint64_t segment_bytes;
    uint32_t midsave_permille;    /* a crash with a save in flight stops inside that save */
    uint32_t torn_permille;       /* a power loss keeps a torn prefix of the unsynced writes */
    uint32_t disk_error_permille; /* a save fails with an injected EIO/ENOSPC: the node stops */
    uint32_t doom_snapshot_permille; /* a save installing a snapshot loses power inside */
    uint32_t doom_save_permille;     /* any other save loses power inside */
    sim_disk_stats disk_stats;
    uint32_t client_gap_min_us, client_gap_max_us;
    uint32_t read_permille;
    uint32_t nemesis_gap_min_ticks, nemesis_gap_max_ticks;
    sim_phase phase;
    uint64_t fault_end, liveness_deadline;
    /* liveness probe */
    uint64_t probe;        /* proposal id + 1 of the probe write; 0 = none yet */
    uint64_t stable_since; /* converged with this leader and term since then (0 = not) */
    int stable_leader;
    raft_term stable_term;
    sim_checker chk;
    sim_proposal *proposals;
    size_t n_proposals, cap_proposals;
    sim_read *reads;
    size_t n_reads, cap_reads;
    uint64_t reads_done, writes_done;
    bool stop;                                /* a violation ended the run */
    raft_index nemesis_commit[SIM_MAX_NODES]; /* churn: last commit seen per leader */
    /* demo narration */
    int script_victim;
    bool said_snapshot;
    raft_index next_commit_report;
    uint32_t commit_report_every;
} sim;

/* sim_run.c */
typedef struct sim_result {
    uint64_t steps;
    uint32_t violated_mask;
    int nodes, profile;
    raft_index commit;
    uint64_t terms_with_leader;
    uint64_t max_term;
    sim_disk_stats disk;
    sim_member_stats member;
    sim_fast_stats fast;
} sim_result;
int sim_run_seed(const sim_options *opt, uint64_t seed, sim_result *res);
void sim_schedule(sim *s, uint64_t at, sim_event_type type, int node, uint64_t arg, void *payload);
void sim_trace(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_say(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t sim_hash(const void *data, size_t len, uint64_t seed);
uint64_t sim_mix(uint64_t a, uint64_t b);

/* sim_net.c */
void sim_net_send(sim *s, const raft_msg *msg);
void sim_net_deliver(sim *s, const sim_event *ev);
void sim_net_heal(sim *s);
void sim_net_isolate(sim *s, int node);
void sim_net_split(sim *s, uint32_t side_mask); /* cut both ways between the mask and the rest */
void sim_net_cut_one_way(sim *s, int from, int to);
void sim_net_bridge(sim *s, int bridge, uint32_t side_mask);
void sim_net_describe(const sim *s, char *buf, size_t len);

/* sim_node.c */
void sim_node_start(sim *s, int slot, bool restart);
void sim_node_crash(sim *s, int slot);
void sim_node_pump(sim *s, int slot); /* start the next Ready write if idle */
void sim_node_disk_done(sim *s, int slot);
void sim_node_free(sim_node *n);
int sim_leader_slot(const sim *s); /* a live node believing it leads with the highest term; -1 */
void sim_sm_encode(const sim_sm *sm, uint8_t out[SIM_SNAP_BYTES]);
void sim_sm_decode(sim_sm *sm, const uint8_t in[SIM_SNAP_BYTES]);
uint64_t sim_entry_hash(const raft_entry *e);

/* sim_disk.c. Results of a save: */
enum { SIM_DISK_OK = 0, SIM_DISK_STOPPED, SIM_DISK_VIOLATION };
/* Opens the node's storage (creating its disk on the first start), verifies what recovery returned
 * against what the node acknowledged (durability), and loads the state machine from the snapshot
 * file. On true, *loaded is the caller's (storage_loaded_free) and sm is set. */
bool sim_disk_open(sim *s, int slot, storage_loaded *loaded, sim_sm *sm);
/* Persists a Ready: the received snapshot through the snapshot writer, then storage_save. May
 * inject a disk error (SIM_DISK_STOPPED: the node must stop). snap_data: the snapshot's bytes
 * when rd->snapshot.index != 0. */
int sim_disk_save(sim *s, int slot, const raft_ready *rd, const uint8_t *snap_data);
/* A local snapshot (written through the snapshot writer) and the log compaction behind it. */
bool sim_disk_snapshot(sim *s, int slot, const raft_snapshot_meta *meta,
                       const uint8_t data[SIM_SNAP_BYTES], raft_index compact_to);
/* Reads the node's stored snapshot (index, term) in chunks; false if it does not hold it. */
bool sim_disk_read_snapshot(sim *s, int slot, const raft_snapshot_meta *meta,
                            uint8_t out[SIM_SNAP_BYTES]);
/* The node stops: rd (may be NULL) is the Ready whose save was in flight, snap_data its snapshot
 * bytes. Closes the storage; on some seeds the save is first run up to a crash point inside it;
 * then the power loss (or, after an injected error, sometimes just the process exit). */
void sim_disk_crash(sim *s, int slot, const raft_ready *rd, const uint8_t *snap_data);
/* Entry `index` as acknowledged durable, or NULL. */
const sim_durable_entry *sim_durable_at(const sim_durable *d, raft_index index);
raft_index sim_durable_last(const sim_durable *d);
void sim_disk_free(sim_node *n);

/* sim_check.c */
void sim_violation(sim *s, int check, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sim_check_step(sim *s);
void sim_check_durable_entry(sim *s, int slot, const raft_entry *e, raft_term prev_term,
                             bool prev_known);
void sim_check_applied(sim *s, int slot, const raft_entry *e, uint64_t chain);
void sim_check_sm_install(sim *s, int slot, const sim_sm *sm);
void sim_check_read_answered(sim *s, int slot, uint64_t request_id, raft_index applied);
void sim_check_node_started(sim *s, int slot);
void sim_check_free(sim_checker *c);
uint64_t sim_check_terms_with_leader(const sim *s);

/* sim_client.c */
void sim_client_fire(sim *s);
void sim_client_applied(sim *s, int slot, const raft_entry *e); /* write completion */
bool sim_client_converged(sim *s); /* leader, probe applied everywhere, equal commits */

/* sim_fast.c */
void sim_fast_fire(sim *s);                   /* a client starts a fast write (fault phase) */
void sim_fast_deliver(sim *s, int slot, uint64_t op);
void sim_fast_ack(sim *s, int slot, uint64_t op, const raft_fast_ack *ack);
void sim_fast_ready_taken(sim *s, int slot);  /* its pending acks are in this Ready */
void sim_fast_ready_saved(sim *s, int slot, const raft_ready *rd); /* durable: acknowledge */
/* The d-log after a restart; sm: the state machine the snapshot holds. */
void sim_fast_restore(sim *s, int slot, const sim_sm *sm, raft_restore *restore);
/* A FAST entry applied on slot: dedupe by session and the order check. Returns whether it
 * changed the state (false: a duplicate, skipped). */
bool sim_fast_applied(sim *s, int slot, const raft_entry *e);
void sim_fast_check_leader_append(sim *s, int slot, const char *what); /* before a new write */
void sim_fast_read_started(sim *s, sim_read *rd);
void sim_fast_read_answered(sim *s, int slot, const sim_read *rd, uint64_t request_id);
void sim_fast_check_end(sim *s); /* every completed write applied */
void sim_fast_free_node(sim_node *n);
void sim_fast_free(sim *s);

/* sim_nemesis.c */
void sim_nemesis_setup(sim *s); /* picks the profile's parameters */
void sim_nemesis_fire(sim *s);
void sim_nemesis_after_step(sim *s); /* event-triggered faults (churn profile) */
void sim_nemesis_heal(sim *s);
void sim_nemesis_member(sim *s); /* one membership change at the leader, then the next one */
void sim_script_fire(sim *s, uint64_t action); /* demo scenario */

#endif /* RAFTKV_SIM_H */
