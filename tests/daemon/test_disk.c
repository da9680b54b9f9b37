/*
 * test_disk.c -- the disk thread (src/server/disk.c): jobs run off the loop thread, in submission
 * order, their done() callbacks run on the loop thread in the same order, a done() may submit
 * more work, and disk_close() drains everything before it returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <uv.h>

#include "disk.h"

#define N_JOBS 1000

typedef struct test_job {
    disk_job base;
    int seq;
    uv_thread_t worker; /* the thread work() ran on */
} test_job;

static uv_loop_t loop;
static disk *dk;
static test_job jobs[N_JOBS + 1];
static int worked[N_JOBS + 1]; /* order in which work() ran; written by the disk thread only */
static int n_worked;
static int done_order[N_JOBS + 1];
static int n_done;
static bool follow_up_submitted;

static void work(disk_job *job)
{
    test_job *j = (test_job *)job;
    j->worker = uv_thread_self();
    worked[n_worked++] = j->seq;
}

static void done(disk_job *job)
{
    test_job *j = (test_job *)job;
    done_order[n_done++] = j->seq;
    if (j->seq == N_JOBS - 1 && !follow_up_submitted) {
        /* A done() submitting more work (as a snapshot's chunk chain does). */
        follow_up_submitted = true;
        jobs[N_JOBS].seq = N_JOBS;
        jobs[N_JOBS].base.work = work;
        jobs[N_JOBS].base.done = done;
        disk_submit(dk, &jobs[N_JOBS].base);
    }
}

static void jobs_run_off_loop_in_order(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    dk = disk_start(&loop);
    assert_non_null(dk);
    uv_thread_t self = uv_thread_self();
    for (int i = 0; i < N_JOBS; i++) {
        jobs[i].seq = i;
        jobs[i].base.work = work;
        jobs[i].base.done = done;
        disk_submit(dk, &jobs[i].base);
    }
    assert_true(disk_pending(dk) >= 1);
    for (int i = 0; i < 100000 && n_done < N_JOBS + 1; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(n_done, N_JOBS + 1);
    assert_int_equal(disk_pending(dk), 0);
    for (int i = 0; i <= N_JOBS; i++) {
        assert_int_equal(worked[i], i);
        assert_int_equal(done_order[i], i);
        assert_false(uv_thread_equal(&jobs[i].worker, &self));
    }
    disk_close(dk);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void close_drains_submitted_jobs(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    dk = disk_start(&loop);
    assert_non_null(dk);
    n_worked = n_done = 0;
    follow_up_submitted = true; /* no follow-up here */
    for (int i = 0; i < 50; i++) {
        jobs[i].seq = i;
        jobs[i].base.work = work;
        jobs[i].base.done = done;
        disk_submit(dk, &jobs[i].base);
    }
    disk_close(dk); /* without running the loop: close must finish them itself */
    assert_int_equal(n_done, 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(done_order[i], i);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jobs_run_off_loop_in_order),
        cmocka_unit_test(close_drains_submitted_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
