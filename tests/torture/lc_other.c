/*
 * lc_other.c -- the append-set, multi-key and TTL checkers (contracts in lincheck.h).
 *
 * These need no search: each property names, for every read, what it must (or must not) contain.
 * A list result ("a,b,c") is split into interned ids on the fly.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lc_int.h"

/* Splits the comma-separated text of `id` into up to max ids (interning each word). Returns
 * the count, or -1 when out of memory. Ids of words not interned yet are still interned: h is
 * logically const (the checkers only compare ids). */
static long split_list(const lc_history *hc, uint32_t id, uint32_t **out, size_t *cap)
{
    lc_history *h = (lc_history *)hc;
    const char *s = lc_str(h, id);
    if (strcmp(s, "-") == 0) return 0;
    char *copy = strdup(s); /* the interning may move h->strs */
    if (copy == NULL) return -1;
    long n = 0;
    const char *at = copy;
    for (;;) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        if ((size_t)n == *cap) {
            size_t bigger = *cap ? *cap * 2 : 64;
            uint32_t *v = realloc(*out, bigger * sizeof *v);
            if (v == NULL) {
                free(copy);
                return -1;
            }
            *out = v;
            *cap = bigger;
        }
        uint32_t word = lc_intern(h, at, len);
        if (word == UINT32_MAX) {
            free(copy);
            return -1;
        }
        (*out)[n++] = word;
        if (comma == NULL) break;
        at = comma + 1;
    }
    free(copy);
    return n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static bool contains(const uint32_t *sorted, size_t n, uint32_t v)
{
    return bsearch(&v, sorted, n, sizeof v, cmp_u32) != NULL;
}


/* Indices of the ops of one kind, sorted by key then by arg1 (for bsearch by either). */
typedef struct op_index {
    uint32_t *idx;
    size_t n;
} op_index;

static int cmp_key_arg1(const void *a, const void *b, void *context)
{
    const lc_history *h = context;
    const lc_op *x = &h->ops[*(const uint32_t *)a];
    const lc_op *y = &h->ops[*(const uint32_t *)b];
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->arg1 > y->arg1) - (x->arg1 < y->arg1);
}

static bool index_build(op_index *ix, const lc_history *h, lc_kind kind)
{
    ix->n = 0;
    ix->idx = malloc((h->n_ops + 1) * sizeof *ix->idx);
    if (ix->idx == NULL) return false;
    for (size_t i = 0; i < h->n_ops; i++)
        if (h->ops[i].kind == kind) ix->idx[ix->n++] = (uint32_t)i;
    qsort_r(ix->idx, ix->n, sizeof *ix->idx, cmp_key_arg1, (void *)h);
    return true;
}

/* [*from, *to) = the entries with this key (and this arg1 unless arg1 == UINT32_MAX). */
static void index_range(const op_index *ix, const lc_history *h, uint32_t key, uint32_t arg1,
                        size_t *from, size_t *to)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) { /* first entry >= (key, arg1 or 0) */
        size_t mid = (lo + hi) / 2;
        const lc_op *o = &h->ops[ix->idx[mid]];
        bool less = o->key < key || (o->key == key && arg1 != UINT32_MAX && o->arg1 < arg1);
        if (less) lo = mid + 1;
        else hi = mid;
    }
    *from = lo;
    size_t end = lo;
    while (end < ix->n && h->ops[ix->idx[end]].key == key &&
           (arg1 == UINT32_MAX || h->ops[ix->idx[end]].arg1 == arg1))
        end++;
    *to = end;
}

int lc_check_set(const lc_history *h, FILE *out, lc_stats *st)
{
    lc_stats local = {0};
    if (st == NULL) st = &local;
    memset(st, 0, sizeof *st);
    uint32_t *elems = NULL;
    size_t cap = 0;
    int verdict = LC_VALID;
    bool *key_done = calloc(h->n_strs + 1, sizeof *key_done);
    if (key_done == NULL) return LC_EBAD;
    for (size_t r = 0; r < h->n_ops; r++) {
        const lc_op *add = &h->ops[r];
        if (add->kind != LC_ADD || key_done[add->key]) continue;
        key_done[add->key] = true;
        st->keys++;
        uint32_t set = add->key;
        size_t reads = 0, n_added = 0;
        uint32_t *added = malloc((h->n_ops + 1) * sizeof *added); /* every element tried */
        if (added == NULL) {
            free(key_done);
            free(elems);
            return LC_EBAD;
        }
        for (size_t j = 0; j < h->n_ops; j++)
            if (h->ops[j].kind == LC_ADD && h->ops[j].key == set) added[n_added++] = h->ops[j].arg1;
        qsort(added, n_added, sizeof *added, cmp_u32);
        for (size_t i = 0; i < h->n_ops; i++) {
            const lc_op *rd = &h->ops[i];
            if (rd->kind != LC_READ || rd->key != set || rd->outcome != LC_OK) continue;
            reads++;
            st->ops_checked++;
            long n = split_list(h, rd->result, &elems, &cap);
            if (n < 0) {
                free(added);
                free(key_done);
                free(elems);
                return LC_EBAD;
            }
            qsort(elems, (size_t)n, sizeof *elems, cmp_u32);
            for (size_t j = 0; j < h->n_ops; j++) {
                const lc_op *a = &h->ops[j];
                if (a->kind != LC_ADD || a->key != set) continue;
                bool present = contains(elems, (size_t)n, a->arg1);
                if (a->outcome == LC_OK && a->complete < rd->invoke && !present) {
                    fprintf(out, "set %s: acknowledged add of %s (line %" PRIu32
                                 ") is missing from the read at line %" PRIu32 " (LOST WRITE)\n",
                            lc_str(h, set), lc_str(h, a->arg1), a->line, rd->line);
                    st->violations++;
                } else if (a->outcome == LC_FAIL && present) {
                    fprintf(out, "set %s: add of %s (line %" PRIu32 ") failed for sure but the "
                                 "read at line %" PRIu32 " holds it\n",
                            lc_str(h, set), lc_str(h, a->arg1), a->line, rd->line);
                    st->violations++;
                }
            }
            for (long k = 0; k < n; k++) {
                if (!contains(added, n_added, elems[k])) {
                    fprintf(out, "set %s: the read at line %" PRIu32 " holds %s, never added\n",
                            lc_str(h, set), rd->line, lc_str(h, elems[k]));
                    st->violations++;
                }
            }
        }
        for (size_t j = 0; j < h->n_ops; j++)
            if (h->ops[j].kind == LC_ADD && h->ops[j].key == set) st->ops_checked++;
        free(added);
        if (reads == 0) {
            fprintf(out, "set %s: no successful read, so no add can be confirmed\n", lc_str(h, set));
            st->violations++;
        }
    }
    free(key_done);
    free(elems);
    if (st->violations) verdict = LC_VIOLATION;
    fprintf(out, "set: %" PRIu64 " operations on %" PRIu64 " sets: %s\n", st->ops_checked, st->keys,
            verdict == LC_VALID ? "every acknowledged add is present" : "VIOLATIONS");
    return verdict;
}

int lc_check_multi(const lc_history *h, FILE *out, lc_stats *st)
{
    lc_stats local = {0};
    if (st == NULL) st = &local;
    memset(st, 0, sizeof *st);
    uint32_t *vals = NULL;
    size_t cap = 0;
    op_index msets;
    if (!index_build(&msets, h, LC_MSET)) return LC_EBAD;
    for (size_t i = 0; i < h->n_ops; i++) {
        const lc_op *rd = &h->ops[i];
        if (rd->kind == LC_MSET) st->ops_checked++;
        if (rd->kind != LC_MGET || rd->outcome != LC_OK) continue;
        st->ops_checked++;
        long n = split_list(h, rd->result, &vals, &cap);
        if (n < 0) {
            free(vals);
            free(msets.idx);
            return LC_EBAD;
        }
        bool mixed = false;
        for (long k = 1; k < n; k++) mixed |= vals[k] != vals[0];
        if (mixed) {
            fprintf(out, "group %s: the mget at line %" PRIu32 " (client %" PRId32
                         ") sees a mix of writes: %s\n",
                    lc_str(h, rd->key), rd->line, rd->client, lc_str(h, rd->result));
            st->violations++;
            continue;
        }
        uint32_t seen = n > 0 ? vals[0] : LC_NIL;
        bool written = seen == LC_NIL, lost = false;
        int64_t latest_ok = -1;
        size_t from, to;
        if (seen != LC_NIL) {
            index_range(&msets, h, rd->key, seen, &from, &to);
            for (size_t j = from; j < to; j++) {
                const lc_op *w = &h->ops[msets.idx[j]];
                if (w->outcome != LC_FAIL && w->invoke <= rd->complete) written = true;
            }
        } else {
            index_range(&msets, h, rd->key, UINT32_MAX, &from, &to);
            for (size_t j = from; j < to && latest_ok < 0; j++) {
                const lc_op *w = &h->ops[msets.idx[j]];
                if (w->outcome == LC_OK && w->complete < rd->invoke) latest_ok = w->complete;
            }
        }
        if (seen == LC_NIL && latest_ok >= 0) lost = true;
        if (!written) {
            fprintf(out, "group %s: the mget at line %" PRIu32 " returns %s, which no mset wrote\n",
                    lc_str(h, rd->key), rd->line, lc_str(h, seen));
            st->violations++;
        } else if (lost) {
            fprintf(out, "group %s: the mget at line %" PRIu32 " finds no value although an mset "
                         "was acknowledged before it (LOST WRITE)\n",
                    lc_str(h, rd->key), rd->line);
            st->violations++;
        }
    }
    free(vals);
    free(msets.idx);
    /* Each group is written only whole, so once no mget saw a mix, a group is one register:
     * mset = write, mget = read of that one value. Check its linearizability too (stale reads,
     * lost msets). */
    if (st->violations == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *conv = open_memstream(&text, &len);
        if (conv == NULL) return LC_EBAD;
        for (size_t i = 0; i < h->n_ops; i++) {
            const lc_op *o = &h->ops[i];
            if (o->kind != LC_MSET && !(o->kind == LC_MGET && o->outcome == LC_OK)) continue;
            const char *first = lc_str(h, o->result);
            size_t first_len = strcspn(first, ",");
            fprintf(conv, "%" PRId32 "\t%s\t%s\t%s\t-\t%" PRId64 "\t", o->client,
                    o->kind == LC_MSET ? "write" : "read", lc_str(h, o->key),
                    o->kind == LC_MSET ? lc_str(h, o->arg1) : "-", o->invoke);
            if (o->outcome == LC_UNKNOWN) fprintf(conv, "-\tunknown\t-\n");
            else fprintf(conv, "%" PRId64 "\t%s\t%.*s\n", o->complete,
                         o->outcome == LC_OK ? "ok" : "fail",
                         o->kind == LC_MGET ? (int)first_len : 1,
                         o->kind == LC_MGET ? first : "-");
        }
        fclose(conv);
        char err[256];
        lc_history *reg = lc_history_parse(text ? text : "", "multi-as-registers", err, sizeof err);
        free(text);
        if (reg == NULL) {
            fprintf(out, "multi: %s\n", err);
            return LC_EBAD;
        }
        lc_stats reg_st;
        int reg_verdict = lc_check_register(reg, 0, out, &reg_st);
        lc_history_free(reg);
        if (reg_verdict == LC_EBAD) return LC_EBAD;
        st->violations += reg_st.violations;
    }
    int verdict = st->violations ? LC_VIOLATION : LC_VALID;
    fprintf(out, "multi: %" PRIu64 " operations: %s\n", st->ops_checked,
            verdict == LC_VALID ? "every mget saw one whole mset, groups linearizable"
                                : "VIOLATIONS");
    return verdict;
}

int lc_check_ttl(const lc_history *h, int64_t tolerance_us, FILE *out, lc_stats *st)
{
    lc_stats local = {0};
    if (st == NULL) st = &local;
    memset(st, 0, sizeof *st);
    op_index reads;
    if (!index_build(&reads, h, LC_READ)) return LC_EBAD;
    for (size_t s = 0; s < h->n_ops; s++) {
        const lc_op *set = &h->ops[s];
        if (set->kind != LC_SETTTL) continue;
        st->ops_checked++;
        size_t from, to;
        index_range(&reads, h, set->key, UINT32_MAX, &from, &to);
        /* Each key is set once (its name is its value): a read may see that value or nothing,
         * and sees the value of a set that definitely failed never. */
        for (size_t i = from; i < to; i++) {
            const lc_op *rd = &h->ops[reads.idx[i]];
            if (rd->outcome != LC_OK || rd->result == LC_NIL) continue;
            if (rd->result != set->arg1 || set->outcome == LC_FAIL) {
                fprintf(out, "ttl %s: the read at line %" PRIu32 " sees %s, but the only set of the "
                             "key (line %" PRIu32 ", %s) wrote %s (%s)\n",
                        lc_str(h, set->key), rd->line, lc_str(h, rd->result), set->line,
                        set->outcome == LC_FAIL ? "failed" : "not failed", lc_str(h, set->arg1),
                        rd->result != set->arg1 ? "VALUE NEVER WRITTEN" : "FAILED SET TOOK EFFECT");
                st->violations++;
            }
        }
        if (set->outcome != LC_OK) continue;
        st->keys++;
        int64_t ttl_us = strtoll(lc_str(h, set->arg2), NULL, 10) * 1000;
        int64_t gone_after = set->complete + ttl_us + tolerance_us;
        int64_t alive_before = set->invoke + ttl_us - tolerance_us;
        for (size_t i = from; i < to; i++) {
            const lc_op *rd = &h->ops[reads.idx[i]];
            if (rd->outcome != LC_OK) continue;
            if (rd->invoke > gone_after && rd->result != LC_NIL) {
                fprintf(out, "ttl %s: set at line %" PRIu32 " with ttl %s ms must be gone by %" PRId64
                             " but the read at line %" PRIu32 " (invoked %" PRId64 ") sees %s "
                             "(EXPIRY NOT HONOURED)\n",
                        lc_str(h, set->key), set->line, lc_str(h, set->arg2), gone_after, rd->line,
                        rd->invoke, lc_str(h, rd->result));
                st->violations++;
            } else if (rd->invoke > set->complete && rd->complete < alive_before &&
                       rd->result != set->arg1) {
                fprintf(out, "ttl %s: set at line %" PRIu32 " with ttl %s ms must live until %" PRId64
                             " but the read at line %" PRIu32 " (completed %" PRId64 ") sees %s "
                             "(EXPIRED EARLY OR LOST)\n",
                        lc_str(h, set->key), set->line, lc_str(h, set->arg2), alive_before,
                        rd->line, rd->complete, lc_str(h, rd->result));
                st->violations++;
            }
        }
    }
    for (size_t i = 0; i < h->n_ops; i++)
        if (h->ops[i].kind == LC_READ && h->ops[i].outcome == LC_OK) st->ops_checked++;
    free(reads.idx);
    int verdict = st->violations ? LC_VIOLATION : LC_VALID;
    fprintf(out, "ttl: %" PRIu64 " operations, %" PRIu64 " keys with a known expiry: %s\n",
            st->ops_checked, st->keys,
            verdict == LC_VALID ? "every expiry honoured" : "VIOLATIONS");
    return verdict;
}
