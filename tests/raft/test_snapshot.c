/*
 * test_snapshot.c -- log compaction and InstallSnapshot (Raft §7): a follower behind the
 * compaction point gets RAFT_MSG_SNAPSHOT, installs it, then catches up by appends; failed or
 * lost snapshot sends are retried; stale snapshots are ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

static cx_ready rd;
static cx_ready rd2;

static raft_hard_state hs_of(raft_term term, raft_index commit)
{
    raft_hard_state hs = {.term = term, .commit = commit};
    return hs;
}

/* Leader 1 of a 3-node cluster with entries 1..10 of term 1 committed and applied, compacted to
 * 10 with no trailing entries, elected for term 2 (no-op at 11). rd holds its first Ready. */
static raft *compacted_leader(raft_index trailing)
{
    raft_config cfg = cx_config(1, 3);
    raft_term terms[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    raft *r = cx_new(&cfg, terms, 10, hs_of(1, 10));
    assert_int_equal(raft_compact(r, 10, trailing), RAFT_OK);
    assert_int_equal(raft_first_index(r), 11 - trailing);
    assert_int_equal(raft_get_snapshot(r).index, 10);
    assert_int_equal(raft_get_snapshot(r).term, 1);
    cx_make_leader(r, &rd);
    return r;
}

/* Delivers the leader's messages for node 2 (from rd) and returns how many were SNAPSHOTs. */
static int deliver_to(raft *to, raft_id id, const cx_ready *from)
{
    int snaps = 0;
    for (size_t i = 0; i < from->n_msgs; i++)
        if (from->msgs[i].to == id) {
            snaps += from->msgs[i].type == RAFT_MSG_SNAPSHOT;
            raft_step(to, &from->msgs[i]);
        }
    return snaps;
}

static void deliver_all(raft *to, const cx_ready *from)
{
    for (size_t i = 0; i < from->n_msgs; i++)
        raft_step(to, &from->msgs[i]);
}

/* A follower with an empty log, behind the leader's compaction point: its reject makes the
 * leader send the snapshot; it installs it (rd.snapshot, applied jumps to 10, no entry re-applied)
 * and then catches up with appends from 11 on. */
static void laggingFollowerGetsSnapshotThenAppends(void **state)
{
    (void)state;
    raft *leader = compacted_leader(0);
    raft_config cfg2 = cx_config(2, 3);
    raft *follower = cx_new(&cfg2, NULL, 0, hs_of(1, 0));

    assert_int_equal(deliver_to(follower, 2, &rd), 0); /* the probe append: prev 10 */
    cx_drain(follower, &rd2);
    const raft_msg *resp = cx_find(&rd2, RAFT_MSG_APPEND_RESP, 1);
    assert_true(resp->reject);
    assert_int_equal(resp->hint_index, 1);
    deliver_all(leader, &rd2);

    cx_drain(leader, &rd);
    const raft_msg *snap = cx_find(&rd, RAFT_MSG_SNAPSHOT, 2);
    assert_non_null(snap);
    assert_int_equal(snap->snapshot.index, 10);
    assert_int_equal(snap->snapshot.term, 1);
    assert_int_equal(snap->snapshot.conf.n_voters, 3);
    raft_progress_info pi;
    assert_true(raft_get_progress(leader, 2, &pi));
    assert_int_equal(pi.state, 2);

    assert_int_equal(deliver_to(follower, 2, &rd), 1);
    assert_true(cx_take(follower, &rd2));
    assert_int_equal(rd2.snapshot.index, 10);
    assert_int_equal(rd2.snapshot.term, 1);
    assert_int_equal(rd2.n_committed, 0); /* the snapshot replaces applying 1..10 */
    assert_int_equal(raft_applied_index(follower), 10);
    assert_int_equal(raft_commit_index(follower), 10);
    assert_int_equal(raft_first_index(follower), 11);
    assert_int_equal(rd2.hard_state.commit, 10);
    resp = cx_find(&rd2, RAFT_MSG_APPEND_RESP, 1);
    assert_false(resp->reject);
    assert_int_equal(resp->index, 10);
    deliver_all(leader, &rd2);

    /* now plain appends: the no-op, then a proposal */
    cx_drain(leader, &rd);
    const raft_msg *app = cx_find(&rd, RAFT_MSG_APPEND, 2);
    assert_non_null(app);
    assert_int_equal(app->index, 10);
    assert_int_equal(app->n_entries, 1);
    assert_true(raft_get_progress(leader, 2, &pi));
    assert_int_equal(pi.state, 1);
    for (int round = 0; round < 10; round++) {
        deliver_to(follower, 2, &rd);
        cx_drain(follower, &rd2);
        deliver_all(leader, &rd2);
        if (round == 2)
            assert_int_equal(raft_propose(leader, RAFT_ENTRY_NORMAL, "z", 1, NULL, NULL), RAFT_OK);
        raft_tick(leader);
        cx_drain(leader, &rd);
    }
    assert_int_equal(raft_last_index(follower), 12);
    assert_int_equal(raft_commit_index(leader), 12);
    assert_int_equal(raft_commit_index(follower), 12);
    assert_int_equal(raft_applied_index(follower), 12);
    raft_free(leader);
    raft_free(follower);
}

/* Leads the follower to the point where the leader has just sent it a snapshot (not delivered). */
static void until_snapshot_sent(raft *leader, raft *follower)
{
    deliver_to(follower, 2, &rd);
    cx_drain(follower, &rd2);
    deliver_all(leader, &rd2);
    cx_drain(leader, &rd);
    assert_non_null(cx_find(&rd, RAFT_MSG_SNAPSHOT, 2));
}

/* Ticks the leader n times, answering heartbeats from node 2; counts SNAPSHOTs sent to 2. */
static int tick_and_count_snapshots(raft *leader, raft *follower, int n)
{
    int snaps = 0;
    for (int t = 0; t < n; t++) {
        raft_tick(leader);
        cx_drain(leader, &rd);
        for (size_t i = 0; i < rd.n_msgs; i++) {
            if (rd.msgs[i].to != 2)
                continue;
            if (rd.msgs[i].type == RAFT_MSG_SNAPSHOT) {
                snaps++; /* lost: the transport never delivers it */
                continue;
            }
            raft_step(follower, &rd.msgs[i]);
        }
        cx_drain(follower, &rd2);
        deliver_all(leader, &rd2);
        int more = 0;
        cx_drain(leader, &rd);
        for (size_t i = 0; i < rd.n_msgs; i++) {
            if (rd.msgs[i].to != 2)
                continue;
            if (rd.msgs[i].type == RAFT_MSG_SNAPSHOT) {
                more++;
                continue;
            }
            raft_step(follower, &rd.msgs[i]);
        }
        snaps += more;
        cx_drain(follower, &rd2);
        deliver_all(leader, &rd2);
    }
    return snaps;
}

/* While a snapshot is in flight the leader does not send another on every heartbeat; once the
 * transport reports the send failed, the leader probes again and sends a new snapshot. */
static void snapshotFailedIsResent(void **state)
{
    (void)state;
    raft *leader = compacted_leader(0);
    raft_config cfg2 = cx_config(2, 3);
    raft *follower = cx_new(&cfg2, NULL, 0, hs_of(1, 0));
    until_snapshot_sent(leader, follower);
    assert_int_equal(tick_and_count_snapshots(leader, follower, 5), 0);

    raft_report_snapshot_failed(leader, 2);
    raft_progress_info pi;
    assert_true(raft_get_progress(leader, 2, &pi));
    assert_int_equal(pi.state, 0);
    assert_true(tick_and_count_snapshots(leader, follower, 3) >= 1);
    assert_true(raft_get_progress(leader, 2, &pi));
    assert_int_equal(pi.state, 2);
    raft_free(leader);
    raft_free(follower);
}

/* A snapshot send that nobody reports is retried after snapshot_timeout_tick. */
static void snapshotLostIsResentAfterTimeout(void **state)
{
    (void)state;
    raft *leader = compacted_leader(0);
    raft_config cfg2 = cx_config(2, 3);
    raft *follower = cx_new(&cfg2, NULL, 0, hs_of(1, 0));
    until_snapshot_sent(leader, follower);
    /* default snapshot_timeout_tick = 10 * election_tick = 100 */
    assert_int_equal(tick_and_count_snapshots(leader, follower, 95), 0);
    assert_true(tick_and_count_snapshots(leader, follower, 10) >= 1);
    raft_free(leader);
    raft_free(follower);
}

/* With trailing entries kept, a follower still within them catches up by appends only. */
static void compactKeepsTrailingEntriesForAppends(void **state)
{
    (void)state;
    raft *leader = compacted_leader(5); /* log keeps 6..10 */
    raft_config cfg2 = cx_config(2, 3);
    raft_term terms[7] = {1, 1, 1, 1, 1, 1, 1};
    raft *follower = cx_new(&cfg2, terms, 7, hs_of(1, 5));
    for (int round = 0; round < 10; round++) {
        assert_int_equal(deliver_to(follower, 2, &rd), 0);
        cx_drain(follower, &rd2);
        deliver_all(leader, &rd2);
        cx_drain(leader, &rd);
    }
    assert_int_equal(raft_last_index(follower), 11);
    assert_int_equal(raft_get_snapshot(follower).index, 0);
    raft_free(leader);
    raft_free(follower);
}

/* raft_compact refuses to go past what the state machine applied. */
static void compactBeyondAppliedIsRefused(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 1, 1};
    raft *r = cx_new(&cfg, terms, 4, hs_of(1, 2));
    assert_int_equal(raft_compact(r, 3, 0), RAFT_EINVAL);
    assert_int_equal(raft_first_index(r), 1);
    assert_int_equal(raft_compact(r, 2, 0), RAFT_OK);
    assert_int_equal(raft_first_index(r), 3);
    assert_int_equal(raft_term_at(r, 2), 1); /* the compaction point's term is kept */
    raft_free(r);
}

/* A snapshot at or below the follower's commit is stale: acknowledged with the commit index,
 * nothing installed. A snapshot whose last entry the follower holds only advances the commit. */
static void staleSnapshotIgnored(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 1, 1, 1};
    raft *r = cx_new(&cfg, terms, 5, hs_of(1, 3));
    raft_msg m = cx_msg(RAFT_MSG_SNAPSHOT, 2, 1, 1);
    m.snapshot.index = 2;
    m.snapshot.term = 1;
    m.snapshot.conf = cfg.conf;
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_int_equal(rd.snapshot.index, 0);
    assert_int_equal(cx_find(&rd, RAFT_MSG_APPEND_RESP, 2)->index, 3);
    assert_int_equal(raft_last_index(r), 5);

    m.snapshot.index = 4;
    raft_step(r, &m);
    cx_take(r, &rd);
    assert_int_equal(rd.snapshot.index, 0);
    assert_int_equal(raft_commit_index(r), 4);
    assert_int_equal(raft_last_index(r), 5);
    assert_int_equal(cx_find(&rd, RAFT_MSG_APPEND_RESP, 2)->index, 4);
    raft_free(r);
}

/* A snapshot whose configuration no node could run (no voters, a zero id, a voter twice) is
 * dropped, never installed; one naming other voters (the membership changed) is installed and its
 * voters are in force from then on. */
static void snapshotConfIsValidatedAndTakesEffect(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 1};
    raft *r = cx_new(&cfg, terms, 3, hs_of(1, 2));
    raft_msg m = cx_msg(RAFT_MSG_SNAPSHOT, 2, 1, 2);
    m.snapshot.index = 10;
    m.snapshot.term = 2;
    raft_conf bad[] = {{.n_voters = 0}, {.n_voters = 2, .voters = {1, 0}},
                       {.n_voters = 3, .voters = {1, 2, 2}}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t dropped = raft_get_stats(r).msgs_dropped;
        m.snapshot.conf = bad[i];
        raft_step(r, &m);
        cx_drain(r, &rd);
        assert_int_equal(rd.snapshot.index, 0);
        assert_int_equal(raft_commit_index(r), 2);
        assert_int_equal(raft_last_index(r), 3);
        assert_int_equal(raft_get_stats(r).msgs_dropped, dropped + 1);
        assert_int_equal(raft_get_conf(r)->n_voters, 3);
    }
    m.snapshot.conf = (raft_conf){.n_voters = 4, .voters = {1, 2, 4, 5}};
    raft_step(r, &m);
    cx_drain(r, &rd);
    assert_int_equal(rd.snapshot.index, 10);
    assert_int_equal(rd.snapshot.conf.n_voters, 4);
    assert_int_equal(raft_get_conf(r)->n_voters, 4);
    assert_int_equal(raft_get_conf(r)->voters[3], 5);
    raft_conf at;
    assert_int_equal(raft_conf_at(r, 10, &at), RAFT_OK);
    assert_int_equal(at.n_voters, 4);
    raft_free(r);
}

/* A follower whose log conflicts with the snapshot drops it whole: the Ready installs the
 * snapshot and the log restarts after it. */
static void snapshotReplacesConflictingLog(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft_term terms[] = {1, 1, 2, 2, 2, 2};
    raft *r = cx_new(&cfg, terms, 6, hs_of(2, 2));
    raft_msg m = cx_msg(RAFT_MSG_SNAPSHOT, 2, 1, 3);
    m.snapshot.index = 4;
    m.snapshot.term = 3;
    m.snapshot.conf = cfg.conf;
    raft_step(r, &m);
    assert_true(cx_take(r, &rd));
    assert_int_equal(rd.snapshot.index, 4);
    assert_int_equal(raft_first_index(r), 5);
    assert_int_equal(raft_last_index(r), 4);
    assert_int_equal(raft_term_at(r, 4), 3);
    assert_int_equal(raft_applied_index(r), 4);
    assert_int_equal(rd.hard_state.commit, 4);
    raft_free(r);
}

/* Multi-node: a node cut off while the others compact rejoins and converges via a snapshot. */
static void clusterRejoinsThroughSnapshot(void **state)
{
    (void)state;
    fx f;
    raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = 11;
    fx_init(&f, 3, &cfg);
    assert_int_equal(fx_elect(&f, 1), 1);
    fx_isolate(&f, 3, true);
    for (int i = 0; i < 30; i++)
        assert_true(fx_propose(&f, "s") != 0);
    raft *leader = fx_r(&f, 1);
    raft_index applied = raft_applied_index(leader);
    assert_true(applied >= 30);
    assert_int_equal(raft_compact(leader, applied, 0), RAFT_OK);
    fx_isolate(&f, 3, false);
    fx_tick_all(&f, 5);
    assert_int_equal(f.nodes[2].snap.index, applied);
    assert_int_equal(raft_last_index(fx_r(&f, 3)), raft_last_index(leader));
    assert_int_equal(raft_commit_index(fx_r(&f, 3)), raft_commit_index(leader));
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(laggingFollowerGetsSnapshotThenAppends),
        cmocka_unit_test(snapshotFailedIsResent),
        cmocka_unit_test(snapshotLostIsResentAfterTimeout),
        cmocka_unit_test(compactKeepsTrailingEntriesForAppends),
        cmocka_unit_test(compactBeyondAppliedIsRefused),
        cmocka_unit_test(staleSnapshotIgnored),
        cmocka_unit_test(snapshotConfIsValidatedAndTakesEffect),
        cmocka_unit_test(snapshotReplacesConflictingLog),
        cmocka_unit_test(clusterRejoinsThroughSnapshot),
    };
    return cmocka_run_group_tests_name("raft_snapshot", tests, NULL, NULL);
}
