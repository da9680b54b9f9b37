/*
 * test_early.c -- raft_take_messages: what may be sent before the Ready that holds it is durable.
 * Heartbeats (and so elections) must not wait for a slow fsync; votes and append answers must.
 * raft_take_committed / raft_take_reads: what may be applied while a Ready is outstanding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "fixture.h"

static cx_ready rd;

static size_t count_type(const raft_msg *msgs, size_t n, int type)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += msgs[i].type == type;
    return c;
}

/* A leader whose disk write is in flight keeps sending heartbeats. */
static void heartbeatsLeaveWhileReadyOutstanding(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, NULL);
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "a", 1, NULL, NULL), RAFT_OK);
    raft_ready outstanding;
    raft_ready_get(r, &outstanding);
    assert_false(raft_has_ready(r));
    for (uint32_t t = 0; t < cfg.heartbeat_tick; t++)
        raft_tick(r);
    raft_msg *msgs;
    size_t n = raft_take_messages(r, &msgs);
    assert_int_equal(count_type(msgs, n, RAFT_MSG_HEARTBEAT), 2);
    raft_messages_free(msgs, n);
    assert_int_equal(raft_take_messages(r, &msgs), 0); /* taken means gone */
    assert_null(msgs);
    raft_advance(r, &outstanding);
    raft_free(r);
}

/* Proposals made during the leader's write are replicated at once, not after it. */
static void proposalsReplicatedWhileLeaderWrites(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, NULL);
    raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, 2, 1, raft_get_term(r));
    ack.index = raft_last_index(r);
    raft_step(r, &ack);
    cx_drain(r, &rd);
    raft_ready outstanding;
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "a", 1, NULL, NULL), RAFT_OK);
    raft_ready_get(r, &outstanding);
    for (int i = 0; i < 3; i++)
        assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "b", 1, NULL, NULL), RAFT_OK);
    raft_msg *msgs;
    size_t n = raft_take_messages(r, &msgs);
    size_t entries_to_2 = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].type == RAFT_MSG_APPEND && msgs[i].to == 2)
            entries_to_2 += msgs[i].n_entries;
    assert_int_equal(entries_to_2, 3); /* one batch with the three proposals */
    raft_messages_free(msgs, n);
    raft_advance(r, &outstanding);
    raft_free(r);
}

/* A follower's vote and its append acknowledgement wait for their Ready (they promise durable
 * state); its heartbeat answer does not. */
static void votesAndAppendAnswersWait(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    raft_msg vote = cx_msg(RAFT_MSG_VOTE, 1, 2, 2);
    raft_step(r, &vote);
    raft_msg *msgs;
    assert_int_equal(raft_take_messages(r, &msgs), 0);
    assert_true(cx_take(r, &rd));
    assert_non_null(cx_find(&rd, RAFT_MSG_VOTE_RESP, 1));
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.vote, 1);

    raft_msg app = cx_msg(RAFT_MSG_APPEND, 1, 2, 2);
    raft_entry e = {.term = 2, .index = 1, .type = RAFT_ENTRY_NOOP};
    app.entries = &e;
    app.n_entries = 1;
    raft_step(r, &app);
    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 1, 2, 2);
    hb.context = 9;
    raft_step(r, &hb);
    size_t n = raft_take_messages(r, &msgs);
    assert_int_equal(n, 1);
    assert_int_equal(msgs[0].type, RAFT_MSG_HEARTBEAT_RESP);
    assert_int_equal(msgs[0].context, 9);
    raft_messages_free(msgs, n);
    assert_true(cx_take(r, &rd));
    assert_int_equal(rd.n_entries, 1);
    const raft_msg *resp = cx_find(&rd, RAFT_MSG_APPEND_RESP, 1);
    assert_non_null(resp);
    assert_int_equal(resp->index, 1);
    raft_free(r);
}

/* Only a Ready with entries, a snapshot, a truncation or a new term/vote needs an fsync; a
 * commit-only Ready does not (no fsync per commit). */
static void mustSyncOnlyForDurableState(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    raft_msg vote = cx_msg(RAFT_MSG_VOTE, 1, 2, 2);
    raft_step(r, &vote);
    raft_ready rdy;
    raft_ready_get(r, &rdy);
    assert_true(rdy.must_sync); /* the vote */
    raft_advance(r, &rdy);

    raft_msg app = cx_msg(RAFT_MSG_APPEND, 1, 2, 2);
    raft_entry e = {.term = 2, .index = 1, .type = RAFT_ENTRY_NOOP};
    app.entries = &e;
    app.n_entries = 1;
    raft_step(r, &app);
    raft_ready_get(r, &rdy);
    assert_true(rdy.must_sync); /* the entry */
    raft_advance(r, &rdy);

    raft_msg hb = cx_msg(RAFT_MSG_HEARTBEAT, 1, 2, 2);
    hb.commit = 1;
    raft_step(r, &hb);
    raft_ready_get(r, &rdy);
    assert_true(rdy.hard_state_changed);
    assert_int_equal(rdy.hard_state.commit, 1);
    assert_false(rdy.must_sync); /* commit only */
    assert_int_equal(rdy.n_committed, 1);
    raft_advance(r, &rdy);
    raft_free(r);
}

/* The election timeout is drawn from [election_tick, election_tick_max). */
static void electionTimeoutWithinConfiguredRange(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        raft_config cfg = cx_config(1, 3);
        cfg.election_tick = 10;
        cfg.election_tick_max = 13;
        cfg.seed = seed;
        raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
        int ticks = 0;
        while (raft_get_role(r) == RAFT_FOLLOWER && ticks < 100) {
            raft_tick(r);
            ticks++;
        }
        assert_true(ticks >= 10 && ticks < 13);
        raft_free(r);
    }
    raft_config bad = cx_config(1, 3);
    bad.election_tick_max = bad.election_tick;
    raft *r = NULL;
    assert_int_equal(raft_new(&bad, NULL, &r), RAFT_EINVAL);
}


/* A leader whose own write is in flight applies an entry as soon as both followers have it:
 * the entry is handed out once, early, and not again in the next Ready. */
static void committedTakenWhileLeaderWrites(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, NULL);
    raft_index idx;
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "a", 1, &idx, NULL), RAFT_OK);
    raft_ready outstanding;
    raft_ready_get(r, &outstanding);
    raft_entry *entries;
    assert_int_equal(raft_take_committed(r, &entries), 0); /* nobody has it yet */
    assert_null(entries);
    for (raft_id f = 2; f <= 3; f++) {
        raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, f, 1, raft_get_term(r));
        ack.index = idx;
        raft_step(r, &ack);
    }
    assert_int_equal(raft_commit_index(r), idx); /* two followers: a majority without us */
    size_t n = raft_take_committed(r, &entries);
    assert_true(n >= 1);
    assert_int_equal(entries[n - 1].index, idx);
    assert_int_equal(entries[n - 1].len, 1);
    assert_memory_equal(entries[n - 1].data, "a", 1);
    assert_int_equal(raft_applied_index(r), idx);
    free(entries);
    assert_int_equal(raft_take_committed(r, &entries), 0); /* taken means gone */
    /* Not yet handed to storage past what the outstanding Ready holds: no snapshot beyond. */
    assert_int_equal(raft_compact(r, idx, 0), RAFT_OK);
    raft_advance(r, &outstanding);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_committed, 0);
    raft_free(r);
}

/* Entries applied early that no Ready has handed to storage yet cannot be covered by a
 * snapshot: the stored log would have a gap. */
static void compactRefusesBeyondHandedEntries(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, NULL);
    raft_index idx;
    raft_ready outstanding;
    raft_ready_get(r, &outstanding); /* whatever is left from the election */
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "b", 1, &idx, NULL), RAFT_OK);
    raft_msg *msgs;
    size_t n = raft_take_messages(r, &msgs); /* the followers get it while we write */
    raft_messages_free(msgs, n);
    for (raft_id f = 2; f <= 3; f++) {
        raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, f, 1, raft_get_term(r));
        ack.index = idx;
        raft_step(r, &ack);
    }
    raft_entry *entries;
    n = raft_take_committed(r, &entries);
    assert_true(n >= 1);
    assert_int_equal(entries[n - 1].index, idx);
    free(entries);
    assert_true(raft_handed_index(r) < idx);
    assert_int_equal(raft_compact(r, idx, 0), RAFT_EINVAL);
    raft_advance(r, &outstanding);
    raft_ready next;
    raft_ready_get(r, &next); /* hands entry idx to storage */
    assert_true(next.n_entries >= 1);
    assert_int_equal(next.entries[next.n_entries - 1].index, idx);
    assert_int_equal(next.n_committed, 0); /* already applied */
    assert_int_equal(raft_compact(r, idx, 0), RAFT_OK);
    raft_advance(r, &next);
    raft_free(r);
}

/* A follower with a snapshot on its way in applies nothing early: the entries after the
 * snapshot wait for it to be installed. */
static void nothingEarlyWhileSnapshotPending(void **state)
{
    (void)state;
    raft_config cfg = cx_config(2, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    raft_msg snap = cx_msg(RAFT_MSG_SNAPSHOT, 1, 2, 1);
    snap.snapshot.index = 10;
    snap.snapshot.term = 1;
    snap.snapshot.conf.n_voters = 3;
    for (uint32_t i = 0; i < 3; i++)
        snap.snapshot.conf.voters[i] = i + 1;
    snap.commit = 10;
    raft_step(r, &snap);
    raft_entry *entries;
    assert_int_equal(raft_take_committed(r, &entries), 0); /* pending, not yet in a Ready */
    raft_ready outstanding;
    raft_ready_get(r, &outstanding);
    assert_int_equal(outstanding.snapshot.index, 10);
    raft_entry e = {.term = 1, .index = 11, .type = RAFT_ENTRY_NORMAL,
                    .data = (const uint8_t *)"x", .len = 1};
    raft_msg app = cx_msg(RAFT_MSG_APPEND, 1, 2, 1);
    app.index = 10;
    app.log_term = 1;
    app.commit = 11;
    app.entries = &e;
    app.n_entries = 1;
    raft_step(r, &app); /* committed while the snapshot is being installed */
    assert_int_equal(raft_commit_index(r), 11);
    assert_int_equal(raft_take_committed(r, &entries), 0);
    raft_advance(r, &outstanding);
    size_t n = raft_take_committed(r, &entries); /* installed: now it may go */
    assert_int_equal(n, 1);
    assert_int_equal(entries[0].index, 11);
    free(entries);
    raft_free(r);
}

/* A leader's confirmed read is handed out at once, even while its Ready is outstanding. */
static void readsTakenWhileReadyOutstanding(void **state)
{
    (void)state;
    raft_config cfg = cx_config(1, 3);
    raft *r = cx_new(&cfg, NULL, 0, (raft_hard_state){.term = 1});
    cx_make_leader(r, NULL);
    for (raft_id f = 2; f <= 3; f++) { /* commit the term's no-op so reads may be served */
        raft_msg ack = cx_msg(RAFT_MSG_APPEND_RESP, f, 1, raft_get_term(r));
        ack.index = raft_last_index(r);
        raft_step(r, &ack);
    }
    cx_drain(r, &rd);
    assert_int_equal(raft_propose(r, RAFT_ENTRY_NORMAL, "c", 1, NULL, NULL), RAFT_OK);
    raft_ready outstanding;
    raft_ready_get(r, &outstanding);
    assert_int_equal(raft_read_index(r, 77), RAFT_OK);
    raft_msg *msgs;
    size_t n = raft_take_messages(r, &msgs);
    const raft_msg *hb = NULL;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].type == RAFT_MSG_HEARTBEAT && msgs[i].to == 2)
            hb = &msgs[i];
    assert_non_null(hb);
    raft_msg resp = cx_msg(RAFT_MSG_HEARTBEAT_RESP, 2, 1, raft_get_term(r));
    resp.context = hb->context;
    raft_messages_free(msgs, n);
    raft_read_state *reads;
    assert_int_equal(raft_take_reads(r, &reads), 0);
    raft_step(r, &resp);
    n = raft_take_reads(r, &reads);
    assert_int_equal(n, 1);
    assert_int_equal(reads[0].request_id, 77);
    free(reads);
    raft_advance(r, &outstanding);
    cx_drain(r, &rd);
    assert_int_equal(rd.n_reads, 0); /* not handed out twice */
    raft_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heartbeatsLeaveWhileReadyOutstanding),
        cmocka_unit_test(proposalsReplicatedWhileLeaderWrites),
        cmocka_unit_test(votesAndAppendAnswersWait),
        cmocka_unit_test(electionTimeoutWithinConfiguredRange),
        cmocka_unit_test(mustSyncOnlyForDurableState),
        cmocka_unit_test(committedTakenWhileLeaderWrites),
        cmocka_unit_test(compactRefusesBeyondHandedEntries),
        cmocka_unit_test(nothingEarlyWhileSnapshotPending),
        cmocka_unit_test(readsTakenWhileReadyOutstanding),
    };
    return cmocka_run_group_tests_name("raft_early", tests, NULL, NULL);
}
