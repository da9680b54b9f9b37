/*
 * test_known_bugs.c -- failing tests for core bugs that are reported but not yet fixed. ctest
 * registers this program with WILL_FAIL, so CI stays green while the bug is there and turns red
 * the moment it is fixed: then drop WILL_FAIL (tests/raft/CMakeLists.txt) and move the test to
 * its family's file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

/* Liveness. A follower in REPLICATE state whose appends were all lost (here: cut off for a few
 * ticks) must be repaired by the heartbeat round once it is reachable again, without waiting for
 * a new proposal. The core answers a heartbeat response with send_append(.., send_if_empty =
 * false); in REPLICATE next is already past the lost entries, so nothing is sent, ever, until the
 * next proposal makes the follower reject and the leader probe. A quiet cluster leaves the
 * follower behind forever (reads served by it never complete). */
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
        cmocka_unit_test(replicateLostAppendsResentOnHeartbeat),
    };
    return cmocka_run_group_tests_name("raft_known_bugs", tests, NULL, NULL);
}
