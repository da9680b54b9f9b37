/* workload.c -- see workload.h. */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfs_fault.h"

#define WL_DIR "/data"
#define WL_MAX_INDEX 4096
#define WL_MAX_OPS 300

/* ---- contents ---- */

static uint32_t data_len(raft_index index, raft_term term)
{
    return (uint32_t)((index * 7 + term * 13) % (WL_MAX_DATA - 4)) + 1;
}

void wl_entry(raft_entry *e, uint8_t *buf, raft_index index, raft_term term)
{
    e->index = index;
    e->term = term;
    e->type = RAFT_ENTRY_NORMAL;
    e->len = data_len(index, term);
    for (uint32_t k = 0; k < e->len; k++)
        buf[k] = (uint8_t)(index * 131 + term * 17 + k);
    e->data = buf;
}

int wl_save_one(storage *st, raft_index index, raft_term term, const raft_hard_state *hs)
{
    raft_entry e;
    uint8_t data[WL_MAX_DATA];
    wl_entry(&e, data, index, term);
    raft_ready rd;
    memset(&rd, 0, sizeof rd);
    rd.entries = &e;
    rd.n_entries = 1;
    if (hs != NULL) {
        rd.hard_state_changed = true;
        rd.hard_state = *hs;
    }
    return storage_save(st, &rd);
}

bool wl_entry_ok(const raft_entry *e)
{
    if (e->type != RAFT_ENTRY_NORMAL || e->len != data_len(e->index, e->term))
        return false;
    for (uint32_t k = 0; k < e->len; k++)
        if (e->data[k] != (uint8_t)(e->index * 131 + e->term * 17 + k))
            return false;
    return true;
}

static size_t snap_len(raft_index index)
{
    return 700 + (size_t)(index % 500);
}

int wl_write_snapshot(storage *st, raft_index index, raft_term term)
{
    raft_snapshot_meta meta = {.index = index, .term = term, .conf = {.n_voters = 3, .voters = {1, 2, 3}}};
    snap_writer *w;
    int rc = storage_snapshot_begin(st, &meta, &w);
    if (rc != STORAGE_OK)
        return rc;
    size_t len = snap_len(index);
    uint8_t *bytes = malloc(len);
    for (size_t k = 0; k < len; k++)
        bytes[k] = (uint8_t)(index + k * 7);
    for (size_t off = 0; off < len; off += 300) {
        size_t n = len - off < 300 ? len - off : 300;
        if (snap_writer_write(w, off, bytes + off, n) != SNAP_OK) {
            free(bytes);
            snap_writer_abort(w);
            return STORAGE_EFATAL;
        }
    }
    free(bytes);
    return storage_snapshot_finish(st, w);
}

bool wl_snapshot_ok(vfs *v, const char *dir, raft_index index)
{
    snap_reader *r;
    if (snap_reader_open(dir, v, index, &r, NULL) != SNAP_OK)
        return false;
    size_t len = snap_len(index);
    bool ok = snap_reader_size(r) == len && snap_reader_meta(r)->conf.n_voters == 3;
    uint8_t *bytes = malloc(len);
    size_t n = 0;
    ok = ok && snap_reader_read(r, 0, bytes, len, &n) == SNAP_OK && n == len;
    for (size_t k = 0; ok && k < len; k++)
        ok = bytes[k] == (uint8_t)(index + k * 7);
    free(bytes);
    snap_reader_close(r);
    return ok;
}

/* ---- the model ---- */

typedef enum { OP_SNAPFILE, OP_RESET, OP_TRUNCATE, OP_APPEND, OP_HS } op_kind;

typedef struct wl_op {
    op_kind kind;
    raft_index index;
    raft_term term;
    raft_hard_state hs;
} wl_op;

typedef struct wl_state {
    raft_index snap_index;
    raft_term snap_term;
    raft_index log_first; /* first index the log can hold (after a reset) */
    raft_index last;
    raft_term terms[WL_MAX_INDEX];
    raft_hard_state hs;
} wl_state;

static void state_init(wl_state *s)
{
    memset(s, 0, sizeof *s);
    s->log_first = 1;
}

static void apply_op(wl_state *s, const wl_op *op)
{
    switch (op->kind) {
    case OP_SNAPFILE: {
        raft_index S = op->index;
        bool matches = S <= s->last && S >= s->log_first && s->terms[S] == op->term;
        if (!matches && s->log_first != S + 1) {
            s->last = S;
            s->log_first = S + 1;
        }
        s->snap_index = S;
        s->snap_term = op->term;
        break;
    }
    case OP_RESET:
        s->last = op->index;
        s->log_first = op->index + 1;
        break;
    case OP_TRUNCATE:
        s->last = op->index - 1;
        break;
    case OP_APPEND:
        s->terms[op->index] = op->term;
        s->last = op->index;
        break;
    case OP_HS:
        s->hs = op->hs;
        break;
    }
}

static raft_index clamp_commit(raft_index commit, raft_index snap, raft_index last)
{
    if (commit < snap)
        commit = snap;
    if (commit > last)
        commit = last;
    return commit;
}

/* Does the recovered state equal s? Sets why otherwise. */
static bool state_equals(const wl_state *s, const storage_loaded *l, char *why, size_t why_len)
{
    raft_index first = s->snap_index > s->log_first - 1 ? s->snap_index : s->log_first - 1;
    raft_index last = s->last > first ? s->last : first;
    size_t n = (size_t)(last - first);
    if (l->snapshot.index != s->snap_index || l->snapshot.term != s->snap_term) {
        snprintf(why, why_len, "snapshot %llu/%llu, want %llu/%llu", (unsigned long long)l->snapshot.index,
                 (unsigned long long)l->snapshot.term, (unsigned long long)s->snap_index,
                 (unsigned long long)s->snap_term);
        return false;
    }
    if (l->n_entries != n) {
        snprintf(why, why_len, "%zu entries, want %zu (%llu..%llu)", l->n_entries, n,
                 (unsigned long long)(first + 1), (unsigned long long)last);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const raft_entry *e = &l->entries[i];
        if (e->index != first + 1 + i || e->term != s->terms[e->index] || !wl_entry_ok(e)) {
            snprintf(why, why_len, "entry %llu term %llu, want %llu term %llu",
                     (unsigned long long)e->index, (unsigned long long)e->term,
                     (unsigned long long)(first + 1 + i), (unsigned long long)s->terms[first + 1 + i]);
            return false;
        }
    }
    raft_index want_commit = clamp_commit(s->hs.commit, s->snap_index, last);
    if (l->hard_state.term != s->hs.term || l->hard_state.vote != s->hs.vote ||
        l->hard_state.commit != want_commit) {
        snprintf(why, why_len, "hard state %llu/%llu/%llu, want %llu/%llu/%llu",
                 (unsigned long long)l->hard_state.term, (unsigned long long)l->hard_state.vote,
                 (unsigned long long)l->hard_state.commit, (unsigned long long)s->hs.term,
                 (unsigned long long)s->hs.vote, (unsigned long long)want_commit);
        return false;
    }
    return true;
}

/* True when l equals acked with some prefix of ops applied. */
static bool matches_some_prefix(const wl_state *acked, const wl_op *ops, size_t n_ops,
                                const storage_loaded *l, char *why, size_t why_len)
{
    wl_state *s = malloc(sizeof *s);
    *s = *acked;
    bool ok = state_equals(s, l, why, why_len);
    for (size_t i = 0; i < n_ops && !ok; i++) {
        apply_op(s, &ops[i]);
        char other[200];
        ok = state_equals(s, l, other, sizeof other);
    }
    free(s);
    return ok;
}

/* ---- the scripts ---- */

typedef enum { STEP_SAVE, STEP_SNAPSHOT, STEP_COMPACT } step_kind;

typedef struct wl_step {
    step_kind kind;
    raft_index snapshot;   /* SAVE: rd.snapshot.index (installed from a leader); SNAPSHOT: index */
    raft_term snap_term;
    raft_index truncate_from;
    raft_index from, to;   /* SAVE: entries [from, to] (none when from == 0) */
    raft_term term;
    bool hs;
    raft_hard_state hard_state;
} wl_step;

#define SAVE(f, t, tm, c) {.kind = STEP_SAVE, .from = f, .to = t, .term = tm, .hs = true, \
                           .hard_state = {.term = tm, .vote = 2, .commit = c}}

static const wl_step script_short[] = {
    SAVE(1, 5, 1, 0),
    SAVE(6, 20, 1, 5),
    SAVE(21, 40, 1, 20),
    {.kind = STEP_SAVE, .truncate_from = 31, .from = 31, .to = 35, .term = 2, .hs = true,
     .hard_state = {.term = 2, .vote = 3, .commit = 30}},
    SAVE(36, 60, 2, 40),
    {.kind = STEP_SNAPSHOT, .snapshot = 40, .snap_term = 2},
    {.kind = STEP_COMPACT, .snapshot = 35},
    SAVE(61, 80, 3, 60),
    {.kind = STEP_SAVE, .truncate_from = 75, .from = 75, .to = 78, .term = 4, .hs = true,
     .hard_state = {.term = 4, .vote = 0, .commit = 70}},
    {.kind = STEP_SNAPSHOT, .snapshot = 100, .snap_term = 5},
    {.kind = STEP_SAVE, .snapshot = 100, .snap_term = 5, .from = 101, .to = 110, .term = 5, .hs = true,
     .hard_state = {.term = 5, .vote = 0, .commit = 100}},
    SAVE(111, 130, 5, 110),
    {.kind = STEP_SNAPSHOT, .snapshot = 120, .snap_term = 5},
    {.kind = STEP_COMPACT, .snapshot = 115},
    {.kind = STEP_SAVE, .truncate_from = 125, .term = 5},
};

static const wl_step script_long[] = {
    SAVE(1, 5, 1, 0),
    SAVE(6, 40, 1, 5),
    SAVE(41, 100, 1, 40),
    {.kind = STEP_SAVE, .truncate_from = 91, .from = 91, .to = 95, .term = 2, .hs = true,
     .hard_state = {.term = 2, .vote = 3, .commit = 90}},
    SAVE(96, 160, 2, 120),
    {.kind = STEP_SNAPSHOT, .snapshot = 120, .snap_term = 2},
    {.kind = STEP_COMPACT, .snapshot = 100},
    SAVE(161, 220, 3, 200),
    {.kind = STEP_SAVE, .hs = true, .hard_state = {.term = 4, .vote = 1, .commit = 200}},
    {.kind = STEP_SAVE, .truncate_from = 210, .from = 210, .to = 215, .term = 4, .hs = true,
     .hard_state = {.term = 4, .vote = 1, .commit = 205}},
    {.kind = STEP_SNAPSHOT, .snapshot = 200, .snap_term = 3},
    {.kind = STEP_COMPACT, .snapshot = 190},
    {.kind = STEP_SNAPSHOT, .snapshot = 400, .snap_term = 6},
    {.kind = STEP_SAVE, .snapshot = 400, .snap_term = 6, .from = 401, .to = 420, .term = 6, .hs = true,
     .hard_state = {.term = 6, .vote = 0, .commit = 400}},
    SAVE(421, 500, 6, 450),
    {.kind = STEP_SNAPSHOT, .snapshot = 480, .snap_term = 6},
    {.kind = STEP_COMPACT, .snapshot = 470},
    SAVE(501, 520, 7, 500),
};

/* The long script: the fixed prefix above, then a generated tail of small group commits
 * (1..7 entries) with a truncation every 9th step and a snapshot + compaction every 25th. */
#define LONG_TAIL_STEPS 150
static wl_step script_long_full[sizeof script_long / sizeof script_long[0] + 2 * LONG_TAIL_STEPS];

static const wl_step *script_steps(wl_script script, size_t *n)
{
    if (script == WL_SCRIPT_SHORT) {
        *n = sizeof script_short / sizeof script_short[0];
        return script_short;
    }
    size_t k = sizeof script_long / sizeof script_long[0];
    memcpy(script_long_full, script_long, sizeof script_long);
    raft_index last = 520;
    raft_term term = 7;
    static raft_term terms[WL_MAX_INDEX];
    for (raft_index i = 501; i <= 520; i++)
        terms[i] = 7;
    for (size_t i = 1; i <= LONG_TAIL_STEPS; i++) {
        wl_step step = {.kind = STEP_SAVE, .term = term, .hs = true};
        if (i % 9 == 0) {
            step.truncate_from = last - 2; /* above the commit index below */
            step.term = ++term;
            last -= 3;
        }
        step.from = last + 1;
        step.to = last + 1 + i % 7;
        last = step.to;
        for (raft_index x = step.from; x <= step.to; x++)
            terms[x] = step.term;
        step.hard_state = (raft_hard_state){.term = step.term, .vote = 1, .commit = last - 10};
        script_long_full[k++] = step;
        if (i % 25 == 0) {
            script_long_full[k++] = (wl_step){.kind = STEP_SNAPSHOT, .snapshot = last - 10,
                                              .snap_term = terms[last - 10]};
            script_long_full[k++] = (wl_step){.kind = STEP_COMPACT, .snapshot = last - 20};
        }
    }
    *n = k;
    return script_long_full;
}

static size_t step_ops(const wl_step *step, wl_op *ops)
{
    size_t n = 0;
    switch (step->kind) {
    case STEP_SNAPSHOT:
        ops[n++] = (wl_op){.kind = OP_SNAPFILE, .index = step->snapshot, .term = step->snap_term};
        break;
    case STEP_COMPACT:
        break;
    case STEP_SAVE:
        if (step->snapshot)
            ops[n++] = (wl_op){.kind = OP_RESET, .index = step->snapshot, .term = step->snap_term};
        if (step->truncate_from)
            ops[n++] = (wl_op){.kind = OP_TRUNCATE, .index = step->truncate_from};
        for (raft_index i = step->from; step->from && i <= step->to; i++)
            ops[n++] = (wl_op){.kind = OP_APPEND, .index = i, .term = step->term};
        if (step->hs)
            ops[n++] = (wl_op){.kind = OP_HS, .hs = step->hard_state};
        break;
    }
    return n;
}

static int run_step(storage *st, const wl_step *step)
{
    switch (step->kind) {
    case STEP_SNAPSHOT:
        return wl_write_snapshot(st, step->snapshot, step->snap_term);
    case STEP_COMPACT:
        return storage_compact(st, step->snapshot);
    case STEP_SAVE: {
        size_t n = step->from ? (size_t)(step->to - step->from + 1) : 0;
        raft_entry *entries = calloc(n + 1, sizeof *entries);
        uint8_t *data = malloc((n + 1) * WL_MAX_DATA);
        for (size_t i = 0; i < n; i++)
            wl_entry(&entries[i], data + i * WL_MAX_DATA, step->from + i, step->term);
        raft_ready rd;
        memset(&rd, 0, sizeof rd);
        rd.snapshot.index = step->snapshot;
        rd.snapshot.term = step->snap_term;
        rd.truncate_from = step->truncate_from;
        rd.entries = entries;
        rd.n_entries = n;
        rd.hard_state_changed = step->hs;
        rd.hard_state = step->hard_state;
        int rc = storage_save(st, &rd);
        free(entries);
        free(data);
        return rc;
    }
    }
    return STORAGE_EINVAL;
}

typedef struct sweep_ctx {
    uint64_t torn_cut;
} sweep_ctx;

static void count_log(void *ctx, const char *line)
{
    sweep_ctx *c = ctx;
    if (strstr(line, "torn tail") != NULL)
        c->torn_cut++;
}

static storage_opts sweep_opts(sweep_ctx *ctx)
{
    storage_opts o;
    storage_opts_default(&o);
    o.segment_bytes = 4096; /* many segment rolls per script */
    o.cache_bytes = 1024;
    o.log = count_log;
    o.log_ctx = ctx;
    return o;
}

/* Runs the script until it ends or fails; acked/ops/n_ops describe what was durable and what
 * was in flight. Returns the number of crash points used when it ran to the end. */
static void run_script(vfs *v, wl_script script, sweep_ctx *ctx, wl_state *acked, wl_op *ops,
                       size_t *n_ops)
{
    state_init(acked);
    *n_ops = 0;
    storage_opts o = sweep_opts(ctx);
    storage *st;
    storage_loaded l;
    if (storage_open(WL_DIR, v, &o, &st, &l) != STORAGE_OK)
        return;
    storage_loaded_free(&l);
    size_t n_steps;
    const wl_step *steps = script_steps(script, &n_steps);
    for (size_t i = 0; i < n_steps; i++) {
        *n_ops = step_ops(&steps[i], ops);
        if (run_step(st, &steps[i]) != STORAGE_OK)
            break;
        for (size_t k = 0; k < *n_ops; k++)
            apply_op(acked, &ops[k]);
        *n_ops = 0;
    }
    storage_close(st);
}

/* After recovery: one more append must be durable on top of what was recovered. */
static bool append_after_recovery(vfs *v, sweep_ctx *ctx, const storage_loaded *l, char *why, size_t why_len)
{
    storage_opts o = sweep_opts(ctx);
    storage *st;
    storage_loaded l2;
    (void)l;
    if (storage_open(WL_DIR, v, &o, &st, &l2) != STORAGE_OK) {
        snprintf(why, why_len, "second open: %.150s", l2.errmsg);
        return false;
    }
    raft_index next = l2.n_entries ? l2.entries[l2.n_entries - 1].index + 1 : l2.snapshot.index + 1;
    size_t n_before = l2.n_entries;
    storage_loaded_free(&l2);
    int rc = wl_save_one(st, next, 9, NULL);
    storage_close(st);
    if (rc != STORAGE_OK) {
        snprintf(why, why_len, "append after recovery: %s", storage_strerror(rc));
        return false;
    }
    if (storage_open(WL_DIR, v, &o, &st, &l2) != STORAGE_OK) {
        snprintf(why, why_len, "third open: %.150s", l2.errmsg);
        return false;
    }
    bool ok = l2.n_entries == n_before + 1 && l2.entries[n_before].index == next &&
              l2.entries[n_before].term == 9 && wl_entry_ok(&l2.entries[n_before]);
    if (!ok)
        snprintf(why, why_len, "entry %llu appended after recovery is missing", (unsigned long long)next);
    storage_loaded_free(&l2);
    storage_close(st);
    return ok;
}

wl_sweep_result wl_crash_sweep(wl_script script, uint64_t seed, bool double_crash)
{
    wl_sweep_result res = {0};
    sweep_ctx ctx = {0};
    wl_state *acked = malloc(sizeof *acked);
    wl_op *ops = malloc(WL_MAX_OPS * sizeof *ops);
    size_t n_ops;
    vfs *v = vfs_fault_new(seed);
    run_script(v, script, &ctx, acked, ops, &n_ops);
    res.crash_points = vfs_fault_crash_points(v);
    vfs_fault_free(v);
    static const unsigned flavours[4] = {0, VFS_FAULT_TORN, VFS_FAULT_KEEP_NAMES,
                                         VFS_FAULT_TORN | VFS_FAULT_KEEP_NAMES};
    for (uint64_t k = 1; k <= res.crash_points; k++) {
        for (int f = 0; f < 4; f++) {
            v = vfs_fault_new(seed * 1000003u + k * 4 + (uint64_t)f);
            vfs_fault_crash_at(v, k);
            run_script(v, script, &ctx, acked, ops, &n_ops);
            bool crashed = vfs_fault_is_down(v);
            vfs_fault_crash(v, flavours[f]);
            res.runs++;
            char why[256] = "did not crash";
            bool ok = crashed;
            storage_opts o = sweep_opts(&ctx);
            storage *st;
            storage_loaded l;
            if (ok && double_crash) {
                /* Lose power again during recovery itself (at its 1st, 2nd or 3rd write or sync:
                 * cutting a torn tail, removing an unfinished segment, resetting the WAL): the
                 * next recovery must reach the same verdict. */
                vfs_fault_crash_at(v, vfs_fault_crash_points(v) + 1 + k % 3);
                if (storage_open(WL_DIR, v, &o, &st, &l) == STORAGE_OK) {
                    storage_loaded_free(&l);
                    storage_close(st);
                }
                if (vfs_fault_is_down(v))
                    res.double_crashes++;
                vfs_fault_crash(v, flavours[(f + (int)k) % 4]);
            }
            if (ok) {
                int rc = storage_open(WL_DIR, v, &o, &st, &l);
                if (rc != STORAGE_OK) {
                    snprintf(why, sizeof why, "open after crash: %s: %.150s", storage_strerror(rc), l.errmsg);
                    ok = false;
                } else {
                    ok = matches_some_prefix(acked, ops, n_ops, &l, why, sizeof why);
                    storage_loaded_free(&l);
                    storage_close(st);
                    if (ok && acked->snap_index > 0 && !wl_snapshot_ok(v, WL_DIR, acked->snap_index)) {
                        /* an acknowledged snapshot may only be replaced by a newer one */
                        snap_reader *r;
                        ok = snap_reader_open(WL_DIR, v, 0, &r, NULL) == SNAP_OK &&
                             snap_reader_meta(r)->index >= acked->snap_index;
                        if (ok)
                            snap_reader_close(r);
                        else
                            snprintf(why, sizeof why, "snapshot %llu lost", (unsigned long long)acked->snap_index);
                    }
                    if (ok)
                        ok = append_after_recovery(v, &ctx, &l, why, sizeof why);
                }
            }
            if (!ok) {
                if (res.failures < 10)
                    fprintf(stderr, "crash sweep: crash point %llu flavour %d: %s\n",
                            (unsigned long long)k, f, why);
                res.failures++;
            }
            vfs_fault_free(v);
        }
    }
    res.torn_tails_cut = ctx.torn_cut;
    free(acked);
    free(ops);
    return res;
}

bool wl_checker_catches_lost_entry(void)
{
    vfs *v = vfs_fault_new(1);
    storage_opts o;
    storage_opts_default(&o);
    storage *st;
    storage_loaded l;
    if (storage_open(WL_DIR, v, &o, &st, &l) != STORAGE_OK)
        return false;
    storage_loaded_free(&l);
    wl_step step = SAVE(1, 4, 1, 0);
    run_step(st, &step);
    storage_close(st);
    storage_open(WL_DIR, v, &o, &st, &l);
    /* The model says 1..5 were acknowledged; the store has 1..4. */
    wl_state *acked = malloc(sizeof *acked);
    state_init(acked);
    wl_op ops[8];
    wl_step five = SAVE(1, 5, 1, 0);
    size_t n = step_ops(&five, ops);
    for (size_t i = 0; i < n; i++)
        apply_op(acked, &ops[i]);
    char why[200];
    bool lost_caught = !matches_some_prefix(acked, NULL, 0, &l, why, sizeof why);
    /* The model says only 1..3 were ever written; the store has 1..4. */
    state_init(acked);
    wl_step three = SAVE(1, 3, 1, 0);
    n = step_ops(&three, ops);
    for (size_t i = 0; i < n; i++)
        apply_op(acked, &ops[i]);
    bool phantom_caught = !matches_some_prefix(acked, NULL, 0, &l, why, sizeof why);
    storage_loaded_free(&l);
    storage_close(st);
    vfs_fault_free(v);
    free(acked);
    return lost_caught && phantom_caught;
}
