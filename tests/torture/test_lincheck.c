/*
 * test_lincheck.c -- the checkers judge known histories right, and name the offending operations.
 *
 * Histories are written inline in the TSV format of lincheck.h; H() joins the fields with tabs:
 *   client op key arg1 arg2 invoke complete outcome result
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lincheck.h"

#define H(c, op, k, a1, a2, t0, t1, out, res) \
    #c "\t" #op "\t" #k "\t" #a1 "\t" #a2 "\t" #t0 "\t" #t1 "\t" #out "\t" #res "\n"

typedef struct run {
    int verdict;
    char *text; /* what the checker printed */
    lc_stats st;
} run;

enum model { REGISTER, SET, MULTI, TTL };

static run check(enum model model, const char *history)
{
    run r = {0};
    char err[256];
    lc_history *h = lc_history_parse(history, "inline", err, sizeof err);
    if (h == NULL) fail_msg("parse: %s", err);
    size_t len = 0;
    FILE *out = open_memstream(&r.text, &len);
    assert_non_null(out);
    switch (model) {
    case REGISTER: r.verdict = lc_check_register(h, 0, out, &r.st); break;
    case SET: r.verdict = lc_check_set(h, out, &r.st); break;
    case MULTI: r.verdict = lc_check_multi(h, out, &r.st); break;
    case TTL: r.verdict = lc_check_ttl(h, 100000, out, &r.st); break;
    }
    fclose(out);
    lc_history_free(h);
    if (getenv("TEST_LOG")) fprintf(stderr, "%s", r.text);
    return r;
}

static void expect(enum model model, const char *history, int verdict, const char *needle)
{
    run r = check(model, history);
    if (r.verdict != verdict) {
        fprintf(stderr, "checker said:\n%s", r.text);
        fail_msg("verdict %d, expected %d", r.verdict, verdict);
    }
    if (needle != NULL && strstr(r.text, needle) == NULL) {
        fprintf(stderr, "checker said:\n%s", r.text);
        fail_msg("output lacks '%s'", needle);
    }
    free(r.text);
}

/* ---- register: linearizable ---- */

static void sequentialHistoryPasses(void **state)
{
    (void)state;
    expect(REGISTER,
           H(1, read, x, -, -, 0, 1, ok, -)
           H(1, write, x, a, -, 2, 3, ok, -)
           H(2, read, x, -, -, 4, 5, ok, a)
           H(2, cas, x, a, b, 6, 7, ok, true)
           H(1, cas, x, a, c, 8, 9, ok, false)
           H(1, read, x, -, -, 10, 11, ok, b),
           LC_VALID, "linearizable");
}

static void concurrentReadMaySeeEitherValue(void **state)
{
    (void)state;
    /* Both reads overlap the write of b and each other: client 3 may see a (linearized before
     * the write) even though client 2's read, which ended first, saw b. */
    expect(REGISTER,
           H(1, write, x, a, -, 0, 1, ok, -)
           H(1, write, x, b, -, 10, 30, ok, -)
           H(2, read, x, -, -, 12, 14, ok, b)
           H(3, read, x, -, -, 13, 20, ok, a)
           H(2, read, x, -, -, 31, 32, ok, b),
           LC_VALID, "linearizable");
}

static void overlappingReadsInEitherOrderPass(void **state)
{
    (void)state;
    expect(REGISTER,
           H(1, write, x, a, -, 0, 1, ok, -)
           H(1, write, x, b, -, 10, 30, ok, -)
           H(3, read, x, -, -, 11, 20, ok, a)
           H(2, read, x, -, -, 12, 14, ok, b)
           H(2, read, x, -, -, 31, 32, ok, b),
           LC_VALID, "linearizable");
}

/* ---- register: the three classic anomalies ---- */

static void staleReadFails(void **state)
{
    (void)state;
    /* b was acknowledged at t=3; a read starting at t=5 still returns a. */
    expect(REGISTER,
           H(1, write, x, a, -, 0, 1, ok, -)
           H(1, write, x, b, -, 2, 3, ok, -)
           H(2, read, x, -, -, 5, 6, ok, a),
           LC_VIOLATION, "line 3: client 2 read x -> a");
}

static void lostWriteFails(void **state)
{
    (void)state;
    /* An acknowledged write that no later read ever sees: the register went back to nothing. */
    expect(REGISTER,
           H(1, write, k, v1, -, 0, 10, ok, -)
           H(2, read, k, -, -, 20, 21, ok, -)
           H(3, read, k, -, -, 22, 23, ok, -),
           LC_VIOLATION, "NOT linearizable");
}

static void writeSeenThenUnseenFails(void **state)
{
    (void)state;
    expect(REGISTER,
           H(1, write, k, old, -, 0, 1, ok, -)
           H(1, write, k, new, -, 2, 40, unknown, -)
           H(2, read, k, -, -, 5, 6, ok, new)
           H(3, read, k, -, -, 8, 9, ok, old),
           LC_VIOLATION, "line 4: client 3 read k -> old");
}

static void readOfValueNeverWrittenFails(void **state)
{
    (void)state;
    expect(REGISTER, H(1, write, k, a, -, 0, 1, ok, -) H(2, read, k, -, -, 2, 3, ok, zzz),
           LC_VIOLATION, "read k -> zzz");
}

static void casMustSeeExpectedValue(void **state)
{
    (void)state;
    /* cas a->b succeeded although the register held c since t=3. */
    expect(REGISTER,
           H(1, write, k, a, -, 0, 1, ok, -)
           H(1, write, k, c, -, 2, 3, ok, -)
           H(2, cas, k, a, b, 4, 5, ok, true),
           LC_VIOLATION, "cas k a -> b");
    /* A refused cas says the value was not the expected one. */
    expect(REGISTER,
           H(1, write, k, a, -, 0, 1, ok, -)
           H(2, cas, k, a, b, 4, 5, ok, false),
           LC_VIOLATION, "cas k a -> b : false");
}

/* ---- register: unknown outcomes ---- */

static void unknownWriteMayHaveHappened(void **state)
{
    (void)state;
    expect(REGISTER,
           H(1, write, k, a, -, 0, 1, ok, -)
           H(2, write, k, b, -, 2, -, unknown, -)
           H(3, read, k, -, -, 1000, 1001, ok, b)
           H(3, read, k, -, -, 1002, 1003, ok, b),
           LC_VALID, NULL);
}

static void unknownWriteMayNotHaveHappened(void **state)
{
    (void)state;
    expect(REGISTER,
           H(1, write, k, a, -, 0, 1, ok, -)
           H(2, write, k, b, -, 2, -, unknown, -)
           H(2, write, k, c, -, 3, -, unknown, -)
           H(2, cas, k, a, d, 4, -, unknown, -)
           H(3, read, k, -, -, 1000, 1001, ok, a),
           LC_VALID, NULL);
}

static void unknownWriteCannotTakeEffectBeforeItsCall(void **state)
{
    (void)state;
    expect(REGISTER,
           H(3, read, k, -, -, 0, 1, ok, b)
           H(2, write, k, b, -, 5, -, unknown, -),
           LC_VIOLATION, "read k -> b");
}

static void unknownWriteTakesEffectOnlyOnce(void **state)
{
    (void)state;
    /* b can appear, be overwritten by c, but cannot come back. */
    expect(REGISTER,
           H(2, write, k, b, -, 0, -, unknown, -)
           H(3, read, k, -, -, 10, 11, ok, b)
           H(1, write, k, c, -, 12, 13, ok, -)
           H(3, read, k, -, -, 14, 15, ok, b),
           LC_VIOLATION, NULL);
}

static void failedOperationsAreIgnoredButCannotBeSeen(void **state)
{
    (void)state;
    expect(REGISTER,
           H(1, write, k, a, -, 0, 1, ok, -)
           H(2, write, k, b, -, 2, 3, fail, -)
           H(3, read, k, -, -, 4, 5, fail, -)
           H(3, read, k, -, -, 6, 7, ok, a),
           LC_VALID, NULL);
    expect(REGISTER,
           H(1, write, k, a, -, 0, 1, ok, -)
           H(2, write, k, b, -, 2, 3, fail, -)
           H(3, read, k, -, -, 6, 7, ok, b),
           LC_VIOLATION, NULL);
}

static void keysAreCheckedIndependently(void **state)
{
    (void)state;
    run r = check(REGISTER, H(1, write, x, a, -, 0, 1, ok, -) H(1, write, y, b, -, 2, 3, ok, -)
                                H(2, read, x, -, -, 4, 5, ok, a) H(2, read, y, -, -, 4, 5, ok, -));
    assert_int_equal(r.verdict, LC_VIOLATION);
    assert_int_equal(r.st.keys, 2);
    assert_int_equal(r.st.violations, 1);
    assert_non_null(strstr(r.text, "key y: NOT linearizable"));
    assert_null(strstr(r.text, "key x: NOT"));
    free(r.text);
}


static void threadedCheckPrintsTheSame(void **state)
{
    (void)state;
    const char *text = H(1, write, x, a, -, 0, 1, ok, -) H(1, write, y, b, -, 2, 3, ok, -)
        H(1, write, z, c, -, 2, 3, ok, -) H(2, read, x, -, -, 4, 5, ok, a)
        H(2, read, y, -, -, 4, 5, ok, -) H(2, read, z, -, -, 4, 5, ok, a);
    char err[256];
    lc_history *h = lc_history_parse(text, "inline", err, sizeof err);
    assert_non_null(h);
    char *one = NULL, *four = NULL;
    size_t one_len = 0, four_len = 0;
    FILE *out = open_memstream(&one, &one_len);
    assert_int_equal(lc_check_register_jobs(h, 0, 1, out, NULL), LC_VIOLATION);
    fclose(out);
    out = open_memstream(&four, &four_len);
    lc_stats st;
    assert_int_equal(lc_check_register_jobs(h, 0, 4, out, &st), LC_VIOLATION);
    fclose(out);
    assert_int_equal(st.violations, 2);
    assert_string_equal(one, four);
    assert_true(strstr(four, "key y: NOT") < strstr(four, "key z: NOT")); /* key order */
    free(one);
    free(four);
    lc_history_free(h);
}

/* ---- register: generated histories ---- */

static char *generate(uint64_t seed, size_t n, int unknown_percent)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    lc_generate_register(out, seed, n, 10, 5, unknown_percent);
    fclose(out);
    return text;
}

static void generatedHistoryOf100kOpsPasses(void **state)
{
    (void)state;
    char *text = generate(42, 100000, 3);
    run r = check(REGISTER, text);
    assert_int_equal(r.verdict, LC_VALID);
    assert_true(r.st.ops_checked > 90000);
    free(r.text);
    free(text);
}

static void generatedHistoriesWithOneBadReadFail(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        char *text = generate(seed, 2000, 10);
        /* Corrupt the result of the 100th successful read that saw a value: stale by one write
         * would not always be wrong, a value never written always is. */
        int seen = 0;
        char *line = text;
        while (line && *line) {
            char *eol = strchr(line, '\n');
            if (strstr(line, "\tread\t") != NULL && strstr(line, "\tok\tv") != NULL &&
                strstr(line, "\tok\tv") < eol && ++seen == 100) {
                char *res = strstr(line, "\tok\tv") + 4;
                res[0] = 'Z';
                break;
            }
            line = eol ? eol + 1 : NULL;
        }
        assert_int_equal(seen, 100);
        run r = check(REGISTER, text);
        assert_int_equal(r.verdict, LC_VIOLATION);
        assert_non_null(strstr(r.text, "-> Z"));
        free(r.text);
        free(text);
    }
}


/* ---- register: agreement with a brute-force search on small random histories ---- */

/* Tries every order of the ops not in `done` that respects real time; required ops must all be
 * placed, unknown writes/cas may be. */
static bool brute_force(const lc_history *h, uint32_t done, uint32_t value)
{
    size_t n = lc_history_len(h);
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        const lc_op *o = lc_history_op(h, i);
        if (o->outcome == LC_OK && !(done & (1u << i))) all = false;
    }
    if (all) return true;
    for (size_t i = 0; i < n; i++) {
        const lc_op *o = lc_history_op(h, i);
        if (done & (1u << i) || o->outcome == LC_FAIL) continue;
        if (o->outcome == LC_UNKNOWN && o->kind == LC_READ) continue;
        bool blocked = false; /* an op that completed before o began must come first */
        for (size_t j = 0; j < n; j++) {
            const lc_op *p = lc_history_op(h, j);
            if (!(done & (1u << j)) && p->outcome == LC_OK && p->complete < o->invoke) blocked = true;
        }
        if (blocked) continue;
        uint32_t next = value;
        if (o->kind == LC_READ) {
            if (value != o->result) continue;
        } else if (o->kind == LC_WRITE) {
            next = o->arg1;
        } else if (o->outcome == LC_OK && strcmp(lc_str(h, o->result), "false") == 0) {
            if (value == o->arg1) continue;
        } else {
            if (value != o->arg1) continue;
            next = o->arg2;
        }
        if (brute_force(h, done | (1u << i), next)) return true;
    }
    return false;
}

static void agreesWithBruteForceOnSmallHistories(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    int valid = 0, invalid = 0;
    for (int round = 0; round < 1500; round++) {
        char text[2048];
        size_t len = 0;
        int n = 3 + (int)(rng % 5);
        for (int i = 0; i < n; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t r = rng >> 20;
            int kind = (int)(r % 3), outcome = (int)((r >> 4) % 5), inv = (int)((r >> 8) % 20);
            int comp = inv + (int)((r >> 16) % 10), other = (int)((r >> 24) % (uint64_t)n);
            const char *out = outcome < 3 ? "ok" : outcome == 3 ? "unknown" : "fail";
            char comp_text[16];
            snprintf(comp_text, sizeof comp_text, "%d", comp);
            if (outcome == 3) snprintf(comp_text, sizeof comp_text, "-");
            if (kind == 0) {
                char res[16] = "-";
                if ((r >> 30) % 4 != 0) snprintf(res, sizeof res, "v%d", other);
                len += (size_t)snprintf(text + len, sizeof text - len, "%d\tread\tk\t-\t-\t%d\t%s\t%s\t%s\n",
                                        i, inv, comp_text, out, res);
            } else if (kind == 1) {
                len += (size_t)snprintf(text + len, sizeof text - len, "%d\twrite\tk\tv%d\t-\t%d\t%s\t%s\t-\n",
                                        i, i, inv, comp_text, out);
            } else {
                const char *res = outcome < 3 ? ((r >> 32) % 2 ? "true" : "false") : "-";
                len += (size_t)snprintf(text + len, sizeof text - len, "%d\tcas\tk\tv%d\tv%d\t%d\t%s\t%s\t%s\n",
                                        i, other, i, inv, comp_text, out, res);
            }
        }
        char err[256];
        lc_history *h = lc_history_parse(text, "random", err, sizeof err);
        if (h == NULL) fail_msg("%s", err);
        FILE *sink = fopen("/dev/null", "w");
        assert_non_null(sink);
        int verdict = lc_check_register(h, 0, sink, NULL);
        fclose(sink);
        bool expected = brute_force(h, 0, LC_NIL);
        if ((verdict == LC_VALID) != expected) {
            fprintf(stderr, "history:\n%s", text);
            fail_msg("lincheck says %d, brute force says %s", verdict, expected ? "valid" : "invalid");
        }
        expected ? valid++ : invalid++;
        lc_history_free(h);
    }
    /* Both verdicts must have been exercised, or the comparison proves little. */
    assert_true(valid > 200);
    assert_true(invalid > 200);
}

/* ---- append set ---- */

static void setWithEveryAckedAddPasses(void **state)
{
    (void)state;
    expect(SET,
           H(1, add, s1, e1, -, 0, 1, ok, -)
           H(2, add, s1, e2, -, 0, -, unknown, -)
           H(2, add, s1, e3, -, 2, 3, fail, -)
           H(1, read, s1, -, -, 10, 11, ok, e1)
           "1\tread\ts1\t-\t-\t12\t13\tok\te1,e2\n",
           LC_VALID, NULL);
}

static void setLostAddAndPhantomFail(void **state)
{
    (void)state;
    expect(SET, H(1, add, s1, e1, -, 0, 1, ok, -) H(1, add, s1, e2, -, 2, 3, ok, -)
                    H(1, read, s1, -, -, 10, 11, ok, e2),
           LC_VIOLATION, "acknowledged add of e1 (line 1) is missing from the read at line 3");
    expect(SET, H(1, add, s1, e1, -, 0, 1, ok, -) "1\tread\ts1\t-\t-\t10\t11\tok\te1,e9\n",
           LC_VIOLATION, "holds e9, never added");
    expect(SET, H(1, add, s1, e1, -, 0, 1, ok, -), LC_VIOLATION, "no successful read");
}

/* ---- multi-key ---- */

static void multiWholeMsetsPass(void **state)
{
    (void)state;
    expect(MULTI,
           "1\tmget\tg1\t-\t-\t0\t1\tok\t-,-,-\n"
           H(1, mset, g1, a, -, 2, 3, ok, -)
           H(2, mset, g1, b, -, 2, -, unknown, -)
           "3\tmget\tg1\t-\t-\t4\t5\tok\ta,a,a\n"
           "3\tmget\tg1\t-\t-\t6\t7\tok\tb,b,b\n",
           LC_VALID, NULL);
}

static void multiMixedMgetFails(void **state)
{
    (void)state;
    expect(MULTI,
           H(1, mset, g1, a, -, 2, 3, ok, -)
           H(2, mset, g1, b, -, 2, 4, ok, -)
           "3\tmget\tg1\t-\t-\t5\t6\tok\ta,b,a\n",
           LC_VIOLATION, "mget at line 3 (client 3) sees a mix of writes: a,b,a");
    expect(MULTI, H(1, mset, g1, a, -, 2, 3, ok, -) "3\tmget\tg1\t-\t-\t5\t6\tok\t-,-\n",
           LC_VIOLATION, "LOST WRITE");
    /* Whole but stale: b was acknowledged after a, then a read sees a again. */
    expect(MULTI,
           H(1, mset, g1, a, -, 2, 3, ok, -)
           H(2, mset, g1, b, -, 4, 5, ok, -)
           "3\tmget\tg1\t-\t-\t6\t7\tok\tb,b\n"
           "3\tmget\tg1\t-\t-\t8\t9\tok\ta,a\n",
           LC_VIOLATION, "key g1: NOT linearizable");
}

/* ---- TTL (tolerance 100 ms in check()) ---- */

static void ttlHonouredPasses(void **state)
{
    (void)state;
    expect(TTL,
           H(1, setttl, t1, v, 1000, 0, 1000, ok, -)
           H(1, read, t1, -, -, 2000, 3000, ok, v)
           H(1, read, t1, -, -, 1200000, 1200001, ok, -),
           LC_VALID, NULL);
}

static void ttlResetByFailoverFails(void **state)
{
    (void)state;
    /* Set with 1 s at t=0..1 ms; still visible 3 s later (the new leader restarted the clock). */
    expect(TTL,
           H(1, setttl, t1, v, 1000, 0, 1000, ok, -)
           H(2, read, t1, -, -, 3000000, 3000100, ok, v),
           LC_VIOLATION, "EXPIRY NOT HONOURED");
    expect(TTL,
           H(1, setttl, t1, v, 10000, 0, 1000, ok, -)
           H(2, read, t1, -, -, 2000000, 2000100, ok, -),
           LC_VIOLATION, "EXPIRED EARLY OR LOST");
}

static void ttlReadOfAValueNeverWrittenFails(void **state)
{
    (void)state;
    /* Between the set and its expiry no time bound applies, but the value still must be the
     * set's; and a set that definitely failed must never be seen. */
    expect(TTL,
           H(1, setttl, t1, v, 4000, 0, 1000, ok, -)
           H(2, read, t1, -, -, 3000000, 3000100, ok, zzz),
           LC_VIOLATION, "VALUE NEVER WRITTEN");
    expect(TTL,
           H(1, setttl, t1, v, 4000, 0, 1000, fail, -)
           H(2, read, t1, -, -, 2000, 3000, ok, v),
           LC_VIOLATION, "FAILED SET TOOK EFFECT");
    expect(TTL,
           H(1, setttl, t1, v, 4000, 0, 1000, unknown, -)
           H(2, read, t1, -, -, 2000, 3000, ok, v),
           LC_VALID, NULL);
}

/* ---- parsing ---- */

static void malformedLinesNameLineAndField(void **state)
{
    (void)state;
    char err[256];
    assert_null(lc_history_parse(H(1, write, x, a, -, 0, 1, ok, -) H(1, fly, x, a, -, 0, 1, ok, -),
                                 "h.tsv", err, sizeof err));
    assert_string_equal(err, "h.tsv:2: field 2 (op): unknown operation 'fly'");
    assert_null(lc_history_parse(H(1, write, x, a, -, 5, 1, ok, -), "h.tsv", err, sizeof err));
    assert_string_equal(err, "h.tsv:1: field 7 (complete_us): expected an integer >= invoke_us");
    assert_null(lc_history_parse("1\twrite\tx\n", "h.tsv", err, sizeof err));
    assert_string_equal(err, "h.tsv:1: 3 fields, expected 9 separated by tabs");
    assert_null(lc_history_parse(H(1, cas, x, a, b, 0, 1, ok, yes), "h.tsv", err, sizeof err));
    assert_string_equal(err, "h.tsv:1: field 9 (result): a cas result is true or false");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sequentialHistoryPasses),
        cmocka_unit_test(concurrentReadMaySeeEitherValue),
        cmocka_unit_test(overlappingReadsInEitherOrderPass),
        cmocka_unit_test(staleReadFails),
        cmocka_unit_test(lostWriteFails),
        cmocka_unit_test(writeSeenThenUnseenFails),
        cmocka_unit_test(readOfValueNeverWrittenFails),
        cmocka_unit_test(casMustSeeExpectedValue),
        cmocka_unit_test(unknownWriteMayHaveHappened),
        cmocka_unit_test(unknownWriteMayNotHaveHappened),
        cmocka_unit_test(unknownWriteCannotTakeEffectBeforeItsCall),
        cmocka_unit_test(unknownWriteTakesEffectOnlyOnce),
        cmocka_unit_test(failedOperationsAreIgnoredButCannotBeSeen),
        cmocka_unit_test(keysAreCheckedIndependently),
        cmocka_unit_test(threadedCheckPrintsTheSame),
        cmocka_unit_test(generatedHistoryOf100kOpsPasses),
        cmocka_unit_test(generatedHistoriesWithOneBadReadFail),
        cmocka_unit_test(agreesWithBruteForceOnSmallHistories),
        cmocka_unit_test(setWithEveryAckedAddPasses),
        cmocka_unit_test(setLostAddAndPhantomFail),
        cmocka_unit_test(multiWholeMsetsPass),
        cmocka_unit_test(multiMixedMgetFails),
        cmocka_unit_test(ttlHonouredPasses),
        cmocka_unit_test(ttlResetByFailoverFails),
        cmocka_unit_test(ttlReadOfAValueNeverWrittenFails),
        cmocka_unit_test(malformedLinesNameLineAndField),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
