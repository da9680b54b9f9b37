/*
 * sim_disk.c -- a simulated node's disk: the real src/storage (WAL segments + snapshot files) over
 * the node's own in-memory vfs_fault, so that a crash and restart run the real recovery code.
 *
 * Each node has one vfs_fault, seeded from the run's seed and the node's id, holding one directory
 * "n<id>". The disk outlives the node's crashes; the storage object lives while the node is up.
 *
 *   save      the completion of a Ready's disk write: a received snapshot goes through the
 *             snapshot writer (in chunks), then storage_save persists snapshot marker, truncation,
 *             entries and hard state with one fdatasync. Only then does the node send messages.
 *   snapshot  a local snapshot: snapshot writer, then storage_compact behind it.
 *   crash     storage_close, then a power loss (vfs_fault_crash): only what was synced survives,
 *             on some seeds with a torn prefix of the unsynced writes and/or the unsynced names.
 *             On some seeds a crash that finds a save in flight first runs that save up to a
 *             crash point inside it (vfs_fault_crash_at), so the power fails mid-write and
 *             recovery faces a torn tail. On some seeds a save fails with an injected EIO or
 *             ENOSPC: the storage is failed for good and the node stops (raft.h/storage.h: never
 *             retry) with a power loss (or, with --process-exits, half the time only the process
 *             exit: the unsynced write stays readable).
 *   restart   storage_open on the same disk (torn tails cut, WAL reset to the snapshot, ...), the
 *             state machine from the snapshot file's bytes (snapshot reader, in chunks).
 *
 * THE DURABILITY CHECK. The harness keeps n->durable: what storage acknowledged (every save that
 * returned OK, every installed local snapshot). A node sends messages only after its save
 * returned, so an APPEND_RESP or a vote never covers more than that. When a save is interrupted,
 * n->interrupted records it: any prefix of its operations may have reached the disk. At restart,
 * what storage_open recovered must be the acknowledged state plus some prefix of the interrupted
 * save: same snapshot (or the interrupted one), every acknowledged entry present with its term and
 * bytes (unless the interrupted save truncated it or replaced the log with a snapshot), no entry
 * that was never written, and the acknowledged (or interrupted) term and vote.
 *
 * Any storage error that is not an injected fault (a power loss armed by the harness, an injected
 * EIO/ENOSPC) is a "contract" violation naming the node, the call and storage's message.
 */
#include "sim.h"

#include "vfs_fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SIM_DISK_CACHE_BYTES (256u << 10) /* recent entries in memory: the sim never reads them */

/* ---- the acknowledged state ---- */

raft_index sim_durable_last(const sim_durable *d)
{
    return d->snap.index + d->n_entries;
}

const sim_durable_entry *sim_durable_at(const sim_durable *d, raft_index index)
{
    if (index <= d->snap.index || index > sim_durable_last(d))
        return NULL;
    return &d->entries[index - d->snap.index - 1];
}

static raft_term durable_term(const sim_durable *d, raft_index index, bool *known)
{
    *known = true;
    if (index == 0)
        return 0;
    if (index == d->snap.index)
        return d->snap.term;
    const sim_durable_entry *e = sim_durable_at(d, index);
    if (e)
        return e->term;
    *known = false;
    return 0;
}

static void entries_push(sim_durable_entry **entries, size_t *n, size_t *cap, raft_term term,
                         uint64_t hash)
{
    if (*n == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 64;
        sim_durable_entry *grown = realloc(*entries, grown_cap * sizeof(*grown));
        if (!grown)
            abort();
        *entries = grown;
        *cap = grown_cap;
    }
    (*entries)[(*n)++] = (sim_durable_entry){.term = term, .hash = hash};
}

static void durable_truncate(sim_durable *d, raft_index from)
{
    if (from <= d->snap.index)
        d->n_entries = 0;
    else if (from <= sim_durable_last(d))
        d->n_entries = (size_t)(from - d->snap.index - 1);
}

/* A local snapshot at meta->index covers a prefix of the log: the entries after it stay. */
static void durable_snapshot(sim_durable *d, const raft_snapshot_meta *meta)
{
    if (meta->index >= sim_durable_last(d)) {
        d->n_entries = 0;
    } else if (meta->index > d->snap.index) {
        size_t drop = (size_t)(meta->index - d->snap.index);
        memmove(d->entries, d->entries + drop, (d->n_entries - drop) * sizeof(*d->entries));
        d->n_entries -= drop;
    }
    d->snap = *meta;
}

static void interrupted_record(sim_interrupted *t, const raft_ready *rd)
{
    t->active = true;
    t->snap = rd->snapshot;
    t->truncate_from = rd->truncate_from;
    t->n_entries = 0;
    t->first_index = rd->n_entries ? rd->entries[0].index : 0;
    for (size_t i = 0; i < rd->n_entries; i++)
        entries_push(&t->entries, &t->n_entries, &t->cap, rd->entries[i].term,
                     sim_entry_hash(&rd->entries[i]));
    t->hard_state_changed = rd->hard_state_changed;
    t->hard_state = rd->hard_state;
}

static const sim_durable_entry *interrupted_at(const sim_interrupted *t, raft_index index)
{
    if (!t->active || t->n_entries == 0 || index < t->first_index ||
        index - t->first_index >= t->n_entries)
        return NULL;
    return &t->entries[index - t->first_index];
}

/* ---- the disk and its storage ---- */

static uint64_t disk_seed(const sim *s, int slot, uint64_t salt)
{
    return sim_mix(sim_mix(s->seed, (uint64_t)slot + 1), salt);
}

/* Recovery notes (torn tail cut, WAL reset, unfinished segment removed) go to the trace. */
static void disk_log(void *ctx, const char *line)
{
    sim_disk_log *lc = ctx;
    if (strstr(line, "torn tail"))
        lc->s->disk_stats.tails_cut++;
    else if (strstr(line, "WAL reset"))
        lc->s->disk_stats.wal_resets++;
    else
        lc->s->disk_stats.other_notes++;
    sim_trace(lc->s, "node %d storage: %s", lc->slot + 1, line);
}

/* SIM_BUG_LYING_FSYNC: a disk whose fdatasync says yes and keeps nothing. */
static int lying_fdatasync(vfs *v, vfs_file *f)
{
    (void)v;
    (void)f;
    return 0;
}

static void disk_init(sim *s, int slot)
{
    sim_node *n = &s->nodes[slot];
    if (n->disk)
        return;
    n->disk = vfs_fault_new(disk_seed(s, slot, 0));
    if (!n->disk)
        abort();
    /* A copy of the table shares the fault state (ctx); only the methods can differ. */
    n->io = *n->disk;
    if (s->opt->harness_bugs & SIM_BUG_LYING_FSYNC)
        n->io.fdatasync = lying_fdatasync;
    snprintf(n->dir, sizeof(n->dir), "n%d", slot + 1);
    n->log_ctx.s = s;
    n->log_ctx.slot = slot;
}

void sim_disk_free(sim_node *n)
{
    storage_close(n->st);
    n->st = NULL;
    vfs_fault_free(n->disk);
    n->disk = NULL;
    free(n->durable.entries);
    free(n->interrupted.entries);
    memset(&n->durable, 0, sizeof(n->durable));
    memset(&n->interrupted, 0, sizeof(n->interrupted));
}

static bool ready_persists(const raft_ready *rd)
{
    return rd->snapshot.index || rd->truncate_from || rd->n_entries || rd->hard_state_changed;
}

/* Writes a snapshot through the storage's snapshot writer in random-sized chunks. On failure
 * errmsg says what failed. */
static int write_snapshot(sim *s, int slot, const raft_snapshot_meta *meta,
                          const uint8_t data[SIM_SNAP_BYTES], char *errmsg, size_t errlen)
{
    sim_node *n = &s->nodes[slot];
    snap_writer *w = NULL;
    int rc = storage_snapshot_begin(n->st, meta, &w);
    if (rc != STORAGE_OK) {
        snprintf(errmsg, errlen, "storage_snapshot_begin(%llu): %s: %s",
                 (unsigned long long)meta->index, storage_strerror(rc), storage_errmsg(n->st));
        return rc;
    }
    for (uint32_t off = 0; off < SIM_SNAP_BYTES;) {
        uint32_t chunk = (uint32_t)sim_rng_range(&s->rng, 1, SIM_SNAP_BYTES - off);
        int wrc = snap_writer_write(w, off, data + off, chunk);
        if (wrc != SNAP_OK) {
            snprintf(errmsg, errlen, "snap_writer_write(%llu, offset %u, %u bytes): %s",
                     (unsigned long long)meta->index, off, chunk, snap_strerror(wrc));
            snap_writer_abort(w);
            return wrc == SNAP_EFATAL ? STORAGE_EFATAL : STORAGE_EIO;
        }
        off += chunk;
    }
    rc = storage_snapshot_finish(n->st, w);
    if (rc != STORAGE_OK)
        snprintf(errmsg, errlen, "storage_snapshot_finish(%llu): %s: %s",
                 (unsigned long long)meta->index, storage_strerror(rc), storage_errmsg(n->st));
    return rc;
}

/* Steps 1-3 of a Ready: the received snapshot, then one storage_save. */
static int write_ready(sim *s, int slot, const raft_ready *rd, const uint8_t *snap_data,
                       char *errmsg, size_t errlen)
{
    sim_node *n = &s->nodes[slot];
    if (rd->snapshot.index != 0) {
        int rc = write_snapshot(s, slot, &rd->snapshot, snap_data, errmsg, errlen);
        if (rc != STORAGE_OK)
            return rc;
    }
    int rc = storage_save(n->st, rd);
    if (rc != STORAGE_OK)
        snprintf(errmsg, errlen, "storage_save: %s: %s", storage_strerror(rc),
                 storage_errmsg(n->st));
    return rc;
}

int sim_disk_save(sim *s, int slot, const raft_ready *rd, const uint8_t *snap_data)
{
    sim_node *n = &s->nodes[slot];
    sim_durable *d = &n->durable;
    if (!ready_persists(rd))
        return SIM_DISK_OK;

    /* What the core asks must make sense on top of what it was told is stored. */
    raft_index snap_after = rd->snapshot.index ? rd->snapshot.index : d->snap.index;
    if (rd->truncate_from != 0 && rd->truncate_from <= snap_after) {
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d truncates from %llu, inside its snapshot (%llu)",
                      slot + 1, (unsigned long long)rd->truncate_from,
                      (unsigned long long)snap_after);
        return SIM_DISK_VIOLATION;
    }
    raft_index last = rd->snapshot.index ? rd->snapshot.index : sim_durable_last(d);
    if (rd->truncate_from != 0 && rd->truncate_from <= last)
        last = rd->truncate_from - 1;
    for (size_t i = 0; i < rd->n_entries; i++) {
        const raft_entry *e = &rd->entries[i];
        if (e->index != last + 1 + i) {
            sim_violation(s, SIM_CHECK_LOG_MATCHING,
                          "node %d appends entry %llu (term %llu) to a log ending at %llu: the "
                          "log would have a %s",
                          slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                          (unsigned long long)(last + i),
                          e->index > last + 1 + i ? "gap" : "duplicate");
            return SIM_DISK_VIOLATION;
        }
    }
    if (rd->hard_state_changed && rd->hard_state.term < d->hard_state.term) {
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d persists term %llu after term %llu",
                      slot + 1, (unsigned long long)rd->hard_state.term,
                      (unsigned long long)d->hard_state.term);
        return SIM_DISK_VIOLATION;
    }

    /* On some seeds the disk fails this write: EIO or ENOSPC on the write, or EIO on the sync.
     * Only in the fault phase: after the final heal nothing restarts a stopped node. */
    bool inject = s->disk_error_permille && s->phase == SIM_PHASE_FAULTS &&
                  sim_rng_permille(&s->rng, s->disk_error_permille);
    if (inject) {
        static const struct {
            vfs_fault_op op;
            int err;
        } faults[3] = {{VFS_OP_PWRITE, EIO}, {VFS_OP_PWRITE, ENOSPC}, {VFS_OP_FDATASYNC, EIO}};
        uint64_t pick = sim_rng_below(&s->rng, 3);
        vfs_fault_fail_nth(n->disk, faults[pick].op, 1, faults[pick].err);
    }
    interrupted_record(&n->interrupted, rd); /* until it returns, any prefix may be on disk */
    char errmsg[STORAGE_ERRMSG_SIZE + 128];
    int rc = write_ready(s, slot, rd, snap_data, errmsg, sizeof(errmsg));
    if (inject)
        vfs_fault_fail_nth(n->disk, VFS_OP_ANY, UINT64_MAX, EIO); /* disarm: never reached */
    if (rc != STORAGE_OK) {
        if (inject) {
            s->disk_stats.disk_errors++;
            sim_trace(s, "node %d: injected disk error: %s; the node stops", slot + 1, errmsg);
            return SIM_DISK_STOPPED;
        }
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d: %s", slot + 1, errmsg);
        return SIM_DISK_VIOLATION;
    }
    n->interrupted.active = false;
    s->disk_stats.saves++;

    /* Acknowledged: record it, and check log matching on every newly durable entry. */
    if (rd->snapshot.index != 0) {
        d->snap = rd->snapshot; /* the stored log restarts after it */
        d->n_entries = 0;
    }
    if (rd->truncate_from != 0)
        durable_truncate(d, rd->truncate_from);
    for (size_t i = 0; i < rd->n_entries && !s->stop; i++) {
        const raft_entry *e = &rd->entries[i];
        bool known;
        raft_term prev = durable_term(d, e->index - 1, &known);
        sim_check_durable_entry(s, slot, e, prev, known);
        entries_push(&d->entries, &d->n_entries, &d->cap, e->term, sim_entry_hash(e));
    }
    if (rd->hard_state_changed)
        d->hard_state = rd->hard_state;
    return s->stop ? SIM_DISK_VIOLATION : SIM_DISK_OK;
}

bool sim_disk_snapshot(sim *s, int slot, const raft_snapshot_meta *meta,
                       const uint8_t data[SIM_SNAP_BYTES], raft_index compact_to)
{
    sim_node *n = &s->nodes[slot];
    char errmsg[STORAGE_ERRMSG_SIZE + 128];
    int rc = write_snapshot(s, slot, meta, data, errmsg, sizeof(errmsg));
    if (rc != STORAGE_OK) {
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d: local snapshot: %s", slot + 1, errmsg);
        return false;
    }
    durable_snapshot(&n->durable, meta);
    if (compact_to > 0) {
        rc = storage_compact(n->st, compact_to);
        if (rc != STORAGE_OK) {
            sim_violation(s, SIM_CHECK_CONTRACT, "node %d: storage_compact(%llu): %s: %s",
                          slot + 1, (unsigned long long)compact_to, storage_strerror(rc),
                          storage_errmsg(n->st));
            return false;
        }
    }
    return true;
}

/* Reads the stored snapshot's data in random-sized chunks. SNAP_ENOENT when it is not there. */
static int read_snapshot(sim *s, int slot, const raft_snapshot_meta *meta,
                         uint8_t out[SIM_SNAP_BYTES], char *errmsg)
{
    sim_node *n = &s->nodes[slot];
    snap_reader *r = NULL;
    int rc = snap_reader_open(n->dir, &n->io, meta->index, &r, errmsg);
    if (rc != SNAP_OK)
        return rc;
    const raft_snapshot_meta *got = snap_reader_meta(r);
    if (got->index != meta->index || got->term != meta->term ||
        snap_reader_size(r) != SIM_SNAP_BYTES) {
        snprintf(errmsg, SNAP_ERRMSG_SIZE,
                 "snapshot file %llu holds term %llu and %llu bytes, expected term %llu and %u",
                 (unsigned long long)got->index, (unsigned long long)got->term,
                 (unsigned long long)snap_reader_size(r), (unsigned long long)meta->term,
                 SIM_SNAP_BYTES);
        snap_reader_close(r);
        return SNAP_ECORRUPT;
    }
    for (uint32_t off = 0; off < SIM_SNAP_BYTES;) {
        size_t want = (size_t)sim_rng_range(&s->rng, 1, SIM_SNAP_BYTES - off), got_n = 0;
        rc = snap_reader_read(r, off, out + off, want, &got_n);
        if (rc == SNAP_OK && got_n != want) {
            snprintf(errmsg, SNAP_ERRMSG_SIZE, "short read at offset %u: %zu of %zu bytes", off,
                     got_n, want);
            rc = SNAP_EIO;
        }
        if (rc != SNAP_OK) {
            snap_reader_close(r);
            return rc;
        }
        off += (uint32_t)want;
    }
    snap_reader_close(r);
    return SNAP_OK;
}

bool sim_disk_read_snapshot(sim *s, int slot, const raft_snapshot_meta *meta,
                            uint8_t out[SIM_SNAP_BYTES])
{
    char errmsg[SNAP_ERRMSG_SIZE] = "";
    int rc = read_snapshot(s, slot, meta, out, errmsg);
    if (rc != SNAP_OK) {
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d: reading its snapshot %llu/%llu: %s: %s",
                      slot + 1, (unsigned long long)meta->index, (unsigned long long)meta->term,
                      snap_strerror(rc), errmsg);
        return false;
    }
    return true;
}

void sim_disk_crash(sim *s, int slot, const raft_ready *rd, const uint8_t *snap_data)
{
    sim_node *n = &s->nodes[slot];
    bool power_loss = true;
    if (n->interrupted.active) {
        /* Stopped by an injected disk error. With --process-exits the machine keeps running on
         * half the stops, so the restarted node reads back writes that were never synced. Off by
         * default: storage_open returns such writes without syncing them, and the core treats
         * restored entries as durable (tests/sim/README.md, "Known storage issues", 3). */
        if (s->opt->process_exits)
            power_loss = sim_rng_permille(&s->rng, 500);
    } else if (rd && ready_persists(rd) && (rd->snapshot.index == 0 || snap_data) &&
               (n->doomed || sim_rng_permille(&s->rng, s->midsave_permille))) {
        /* The power fails inside this Ready's write: mostly at its first or second crash point
         * (the WAL pwrite or its fdatasync), sometimes deeper (a segment roll); anywhere in a
         * snapshot install (create, chunks, header, fsync, rename, directory sync, then the
         * WAL's SNAPSHOT record: about a dozen points). */
        uint64_t k = rd->snapshot.index             ? sim_rng_range(&s->rng, 1, 16)
                     : sim_rng_permille(&s->rng, 700) ? sim_rng_range(&s->rng, 1, 2)
                                                      : sim_rng_range(&s->rng, 1, 10);
        vfs_fault_crash_at(n->disk, vfs_fault_crash_points(n->disk) + k);
        interrupted_record(&n->interrupted, rd);
        char errmsg[STORAGE_ERRMSG_SIZE + 128] = "";
        int rc = write_ready(s, slot, rd, snap_data, errmsg, sizeof(errmsg));
        bool down = vfs_fault_is_down(n->disk);
        vfs_fault_crash_at(n->disk, 0);
        if (rc != STORAGE_OK && !down) {
            sim_violation(s, SIM_CHECK_CONTRACT, "node %d: %s (no fault was injected)", slot + 1,
                          errmsg);
        }
        if (down)
            s->disk_stats.midsave++;
        sim_trace(s, "node %d: power fails %s its save (crash point +%llu)%s%s", slot + 1,
                  down ? "inside" : "just after", (unsigned long long)k, down ? ": " : "",
                  down ? errmsg : "");
    }
    storage_close(n->st);
    n->st = NULL;
    if (power_loss) {
        unsigned flags = 0;
        if (sim_rng_permille(&s->rng, s->torn_permille))
            flags |= VFS_FAULT_TORN;
        if (sim_rng_permille(&s->rng, 500))
            flags |= VFS_FAULT_KEEP_NAMES;
        vfs_fault_crash(n->disk, flags);
        s->disk_stats.power_losses++;
        if (flags & VFS_FAULT_TORN)
            s->disk_stats.torn++;
        sim_trace(s, "node %d: power loss%s%s", slot + 1,
                  flags & VFS_FAULT_TORN ? ", torn writes" : "",
                  flags & VFS_FAULT_KEEP_NAMES ? ", unsynced names kept" : "");
    }
}

/* ---- recovery ---- */

/* What storage_open returned must be the acknowledged state plus a prefix of the interrupted
 * save (see the top of this file). Newly durable entries go through the log-matching check. */
static bool check_recovered(sim *s, int slot, const storage_loaded *ld)
{
    sim_node *n = &s->nodes[slot];
    const sim_durable *d = &n->durable;
    const sim_interrupted *t = &n->interrupted;
    const raft_snapshot_meta *rs = &ld->snapshot;
    char pending[160] = "no save was interrupted";
    if (t->active)
        snprintf(pending, sizeof(pending),
                 "interrupted save: snapshot %llu, truncate_from %llu, entries %llu..%llu, "
                 "hard state %s%llu/%llu",
                 (unsigned long long)t->snap.index, (unsigned long long)t->truncate_from,
                 (unsigned long long)t->first_index,
                 (unsigned long long)(t->n_entries ? t->first_index + t->n_entries - 1 : 0),
                 t->hard_state_changed ? "" : "(same) ", (unsigned long long)t->hard_state.term,
                 (unsigned long long)t->hard_state.vote);

    bool snap_old = rs->index == d->snap.index && rs->term == d->snap.term;
    bool snap_new = t->active && t->snap.index != 0 && rs->index == t->snap.index &&
                    rs->term == t->snap.term;
    if (!snap_old && !snap_new) {
        sim_violation(s, SIM_CHECK_DURABILITY,
                      "node %d recovered snapshot %llu/%llu but had acknowledged snapshot "
                      "%llu/%llu (%s)",
                      slot + 1, (unsigned long long)rs->index, (unsigned long long)rs->term,
                      (unsigned long long)d->snap.index, (unsigned long long)d->snap.term,
                      pending);
        return false;
    }

    /* Nothing that was never written, and no mix: once an entry of the interrupted save is on
     * disk, so are its truncation and the entries before it (the WAL is written in order). */
    bool any_new_only = false;
    for (size_t i = 0; i < ld->n_entries; i++) {
        const raft_entry *e = &ld->entries[i];
        const sim_durable_entry *old = sim_durable_at(d, e->index);
        const sim_durable_entry *new = interrupted_at(t, e->index);
        uint64_t hash = sim_entry_hash(e);
        if (new && new->term == e->term && new->hash == hash &&
            !(old && old->term == e->term && old->hash == hash))
            any_new_only = true;
    }
    for (size_t i = 0; i < ld->n_entries; i++) {
        const raft_entry *e = &ld->entries[i];
        uint64_t hash = sim_entry_hash(e);
        const sim_durable_entry *old = sim_durable_at(d, e->index);
        const sim_durable_entry *new = interrupted_at(t, e->index);
        bool from_old = old && old->term == e->term && old->hash == hash;
        bool from_new = new && new->term == e->term && new->hash == hash;
        if (!from_old && !from_new) {
            sim_violation(s, SIM_CHECK_DURABILITY,
                          "node %d recovered entry %llu (term %llu, hash %016llx) that it never "
                          "wrote: it acknowledged term %llu there (%s)",
                          slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                          (unsigned long long)hash, (unsigned long long)(old ? old->term : 0),
                          pending);
            return false;
        }
        if (any_new_only && e->index >= t->first_index && !from_new) {
            sim_violation(s, SIM_CHECK_DURABILITY,
                          "node %d recovered its old entry %llu (term %llu) beside entries of the "
                          "interrupted save that replaced it (%s)",
                          slot + 1, (unsigned long long)e->index, (unsigned long long)e->term,
                          pending);
            return false;
        }
        if (!from_old) {
            raft_term prev = i > 0 ? ld->entries[i - 1].term : rs->term;
            sim_check_durable_entry(s, slot, e, prev, true);
            if (s->stop)
                return false;
        }
    }

    /* Nothing acknowledged lost, up to where the interrupted save may legally have cut. */
    raft_index keep_until = sim_durable_last(d);
    if (t->active && t->snap.index != 0) {
        /* The log may restart after the new snapshot; without its file installed, the save never
         * reached the WAL, so everything acknowledged must be there. */
        if (snap_new)
            keep_until = d->snap.index;
    } else if (t->active && t->truncate_from != 0 && t->truncate_from <= keep_until) {
        keep_until = t->truncate_from - 1;
    }
    raft_index rec_last = ld->n_entries ? ld->entries[ld->n_entries - 1].index : rs->index;
    for (raft_index i = d->snap.index + 1; i <= keep_until; i++) {
        if (i <= rs->index)
            continue; /* inside the recovered snapshot (only a new one reaches here) */
        const sim_durable_entry *want = sim_durable_at(d, i);
        if (i > rec_last) {
            sim_violation(s, SIM_CHECK_DURABILITY,
                          "node %d lost acknowledged entry %llu (term %llu): its recovered log "
                          "ends at %llu, acknowledged up to %llu (%s)",
                          slot + 1, (unsigned long long)i, (unsigned long long)want->term,
                          (unsigned long long)rec_last,
                          (unsigned long long)sim_durable_last(d), pending);
            return false;
        }
        const raft_entry *got = &ld->entries[i - rs->index - 1];
        if (got->term != want->term || sim_entry_hash(got) != want->hash) {
            sim_violation(s, SIM_CHECK_DURABILITY,
                          "node %d acknowledged entry %llu term %llu but recovered term %llu "
                          "there (%s)",
                          slot + 1, (unsigned long long)i, (unsigned long long)want->term,
                          (unsigned long long)got->term, pending);
            return false;
        }
    }

    const raft_hard_state *hs = &ld->hard_state;
    bool hs_old = hs->term == d->hard_state.term && hs->vote == d->hard_state.vote;
    bool hs_new = t->active && t->hard_state_changed && hs->term == t->hard_state.term &&
                  hs->vote == t->hard_state.vote;
    if (!hs_old && !hs_new) {
        sim_violation(s, SIM_CHECK_DURABILITY,
                      "node %d recovered term %llu vote %llu but had acknowledged term %llu "
                      "vote %llu (%s)",
                      slot + 1, (unsigned long long)hs->term, (unsigned long long)hs->vote,
                      (unsigned long long)d->hard_state.term,
                      (unsigned long long)d->hard_state.vote, pending);
        return false;
    }
    if (!t->active) {
        /* storage clamps the commit hint into [snapshot, last]; otherwise it must be kept */
        raft_index want = d->hard_state.commit;
        if (want < rs->index)
            want = rs->index;
        if (want > rec_last)
            want = rec_last;
        if (hs->commit != want) {
            sim_violation(s, SIM_CHECK_DURABILITY,
                          "node %d recovered commit %llu but had acknowledged commit %llu "
                          "(clamped to [%llu, %llu]: %llu)",
                          slot + 1, (unsigned long long)hs->commit,
                          (unsigned long long)d->hard_state.commit, (unsigned long long)rs->index,
                          (unsigned long long)rec_last, (unsigned long long)want);
            return false;
        }
    }
    return true;
}

/* After recovery, what storage returned is what the node holds durably. */
static void durable_reload(sim_durable *d, const storage_loaded *ld)
{
    d->hard_state = ld->hard_state;
    d->snap = ld->snapshot;
    d->n_entries = 0;
    for (size_t i = 0; i < ld->n_entries; i++)
        entries_push(&d->entries, &d->n_entries, &d->cap, ld->entries[i].term,
                     sim_entry_hash(&ld->entries[i]));
}

/*
 * WORKAROUNDS for two storage bugs (tests/sim/README.md, "Known storage issues"), both completed
 * through the public API the way recovery should have done it, both counted, and both skipped
 * with --no-storage-workarounds to reproduce the bug.
 *
 * 1. storage_save writes the entries before the hard state in one fdatasync, so a power loss
 * inside it can keep entries of a new term without the HARD_STATE record that moved to that term;
 * storage_open then returns a term below its last entry's (or the snapshot's) term, which raft_new
 * refuses as inconsistent (RAFT_ECORRUPT). No message of that term was sent (messages wait for
 * the save), so the term is raised with no vote and recorded before the core starts.
 */
static bool raise_term(sim *s, int slot, storage_loaded *loaded)
{
    sim_node *n = &s->nodes[slot];
    raft_term log_term = loaded->snapshot.term;
    if (loaded->n_entries)
        log_term = loaded->entries[loaded->n_entries - 1].term;
    if (loaded->hard_state.term >= log_term)
        return true;
    s->disk_stats.workarounds++;
    sim_trace(s, "node %d: storage recovered term %llu below its log's term %llu: %s", slot + 1,
              (unsigned long long)loaded->hard_state.term, (unsigned long long)log_term,
              s->opt->no_storage_workarounds ? "left as is (--no-storage-workarounds)"
                                             : "recording term and no vote");
    if (s->opt->no_storage_workarounds)
        return true;
    raft_ready rd;
    memset(&rd, 0, sizeof(rd));
    rd.hard_state_changed = true;
    rd.hard_state.term = log_term;
    rd.hard_state.vote = 0;
    rd.hard_state.commit = loaded->hard_state.commit;
    int rc = storage_save(n->st, &rd);
    if (rc != STORAGE_OK) {
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d: storage_save(term %llu): %s: %s", slot + 1,
                      (unsigned long long)log_term, storage_strerror(rc), storage_errmsg(n->st));
        return false;
    }
    loaded->hard_state = rd.hard_state;
    return true;
}

/*
 * 2. When the power fails
 * after a leader's snapshot file was installed but before its WAL SNAPSHOT record was synced, and
 * the WAL holds no entry after its previous SNAPSHOT record, storage_open returns the new snapshot
 * with no entries but leaves the WAL expecting the entry after the OLD snapshot, so the next
 * storage_save refuses the entry after the new one (EINVAL). The marker is recorded again (a Ready
 * holding only the snapshot: wal_reset + one fdatasync).
 */
static bool remark_snapshot(sim *s, int slot, const storage_loaded *loaded)
{
    sim_node *n = &s->nodes[slot];
    raft_index wal_last = storage_last_index(n->st);
    if (loaded->n_entries != 0 || loaded->snapshot.index == 0 || wal_last == 0 ||
        wal_last >= loaded->snapshot.index)
        return true;
    s->disk_stats.workarounds++;
    sim_trace(s, "node %d: storage recovered snapshot %llu with no entries but its WAL ends at "
                 "%llu: %s",
              slot + 1, (unsigned long long)loaded->snapshot.index, (unsigned long long)wal_last,
              s->opt->no_storage_workarounds ? "left as is (--no-storage-workarounds)"
                                             : "recording the snapshot marker again");
    if (s->opt->no_storage_workarounds)
        return true;
    raft_ready rd;
    memset(&rd, 0, sizeof(rd));
    rd.snapshot = loaded->snapshot;
    int rc = storage_save(n->st, &rd);
    if (rc != STORAGE_OK) {
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d: storage_save(snapshot %llu marker): %s: %s",
                      slot + 1, (unsigned long long)loaded->snapshot.index, storage_strerror(rc),
                      storage_errmsg(n->st));
        return false;
    }
    return true;
}

bool sim_disk_open(sim *s, int slot, storage_loaded *loaded, sim_sm *sm)
{
    sim_node *n = &s->nodes[slot];
    bool fresh = n->disk == NULL;
    disk_init(s, slot);
    storage_opts opts;
    storage_opts_default(&opts);
    opts.segment_bytes = s->segment_bytes;
    opts.cache_bytes = SIM_DISK_CACHE_BYTES;
    opts.seed = disk_seed(s, slot, 1);
    opts.log = disk_log;
    opts.log_ctx = &n->log_ctx;
    int rc = storage_open(n->dir, &n->io, &opts, &n->st, loaded);
    if (rc != STORAGE_OK) {
        n->st = NULL;
        sim_violation(s, SIM_CHECK_CONTRACT, "node %d: storage_open(%s) failed: %s: %s", slot + 1,
                      n->dir, storage_strerror(rc), loaded->errmsg);
        return false;
    }
    if (!fresh)
        s->disk_stats.recoveries++;
    memset(sm, 0, sizeof(*sm));
    bool ok = check_recovered(s, slot, loaded);
    if (ok && loaded->snapshot.index != 0) {
        uint8_t data[SIM_SNAP_BYTES];
        ok = sim_disk_read_snapshot(s, slot, &loaded->snapshot, data);
        if (ok) {
            sim_sm_decode(sm, data);
            if (sm->applied != loaded->snapshot.index || sm->applied_term != loaded->snapshot.term) {
                sim_violation(s, SIM_CHECK_DURABILITY,
                              "node %d's snapshot file %llu/%llu holds a state machine at "
                              "%llu/%llu",
                              slot + 1, (unsigned long long)loaded->snapshot.index,
                              (unsigned long long)loaded->snapshot.term,
                              (unsigned long long)sm->applied,
                              (unsigned long long)sm->applied_term);
                ok = false;
            }
        }
    }
    if (!ok) {
        storage_loaded_free(loaded);
        storage_close(n->st);
        n->st = NULL;
        return false;
    }
    if (!remark_snapshot(s, slot, loaded) || !raise_term(s, slot, loaded)) {
        storage_loaded_free(loaded);
        storage_close(n->st);
        n->st = NULL;
        return false;
    }
    durable_reload(&n->durable, loaded);
    n->interrupted.active = false;
    return true;
}
