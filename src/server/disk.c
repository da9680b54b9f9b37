/*
 * disk.c -- one worker thread, a FIFO of jobs to run and a FIFO of jobs done (see disk.h).
 * The loop learns of finished jobs through an eventfd watched by a uv_poll; done() callbacks run in
 * submission order. Not a uv_async: its loop side spins (pause, then sched_yield) while the sender
 * is between marking it and writing its eventfd, and on two busy cores the woken loop thread spun
 * on the very core the disk thread needed to finish (perf: 4 % of a follower's samples there).
 */
#include "disk.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

struct disk {
    uv_thread_t thread;
    uv_mutex_t lock;
    uv_cond_t wake;
    int efd;        /* eventfd: the disk thread adds 1 per finished job */
    uv_poll_t poll; /* the loop's watch on efd */
    disk_job *todo_head, *todo_tail; /* under lock */
    disk_job *done_head, *done_tail; /* under lock */
    bool stopping;                   /* under lock */
    bool sleeping;                   /* under lock: the thread waits on `wake` */
    size_t pending;                  /* loop thread only */
};

static void push(disk_job **head, disk_job **tail, disk_job *job)
{
    job->next_ = NULL;
    if (*tail != NULL)
        (*tail)->next_ = job;
    else
        *head = job;
    *tail = job;
}

static void disk_thread(void *arg)
{
    disk *d = arg;
    for (;;) {
        uv_mutex_lock(&d->lock);
        while (d->todo_head == NULL && !d->stopping) {
            d->sleeping = true;
            uv_cond_wait(&d->wake, &d->lock);
            d->sleeping = false;
        }
        disk_job *job = d->todo_head;
        if (job == NULL) {
            uv_mutex_unlock(&d->lock);
            break; /* stopping and drained */
        }
        d->todo_head = job->next_;
        if (d->todo_head == NULL)
            d->todo_tail = NULL;
        uv_mutex_unlock(&d->lock);
        job->work(job);
        uv_mutex_lock(&d->lock);
        push(&d->done_head, &d->done_tail, job);
        uv_mutex_unlock(&d->lock);
        /* Outside the lock: the loop thread it wakes takes the lock at once (disk_drain). */
        uint64_t one = 1;
        while (write(d->efd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
}

/* Runs done() of every finished job, in order. */
static void disk_drain(disk *d)
{
    uv_mutex_lock(&d->lock);
    disk_job *job = d->done_head;
    d->done_head = d->done_tail = NULL;
    uv_mutex_unlock(&d->lock);
    while (job != NULL) {
        disk_job *next = job->next_;
        d->pending--;
        job->done(job); /* may free job */
        job = next;
    }
}

static void disk_poll_cb(uv_poll_t *poll, int status, int events)
{
    (void)status;
    (void)events;
    disk *d = poll->data;
    uint64_t n;
    (void)!read(d->efd, &n, sizeof n); /* resets the counter; EAGAIN: nothing new, fine */
    disk_drain(d);
}

disk *disk_start(uv_loop_t *loop)
{
    disk *d = calloc(1, sizeof *d);
    if (d == NULL) {
        log_printf("disk thread: out of memory");
        return NULL;
    }
    int rc = uv_mutex_init(&d->lock);
    if (rc == 0 && (rc = uv_cond_init(&d->wake)) != 0)
        uv_mutex_destroy(&d->lock);
    if (rc != 0) {
        log_printf("disk thread: cannot create its lock: %s", uv_strerror(rc));
        free(d);
        return NULL;
    }
    d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->efd < 0) {
        log_printf("disk thread: cannot create its eventfd: %s", strerror(errno));
        return NULL; /* d leaks: the node is about to exit anyway */
    }
    if ((rc = uv_poll_init(loop, &d->poll, d->efd)) != 0 ||
        (rc = uv_poll_start(&d->poll, UV_READABLE, disk_poll_cb)) != 0) {
        log_printf("disk thread: cannot watch its eventfd: %s", uv_strerror(rc));
        return NULL;
    }
    d->poll.data = d;
    rc = uv_thread_create(&d->thread, disk_thread, d);
    if (rc != 0) {
        log_printf("disk thread: cannot start: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&d->poll, NULL); /* d leaks: the node is about to exit anyway */
        return NULL;
    }
    return d;
}

void disk_submit(disk *d, disk_job *job)
{
    d->pending++;
    uv_mutex_lock(&d->lock);
    push(&d->todo_head, &d->todo_tail, job);
    bool wake = d->sleeping;
    uv_mutex_unlock(&d->lock);
    /* Signalled after the unlock, and only when the thread sleeps: a thread woken while the lock
     * is still held blocks on it right away (two more futex calls and a context switch). */
    if (wake)
        uv_cond_signal(&d->wake);
}

size_t disk_pending(const disk *d)
{
    return d->pending;
}

static void disk_free_cb(uv_handle_t *handle)
{
    disk *d = handle->data;
    close(d->efd);
    free(d);
}

void disk_close(disk *d)
{
    uv_mutex_lock(&d->lock);
    d->stopping = true;
    uv_cond_signal(&d->wake);
    uv_mutex_unlock(&d->lock);
    uv_thread_join(&d->thread);
    /* done() may submit more work (a follow-up job): run until nothing is left. */
    while (d->pending > 0) {
        disk_drain(d);
        if (d->pending > 0) {
            disk_job *job;
            while ((job = d->todo_head) != NULL) {
                d->todo_head = job->next_;
                job->work(job);
                push(&d->done_head, &d->done_tail, job);
            }
            d->todo_tail = NULL;
        }
    }
    uv_cond_destroy(&d->wake);
    uv_mutex_destroy(&d->lock);
    uv_poll_stop(&d->poll);
    uv_close((uv_handle_t *)&d->poll, disk_free_cb);
}
