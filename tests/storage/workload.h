/*
 * workload.h -- test helpers for src/storage: deterministic entry and snapshot contents, a model
 * of what a store must hold, and the crash-point sweep.
 *
 * THE SWEEP. A scripted workload (appends, truncations, hard-state updates, local snapshots with
 * compaction, a snapshot installed from a leader) runs once to count its crash points P (every
 * write and sync, see vfs_fault.h). Then for every k in 1..P and every crash flavour (names
 * dropped/kept x torn or not) it runs again on a fresh vfs_fault armed to lose power at point k,
 * crashes, reopens, and checks that the recovered state equals the acknowledged state with SOME
 * prefix of the interrupted step's operations applied: every entry reported durable is there,
 * nothing never written is. It then appends once more and reopens, to prove the repaired log
 * is usable.
 */
#ifndef RAFTKV_TEST_STORAGE_WORKLOAD_H
#define RAFTKV_TEST_STORAGE_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "storage.h"

#define WL_MAX_DATA 64

/* Fills e (data in buf, WL_MAX_DATA bytes) with the canonical contents of (index, term). */
void wl_entry(raft_entry *e, uint8_t *buf, raft_index index, raft_term term);
/* Saves the canonical entry (index, term) alone, with hs as the hard state when hs != NULL. */
int wl_save_one(storage *st, raft_index index, raft_term term, const raft_hard_state *hs);
/* True when e holds the canonical contents of its (index, term). */
bool wl_entry_ok(const raft_entry *e);
/* Writes a canonical snapshot (3 voters, contents derived from index) through st. */
int wl_write_snapshot(storage *st, raft_index index, raft_term term);
/* True when dir holds the canonical snapshot at index, data included. */
bool wl_snapshot_ok(vfs *v, const char *dir, raft_index index);

typedef enum { WL_SCRIPT_SHORT, WL_SCRIPT_LONG } wl_script;

typedef struct wl_sweep_result {
    uint64_t crash_points; /* P */
    uint64_t runs;         /* P x flavours */
    uint64_t failures;
    uint64_t torn_tails_cut;
    uint64_t double_crashes; /* runs where power failed again during recovery */
} wl_sweep_result;

/* Runs the sweep; prints a line per failure (at most 10) to stderr. With double_crash, every run
 * also loses power during its first recovery before recovering again. */
wl_sweep_result wl_crash_sweep(wl_script script, uint64_t seed, bool double_crash);

/* Proves the sweep's checker can fail: feeds it a store that lost an acknowledged entry and one
 * that holds an entry never written; true when both are rejected. */
bool wl_checker_catches_lost_entry(void);

#endif
