/*
 * fake_node.c -- node.h over one shared kv_store with immediate commits (contract in fake_node.h).
 */
#include "fake_node.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAKE_MAX_NODES 8

struct node {
    fake_cluster *cluster;
    raft_id id;
    raft_id leader_view; /* 0 = no leader known */
    void (*reply_flush)(void *ctx); /* node_set_reply_flush */
    void *reply_flush_ctx;
    bool fired; /* a callback of this node fired in this round */
};

typedef struct fake_completion {
    struct fake_completion *prev, *next;
    node *n;
    bool is_write;
    node_write_cb write_cb;
    node_read_cb read_cb;
    void *ctx;
    int status;
    kv_result result;
} fake_completion;

struct fake_cluster {
    uv_loop_t *loop;
    uv_idle_t idle; /* fires queued completions on the next loop iteration */
    bool idle_active;
    uint32_t n_nodes;
    node nodes[FAKE_MAX_NODES];
    node_peer peers[FAKE_MAX_NODES];
    kv_store *kv;
    uint64_t next_index;
    uint64_t clock_offset_ms;
    fake_outcome outcome;
    bool outcome_applies;
    bool lifo, hold;
    uint32_t queued;
    uint64_t writes;
    uint32_t busy_ms;
    bool in_reply_flush; /* the front-end must not call in while flushing (node.h) */
    fake_completion *head, *tail;
};

static void fire_queued(uv_idle_t *idle);

static void schedule(fake_cluster *c)
{
    if (c->hold || c->head == NULL || c->idle_active) return;
    uv_idle_start(&c->idle, fire_queued);
    c->idle_active = true;
}

static void unlink_completion(fake_cluster *c, fake_completion *fc)
{
    if (fc->prev) fc->prev->next = fc->next;
    else c->head = fc->next;
    if (fc->next) fc->next->prev = fc->prev;
    else c->tail = fc->prev;
    c->queued--;
}

static void fire_queued(uv_idle_t *idle)
{
    fake_cluster *c = idle->data;
    uv_idle_stop(&c->idle);
    c->idle_active = false;
    /* Fire only what is queued now: callbacks may queue more, for the next iteration. */
    uint32_t budget = c->queued;
    while (budget-- > 0 && !c->hold) {
        fake_completion *fc = c->lifo ? c->tail : c->head;
        if (fc == NULL) break;
        unlink_completion(c, fc);
        fc->n->fired = true;
        if (fc->is_write) fc->write_cb(fc->ctx, fc->status, fc->status == NODE_OK ? &fc->result : NULL);
        else fc->read_cb(fc->ctx, fc->status);
        free(fc);
    }
    /* As the node does after applying: replies out now, then its other work (busy_ms of it). */
    bool fired = false;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        node *n = &c->nodes[i];
        if (n->fired && n->reply_flush != NULL) {
            c->in_reply_flush = true;
            n->reply_flush(n->reply_flush_ctx);
            c->in_reply_flush = false;
        }
        fired |= n->fired;
        n->fired = false;
    }
    if (fired && c->busy_ms > 0) {
        struct timespec ts = {.tv_sec = c->busy_ms / 1000, .tv_nsec = (long)(c->busy_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    schedule(c);
}

static int enqueue(node *n, bool is_write, node_write_cb wcb, node_read_cb rcb, void *ctx, int status,
                   const kv_result *result)
{
    fake_cluster *c = n->cluster;
    fake_completion *fc = calloc(1, sizeof *fc);
    if (fc == NULL) return NODE_ENOMEM;
    fc->n = n;
    fc->is_write = is_write;
    fc->write_cb = wcb;
    fc->read_cb = rcb;
    fc->ctx = ctx;
    fc->status = status;
    if (result) fc->result = *result;
    fc->prev = c->tail;
    if (c->tail) c->tail->next = fc;
    else c->head = fc;
    c->tail = fc;
    c->queued++;
    schedule(c);
    return 0;
}

fake_cluster *fake_cluster_new(uv_loop_t *loop, uint32_t n_nodes)
{
    assert(n_nodes >= 1 && n_nodes <= FAKE_MAX_NODES);
    fake_cluster *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->kv = kv_store_new(NULL);
    if (c->kv == NULL) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->n_nodes = n_nodes;
    c->next_index = 1;
    for (uint32_t i = 0; i < n_nodes; i++) {
        c->nodes[i].cluster = c;
        c->nodes[i].id = i + 1;
        c->nodes[i].leader_view = 1;
        c->peers[i].id = i + 1;
        snprintf(c->peers[i].host, sizeof c->peers[i].host, "127.0.0.1");
    }
    uv_idle_init(loop, &c->idle);
    c->idle.data = c;
    return c;
}

static void free_on_close(uv_handle_t *handle) { free(handle->data); }

void fake_cluster_free(fake_cluster *c)
{
    if (c == NULL) return;
    while (c->head) {
        fake_completion *fc = c->head;
        unlink_completion(c, fc);
        free(fc);
    }
    kv_store_free(c->kv);
    c->kv = NULL;
    /* The idle handle belongs to the loop until its close callback: free there. */
    uv_close((uv_handle_t *)&c->idle, free_on_close);
}

node *fake_cluster_node(fake_cluster *c, raft_id id)
{
    assert(id >= 1 && id <= c->n_nodes);
    return &c->nodes[id - 1];
}

node_peer *fake_node_peer(fake_cluster *c, raft_id id)
{
    assert(id >= 1 && id <= c->n_nodes);
    return &c->peers[id - 1];
}

void fake_cluster_set_leader(fake_cluster *c, raft_id leader_id)
{
    for (uint32_t i = 0; i < c->n_nodes; i++) c->nodes[i].leader_view = leader_id;
}

void fake_node_set_leader(fake_cluster *c, raft_id id, raft_id leader_id)
{
    fake_cluster_node(c, id)->leader_view = leader_id;
}

void fake_cluster_set_write_outcome(fake_cluster *c, fake_outcome outcome, bool apply)
{
    c->outcome = outcome;
    c->outcome_applies = apply;
}

void fake_cluster_set_lifo(fake_cluster *c, bool lifo) { c->lifo = lifo; }

void fake_cluster_hold(fake_cluster *c, bool hold)
{
    c->hold = hold;
    schedule(c);
}

void fake_cluster_set_busy(fake_cluster *c, uint32_t ms) { c->busy_ms = ms; }

uint32_t fake_cluster_queued(const fake_cluster *c) { return c->queued; }
void fake_cluster_advance_clock(fake_cluster *c, uint64_t ms) { c->clock_offset_ms += ms; }
kv_store *fake_cluster_kv(fake_cluster *c) { return c->kv; }
uint64_t fake_cluster_writes(const fake_cluster *c) { return c->writes; }

/* ---- node.h ---------------------------------------------------------------------------------- */

const char *node_strerror(int rc)
{
    switch (rc) {
    case NODE_OK: return "ok";
    case NODE_ENOTLEADER: return "not the leader";
    case NODE_ENOLEADER: return "no leader";
    case NODE_ETIMEOUT: return "timed out";
    case NODE_ELOST: return "leadership lost";
    case NODE_ETOOBIG: return "command too big";
    case NODE_EBUSY: return "busy";
    case NODE_ESTOPPING: return "stopping";
    case NODE_ENOMEM: return "out of memory";
    default: return "unknown error";
    }
}

/* The reply flush runs inside the node's prepare callback: a front-end that parsed input there
 * would propose from inside the node. */
static void check_not_in_flush(const node *n, const char *what)
{
    if (n->cluster->in_reply_flush) {
        fprintf(stderr, "fake_node: %s called from inside the reply flush\n", what);
        abort();
    }
}

int node_write(node *n, const kv_cmd *cmd, node_write_cb cb, void *ctx)
{
    fake_cluster *c = n->cluster;
    check_not_in_flush(n, "node_write");
    if (n->leader_view != n->id) return n->leader_view ? NODE_ENOTLEADER : NODE_ENOLEADER;
    kv_cmd copy = *cmd;
    copy.now_ms = node_now_ms(n);
    size_t size = kv_cmd_encoded_size(&copy);
    if (size == 0) return NODE_ETOOBIG;
    uint8_t *buf = malloc(size);
    if (buf == NULL) return NODE_ENOMEM;
    long len = kv_cmd_encode(&copy, buf, size);
    assert(len == (long)size);
    kv_result result = {0};
    bool apply = c->outcome == FAKE_WRITE_OK || c->outcome_applies;
    if (apply) {
        int rc = kv_apply(c->kv, c->next_index++, buf, (size_t)len, &result);
        assert(rc == KV_OK);
        (void)rc;
    }
    free(buf);
    c->writes++;
    int status = c->outcome == FAKE_WRITE_OK      ? NODE_OK
                 : c->outcome == FAKE_WRITE_LOST ? NODE_ELOST
                                                 : NODE_ETIMEOUT;
    return enqueue(n, true, cb, NULL, ctx, status, &result);
}

int node_read(node *n, node_read_cb cb, void *ctx)
{
    check_not_in_flush(n, "node_read");
    if (n->leader_view == 0) return NODE_ENOLEADER;
    return enqueue(n, false, NULL, cb, ctx, NODE_OK, NULL);
}

void node_cancel(node *n, void *ctx)
{
    fake_cluster *c = n->cluster;
    for (fake_completion *fc = c->head, *next; fc; fc = next) {
        next = fc->next;
        if (fc->n == n && fc->ctx == ctx) {
            unlink_completion(c, fc);
            free(fc);
        }
    }
}

void node_set_reply_flush(node *n, void (*flush)(void *ctx), void *ctx)
{
    n->reply_flush = flush;
    n->reply_flush_ctx = ctx;
}

kv_store *node_kv(node *n) { return n->cluster->kv; }

uint64_t node_now_ms(const node *n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + n->cluster->clock_offset_ms;
}

/* The fake cluster has no membership: the real node and tests/daemon cover RAFTKV.MEMBER. */
int node_change_member(node *n, raft_id id, node_member_op op, const node_peer *addr,
                       node_write_cb cb, void *ctx)
{
    (void)id, (void)op, (void)addr, (void)cb, (void)ctx;
    if (n->leader_view != n->id) return n->leader_view ? NODE_ENOTLEADER : NODE_ENOLEADER;
    return NODE_EMEMBER; /* nor NODE_EUNSAFE: the fake has no transport */
}

/* The fake cluster has no fast path: the real node and tests/daemon cover RAFTKV.FSET. */
int node_fast_write(node *n, uint64_t session, uint64_t seq, const kv_cmd *cmd, node_fast_cb cb,
                    void *ctx)
{
    (void)n, (void)session, (void)seq, (void)cmd, (void)cb, (void)ctx;
    return NODE_EFASTOFF;
}

bool node_fast_path(const node *n) { (void)n; return false; }

bool node_is_leader(const node *n) { return n->leader_view == n->id; }

bool node_is_outside(const node *n) { (void)n; return false; }

bool node_votes(const node *n, raft_id id) { return id >= 1 && id <= n->cluster->n_nodes; }

bool node_learns(const node *n, raft_id id) { (void)n, (void)id; return false; }

const char *node_member_refusal(const node *n, raft_id id, node_member_op op,
                                const node_peer *addr)
{
    (void)n, (void)id, (void)op, (void)addr;
    return NULL;
}

bool node_some_voter(const node *n, node_peer *out)
{
    (void)n, (void)out;
    return false;
}

bool node_leader(const node *n, node_peer *out)
{
    if (n->leader_view == 0) return false;
    if (out) *out = n->cluster->peers[n->leader_view - 1];
    return true;
}

const node_peer *node_self(const node *n) { return &n->cluster->peers[n->id - 1]; }

const node_peer *node_peers(const node *n, uint32_t *count)
{
    *count = n->cluster->n_nodes;
    return n->cluster->peers;
}

void node_get_info(const node *n, node_info *out)
{
    const fake_cluster *c = n->cluster;
    memset(out, 0, sizeof *out);
    out->id = n->id;
    out->role = node_is_leader(n) ? RAFT_LEADER : RAFT_FOLLOWER;
    out->term = 7;
    out->leader = n->leader_view;
    out->commit = c->next_index - 1;
    out->applied = c->next_index - 1;
    out->last_index = c->next_index - 1;
    out->n_peers = c->n_nodes;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        out->peers[i].id = i + 1;
        out->peers[i].match = node_is_leader(n) ? c->next_index - 1 : 0;
        out->peers[i].connected = true;
    }
    out->writes_ok = c->writes;
}
