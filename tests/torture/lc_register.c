/*
 * lc_register.c -- linearizability of read/write/cas registers (Wing-Gong with Lowe's memo).
 *
 * PER KEY. Operations on different keys commute, so each key is checked alone (as Knossos'
 * independent checker and Porcupine's partitions do); the history is linearizable iff every key's
 * sub-history is.
 *
 * SEARCH. The key's operations become call and return events in one doubly linked list sorted by
 * time (a call sorts before a return at the same instant, so touching intervals count as
 * concurrent: the check never blames the clock's resolution). Walking from the front, a call whose
 * operation the model accepts in the current value is linearized: both its events are lifted out
 * of the list (dancing links, so backtracking puts them back in O(1)) and the walk restarts. A
 * return event met before its operation was linearized means this order is impossible: pop the
 * last choice, put its events back, and try the next call after it. An empty list (or one holding
 * only the calls of unknown-outcome operations, which never return) means success.
 *
 * MEMO. A configuration is (set of linearized operations, register value). The set is stored
 * compactly: F = the first required (not unknown) operation, in call order, that is not yet
 * linearized, plus the sorted list of linearized operations that are unknown or after F. Every
 * required operation before F is linearized, so (F, list, value) names the set exactly; the list
 * holds only the operations concurrent with F and the few unknown ones taken, never the history:
 * linearized unknown writes of unobserved values are a prefix of their list (below), so their
 * count stands for them; an unknown write whose value a required operation before F read must
 * have been linearized before that reader (values are written once), so it is implied too.
 *
 * UNKNOWN OUTCOMES. Unknown writes and cas have no return event: they may be linearized at any
 * point after their call, or never. Values that no completed operation observes (no ok read
 * returned them, no cas named them) are all replaced by one symbol X; unknown writes of such
 * values are interchangeable once called, so only the earliest untaken one is ever tried (and
 * never over X itself). Without this, k timed-out writes would multiply the search by 2^k.
 */
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lc_int.h"

#define VAL_X (UINT32_MAX - 1) /* "a value nobody observed" */

typedef struct rop {
    const lc_op *op;
    uint32_t pre;    /* read: value it returned; cas: expected value (mapped) */
    uint32_t post;   /* write/cas: value it leaves (mapped) */
    bool optional;   /* unknown outcome: may never be linearized */
    bool xwrite;     /* unknown write of an unobserved value */
    bool cas_false;  /* cas that completed with "false" */
    uint32_t first_observer; /* optional op: the first required op that reads its value */
} rop;

typedef struct event {
    int32_t prev, next;
    uint32_t op;      /* index into the key's rop array */
    int32_t ret;      /* call: index of its return event, -1 for none; return: -1 */
    bool is_return;
} event;

typedef struct frame {
    int32_t call;     /* the lifted call event */
    uint32_t prev_value;
    uint32_t prev_first; /* F before the lift */
    size_t saved_off; /* where the exception list before the lift was saved in `saved` */
    uint32_t saved_len;
    bool forced;      /* an observing op taken without alternatives (see the search loop) */
} frame;

typedef struct memo_slot {
    uint64_t hash;    /* 0 = empty */
    uint32_t value, len;
    uint64_t first;   /* F and the count of linearized X writes */
    size_t off;       /* into memo.arena */
} memo_slot;

typedef struct memo {
    memo_slot *slots;
    size_t cap, used;
    uint32_t *arena;
    size_t arena_len, arena_cap;
} memo;

typedef struct vec32 {
    uint32_t *v;
    size_t len, cap;
} vec32;

static bool vec_reserve(vec32 *vec, size_t want)
{
    if (want <= vec->cap) return true;
    size_t cap = vec->cap ? vec->cap : 64;
    while (cap < want) cap *= 2;
    uint32_t *v = realloc(vec->v, cap * sizeof *v);
    if (v == NULL) return false;
    vec->v = v;
    vec->cap = cap;
    return true;
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static uint64_t config_hash(uint32_t value, uint64_t first, const uint32_t *list, size_t len)
{
    uint64_t h = mix(mix(0x51ed27u, value), first);
    for (size_t i = 0; i < len; i++) h = mix(h, list[i]);
    return h | 1; /* 0 marks an empty slot */
}

static bool memo_grow(memo *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1 << 12;
    memo_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL) return false;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].hash == 0) continue;
        size_t at = m->slots[i].hash & (cap - 1);
        while (slots[at].hash != 0) at = (at + 1) & (cap - 1);
        slots[at] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return true;
}

/* 1 = inserted (new configuration), 0 = seen before, -1 = out of memory. */
static int memo_insert(memo *m, uint32_t value, uint64_t first, const uint32_t *list, size_t len)
{
    if ((m->used + 1) * 2 > m->cap && !memo_grow(m)) return -1;
    uint64_t h = config_hash(value, first, list, len);
    size_t at = h & (m->cap - 1);
    while (m->slots[at].hash != 0) {
        memo_slot *s = &m->slots[at];
        if (s->hash == h && s->value == value && s->first == first && s->len == len &&
            (len == 0 || memcmp(m->arena + s->off, list, len * sizeof *list) == 0))
            return 0;
        at = (at + 1) & (m->cap - 1);
    }
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 1 << 12;
        while (cap < m->arena_len + len) cap *= 2;
        uint32_t *arena = realloc(m->arena, cap * sizeof *arena);
        if (arena == NULL) return -1;
        m->arena = arena;
        m->arena_cap = cap;
    }
    if (len > 0) memcpy(m->arena + m->arena_len, list, len * sizeof *list);
    m->slots[at] = (memo_slot){.hash = h, .value = value, .first = first, .len = (uint32_t)len,
                               .off = m->arena_len};
    m->arena_len += len;
    m->used++;
    return 1;
}

/* The model: may `o` run on `value`? If so, *next is the value after it. */
static bool step(const rop *o, uint32_t value, uint32_t *next)
{
    switch (o->op->kind) {
    case LC_READ:
        *next = value;
        return value == o->pre;
    case LC_WRITE:
        *next = o->post;
        return true;
    case LC_CAS:
        if (o->cas_false) {
            *next = value;
            return value != o->pre;
        }
        *next = o->post;
        return value == o->pre;
    default:
        assert(!"not a register operation");
        return false;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

typedef struct time_event {
    int64_t time;
    uint32_t op;
    bool is_return;
} time_event;

static int cmp_time_event(const void *a, const void *b)
{
    const time_event *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    if (x->is_return != y->is_return) return x->is_return ? 1 : -1; /* calls first */
    return (x->op > y->op) - (x->op < y->op);
}

static const char *value_text(const lc_history *h, uint32_t v)
{
    if (v == VAL_X) return "(a value no read observed)";
    if (v == LC_NIL) return "(no value)";
    return lc_str(h, v);
}

static void print_op(FILE *out, const lc_history *h, const lc_op *o)
{
    const char *outcome = o->outcome == LC_OK ? "ok" : o->outcome == LC_FAIL ? "fail" : "unknown";
    fprintf(out, "    line %" PRIu32 ": client %" PRId32 " ", o->line, o->client);
    switch (o->kind) {
    case LC_READ: fprintf(out, "read %s -> %s", lc_str(h, o->key), lc_str(h, o->result)); break;
    case LC_WRITE: fprintf(out, "write %s := %s", lc_str(h, o->key), lc_str(h, o->arg1)); break;
    case LC_CAS:
        fprintf(out, "cas %s %s -> %s : %s", lc_str(h, o->key), lc_str(h, o->arg1),
                lc_str(h, o->arg2), o->outcome == LC_OK ? lc_str(h, o->result) : "?");
        break;
    default: fprintf(out, "op %d on %s", (int)o->kind, lc_str(h, o->key)); break;
    }
    if (o->outcome == LC_UNKNOWN)
        fprintf(out, "  [%" PRId64 ", +inf) %s\n", o->invoke, outcome);
    else
        fprintf(out, "  [%" PRId64 ", %" PRId64 "] %s\n", o->invoke, o->complete, outcome);
}

/* Whether linearized op j must be named in the configuration's list when F = first. Required ops
 * before F are implied. Linearized X writes are implied by their count (always a prefix, see
 * above). An unknown write or cas whose value some required op reads, once such a reader is
 * before F (linearized), is implied too: each value is written once, so that reader could only be
 * linearized after it. The rest are listed. */
static bool in_list(const rop *ops, uint32_t j, uint32_t first)
{
    if (!ops[j].optional) return j > first;
    return !ops[j].xwrite && ops[j].first_observer >= first;
}

typedef struct key_result {
    int verdict;
    bool stopped; /* undecided because another key failed first */
    uint64_t ops, configurations;
} key_result;

/* Checks the operations idx[0..n) (all on one key, sorted by invoke). */
static key_result check_key(const lc_history *h, const uint32_t *idx, size_t n,
                            uint64_t max_configurations, const int *stop, FILE *out)
{
    key_result res = {.verdict = LC_VALID};
    rop *ops = calloc(n ? n : 1, sizeof *ops);
    vec32 observed = {0}, cur = {0}, saved = {0}, next_list = {0};
    time_event *tev = NULL;
    event *ev = NULL;
    bool *lin = NULL;
    uint32_t *xs = NULL;
    frame *frames = NULL;
    memo memo_tab = {0};
    if (ops == NULL) goto oom;
    /* Which values some completed operation observed. */
    for (size_t i = 0; i < n; i++) {
        const lc_op *o = &h->ops[idx[i]];
        if (!vec_reserve(&observed, observed.len + 1)) goto oom;
        if (o->kind == LC_READ && o->outcome == LC_OK) observed.v[observed.len++] = o->result;
        else if (o->kind == LC_CAS && o->outcome != LC_FAIL) observed.v[observed.len++] = o->arg1;
    }
    qsort(observed.v, observed.len, sizeof *observed.v, cmp_u32);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const lc_op *o = &h->ops[idx[i]];
        if (o->outcome == LC_FAIL) continue;
        if (o->kind == LC_READ && o->outcome == LC_UNKNOWN) continue; /* reads change nothing */
        if (o->kind != LC_READ && o->kind != LC_WRITE && o->kind != LC_CAS) continue;
        rop *r = &ops[m++];
        r->op = o;
        r->optional = o->outcome == LC_UNKNOWN;
        r->cas_false = o->kind == LC_CAS && o->outcome == LC_OK && o->result == h->id_false;
        r->pre = o->kind == LC_READ ? o->result : o->arg1;
        uint32_t written = o->kind == LC_WRITE ? o->arg1 : o->arg2;
        bool seen = written == LC_NIL ||
                    bsearch(&written, observed.v, observed.len, sizeof written, cmp_u32) != NULL;
        r->post = seen ? written : VAL_X;
        r->xwrite = o->kind == LC_WRITE && r->optional && !seen;
    }
    res.ops = m;
    /* first_observer: for each optional op, the first required op (call order) reading its
     * value. Reads and successful cas name the value they saw. */
    for (uint32_t i = 0; i < m; i++) ops[i].first_observer = UINT32_MAX;
    {
        uint64_t *readers = malloc((m + 1) * sizeof *readers); /* value << 32 | op */
        if (readers == NULL) goto oom;
        size_t n_readers = 0;
        for (uint32_t i = 0; i < m; i++) {
            const lc_op *o = ops[i].op;
            if (ops[i].optional || ops[i].cas_false || o->kind == LC_WRITE) continue;
            readers[n_readers++] = (uint64_t)ops[i].pre << 32 | i;
        }
        qsort(readers, n_readers, sizeof *readers, cmp_u64);
        for (uint32_t i = 0; i < m; i++) {
            if (!ops[i].optional || ops[i].post == VAL_X || ops[i].post == LC_NIL) continue;
            uint64_t probe = (uint64_t)ops[i].post << 32;
            size_t lo = 0, hi = n_readers;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (readers[mid] < probe) lo = mid + 1;
                else hi = mid;
            }
            if (lo < n_readers && readers[lo] >> 32 == ops[i].post)
                ops[i].first_observer = (uint32_t)readers[lo];
        }
        free(readers);
    }

    /* Events, in time order, then the linked list (event 0 is the sentinel). */
    size_t n_ev = 0;
    tev = malloc((2 * m + 1) * sizeof *tev);
    ev = malloc((2 * m + 2) * sizeof *ev);
    lin = calloc(m + 1, sizeof *lin);
    xs = malloc((m + 1) * sizeof *xs);
    frames = malloc((m + 1) * sizeof *frames);
    if (tev == NULL || ev == NULL || lin == NULL || xs == NULL || frames == NULL) goto oom_all;
    size_t n_x = 0;
    for (uint32_t i = 0; i < m; i++) {
        tev[n_ev++] = (time_event){.time = ops[i].op->invoke, .op = i, .is_return = false};
        if (!ops[i].optional)
            tev[n_ev++] = (time_event){.time = ops[i].op->complete, .op = i, .is_return = true};
        if (ops[i].xwrite) xs[n_x++] = i;
    }
    qsort(tev, n_ev, sizeof *tev, cmp_time_event);
    int32_t *call_of = malloc((m + 1) * sizeof *call_of);
    if (call_of == NULL) goto oom_all;
    ev[0] = (event){.prev = (int32_t)n_ev, .next = n_ev ? 1 : 0, .ret = -1};
    for (size_t e = 0; e < n_ev; e++) {
        int32_t at = (int32_t)e + 1;
        ev[at] = (event){.prev = at - 1, .next = e + 1 == n_ev ? 0 : at + 1, .op = tev[e].op,
                         .ret = -1, .is_return = tev[e].is_return};
        if (!tev[e].is_return) call_of[tev[e].op] = at;
        else ev[call_of[tev[e].op]].ret = at;
    }
    free(call_of);

    /* Ops are numbered in call order (idx is sorted by invoke), which F relies on. */
    uint32_t first = 0;
    while (first < m && ops[first].optional) first++;
    uint32_t value = LC_NIL;
    size_t depth = 0, xpos = 0;
    size_t best_depth = 0;
    uint32_t best_op = UINT32_MAX, best_value = LC_NIL;
    uint32_t best_recent[6];
    size_t best_n_recent = 0;
    if (memo_insert(&memo_tab, value, first, NULL, 0) < 0) goto oom_all;

    int32_t head = ev[0].next;
    bool new_configuration = true;
    uint64_t steps = 0;
    while (head != 0) {
        bool forced = false;
        /* A long search gives up once another key has failed: the verdict is known. */
        if (++steps % 65536 == 0 && stop != NULL && __atomic_load_n(stop, __ATOMIC_RELAXED)) {
            res.verdict = LC_UNDECIDED;
            res.stopped = true;
            break;
        }
        if (new_configuration) {
            new_configuration = false;
            /* A read (or refused cas) that fits the current value is linearized at once, with no
             * alternative tried: it changes nothing, and every operation that had to precede it
             * already is linearized, so any success that takes it later also works with it
             * taken now. Without this, a violation deep in a long history makes the search
             * enumerate every order of every group of concurrent reads before it. */
            /* (Only the first 32 candidates are looked at: forcing is an optimization, and the
             * calls of unknown operations, which never return, pile up at the front.) */
            int looked = 0;
            for (int32_t at = ev[0].next; at != 0 && !ev[at].is_return && looked++ < 32;
                 at = ev[at].next) {
                const rop *r = &ops[ev[at].op];
                uint32_t unchanged;
                if ((r->op->kind == LC_READ || r->cas_false) && step(r, value, &unchanged)) {
                    head = at;
                    forced = true;
                    break;
                }
            }
        }
        event *e = &ev[head];
        if (!e->is_return) {
            rop *o = &ops[e->op];
            uint32_t next_value;
            bool skip = o->xwrite && (xpos >= n_x || xs[xpos] != e->op || value == VAL_X);
            if (!skip && step(o, value, &next_value)) {
                /* The configuration after linearizing o: (F', list'). */
                uint32_t next_first = first;
                next_list.len = 0;
                if (!vec_reserve(&next_list, cur.len + 1)) goto oom_all;
                lin[e->op] = true;
                if (o->optional || e->op > first) {
                    size_t k = 0;
                    while (k < cur.len && cur.v[k] < e->op) next_list.v[next_list.len++] = cur.v[k++];
                    if (in_list(ops, e->op, first)) next_list.v[next_list.len++] = e->op;
                    while (k < cur.len) next_list.v[next_list.len++] = cur.v[k++];
                } else {
                    assert(e->op == first);
                    while (next_first < m && (lin[next_first] || ops[next_first].optional))
                        next_first++;
                    for (size_t k = 0; k < cur.len; k++)
                        if (in_list(ops, cur.v[k], next_first)) next_list.v[next_list.len++] = cur.v[k];
                }
                uint64_t position = next_first | (uint64_t)(xpos + (o->xwrite ? 1 : 0)) << 32;
                int fresh = memo_insert(&memo_tab, next_value, position, next_list.v, next_list.len);
                if (fresh < 0) goto oom_all;
                if (fresh == 1) {
                    if (max_configurations && memo_tab.used > max_configurations) {
                        res.verdict = LC_UNDECIDED;
                        break;
                    }
                    if (!vec_reserve(&saved, saved.len + cur.len)) goto oom_all;
                    frames[depth++] = (frame){.call = head, .prev_value = value,
                                              .prev_first = first, .saved_off = saved.len,
                                              .saved_len = (uint32_t)cur.len, .forced = forced};
                    if (cur.len > 0) memcpy(saved.v + saved.len, cur.v, cur.len * sizeof *cur.v);
                    saved.len += cur.len;
                    vec32 tmp = cur;
                    cur = next_list;
                    next_list = tmp;
                    first = next_first;
                    value = next_value;
                    if (o->xwrite) xpos++;
                    /* lift the call and its return */
                    ev[e->prev].next = e->next;
                    ev[e->next].prev = e->prev;
                    if (e->ret >= 0) {
                        event *r = &ev[e->ret];
                        ev[r->prev].next = r->next;
                        ev[r->next].prev = r->prev;
                    }
                    head = ev[0].next;
                    new_configuration = true;
                    continue;
                }
                lin[e->op] = false;
                if (forced) goto backtrack; /* the one way on was explored already: it fails */
            }
            head = e->next;
            continue;
        }
        /* A return before its operation could be linearized: backtrack. */
        if (depth >= best_depth || best_op == UINT32_MAX) {
            best_depth = depth;
            best_op = e->op;
            best_value = value;
            best_n_recent = 0;
            for (size_t k = depth > 6 ? depth - 6 : 0; k < depth; k++)
                best_recent[best_n_recent++] = ev[frames[k].call].op;
        }
    backtrack:
        if (depth == 0) {
            res.verdict = LC_VIOLATION;
            break;
        }
        frame *f = &frames[--depth];
        event *c = &ev[f->call];
        if (c->ret >= 0) {
            event *r = &ev[c->ret];
            ev[r->prev].next = c->ret;
            ev[r->next].prev = c->ret;
        }
        ev[c->prev].next = f->call;
        ev[c->next].prev = f->call;
        lin[c->op] = false;
        if (ops[c->op].xwrite) xpos--;
        value = f->prev_value;
        first = f->prev_first;
        cur.len = 0;
        if (!vec_reserve(&cur, f->saved_len)) goto oom_all;
        if (f->saved_len > 0) memcpy(cur.v, saved.v + f->saved_off, f->saved_len * sizeof *cur.v);
        cur.len = f->saved_len;
        saved.len = f->saved_off;
        if (f->forced) goto backtrack; /* no alternatives to a forced step: undo its parent too */
        head = c->next;
    }
    res.configurations = memo_tab.used;

    if (res.verdict == LC_VIOLATION) {
        const lc_op *bad_op = ops[best_op].op;
        fprintf(out, "key %s: NOT linearizable. With %zu of its %zu operations linearized, this one "
                     "cannot be, in any order:\n",
                lc_str(h, bad_op->key), best_depth, m);
        print_op(out, h, bad_op);
        const lc_op *writer = NULL; /* who wrote the value held, among the recent ops */
        for (size_t k = 0; k < best_n_recent; k++) {
            const rop *r = &ops[best_recent[k]];
            if (r->op->kind == LC_WRITE || (r->op->kind == LC_CAS && !r->cas_false)) writer = r->op;
        }
        if (best_value == VAL_X && writer != NULL)
            fprintf(out, "  the register then held %s (written at line %" PRIu32 ", a value no "
                         "read observed); the last operations linearized before it:\n",
                    lc_str(h, writer->kind == LC_WRITE ? writer->arg1 : writer->arg2), writer->line);
        else
            fprintf(out, "  the register then held %s; the last operations linearized before it:\n",
                    value_text(h, best_value));
        for (size_t k = 0; k < best_n_recent; k++) print_op(out, h, ops[best_recent[k]].op);
        fprintf(out, "  operations concurrent with it:\n");
        int shown = 0;
        for (size_t k = 0; k < m && shown < 10; k++) {
            const lc_op *o = ops[k].op;
            if (o != bad_op && o->invoke <= bad_op->complete && o->complete >= bad_op->invoke) {
                print_op(out, h, o);
                shown++;
            }
        }
    } else if (res.verdict == LC_UNDECIDED && res.stopped) {
        fprintf(out, "key %s: not finished (another key failed first)\n", lc_str(h, ops[0].op->key));
    } else if (res.verdict == LC_UNDECIDED) {
        fprintf(out, "key %s: undecided, the search passed %" PRIu64 " configurations\n",
                lc_str(h, ops[0].op->key), max_configurations);
    }
    goto done;

oom_all:
oom:
    fprintf(out, "lincheck: out of memory checking %zu operations on one key\n", n);
    res.verdict = LC_EBAD;
done:
    free(tev);
    free(ev);
    free(lin);
    free(xs);
    free(frames);
    free(cur.v);
    free(saved.v);
    free(next_list.v);
    free(memo_tab.slots);
    free(memo_tab.arena);
    free(observed.v);
    free(ops);
    return res;
}

static int cmp_by_key_invoke(const void *a, const void *b, void *context)
{
    const lc_history *h = context;
    const lc_op *x = &h->ops[*(const uint32_t *)a];
    const lc_op *y = &h->ops[*(const uint32_t *)b];
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    if (x->invoke != y->invoke) return x->invoke < y->invoke ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* Keys are independent: worker threads take the next unchecked key; each key's explanation goes
 * to its own buffer, printed in key order afterwards so the output does not depend on timing. */
typedef struct key_job {
    size_t start, end; /* range in idx */
    key_result result;
    char *text;
    size_t text_len;
} key_job;

typedef struct job_queue {
    const lc_history *h;
    const uint32_t *idx;
    key_job *jobs;
    size_t n_jobs, next;
    uint64_t max_configurations;
    int failed; /* set (atomically) by the first key found not linearizable */
    bool second_pass;
    pthread_mutex_t lock;
} job_queue;

/* Two passes: first every key with a budget a linearizable key never needs (a few times its
 * operation count), then, only if no key failed yet, the keys left undecided with the full budget.
 * A failing key usually fails fast, and then the other long searches can stop. */
static uint64_t first_pass_budget(const key_job *job, uint64_t max_configurations)
{
    uint64_t budget = 4 * (uint64_t)(job->end - job->start) + 100000;
    return max_configurations && max_configurations < budget ? max_configurations : budget;
}

static void *worker(void *arg)
{
    job_queue *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        size_t j = SIZE_MAX;
        while (q->next < q->n_jobs && j == SIZE_MAX) {
            size_t k = q->next++;
            if (!q->second_pass || (q->jobs[k].result.verdict == LC_UNDECIDED &&
                                    !q->jobs[k].result.stopped))
                j = k;
        }
        pthread_mutex_unlock(&q->lock);
        if (j == SIZE_MAX) return NULL;
        key_job *job = &q->jobs[j];
        if (q->second_pass && __atomic_load_n(&q->failed, __ATOMIC_RELAXED)) {
            job->result.stopped = true;
            continue;
        }
        free(job->text);
        job->text = NULL;
        FILE *out = open_memstream(&job->text, &job->text_len);
        if (out == NULL) {
            job->result.verdict = LC_EBAD;
            continue;
        }
        uint64_t budget = q->second_pass ? q->max_configurations
                                         : first_pass_budget(job, q->max_configurations);
        job->result = check_key(q->h, q->idx + job->start, job->end - job->start, budget,
                                &q->failed, out);

        if (job->result.verdict == LC_VIOLATION) __atomic_store_n(&q->failed, 1, __ATOMIC_RELAXED);
        fclose(out);
    }
}

int lc_check_register(const lc_history *h, uint64_t max_configurations, FILE *out, lc_stats *st)
{
    return lc_check_register_jobs(h, max_configurations, 1, out, st);
}

int lc_check_register_jobs(const lc_history *h, uint64_t max_configurations, unsigned jobs,
                           FILE *out, lc_stats *st)
{
    lc_stats local = {0};
    if (st == NULL) st = &local;
    memset(st, 0, sizeof *st);
    uint32_t *idx = malloc((h->n_ops + 1) * sizeof *idx);
    key_job *keys = calloc(h->n_ops + 1, sizeof *keys);
    if (idx == NULL || keys == NULL) {
        free(idx);
        free(keys);
        return LC_EBAD;
    }
    size_t n = 0, n_keys = 0;
    for (size_t i = 0; i < h->n_ops; i++) {
        lc_kind k = h->ops[i].kind;
        if (k == LC_READ || k == LC_WRITE || k == LC_CAS) idx[n++] = (uint32_t)i;
    }
    qsort_r(idx, n, sizeof *idx, cmp_by_key_invoke, (void *)h);
    for (size_t start = 0; start < n;) {
        size_t end = start;
        while (end < n && h->ops[idx[end]].key == h->ops[idx[start]].key) end++;
        keys[n_keys++] = (key_job){.start = start, .end = end};
        start = end;
    }
    job_queue q = {.h = h, .idx = idx, .jobs = keys, .n_jobs = n_keys,
                   .max_configurations = max_configurations};
    pthread_mutex_init(&q.lock, NULL);
    if (jobs < 1) jobs = 1;
    if (jobs > n_keys) jobs = n_keys ? (unsigned)n_keys : 1;
    for (int pass = 0; pass < 2; pass++) {
        q.second_pass = pass == 1;
        q.next = 0;
        pthread_t threads[64];
        unsigned started = 0;
        for (unsigned t = 1; t < jobs && t < 64; t++)
            if (pthread_create(&threads[started], NULL, worker, &q) == 0) started++;
        worker(&q); /* this thread works too */
        for (unsigned t = 0; t < started; t++) pthread_join(threads[t], NULL);
    }
    pthread_mutex_destroy(&q.lock);

    int verdict = LC_VALID;
    for (size_t k = 0; k < n_keys; k++) {
        key_result r = keys[k].result;
        if (keys[k].text != NULL) fwrite(keys[k].text, 1, keys[k].text_len, out);
        free(keys[k].text);
        st->keys++;
        st->ops_checked += r.ops;
        st->configurations += r.configurations;
        if (r.verdict == LC_VIOLATION) st->violations++;
        if (r.verdict == LC_EBAD) verdict = LC_EBAD;
        else if (r.verdict == LC_VIOLATION && verdict != LC_EBAD) verdict = LC_VIOLATION;
        else if (r.verdict == LC_UNDECIDED && verdict == LC_VALID) verdict = LC_UNDECIDED;
    }
    free(keys);
    free(idx);
    fprintf(out, "register: %" PRIu64 " operations on %" PRIu64 " keys, %" PRIu64
                 " configurations: %s\n",
            st->ops_checked, st->keys, st->configurations,
            verdict == LC_VALID       ? "linearizable"
            : verdict == LC_VIOLATION ? "NOT linearizable"
            : verdict == LC_UNDECIDED ? "undecided (search budget exhausted)"
                                      : "error");
    return verdict;
}
