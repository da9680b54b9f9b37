/*
 * test_replication.c -- log replication (Raft §5.3): the log-matching check, the fast back-off
 * hint and how the leader uses it, suffix truncation, idempotent appends, the follower's commit
 * rule; the commit rule of §5.4.2 (Figure 8); pipelining and batching limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"

static cx_ready rd;
static cx_ready rd2;

static raft_hard_state hs_of(raft_term term, raft_index commit)
{
    raft_hard_state hs = {.term = term, .commit = commit};
    return hs;
}

static raft_msg append_msg(raft_id from, raft_id to, raft_term term, raft_index prev_index,
                           raft_term prev_term, const raft_entry *entries, uint32_t n,
                           raft_index commit)
{
    raft_msg m = cx_msg(RAFT_MSG_APPEND, from, to, term);
    m.index = prev_index;
    m.log_term = prev_term;
    m.entries = entries;
    m.n_entries = n;
    m.commit = commit;
    return m;
}

static raft_entry ent(raft_index index, raft_term term)
{
    raft_entry e = {.index = index, .term = term, .type = RAFT_ENTRY_NORMAL};
    return e;
}

static void assert_log_terms(raft *r, const raft_term *terms, size_t n)
{
    assert_int_equal(raft_last_index(r), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(raft_term_at(r, (raft_index)(i + 1)), terms[i]);
}

/* §5.3: the follower refuses an append whose previous entry has another term, hints the
 * conflicting term and the first index it holds of it, and keeps its log as it was. */
static void recvPrevLogTermMismatch(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 2, 2, 2};
    raft *r = cx_new(&cfg, terms, 5, hs_of(3, 1));
    raft_entry e = ent(6, 4);
    raft_msg m = append_msg(2, 1, 4, 5, 3, &e, 1, 5);
    raft_step(r, &m);
    assert_true(cx_take(r, &rd));
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_APPEND_RESP, 2);
    assert_non_null(resp);
    assert_true(resp->reject);
    assert_int_equal(resp->index, 5);
    assert_int_equal(resp->hint_term, 2);
    assert_int_equal(resp->hint_index, 3);
    assert_int_equal(rd.n_entries, 0);
    assert_int_equal(rd.truncate_from, 0);
    assert_int_equal(rd.hard_state.commit, 1); /* the leader's commit is not taken on a reject */
    assert_log_terms(r, terms, 5);
    raft_free(r);
}

/* The hint never reaches below the commit index: committed entries are known to match. */
static void recvPrevLogTermMismatchHintStopsAtCommit(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {2, 2, 2, 2};
    raft *r = cx_new(&cfg, terms, 4, hs_of(2, 2));
    raft_msg m = append_msg(2, 1, 3, 4, 3, NULL, 0, 2);
    raft_step(r, &m);
    cx_take(r, &rd);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_APPEND_RESP, 2);
    assert_true(resp->reject);
    assert_int_equal(resp->hint_term, 2);
    assert_int_equal(resp->hint_index, 3);
    raft_free(r);
}

/* A follower whose log is shorter than the previous index hints its last index + 1, term 0. */
static void recvPrevIndexBeyondLog(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1};
    raft *r = cx_new(&cfg, terms, 2, hs_of(1, 0));
    raft_msg m = append_msg(2, 1, 2, 7, 2, NULL, 0, 0);
    raft_step(r, &m);
    cx_take(r, &rd);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_APPEND_RESP, 2);
    assert_true(resp->reject);
    assert_int_equal(resp->index, 7);
    assert_int_equal(resp->hint_index, 3);
    assert_int_equal(resp->hint_term, 0);
    raft_free(r);
}

static raft_index exchanged_truncate_from; /* lowest truncate_from the follower reported */
static raft_index exchanged_match_prev;    /* prev index of the first append accepted */

/* Shuttles messages between leader 1 and follower 2 (node 3 is unreachable) until quiet.
 * Returns the number of rejected appends the follower sent (the wasted round trips). */
static int exchange(raft *leader, raft *follower, int *accepts)
{
    exchanged_truncate_from = 0;
    exchanged_match_prev = 0;
    int rejects = 0;
    *accepts = 0;
    for (int round = 0; round < 100; round++) {
        cx_drain(leader, &rd);
        int delivered = 0;
        raft_index prev = 0;
        bool carried = false;
        for (size_t i = 0; i < rd.n_msgs; i++)
            if (rd.msgs[i].to == 2) {
                raft_step(follower, &rd.msgs[i]);
                delivered++;
                if (rd.msgs[i].type == RAFT_MSG_APPEND && rd.msgs[i].n_entries && !carried) {
                    prev = rd.msgs[i].index;
                    carried = true;
                }
            }
        cx_drain(follower, &rd2);
        if (rd2.truncate_from &&
            (exchanged_truncate_from == 0 || rd2.truncate_from < exchanged_truncate_from))
            exchanged_truncate_from = rd2.truncate_from;
        for (size_t i = 0; i < rd2.n_msgs; i++) {
            if (rd2.msgs[i].type == RAFT_MSG_APPEND_RESP) {
                if (carried && !rd2.msgs[i].reject && exchanged_match_prev == 0)
                    exchanged_match_prev = prev;
                rejects += rd2.msgs[i].reject;
                *accepts += !rd2.msgs[i].reject;
            }
            raft_step(leader, &rd2.msgs[i]);
            delivered++;
        }
        if (delivered == 0)
            return rejects;
    }
    fail_msg("exchange did not settle");
    return -1;
}

/* Figure 7 (f) of the paper: follower [1 1 1 2 2 2 3 3 3 3 3] against leader [1 1 1 4 4 5 5 6 6
 * 6] (term 8 after its no-op). One-entry-at-a-time back-off would need 7 rejections; with the
 * term hints the leader skips term 3, then term 2, and matches on the third append. */
static void leaderSkipsConflictingTermsFigure7f(void **state)
{
    (void)state;
    raft_config cfg1 = cx_config(1, 3), cfg2 = cx_config(2, 3);
    raft_term lterms[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
    raft_term fterms[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
    raft *leader = cx_new(&cfg1, lterms, 10, hs_of(7, 0));
    raft *follower = cx_new(&cfg2, fterms, 11, hs_of(7, 0));
    cx_make_leader(leader, &rd);
    assert_int_equal(raft_get_term(leader), 8);
    /* cx_make_leader drained the first append; give it to the follower by hand */
    const raft_msg *first = cx_find(&rd, RAFT_MSG_APPEND, 2);
    assert_non_null(first);
    raft_msg m = *first;
    m.entries = NULL;
    m.n_entries = 0; /* (its no-op is resent after the match) */
    raft_step(follower, &m);
    cx_drain(follower, &rd2);
    int rejects = rd2.msgs[0].reject;
    raft_step(leader, &rd2.msgs[0]);
    int accepts = 0;
    rejects += exchange(leader, follower, &accepts);
    assert_int_equal(rejects, 2);
    assert_true(accepts >= 1);
    assert_int_equal(exchanged_truncate_from, 4); /* everything after the common prefix */
    assert_int_equal(exchanged_match_prev, 3);
    raft_term want[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8};
    assert_log_terms(follower, want, 11);
    raft_free(leader);
    raft_free(follower);
}

/* Figure 7 (e): follower [1 1 1 4 4 4 4] is short AND diverges: the first reject hints its
 * length, the second skips its term-4 tail in one step to the leader's last term-4 entry. */
static void leaderSkipsConflictingTermsFigure7e(void **state)
{
    (void)state;
    raft_config cfg1 = cx_config(1, 3), cfg2 = cx_config(2, 3);
    raft_term lterms[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
    raft_term fterms[] = {1, 1, 1, 4, 4, 4, 4};
    raft *leader = cx_new(&cfg1, lterms, 10, hs_of(7, 0));
    raft *follower = cx_new(&cfg2, fterms, 7, hs_of(4, 0));
    cx_make_leader(leader, &rd);
    raft_msg m = *cx_find(&rd, RAFT_MSG_APPEND, 2);
    m.entries = NULL;
    m.n_entries = 0;
    raft_step(follower, &m);
    cx_drain(follower, &rd2);
    const raft_msg *resp = cx_find(&rd2, RAFT_MSG_APPEND_RESP, 1);
    assert_true(resp->reject);
    assert_int_equal(resp->hint_index, 8);
    assert_int_equal(resp->hint_term, 0);
    raft_step(leader, resp);
    int accepts = 0;
    int rejects = 1 + exchange(leader, follower, &accepts);
    assert_int_equal(rejects, 2);
    /* the leader holds term 4 too and resumes after its own last term-4 entry (5): the
     * follower keeps its matching entries 4 and 5 and drops only from 6 */
    assert_int_equal(exchanged_truncate_from, 6);
    assert_int_equal(exchanged_match_prev, 5); /* so entries 4 and 5 are not even resent */
    raft_term want[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8};
    assert_log_terms(follower, want, 11);
    raft_free(leader);
    raft_free(follower);
}

/* A conflicting suffix is dropped and replaced: the Ready says truncate_from first, then carries
 * the new entries; commit follows min(leader commit, last new entry). */
static void conflictingSuffixTruncatedThenReplaced(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 2, 2, 2};
    raft *r = cx_new(&cfg, terms, 5, hs_of(2, 2));
    raft_entry es[] = {ent(3, 3), ent(4, 3)};
    raft_msg m = append_msg(2, 1, 3, 2, 1, es, 2, 4);
    raft_step(r, &m);
    assert_true(cx_take(r, &rd));
    assert_int_equal(rd.truncate_from, 3);
    assert_int_equal(rd.n_entries, 2);
    assert_int_equal(rd.entries[0].index, 3);
    assert_int_equal(rd.entries[0].term, 3);
    assert_int_equal(rd.entries[1].index, 4);
    assert_int_equal(rd.hard_state.commit, 4);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_APPEND_RESP, 2);
    assert_false(resp->reject);
    assert_int_equal(resp->index, 4);
    raft_term want[] = {1, 1, 3, 3};
    assert_log_terms(r, want, 4);
    raft_free(r);
}

/* The same append twice, and an older shorter append arriving after a longer one, change
 * nothing: no truncation, no new entries, the log keeps its tail. */
static void duplicateAndReorderedAppendsIdempotent(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1};
    raft *r = cx_new(&cfg, terms, 2, hs_of(1, 0));
    raft_entry es[] = {ent(3, 1), ent(4, 1), ent(5, 1)};
    raft_msg longer = append_msg(2, 1, 1, 2, 1, es, 3, 0);
    raft_msg shorter = append_msg(2, 1, 1, 2, 1, es, 1, 0);
    raft_step(r, &longer);
    cx_take(r, &rd);
    assert_int_equal(rd.n_entries, 3);

    raft_step(r, &longer);
    cx_take(r, &rd);
    assert_int_equal(rd.n_entries, 0);
    assert_int_equal(rd.truncate_from, 0);
    assert_int_equal(cx_find(&rd, RAFT_MSG_APPEND_RESP, 2)->index, 5);

    raft_step(r, &shorter);
    cx_take(r, &rd);
    assert_int_equal(rd.n_entries, 0);
    assert_int_equal(rd.truncate_from, 0);
    assert_false(cx_find(&rd, RAFT_MSG_APPEND_RESP, 2)->reject);
    assert_int_equal(raft_last_index(r), 5);
    raft_free(r);
}

/* §5.3: the follower commits min(leader commit, index of the last new entry): entries it holds
 * past the append are not yet known to match the leader's, so they are not committed. */
static void followerCommitIsMinOfLeaderCommitAndLastNew(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 1, 1, 1};
    raft *r = cx_new(&cfg, terms, 5, hs_of(1, 0));
    raft_entry e = ent(3, 1);
    raft_msg m = append_msg(2, 1, 1, 2, 1, &e, 1, 5);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_int_equal(raft_commit_index(r), 3);
    assert_int_equal(rd.hard_state.commit, 3);
    assert_int_equal(rd.n_committed, 3);
    assert_int_equal(rd.committed[2].index, 3);

    /* a lower leader commit never moves it back */
    m = append_msg(2, 1, 1, 3, 1, NULL, 0, 1);
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_int_equal(raft_commit_index(r), 3);
    assert_false(rd.hard_state_changed);

    /* a heartbeat's commit is capped by the log too */
    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 2, 1, 1);
    hb.commit = 9;
    raft_step(r, &hb);
    assert_int_equal(raft_commit_index(r), 5);
    raft_free(r);
}

/* An append whose previous index is below our commit is answered with the commit index (those
 * entries match any leader's) and does not touch the log. */
static void recvAppendBelowCommit(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 1, 1};
    raft *r = cx_new(&cfg, terms, 4, hs_of(1, 4));
    raft_entry e = ent(2, 1);
    raft_msg m = append_msg(2, 1, 1, 1, 1, &e, 1, 4);
    raft_step(r, &m);
    cx_take(r, &rd);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_APPEND_RESP, 2);
    assert_false(resp->reject);
    assert_int_equal(resp->index, 4);
    assert_int_equal(rd.truncate_from, 0);
    assert_int_equal(raft_last_index(r), 4);
    raft_free(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* Commit rule (§5.4.2, Figure 8) */

static raft_msg ack(raft_id from, raft_term term, raft_index index)
{
    raft_msg m = cx_msg(RAFT_MSG_APPEND_RESP, from, 1, term);
    m.index = index;
    return m;
}

/* Figure 8: leader S1 of term 4 holds [1 2] + its no-op (3, term 4). Once index 2 (term 2) is on
 * a majority (S1, S2, S3) it is still NOT committed by counting replicas: a later leader of
 * term 3 could overwrite it. It commits, with everything before it, only when the term-4 entry
 * is on a majority. */
static void commitRuleFigure8(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 5);
    raft_term terms[] = {1, 2};
    raft *r = cx_new(&cfg, terms, 2, hs_of(3, 1));
    cx_make_leader(r, &rd);
    assert_int_equal(raft_get_term(r), 4);
    assert_int_equal(raft_term_at(r, 3), 4);
    raft_msg a2 = ack(2, 4, 2), a3 = ack(3, 4, 2);
    raft_step(r, &a2);
    raft_step(r, &a3);
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), 1);
    assert_int_equal(rd.n_committed, 0);

    raft_msg b2 = ack(2, 4, 3);
    raft_step(r, &b2);
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), 1); /* S1 + S2 hold index 3: not a majority of 5 */
    raft_msg b3 = ack(3, 4, 3);
    raft_step(r, &b3);
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), 3);
    assert_int_equal(rd.n_committed, 2);
    assert_int_equal(rd.committed[0].index, 2);
    assert_int_equal(rd.committed[0].term, 2);
    assert_int_equal(rd.committed[1].index, 3);
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.commit, 3);
    /* the new commit index goes out to the followers that are not paused (4 and 5 still owe an
     * answer to their probe) */
    const raft_msg *m = cx_find(&rd, RAFT_MSG_APPEND, 2);
    assert_non_null(m);
    assert_int_equal(m->commit, 3);
    raft_free(r);
}

/* The leader counts itself only for entries its caller reported durable (raft_advance): with a
 * Ready outstanding, a follower ack alone does not make a majority of 3. */
static void leaderCountsOwnEntryOnlyWhenPersisted(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, hs_of(1, 0));
    cx_make_leader(r, NULL);
    raft_msg a = ack(2, 2, 1);
    raft_step(r, &a);
    cx_drain(r, &rd);
    assert_int_equal(raft_commit_index(r), 1);

    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL), RAFT_OK);
    raft_ready outstanding;
    raft_ready_get(r, &outstanding);
    assert_int_equal(outstanding.n_entries, 1);
    a = ack(2, 2, 2);
    raft_step(r, &a);
    a.from = 3;
    raft_step(r, &a);
    assert_int_equal(raft_commit_index(r), 2); /* two followers are a majority without the leader */
    raft_advance(r, &outstanding);
    raft_free(r);

    r = cx_new(&cfg, NULL, 0, hs_of(1, 0));
    cx_make_leader(r, NULL);
    a = ack(2, 2, 1);
    raft_step(r, &a);
    cx_drain(r, &rd);
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL), RAFT_OK);
    raft_ready_get(r, &outstanding);
    a = ack(2, 2, 2);
    raft_step(r, &a);
    assert_int_equal(raft_commit_index(r), 1); /* one follower + a leader not yet durable */
    raft_advance(r, &outstanding);
    assert_int_equal(raft_commit_index(r), 2);
    raft_free(r);
}

/* A follower answers a stale term's heartbeat with an APPEND_RESP of its own term and index 0.
 * If the old leader has meanwhile won that term, the answer reaches it while it probes: it must
 * not count as "matches up to 0" and restart replication from index 1 (or a snapshot). */
static void staleHeartbeatAnswerDoesNotRestartReplication(void **state)
{
    (void)state;
    raft_term terms[200];
    for (int i = 0; i < 200; i++)
        terms[i] = 1;
    raft_config ca = cx_config(1, 3), cb = cx_config(2, 3);
    ca.check_quorum = cb.check_quorum = true;
    raft *a = cx_new(&ca, terms, 200, hs_of(1, 200));
    raft *b = cx_new(&cb, terms, 200, hs_of(1, 200));
    cx_make_leader(a, NULL); /* term 2 */
    raft_tick(a);
    cx_drain(a, &rd);
    raft_msg held = *cx_find(&rd, RAFT_MSG_HEARTBEAT, 2); /* delayed in the network */
    for (int i = 0; i < 100 && raft_get_role(a) == RAFT_LEADER; i++)
        raft_tick(a); /* no quorum heard: steps down */
    assert_int_equal(raft_get_role(a), RAFT_FOLLOWER);
    cx_drain(a, &rd);
    raft_campaign(a);
    cx_drain(a, &rd);
    raft_step(b, cx_find(&rd, RAFT_MSG_VOTE, 2));
    raft_step(b, &held); /* term 2 < 3: answered with APPEND_RESP, index 0 */
    cx_drain(b, &rd2);
    const raft_msg *stale = cx_find(&rd2, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(stale);
    assert_int_equal(stale->index, 0);
    raft_step(a, cx_find(&rd2, RAFT_MSG_VOTE_RESP, 1));
    assert_int_equal(raft_get_role(a), RAFT_LEADER);
    cx_drain(a, &rd);
    raft_progress_info before, after;
    assert_true(raft_get_progress(a, 2, &before));
    assert_int_equal(before.state, 0); /* probing */
    raft_step(a, stale);
    cx_drain(a, &rd);
    assert_true(raft_get_progress(a, 2, &after));
    assert_int_equal(after.state, 0);
    assert_int_equal(after.next, before.next);
    for (size_t k = 0; k < rd.n_msgs; k++)
        if (rd.msgs[k].to == 2)
            assert_true(rd.msgs[k].type != RAFT_MSG_SNAPSHOT &&
                        (rd.msgs[k].type != RAFT_MSG_APPEND || rd.msgs[k].index + 1 >= before.next));
    raft_free(a);
    raft_free(b);
}

/* ---------------------------------------------------------------------------------------------- */
/* Pipelining and batching */

/* Makes a 3-node leader whose followers both acknowledged the no-op (REPLICATE state). */
static raft *replicating_leader(raft_config *cfg)
{
    raft *r = cx_new(cfg, NULL, 0, hs_of(1, 0));
    cx_make_leader(r, NULL);
    raft_msg a = ack(2, 2, 1);
    raft_step(r, &a);
    a.from = 3;
    raft_step(r, &a);
    cx_drain(r, &rd);
    raft_progress_info pi;
    assert_true(raft_get_progress(r, 2, &pi));
    assert_int_equal(pi.state, 1);
    return r;
}

static size_t appends_with_entries(const cx_ready *x, raft_id to, size_t *sizes, size_t max)
{
    size_t n = 0;
    for (size_t k = 0; k < x->n_msgs; k++)
        if (x->msgs[k].to == to && x->msgs[k].type == RAFT_MSG_APPEND && x->msgs[k].n_entries) {
            if (n < max)
                sizes[n] = x->msgs[k].n_entries;
            n++;
        }
    return n;
}

/* With max_inflight_msgs = 2, a follower that does not answer has at most 2 appends in flight,
 * however many proposals and Readies go by; each acknowledgement lets exactly one more out. */
static void inflightWindowLimitsAppends(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    cfg.max_inflight_msgs = 2;
    cfg.max_entries_per_msg = 1;
    raft *r = replicating_leader(&cfg);
    size_t to2 = 0, to3 = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "p", 1, NULL, NULL), RAFT_OK);
        cx_drain(r, &rd);
        to2 += appends_with_entries(&rd, 2, NULL, 0); /* empty appends only carry the commit */
        to3 += appends_with_entries(&rd, 3, NULL, 0);
        /* node 3 answers everything at once */
        for (size_t k = 0; k < rd.n_msgs; k++)
            if (rd.msgs[k].to == 3 && rd.msgs[k].type == RAFT_MSG_APPEND && rd.msgs[k].n_entries) {
                raft_msg a = ack(3, 2, rd.msgs[k].index + rd.msgs[k].n_entries);
                raft_step(r, &a);
            }
    }
    cx_drain(r, &rd);
    to2 += appends_with_entries(&rd, 2, NULL, 0);
    assert_int_equal(to2, 2);
    assert_true(to3 >= 6);
    assert_int_equal(raft_commit_index(r), 7); /* 1, 3 are a majority */

    raft_msg a = ack(2, 2, 2); /* frees one slot: exactly one more append (entry 4) */
    raft_step(r, &a);
    cx_drain(r, &rd);
    size_t more = 0;
    for (size_t k = 0; k < rd.n_msgs; k++)
        if (rd.msgs[k].to == 2 && rd.msgs[k].type == RAFT_MSG_APPEND && rd.msgs[k].n_entries) {
            more++;
            assert_int_equal(rd.msgs[k].entries[0].index, 4);
        }
    assert_int_equal(more, 1);
    raft_free(r);
}

/* max_entries_per_msg = 3: seven proposals made between two Readies go out as 3 + 3 + 1. */
static void maxEntriesPerMsgRespected(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    cfg.max_entries_per_msg = 3;
    raft *r = replicating_leader(&cfg);
    for (int i = 0; i < 7; i++)
        assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "p", 1, NULL, NULL), RAFT_OK);
    cx_drain(r, &rd);
    size_t sizes[8];
    assert_int_equal(appends_with_entries(&rd, 2, sizes, 8), 3);
    assert_int_equal(sizes[0], 3);
    assert_int_equal(sizes[1], 3);
    assert_int_equal(sizes[2], 1);
    raft_free(r);
}

/* max_bytes_per_msg = 10: 4-byte entries go two per message; a 20-byte entry goes alone. */
static void maxBytesPerMsgRespected(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    cfg.max_bytes_per_msg = 10;
    raft *r = replicating_leader(&cfg);
    for (int i = 0; i < 3; i++)
        assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "abcd", 4, NULL, NULL), RAFT_OK);
    char big[20];
    memset(big, 'b', sizeof(big));
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, big, 20, NULL, NULL), RAFT_OK);
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "abcd", 4, NULL, NULL), RAFT_OK);
    cx_drain(r, &rd);
    size_t sizes[8];
    assert_int_equal(appends_with_entries(&rd, 2, sizes, 8), 4);
    assert_int_equal(sizes[0], 2); /* 4 + 4 */
    assert_int_equal(sizes[1], 1); /* 4 (+ 20 would exceed) */
    assert_int_equal(sizes[2], 1); /* 20 alone */
    assert_int_equal(sizes[3], 1);
    for (size_t k = 0; k < rd.n_msgs; k++) {
        const raft_msg *m = &rd.msgs[k];
        uint64_t bytes = 0;
        for (uint32_t j = 0; j < m->n_entries; j++)
            bytes += m->entries[j].len;
        assert_true(m->n_entries <= 1 || bytes <= 10);
    }
    raft_free(r);
}

/* Group commit: proposals made while a Ready is outstanding wait, and then travel as ONE append
 * per follower and one rd.entries batch in the next Ready. */
static void proposalsBatchedWhileReadyOutstanding(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = replicating_leader(&cfg);
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "a", 1, NULL, NULL), RAFT_OK);
    raft_ready outstanding;
    raft_ready_get(r, &outstanding);
    assert_int_equal(outstanding.n_entries, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "b", 1, NULL, NULL), RAFT_OK);
    assert_false(raft_has_ready(r));
    raft_advance(r, &outstanding);
    assert_true(cx_take(r, &rd));
    assert_int_equal(rd.n_entries, 3);
    assert_int_equal(rd.entries[0].index, 3);
    size_t sizes[4];
    assert_int_equal(appends_with_entries(&rd, 2, sizes, 4), 1);
    assert_int_equal(sizes[0], 3);
    assert_int_equal(appends_with_entries(&rd, 3, sizes, 4), 1);
    assert_int_equal(sizes[0], 3);
    raft_free(r);
}

/* Multi-node: a 5-node cluster replicates and applies the same entries in the same order. */
static void clusterReplicatesInOrder(void **state)
{
    (void)state;
    fx f;
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = 3;
    fx_init(&f, 5, &cfg);
    assert_int_equal(fx_elect(&f, 2), 2);
    for (int i = 0; i < 20; i++)
        assert_true(fx_propose(&f, "v") != 0);
    fx_tick_all(&f, 3);
    raft_index last = raft_last_index(fx_r(&f, 2));
    for (int id = 1; id <= 5; id++) {
        fx_node *nd = &f.nodes[id - 1];
        assert_int_equal(nd->last_applied, last);
        for (size_t k = 0; k < nd->n_applied; k++) {
            assert_int_equal(nd->applied[k], k + 1);
            assert_int_equal(nd->applied_term[k], f.nodes[1].applied_term[k]);
        }
    }
    fx_free(&f);
}

/* Liveness. A follower in REPLICATE state whose appends were all lost (here: cut off for a few
 * ticks) is repaired by the heartbeat round once it is reachable again, without waiting for a new
 * proposal: the leader answers the heartbeat response with an empty append at next - 1, the
 * follower rejects it and the leader probes back. (Found by this test: the core used to send
 * nothing, leaving a quiet cluster's follower behind forever.) */
static void replicateLostAppendsResentOnHeartbeat(void **state)
{
    (void)state;
    fx f;
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = 7;
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    fx_tick_all(&f, 2); /* node 3 acknowledged the no-op: its progress is REPLICATE */
    fx_isolate(&f, 3, true);
    for (int i = 0; i < 5; i++)
        assert_true(fx_propose(&f, "w") != 0);
    fx_tick_all(&f, 3);
    fx_isolate(&f, 3, false);
    fx_tick_all(&f, 5 * (int)cfg.election_tick);
    assert_int_equal(raft_get_leader(fx_r(&f, 3)), 1);
    assert_int_equal(raft_last_index(fx_r(&f, 3)), raft_last_index(fx_r(&f, 1)));
    assert_int_equal(raft_commit_index(fx_r(&f, 3)), raft_commit_index(fx_r(&f, 1)));
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recvPrevLogTermMismatch),
        cmocka_unit_test(replicateLostAppendsResentOnHeartbeat),
        cmocka_unit_test(recvPrevLogTermMismatchHintStopsAtCommit),
        cmocka_unit_test(recvPrevIndexBeyondLog),
        cmocka_unit_test(leaderSkipsConflictingTermsFigure7f),
        cmocka_unit_test(leaderSkipsConflictingTermsFigure7e),
        cmocka_unit_test(conflictingSuffixTruncatedThenReplaced),
        cmocka_unit_test(duplicateAndReorderedAppendsIdempotent),
        cmocka_unit_test(followerCommitIsMinOfLeaderCommitAndLastNew),
        cmocka_unit_test(recvAppendBelowCommit),
        cmocka_unit_test(commitRuleFigure8),
        cmocka_unit_test(leaderCountsOwnEntryOnlyWhenPersisted),
        cmocka_unit_test(staleHeartbeatAnswerDoesNotRestartReplication),
        cmocka_unit_test(inflightWindowLimitsAppends),
        cmocka_unit_test(maxEntriesPerMsgRespected),
        cmocka_unit_test(maxBytesPerMsgRespected),
        cmocka_unit_test(proposalsBatchedWhileReadyOutstanding),
        cmocka_unit_test(clusterReplicatesInOrder),
    };
    return cmocka_run_group_tests_name("raft_replication", tests, NULL, NULL);
}
