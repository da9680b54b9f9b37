/* test_crash_sweep.c -- the long crash-point sweep (label integration): every write and sync of
 * the long script, four crash flavours each, two seeds. See workload.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "workload.h"

static void crashSweepLongScript(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        wl_sweep_result res = wl_crash_sweep(WL_SCRIPT_LONG, seed, seed % 2 == 0);
        printf("crash sweep (long, seed %llu%s): %llu crash points, %llu runs, %llu failures, %llu torn tails cut\n",
               (unsigned long long)seed, seed % 2 == 0 ? ", crash during recovery too" : "", (unsigned long long)res.crash_points,
               (unsigned long long)res.runs, (unsigned long long)res.failures,
               (unsigned long long)res.torn_tails_cut);
        assert_true(res.crash_points > 100);
        assert_true(res.torn_tails_cut > 0);
        assert_int_equal(res.failures, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crashSweepLongScript),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
