/*
 * raftkv-bench -- a closed-loop load generator for raftkv (text protocol, RESP), redis (RESP) and
 * etcd (v3 JSON/HTTP gateway), so one program measures every system the same way.
 *
 *   raftkv-bench --proto text|resp|etcd --addr 127.0.0.1:7001[,127.0.0.1:7002...]
 *                [--clients 64] [--pipeline 1] [--keys 10000] [--key-size 16] [--value-size 256]
 *                [--read-ratio 0.0] [--duration 10] [--warmup 1] [--ops 0] [--seed 1] [--preload]
 *                [--timeout-ms 5000] [--timeline FILE --timeline-ms 100] [--json] [--quiet]
 *
 * MODEL. --clients connections, each keeping exactly --pipeline requests in flight: a reply (or an
 * error) is followed at once by the next request (closed loop: the offered load adapts to the
 * server, as with real clients that wait for answers). A request is a write (SET of a random key)
 * or, with probability --read-ratio, a read (GET, linearizable on raftkv and etcd). Keys are drawn
 * uniformly from --keys keys of --key-size bytes; values are --value-size printable bytes.
 * --preload first writes every key once, so reads find their key. Then --warmup seconds whose
 * replies are not counted, then --duration measured seconds (or --ops measured replies).
 * Latency = from the request's bytes being handed to the socket to its reply being parsed.
 *
 * ERRORS do not stop the run: they are counted by kind (the server's error word, "timeout",
 * "closed", "connect", "lost" for requests in flight on a connection that failed, ...). A failed
 * connection is re-opened 100 ms later on the next address of --addr, which is how a run survives
 * a leader being killed (the availability plot). Text protocol: writes must reach the leader, so
 * before starting, each address gets one probe write and an ERR_REDIRECT names the leader that
 * connections of that address use; a redirect met later (after a failover) moves the connection
 * to the new leader.
 *
 * EVENT LOOP. One thread, plain epoll, no libuv: the loop is small (connect, write, read, timers at
 * 10 ms granularity), epoll is what libuv would use here anyway, and owning the buffers lets a
 * connection's pipelined requests go out in one write() and its replies be parsed in place. One
 * thread also bounds what the generator takes from the 2 cores it shares with the servers (its own
 * CPU time is reported). At 100k+ requests/s it keeps up with pipelining (a few syscalls per batch).
 *
 * FAST PATH (--fast, raftkv's RESP port, docs/NILEXT.md). --addr lists the RESP ports of every
 * node (each answer names its node). Each of the --clients clients registers a session
 * (RAFTKV.REGISTER; closed with RAFTKV.UNREGISTER after the run), then keeps one
 * write in flight: RAFTKV.FSET sent to every node at once, done when, in one term, the leader and
 * every voter it lists answered +FAST (latency: until that last answer). A write that cannot
 * complete so (a node down, answers of different terms) counts as an error "incomplete"; its
 * client moves on to the next seq. No reads, no pipelining, no preload.
 *
 * BOUNDS. Only loopback addresses (127.0.0.0/8, ::1, localhost) are accepted, redirects included.
 * Durations are capped (1 hour measured, 2 minutes of preload), clients at 10000, pipeline at 1024.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lg_hist.h"
#include "lg_proto.h"

#define MAX_ENDPOINTS 32
#define MAX_CLIENTS 10000
#define MAX_PIPELINE 1024
#define MAX_DURATION_S 3600
#define MAX_PRELOAD_S 120
#define MAX_ERROR_KINDS 32
#define RECONNECT_DELAY_NS (100ull * 1000 * 1000)
#define NS_PER_S 1000000000ull

/* ---- options ---------------------------------------------------------------------------------- */

typedef struct options {
    lg_proto_kind proto;
    char addr[1024];
    unsigned clients;
    unsigned pipeline;
    uint64_t keys;
    unsigned key_size;
    unsigned value_size;
    double read_ratio;
    double duration_s;
    double warmup_s;
    uint64_t max_ops;
    uint64_t seed;
    bool preload;
    uint64_t timeout_ms;
    char timeline_path[1024];
    uint64_t timeline_ms;
    bool json;
    bool quiet;
    bool fast;
} options;

/* ---- state ------------------------------------------------------------------------------------ */

typedef struct endpoint {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char name[80]; /* host:port, also the HTTP Host header */
} endpoint;

typedef struct inflight {
    uint64_t start_ns;
    bool is_get;
    bool preload;
} inflight;

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_READY };

typedef struct conn {
    int fd;
    enum conn_state state;
    size_t user_index; /* which --addr address this connection rotates from */
    size_t endpoint;   /* where it connects now (a redirect target or the user address) */
    uint64_t since_ns; /* DOWN: reconnect time; CONNECTING: when connect started */
    lg_buf out;
    size_t out_off;
    bool want_out;
    lg_buf in;
    inflight *ring; /* pipeline slots */
    size_t ring_head, ring_count;
} conn;

enum phase { PHASE_PRELOAD, PHASE_WARMUP, PHASE_MEASURE, PHASE_DONE };

typedef struct counters {
    uint64_t ok, reads, writes, not_found, errors;
} counters;

typedef struct error_kind {
    char name[32];
    uint64_t count;
} error_kind;

typedef struct timeline_slot {
    uint32_t ok, errors;
} timeline_slot;

typedef struct bench {
    options opt;
    endpoint eps[MAX_ENDPOINTS];
    size_t n_user_eps, n_eps;
    size_t first_ep_of_user[MAX_ENDPOINTS]; /* probe result: endpoint to start on */
    conn *conns;
    unsigned n_conns; /* --clients, or --clients x nodes with --fast */
    int epfd;
    uint64_t rng;
    char *value_pool;
    size_t value_pool_len;
    enum phase phase;
    uint64_t phase_start_ns;
    uint64_t preload_next, preload_done;
    uint64_t measure_start_ns, measure_end_ns;
    struct timespec measure_start_real;
    struct rusage ru_start, ru_end;
    counters total;     /* measured phase */
    counters interval;  /* since the last progress line, any phase */
    uint64_t preload_errors;
    lg_hist *hist;      /* measured phase */
    lg_hist *interval_hist;
    error_kind kinds[MAX_ERROR_KINDS];
    size_t n_kinds;
    timeline_slot *timeline;
    size_t timeline_len;
    uint64_t last_progress_ns, last_timeout_check_ns;
    unsigned progress_seconds;
} bench;

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* xorshift64* seeded through splitmix64: fast, and a seed gives the same key/op sequence. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t rng_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z ? z : 1;
}

/* ---- addresses -------------------------------------------------------------------------------- */

/* Fills ep from "host:port" / "[::1]:port"; only loopback hosts. Returns 0 or -1 with err set. */
static int endpoint_parse(endpoint *ep, const char *text, char *err, size_t errlen)
{
    char host[64];
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') goto bad;
        size_t n = (size_t)(close - text - 1);
        if (n >= sizeof host) goto bad;
        memcpy(host, text + 1, n);
        host[n] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon) goto bad;
        size_t n = (size_t)(colon - text);
        if (n == 0 || n >= sizeof host) goto bad;
        memcpy(host, text, n);
        host[n] = '\0';
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) goto bad;
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");

    memset(ep, 0, sizeof *ep);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ep->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ep->addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127) {
            snprintf(err, errlen, "address '%s': only loopback (127.0.0.0/8, ::1) may be loaded",
                     text);
            return -1;
        }
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        ep->addr_len = sizeof *in4;
        snprintf(ep->name, sizeof ep->name, "%s:%ld", host, port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
            snprintf(err, errlen, "address '%s': only loopback (127.0.0.0/8, ::1) may be loaded",
                     text);
            return -1;
        }
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        ep->addr_len = sizeof *in6;
        snprintf(ep->name, sizeof ep->name, "[%s]:%ld", host, port);
    } else {
        snprintf(err, errlen, "address '%s': host must be a loopback IP literal or localhost",
                 text);
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "address '%s': expected HOST:PORT (port 1..65535)", text);
    return -1;
}

/* The endpoint for a redirect target, added on first use. Returns its index or -1. */
static long endpoint_for_redirect(bench *b, const char *host, uint16_t port)
{
    char text[96], err[160];
    snprintf(text, sizeof text, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    endpoint ep;
    if (endpoint_parse(&ep, text, err, sizeof err) != 0) {
        fprintf(stderr, "raftkv-bench: redirect ignored: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < b->n_eps; i++)
        if (strcmp(b->eps[i].name, ep.name) == 0) return (long)i;
    if (b->n_eps == MAX_ENDPOINTS) return -1;
    b->eps[b->n_eps] = ep;
    return (long)b->n_eps++;
}

/* ---- errors and counters ---------------------------------------------------------------------- */

static void count_error(bench *b, const char *kind, bool preload)
{
    if (preload) {
        b->preload_errors++;
        return;
    }
    b->interval.errors++;
    if (b->phase != PHASE_MEASURE) return;
    b->total.errors++;
    size_t i;
    for (i = 0; i < b->n_kinds; i++)
        if (strcmp(b->kinds[i].name, kind) == 0) break;
    if (i == b->n_kinds) {
        if (b->n_kinds == MAX_ERROR_KINDS) kind = "other", i = MAX_ERROR_KINDS - 1;
        else snprintf(b->kinds[b->n_kinds++].name, sizeof b->kinds[0].name, "%s", kind);
    }
    b->kinds[i].count++;
}

static void timeline_add(bench *b, uint64_t now, bool ok)
{
    if (!b->timeline || b->phase != PHASE_MEASURE) return;
    size_t slot = (size_t)((now - b->measure_start_ns) / (b->opt.timeline_ms * 1000000ull));
    if (slot >= b->timeline_len) return;
    if (ok) b->timeline[slot].ok++;
    else b->timeline[slot].errors++;
}

/* ---- connections ------------------------------------------------------------------------------ */

static void fast_lost(bench *b, conn *c);

static void conn_close(bench *b, conn *c, const char *why)
{
    if (b->opt.fast) fast_lost(b, c); /* its client's write can no longer complete */
    /* Every request still in flight on this connection is lost (its outcome unknown). */
    for (size_t i = 0; i < c->ring_count; i++) {
        inflight *f = &c->ring[(c->ring_head + i) % b->opt.pipeline];
        if (f->preload) b->preload_done++;
        count_error(b, "lost", f->preload);
        timeline_add(b, now_ns(), false);
    }
    /* --fast: the write the connection was part of counts once, as "incomplete" (fast_lost). */
    if (why && !b->opt.fast) count_error(b, why, false);
    c->ring_head = c->ring_count = 0;
    if (c->fd >= 0) {
        epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->out.len = c->out_off = 0;
    c->in.len = 0;
    c->want_out = false;
    c->state = CONN_DOWN;
    c->since_ns = now_ns() + RECONNECT_DELAY_NS;
}

/* A failed connection tries the next --addr address: after a leader dies, that is a live node. */
static void conn_fail(bench *b, conn *c, const char *why)
{
    conn_close(b, c, why);
    if (b->opt.fast) return; /* a fast-path connection belongs to its node */
    c->user_index = (c->user_index + 1) % b->n_user_eps;
    c->endpoint = c->user_index;
}

static void conn_set_events(bench *b, conn *c, bool want_out)
{
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.ptr = c};
    epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static void conn_start(bench *b, conn *c)
{
    const endpoint *ep = &b->eps[c->endpoint];
    c->fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "raftkv-bench: socket: %s\n", strerror(errno));
        conn_fail(b, c, "socket");
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = CONN_CONNECTING;
    c->since_ns = now_ns();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = true;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_fail(b, c, "epoll");
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)&ep->addr, ep->addr_len) != 0 &&
        errno != EINPROGRESS)
        conn_fail(b, c, "connect");
}

static void conn_flush(bench *b, conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                conn_set_events(b, c, true);
                return;
            }
            conn_fail(b, c, "closed");
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out.len = c->out_off = 0;
    conn_set_events(b, c, false);
}

static void make_key(const bench *b, uint64_t index, char *key)
{
    /* "k" + the index, zero-padded to key_size bytes: every key has the same length. */
    snprintf(key, (size_t)b->opt.key_size + 1, "k%0*llu", (int)b->opt.key_size - 1,
             (unsigned long long)index);
}

static bool may_issue(const bench *b)
{
    if (g_interrupted) return false;
    if (b->phase == PHASE_PRELOAD) return b->preload_next < b->opt.keys;
    if (b->phase == PHASE_DONE) return false;
    if (b->phase == PHASE_MEASURE && b->opt.max_ops &&
        b->total.ok + b->total.errors >= b->opt.max_ops)
        return false;
    return true;
}

/* Tops the connection up to --pipeline requests in flight, in one write. */
static void conn_fill(bench *b, conn *c)
{
    if (c->state != CONN_READY) return;
    char key[256];
    while (c->ring_count < b->opt.pipeline && may_issue(b)) {
        inflight *f = &c->ring[(c->ring_head + c->ring_count) % b->opt.pipeline];
        uint64_t index;
        if (b->phase == PHASE_PRELOAD) {
            index = b->preload_next++;
            f->is_get = false;
            f->preload = true;
        } else {
            uint64_t r = rng_next(&b->rng);
            f->is_get = (double)(r >> 11) * 0x1.0p-53 < b->opt.read_ratio;
            index = rng_next(&b->rng) % b->opt.keys;
            f->preload = false;
        }
        make_key(b, index, key);
        const char *authority = b->eps[c->endpoint].name;
        int rc;
        if (f->is_get) {
            rc = lg_proto_encode_get(&c->out, b->opt.proto, authority, key, b->opt.key_size);
        } else {
            size_t off = (size_t)(rng_next(&b->rng) % (b->value_pool_len - b->opt.value_size));
            rc = lg_proto_encode_set(&c->out, b->opt.proto, authority, key, b->opt.key_size,
                                     b->value_pool + off, b->opt.value_size);
        }
        if (rc != 0) {
            fprintf(stderr, "raftkv-bench: out of memory\n");
            exit(1);
        }
        f->start_ns = now_ns();
        c->ring_count++;
    }
    if (c->out.len > c->out_off) conn_flush(b, c);
}

static void on_reply(bench *b, conn *c, const lg_reply *r, uint64_t now)
{
    inflight f = c->ring[c->ring_head];
    c->ring_head = (c->ring_head + 1) % b->opt.pipeline;
    c->ring_count--;
    if (f.preload) b->preload_done++;

    bool ok = r->status == LG_REPLY_OK || r->status == LG_REPLY_NOT_FOUND;
    if (ok) {
        b->interval.ok++;
        lg_hist_record(b->interval_hist, now - f.start_ns);
        if (b->phase == PHASE_MEASURE && !f.preload) {
            b->total.ok++;
            if (f.is_get) b->total.reads++;
            else b->total.writes++;
            if (r->status == LG_REPLY_NOT_FOUND) b->total.not_found++;
            lg_hist_record(b->hist, now - f.start_ns);
        }
    } else {
        count_error(b, r->kind, f.preload);
    }
    timeline_add(b, now, ok);
}

static void conn_read(bench *b, conn *c)
{
    if (lg_buf_reserve(&c->in, 65536) != 0) {
        fprintf(stderr, "raftkv-bench: out of memory\n");
        exit(1);
    }
    ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        conn_fail(b, c, n == 0 ? "closed" : "reset");
        return;
    }
    c->in.len += (size_t)n;
    uint64_t now = now_ns();
    size_t off = 0;
    while (off < c->in.len) {
        if (c->ring_count == 0) {
            conn_fail(b, c, "unsolicited-reply");
            return;
        }
        lg_reply r;
        lg_proto_decode(b->opt.proto, c->ring[c->ring_head].is_get, c->in.data + off,
                        c->in.len - off, &r);
        if (r.status == LG_REPLY_NEED_MORE) break;
        off += r.consumed;
        on_reply(b, c, &r, now);
        if (r.status == LG_REPLY_BAD) {
            conn_fail(b, c, NULL);
            return;
        }
        if (r.status == LG_REPLY_REDIRECT) {
            /* The leader moved: reconnect there at once (the other requests in flight are lost). */
            long ep = endpoint_for_redirect(b, r.redirect_host, r.redirect_port);
            conn_close(b, c, NULL);
            if (ep >= 0) {
                c->endpoint = (size_t)ep;
                c->since_ns = now;
            }
            return;
        }
    }
    lg_buf_consume(&c->in, off);
    conn_fill(b, c);
}

static void fast_fill_conn(bench *b, conn *c);
static void fast_read(bench *b, conn *c);

static void conn_event(bench *b, conn *c, uint32_t events)
{
    if (c->state == CONN_CONNECTING) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            conn_fail(b, c, "connect");
            return;
        }
        if (!(events & EPOLLOUT)) return;
        c->state = CONN_READY;
        conn_set_events(b, c, false);
        if (b->opt.fast) fast_fill_conn(b, c);
        else conn_fill(b, c);
        return;
    }
    if (events & EPOLLIN) {
        if (b->opt.fast) fast_read(b, c);
        else conn_read(b, c);
    }
    else if (events & (EPOLLERR | EPOLLHUP)) conn_fail(b, c, "reset");
    if (c->state == CONN_READY && (events & EPOLLOUT)) conn_flush(b, c);
}

/* ---- the probe: where writes must go (text protocol) ------------------------------------------ */

/* Sends one write to eps[i] on a blocking socket. Returns the endpoint index writes should use. */
static size_t probe_leader(bench *b, size_t i)
{
    const endpoint *ep = &b->eps[i];
    int fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return i;
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t result = i;
    lg_buf out = {0}, in = {0};
    if (connect(fd, (const struct sockaddr *)&ep->addr, ep->addr_len) != 0) {
        fprintf(stderr, "raftkv-bench: probe %s: connect: %s\n", ep->name, strerror(errno));
        goto done;
    }
    if (lg_proto_encode_set(&out, b->opt.proto, ep->name, "raftkv-bench-probe", 18, "x", 1) != 0 ||
        write(fd, out.data, out.len) != (ssize_t)out.len)
        goto done;
    for (;;) {
        if (lg_buf_reserve(&in, 4096) != 0) goto done;
        ssize_t n = read(fd, in.data + in.len, in.cap - in.len);
        if (n <= 0) {
            fprintf(stderr, "raftkv-bench: probe %s: no reply\n", ep->name);
            goto done;
        }
        in.len += (size_t)n;
        lg_reply r;
        lg_proto_decode(b->opt.proto, false, in.data, in.len, &r);
        if (r.status == LG_REPLY_NEED_MORE) continue;
        if (r.status == LG_REPLY_REDIRECT) {
            long target = endpoint_for_redirect(b, r.redirect_host, r.redirect_port);
            if (target >= 0) result = (size_t)target;
            if (!b->opt.quiet)
                fprintf(stderr, "raftkv-bench: %s redirects writes to %s\n", ep->name,
                        target >= 0 ? b->eps[target].name : "?");
        } else if (r.status != LG_REPLY_OK) {
            fprintf(stderr, "raftkv-bench: probe %s: %s\n", ep->name, r.kind);
        }
        break;
    }
done:
    close(fd);
    lg_buf_free(&out);
    lg_buf_free(&in);
    return result;
}

/* ---- phases, progress, report ----------------------------------------------------------------- */

static const char *phase_name(enum phase p)
{
    switch (p) {
    case PHASE_PRELOAD: return "preload";
    case PHASE_WARMUP: return "warmup";
    case PHASE_MEASURE: return "measure";
    case PHASE_DONE: return "done";
    }
    return "?";
}

static void enter_phase(bench *b, enum phase p, uint64_t now)
{
    b->phase = p;
    b->phase_start_ns = now;
    if (p == PHASE_MEASURE) {
        b->measure_start_ns = now;
        clock_gettime(CLOCK_REALTIME, &b->measure_start_real);
        getrusage(RUSAGE_SELF, &b->ru_start);
    }
    if (p == PHASE_DONE) {
        b->measure_end_ns = now;
        getrusage(RUSAGE_SELF, &b->ru_end);
    }
}

static void advance_phase(bench *b, uint64_t now)
{
    uint64_t in_phase = now - b->phase_start_ns;
    switch (b->phase) {
    case PHASE_PRELOAD:
        if (b->preload_done >= b->opt.keys) {
            if (b->preload_errors)
                fprintf(stderr, "raftkv-bench: preload: %llu of %llu writes failed\n",
                        (unsigned long long)b->preload_errors, (unsigned long long)b->opt.keys);
            enter_phase(b, PHASE_WARMUP, now);
        } else if (in_phase > MAX_PRELOAD_S * NS_PER_S) {
            fprintf(stderr, "raftkv-bench: preload did not finish in %d s (%llu of %llu keys)\n",
                    MAX_PRELOAD_S, (unsigned long long)b->preload_done,
                    (unsigned long long)b->opt.keys);
            enter_phase(b, PHASE_WARMUP, now);
        }
        break;
    case PHASE_WARMUP:
        if (in_phase >= (uint64_t)(b->opt.warmup_s * 1e9)) enter_phase(b, PHASE_MEASURE, now);
        break;
    case PHASE_MEASURE:
        if (in_phase >= (uint64_t)(b->opt.duration_s * 1e9) ||
            (b->opt.max_ops && b->total.ok + b->total.errors >= b->opt.max_ops))
            enter_phase(b, PHASE_DONE, now);
        break;
    case PHASE_DONE:
        break;
    }
    if (g_interrupted && b->phase != PHASE_DONE) {
        if (b->phase != PHASE_MEASURE) enter_phase(b, PHASE_MEASURE, now);
        enter_phase(b, PHASE_DONE, now);
    }
}

static void progress(bench *b, uint64_t now)
{
    if (now - b->last_progress_ns < NS_PER_S) return;
    double secs = (double)(now - b->last_progress_ns) / 1e9;
    b->progress_seconds++;
    if (!b->opt.quiet)
        fprintf(stderr,
                "raftkv-bench: [%4us %-7s] %9.0f ops/s  errors %6llu  p50 %8.3f ms  p99 %8.3f ms\n",
                b->progress_seconds, phase_name(b->phase), (double)b->interval.ok / secs,
                (unsigned long long)b->interval.errors,
                (double)lg_hist_percentile(b->interval_hist, 50) / 1e6,
                (double)lg_hist_percentile(b->interval_hist, 99) / 1e6);
    memset(&b->interval, 0, sizeof b->interval);
    lg_hist_init(b->interval_hist);
    b->last_progress_ns = now;
}

/* Closes connections whose oldest request is overdue, and starts the ones due to reconnect. */
static void check_timers(bench *b, uint64_t now)
{
    if (now - b->last_timeout_check_ns < 10 * 1000 * 1000) return;
    b->last_timeout_check_ns = now;
    uint64_t timeout = b->opt.timeout_ms * 1000000ull;
    for (unsigned i = 0; i < b->n_conns; i++) {
        conn *c = &b->conns[i];
        switch (c->state) {
        case CONN_DOWN:
            if (now >= c->since_ns && b->phase != PHASE_DONE) conn_start(b, c);
            break;
        case CONN_CONNECTING:
            if (now - c->since_ns > timeout) conn_fail(b, c, "connect-timeout");
            break;
        case CONN_READY:
            if (c->ring_count && now - c->ring[c->ring_head].start_ns > timeout)
                conn_fail(b, c, "timeout");
            else if (c->ring_count == 0 && b->opt.fast)
                fast_fill_conn(b, c);
            else if (c->ring_count == 0)
                conn_fill(b, c); /* idle after a phase change (preload -> warmup) */
            break;
        }
    }
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void report(bench *b)
{
    const options *o = &b->opt;
    double secs = (double)(b->measure_end_ns - b->measure_start_ns) / 1e9;
    double rate = secs > 0 ? (double)b->total.ok / secs : 0;
    double user = tv_s(b->ru_end.ru_utime) - tv_s(b->ru_start.ru_utime);
    double sys = tv_s(b->ru_end.ru_stime) - tv_s(b->ru_start.ru_stime);
    const lg_hist *h = b->hist;
#define US(p) ((double)lg_hist_percentile(h, p) / 1e3)
    if (o->json) {
        printf("{\"proto\":\"%s\",\"addr\":\"%s\",\"clients\":%u,\"pipeline\":%u,\"keys\":%llu,"
               "\"key_size\":%u,\"value_size\":%u,\"read_ratio\":%g,\"seed\":%llu,"
               "\"duration_s\":%.3f,\"ops\":%llu,\"reads\":%llu,\"writes\":%llu,"
               "\"not_found\":%llu,\"errors\":%llu,\"ops_per_s\":%.1f,"
               "\"latency_us\":{\"mean\":%.1f,\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
               "\"p999\":%.1f,\"max\":%.1f},\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,"
               "\"errors_by_kind\":{",
               lg_proto_name(o->proto), o->addr, o->clients, o->pipeline,
               (unsigned long long)o->keys, o->key_size, o->value_size, o->read_ratio,
               (unsigned long long)o->seed, secs, (unsigned long long)b->total.ok,
               (unsigned long long)b->total.reads, (unsigned long long)b->total.writes,
               (unsigned long long)b->total.not_found, (unsigned long long)b->total.errors, rate,
               lg_hist_mean(h) / 1e3, h->count ? (double)h->min / 1e3 : 0.0, US(50), US(90),
               US(99), US(99.9), (double)h->max / 1e3, user, sys);
        for (size_t i = 0; i < b->n_kinds; i++) {
            printf("%s\"", i ? "," : "");
            for (const char *p = b->kinds[i].name; *p; p++)
                if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) putchar(*p);
            printf("\":%llu", (unsigned long long)b->kinds[i].count);
        }
        printf("}}\n");
    } else {
        printf("raftkv-bench: %s %s, %u clients x pipeline %u, %llu keys, %u B keys, %u B values, "
               "%.0f%% reads\n",
               lg_proto_name(o->proto), o->addr, o->clients, o->pipeline,
               (unsigned long long)o->keys, o->key_size, o->value_size, o->read_ratio * 100);
        printf("  measured     %.2f s\n", secs);
        printf("  throughput   %.0f ops/s (%llu ops: %llu reads, %llu writes, %llu not found)\n",
               rate, (unsigned long long)b->total.ok, (unsigned long long)b->total.reads,
               (unsigned long long)b->total.writes, (unsigned long long)b->total.not_found);
        printf("  latency ms   mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
               lg_hist_mean(h) / 1e6, US(50) / 1e3, US(90) / 1e3, US(99) / 1e3,
               US(99.9) / 1e3, (double)h->max / 1e6);
        printf("  errors       %llu\n", (unsigned long long)b->total.errors);
        for (size_t i = 0; i < b->n_kinds; i++)
            printf("    %-24s %llu\n", b->kinds[i].name, (unsigned long long)b->kinds[i].count);
        printf("  generator    cpu %.2f s user + %.2f s sys (%.0f%% of one core)\n", user, sys,
               secs > 0 ? (user + sys) / secs * 100 : 0);
    }
#undef US
}

static int write_timeline(const bench *b)
{
    FILE *f = fopen(b->opt.timeline_path, "w");
    if (!f) {
        fprintf(stderr, "raftkv-bench: %s: %s\n", b->opt.timeline_path, strerror(errno));
        return -1;
    }
    fprintf(f, "# raftkv-bench timeline: ops completed per %llu ms\n",
            (unsigned long long)b->opt.timeline_ms);
    fprintf(f, "# start_unix_ms %lld\n",
            (long long)b->measure_start_real.tv_sec * 1000 + b->measure_start_real.tv_nsec / 1000000);
    fprintf(f, "# t_s ok errors\n");
    size_t used = (size_t)((b->measure_end_ns - b->measure_start_ns) /
                           (b->opt.timeline_ms * 1000000ull));
    if (used > b->timeline_len) used = b->timeline_len;
    for (size_t i = 0; i < used; i++)
        fprintf(f, "%.3f %u %u\n", (double)i * (double)b->opt.timeline_ms / 1e3, b->timeline[i].ok,
                b->timeline[i].errors);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- command line ----------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: raftkv-bench [options]\n"
            "  --proto text|resp|etcd   protocol (default text)\n"
            "  --addr H:P[,H:P...]      loopback server addresses; connections are spread over them\n"
            "                           and a failed one moves to the next (default 127.0.0.1:7001)\n"
            "  --clients N              concurrent connections (default 1, max %d)\n"
            "  --pipeline D             requests in flight per connection (default 1, max %d)\n"
            "  --keys N                 key space (default 10000)\n"
            "  --key-size B             key length, 4..250 (default 16)\n"
            "  --value-size B           value length, 1..1048576 (default 256)\n"
            "  --read-ratio R           fraction of reads, 0..1 (default 0: writes only)\n"
            "  --duration S             measured seconds (default 10, max %d)\n"
            "  --warmup S               seconds run before measuring (default 1)\n"
            "  --ops N                  stop after N measured replies (default 0: no limit)\n"
            "  --seed N                 random seed for keys, operations and values (default 1)\n"
            "  --preload                write every key once before the warm-up\n"
            "  --timeout-ms MS          a reply overdue this long closes its connection (default 5000)\n"
            "  --timeline FILE          write ops per --timeline-ms interval (default 100) to FILE\n"
            "  --timeline-ms MS\n"
            "  --json                   final report as one JSON object on stdout\n"
            "  --quiet                  no per-second progress lines on stderr\n"
            "  --fast                   raftkv's fast path (RESP): each write to every node of\n"
            "                           --addr (docs/NILEXT.md)\n",
            MAX_CLIENTS, MAX_PIPELINE, MAX_DURATION_S);
}

static int parse_u64(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "raftkv-bench: %s: expected an integer %llu..%llu, got '%s'\n", flag,
                (unsigned long long)lo, (unsigned long long)hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "raftkv-bench: %s: expected a number %g..%g, got '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_options(options *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"proto", 1, 0, 'P'},      {"addr", 1, 0, 'a'},       {"clients", 1, 0, 'c'},
        {"pipeline", 1, 0, 'p'},   {"keys", 1, 0, 'k'},       {"key-size", 1, 0, 'K'},
        {"value-size", 1, 0, 'V'}, {"read-ratio", 1, 0, 'r'}, {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'w'},     {"ops", 1, 0, 'n'},        {"seed", 1, 0, 's'},
        {"preload", 0, 0, 'L'},    {"timeout-ms", 1, 0, 'T'}, {"timeline", 1, 0, 'l'},
        {"timeline-ms", 1, 0, 'm'}, {"json", 0, 0, 'j'},      {"quiet", 0, 0, 'q'},
        {"fast", 0, 0, 'F'},
        {"help", 0, 0, 'h'},       {0, 0, 0, 0},
    };
    *o = (options){.proto = LG_PROTO_TEXT, .clients = 1, .pipeline = 1, .keys = 10000,
                   .key_size = 16, .value_size = 256, .duration_s = 10, .warmup_s = 1, .seed = 1,
                   .timeout_ms = 5000, .timeline_ms = 100};
    strcpy(o->addr, "127.0.0.1:7001");
    uint64_t v;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        const char *flag = argv[optind - 1];
        switch (ch) {
        case 'P':
            if (lg_proto_from_name(optarg, &o->proto) != 0) {
                fprintf(stderr, "raftkv-bench: --proto: expected text, resp or etcd, got '%s'\n",
                        optarg);
                return -1;
            }
            break;
        case 'a':
            if (strlen(optarg) >= sizeof o->addr) {
                fprintf(stderr, "raftkv-bench: --addr: too long\n");
                return -1;
            }
            strcpy(o->addr, optarg);
            break;
        case 'c':
            if (parse_u64(flag, optarg, 1, MAX_CLIENTS, &v)) return -1;
            o->clients = (unsigned)v;
            break;
        case 'p':
            if (parse_u64(flag, optarg, 1, MAX_PIPELINE, &v)) return -1;
            o->pipeline = (unsigned)v;
            break;
        case 'k':
            if (parse_u64(flag, optarg, 1, 100000000000ull, &o->keys)) return -1;
            break;
        case 'K':
            if (parse_u64(flag, optarg, 4, 250, &v)) return -1;
            o->key_size = (unsigned)v;
            break;
        case 'V':
            if (parse_u64(flag, optarg, 1, 1048576, &v)) return -1;
            o->value_size = (unsigned)v;
            break;
        case 'r':
            if (parse_double(flag, optarg, 0, 1, &o->read_ratio)) return -1;
            break;
        case 'd':
            if (parse_double(flag, optarg, 0.1, MAX_DURATION_S, &o->duration_s)) return -1;
            break;
        case 'w':
            if (parse_double(flag, optarg, 0, 600, &o->warmup_s)) return -1;
            break;
        case 'n':
            if (parse_u64(flag, optarg, 0, UINT64_MAX, &o->max_ops)) return -1;
            break;
        case 's':
            if (parse_u64(flag, optarg, 0, UINT64_MAX, &o->seed)) return -1;
            break;
        case 'L': o->preload = true; break;
        case 'T':
            if (parse_u64(flag, optarg, 1, 600000, &o->timeout_ms)) return -1;
            break;
        case 'l':
            if (strlen(optarg) >= sizeof o->timeline_path) return -1;
            strcpy(o->timeline_path, optarg);
            break;
        case 'm':
            if (parse_u64(flag, optarg, 1, 60000, &o->timeline_ms)) return -1;
            break;
        case 'j': o->json = true; break;
        case 'q': o->quiet = true; break;
        case 'F': o->fast = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "raftkv-bench: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    /* Keys are "k" + zero-padded index: the index must fit in key_size - 1 digits. */
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)(o->keys - 1));
    if ((unsigned)n > o->key_size - 1) {
        fprintf(stderr, "raftkv-bench: --key-size %u is too short for %llu keys (need %d bytes)\n",
                o->key_size, (unsigned long long)o->keys, n + 1);
        return -1;
    }
    return 0;
}

/* ---- the fast path (--fast) ----------------------------------------------------------------- */

typedef struct fast_answer {
    bool got, fast;
    uint64_t term, index;
    uint32_t voters; /* bit (id - 1) per voter the node listed */
    uint32_t self;   /* bit (id - 1) of the node that answered */
} fast_answer;

typedef struct fast_client {
    uint64_t session, seq;
    bool inflight;
    uint64_t start_ns;
    unsigned answered;
    fast_answer ans[MAX_ENDPOINTS];
} fast_client;

/* One blocking RESP exchange on a fresh connection: the first reply line into line. */
static int resp_once(const endpoint *ep, const char *req, char *line, size_t cap)
{
    int fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc = -1;
    if (connect(fd, (const struct sockaddr *)&ep->addr, ep->addr_len) == 0 &&
        write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        size_t len = 0;
        while (len + 1 < cap) {
            ssize_t n = read(fd, line + len, cap - 1 - len);
            if (n <= 0) break;
            len += (size_t)n;
            line[len] = '\0';
            if (strstr(line, "\r\n")) {
                rc = 0;
                break;
            }
        }
    }
    close(fd);
    return rc;
}

/* A session per client, from whichever node takes RAFTKV.REGISTER (it forwards to the leader). */
static int fast_register(bench *b, fast_client *fc)
{
    char line[256] = "(no answer)";
    for (int attempt = 0; attempt < 50; attempt++) {
        const endpoint *ep = &b->eps[(size_t)attempt % b->n_user_eps];
        if (resp_once(ep, "*1\r\n$15\r\nRAFTKV.REGISTER\r\n", line, sizeof line) == 0 &&
            line[0] == ':') {
            fc->session = strtoull(line + 1, NULL, 10);
            return 0;
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "raftkv-bench: --fast: RAFTKV.REGISTER failed on every node (last answer: "
                    "%.80s); is fast_path on?\n", line);
    return -1;
}

static fast_client *fast_clients;

/* Closes every session opened (best effort: one attempt per node until one answers; a session
 * left open costs the cluster 16 bytes for good). After the run: no write of it is in flight
 * that matters any more. */
static void fast_unregister_all(bench *b)
{
    for (unsigned k = 0; fast_clients != NULL && k < b->opt.clients; k++) {
        if (fast_clients[k].session == 0)
            continue;
        char req[96], line[256];
        char id[24];
        int idn = snprintf(id, sizeof id, "%llu", (unsigned long long)fast_clients[k].session);
        snprintf(req, sizeof req, "*2\r\n$17\r\nRAFTKV.UNREGISTER\r\n$%d\r\n%s\r\n", idn, id);
        for (size_t e = 0; e < b->n_user_eps; e++)
            if (resp_once(&b->eps[e], req, line, sizeof line) == 0 && line[0] == ':')
                break;
    }
    free(fast_clients);
    fast_clients = NULL;
}

/* Connection i serves client i / n_nodes and node i % n_nodes. */
static fast_client *fast_of(bench *b, conn *c, size_t *node)
{
    size_t i = (size_t)(c - b->conns);
    *node = i % b->n_user_eps;
    return &fast_clients[i / b->n_user_eps];
}

static void fast_done(bench *b, fast_client *fc, uint64_t now, const char *error)
{
    fc->inflight = false;
    if (error != NULL) {
        count_error(b, error, false);
    } else {
        b->interval.ok++;
        lg_hist_record(b->interval_hist, now - fc->start_ns);
        if (b->phase == PHASE_MEASURE) {
            b->total.ok++;
            b->total.writes++;
            lg_hist_record(b->hist, now - fc->start_ns);
        }
    }
    timeline_add(b, now, error == NULL);
}

/* Every node answered: done if, in one term, the leader and every voter it named did. */
static void fast_judge(bench *b, fast_client *fc, uint64_t now)
{
    for (size_t l = 0; l < b->n_user_eps; l++) {
        const fast_answer *lead = &fc->ans[l];
        if (!lead->fast || lead->index == 0) continue;
        uint32_t acked = 0;
        for (size_t i = 0; i < b->n_user_eps; i++)
            if (fc->ans[i].fast && fc->ans[i].term == lead->term) acked |= fc->ans[i].self;
        if ((lead->voters & ~acked) == 0) {
            fast_done(b, fc, now, NULL);
            return;
        }
    }
    fast_done(b, fc, now, "incomplete");
}

/* Sends the client's next write to every node; only when all its connections are ready. */
static void fast_fill(bench *b, fast_client *fc)
{
    size_t k = (size_t)(fc - fast_clients);
    if (fc->inflight || !may_issue(b)) return;
    for (size_t i = 0; i < b->n_user_eps; i++)
        if (b->conns[k * b->n_user_eps + i].state != CONN_READY) return;
    char key[256], head[160];
    make_key(b, rng_next(&b->rng) % b->opt.keys, key);
    size_t off = (size_t)(rng_next(&b->rng) % (b->value_pool_len - b->opt.value_size));
    fc->seq++;
    char s1[24], s2[24];
    int l1 = snprintf(s1, sizeof s1, "%llu", (unsigned long long)fc->session);
    int l2 = snprintf(s2, sizeof s2, "%llu", (unsigned long long)fc->seq);
    int hl = snprintf(head, sizeof head, "*5\r\n$11\r\nRAFTKV.FSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                      "$%u\r\n%s\r\n$%u\r\n", l1, s1, l2, s2, b->opt.key_size, key,
                      b->opt.value_size);
    fc->inflight = true;
    fc->answered = 0;
    memset(fc->ans, 0, sizeof fc->ans);
    fc->start_ns = now_ns();
    for (size_t i = 0; i < b->n_user_eps; i++) {
        conn *c = &b->conns[k * b->n_user_eps + i];
        if (lg_buf_append(&c->out, head, (size_t)hl) != 0 ||
            lg_buf_append(&c->out, b->value_pool + off, b->opt.value_size) != 0 ||
            lg_buf_append(&c->out, "\r\n", 2) != 0) {
            fprintf(stderr, "raftkv-bench: out of memory\n");
            exit(1);
        }
        c->ring_count = 1;
        c->ring[c->ring_head].start_ns = fc->start_ns;
        conn_flush(b, c);
    }
}

/* "+FAST term leader index v1,v2,... self" or an error line. */
static void fast_parse(fast_answer *a, const char *line)
{
    a->got = true;
    unsigned long long term, leader, index;
    int used = 0;
    if (sscanf(line, "+FAST %llu %llu %llu %n", &term, &leader, &index, &used) != 3) return;
    a->fast = true;
    a->term = term;
    a->index = index;
    const char *p = line + used;
    while (*p >= '0' && *p <= '9') {
        unsigned long id = strtoul(p, (char **)&p, 10);
        if (id >= 1 && id <= 32) a->voters |= 1u << (id - 1);
        if (*p == ',') p++;
    }
    unsigned long self = strtoul(p, NULL, 10);
    if (self >= 1 && self <= 32) a->self = 1u << (self - 1);
    else a->fast = false; /* an answer that does not say who gave it counts for nothing */
}

static void fast_read(bench *b, conn *c)
{
    if (lg_buf_reserve(&c->in, 4096) != 0) exit(1);
    ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    size_t node;
    fast_client *fc = fast_of(b, c, &node);
    if (n <= 0) {
        conn_close(b, c, n == 0 ? "closed" : "reset");
        return;
    }
    c->in.len += (size_t)n;
    char *end;
    while ((end = memchr(c->in.data, '\n', c->in.len)) != NULL) {
        size_t len = (size_t)(end - c->in.data) + 1;
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1),
                 c->in.data);
        lg_buf_consume(&c->in, len);
        if (!fc->inflight || fc->ans[node].got || c->ring_count == 0)
            continue; /* an answer to a write given up on */
        c->ring_count = 0;
        fast_parse(&fc->ans[node], line);
        if (++fc->answered == b->n_user_eps) fast_judge(b, fc, now_ns());
    }
    if (!fc->inflight) fast_fill(b, fc);
}

static void fast_fill_conn(bench *b, conn *c)
{
    size_t node;
    fast_fill(b, fast_of(b, c, &node));
}

static void fast_lost(bench *b, conn *c)
{
    size_t node;
    fast_client *fc = fast_of(b, c, &node);
    c->ring_count = 0;
    if (fc->inflight && !fc->ans[node].got) {
        fc->ans[node].got = true;
        if (++fc->answered == b->n_user_eps) fast_judge(b, fc, now_ns());
    }
}

/* ---- main ------------------------------------------------------------------------------------- */

enum { SETUP_OK = 0, SETUP_FAILED = -1, SETUP_USAGE = -2 };

/* Returns SETUP_OK, SETUP_USAGE (a bad option, already reported) or SETUP_FAILED (errno set). */
static int setup(bench *b)
{
    char err[256];
    char list[sizeof b->opt.addr];
    strcpy(list, b->opt.addr);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (b->n_user_eps == MAX_ENDPOINTS / 2) {
            fprintf(stderr, "raftkv-bench: --addr: at most %d addresses\n", MAX_ENDPOINTS / 2);
            return SETUP_USAGE;
        }
        if (endpoint_parse(&b->eps[b->n_user_eps], tok, err, sizeof err) != 0) {
            fprintf(stderr, "raftkv-bench: --addr: %s\n", err);
            return SETUP_USAGE;
        }
        b->n_user_eps++;
    }
    if (b->n_user_eps == 0) {
        fprintf(stderr, "raftkv-bench: --addr: no address\n");
        return SETUP_USAGE;
    }
    b->n_eps = b->n_user_eps;
    if (b->opt.fast && (b->opt.proto != LG_PROTO_RESP || b->opt.preload ||
                        b->opt.read_ratio > 0 || b->opt.pipeline != 1)) {
        fprintf(stderr, "raftkv-bench: --fast takes --proto resp, writes only (no --read-ratio, "
                        "--preload or --pipeline)\n");
        return SETUP_USAGE;
    }
    bool writes = b->opt.read_ratio < 1.0 || b->opt.preload;
    for (size_t i = 0; i < b->n_user_eps; i++)
        b->first_ep_of_user[i] = (b->opt.proto == LG_PROTO_TEXT && writes) ? probe_leader(b, i) : i;

    /* One descriptor per connection, plus a few. */
    struct rlimit rl;
    b->n_conns = b->opt.fast ? b->opt.clients * (unsigned)b->n_user_eps : b->opt.clients;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < b->n_conns + 64u) {
        rl.rlim_cur = rl.rlim_max < b->n_conns + 64u ? rl.rlim_max : b->n_conns + 64u;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    b->rng = rng_seed(b->opt.seed);
    b->value_pool_len = (size_t)b->opt.value_size + 4096;
    b->value_pool = malloc(b->value_pool_len);
    b->hist = malloc(sizeof *b->hist);
    b->interval_hist = malloc(sizeof *b->interval_hist);
    b->conns = calloc(b->n_conns, sizeof *b->conns);
    if (!b->value_pool || !b->hist || !b->interval_hist || !b->conns) return -1;
    static const char printable[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (size_t i = 0; i < b->value_pool_len; i++)
        b->value_pool[i] = printable[rng_next(&b->rng) % (sizeof printable - 1)];
    lg_hist_init(b->hist);
    lg_hist_init(b->interval_hist);
    if (b->opt.timeline_path[0]) {
        b->timeline_len = (size_t)(b->opt.duration_s * 1000 / (double)b->opt.timeline_ms) + 2;
        b->timeline = calloc(b->timeline_len, sizeof *b->timeline);
        if (!b->timeline) return -1;
    }
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) return -1;
    if (b->opt.fast) {
        fast_clients = calloc(b->opt.clients, sizeof *fast_clients);
        if (!fast_clients) return -1;
        for (unsigned k = 0; k < b->opt.clients; k++)
            if (fast_register(b, &fast_clients[k]) != 0) return SETUP_USAGE;
    }
    for (unsigned i = 0; i < b->n_conns; i++) {
        conn *c = &b->conns[i];
        c->fd = -1;
        c->user_index = i % b->n_user_eps;
        c->endpoint = b->first_ep_of_user[c->user_index];
        c->ring = calloc(b->opt.pipeline, sizeof *c->ring);
        if (!c->ring) return -1;
        c->state = CONN_DOWN;
        c->since_ns = 0; /* start at once */
    }
    return 0;
}

int main(int argc, char **argv)
{
    static bench b; /* large (histograms): not on the stack */
    if (parse_options(&b.opt, argc, argv) != 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    int rc = setup(&b);
    if (rc == SETUP_USAGE) return 2;
    if (rc != SETUP_OK) {
        fprintf(stderr, "raftkv-bench: setup failed: %s\n", strerror(errno));
        return 1;
    }
    uint64_t now = now_ns();
    b.last_progress_ns = now;
    enter_phase(&b, b.opt.preload ? PHASE_PRELOAD : PHASE_WARMUP, now);
    if (b.opt.warmup_s == 0 && b.phase == PHASE_WARMUP) enter_phase(&b, PHASE_MEASURE, now);
    check_timers(&b, now); /* starts every connection */

    struct epoll_event events[256];
    while (b.phase != PHASE_DONE) {
        int n = epoll_wait(b.epfd, events, 256, 10);
        if (n < 0 && errno != EINTR) {
            perror("raftkv-bench: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (c->fd >= 0) conn_event(&b, c, events[i].events);
        }
        now = now_ns();
        advance_phase(&b, now);
        check_timers(&b, now);
        progress(&b, now);
    }
    for (unsigned i = 0; i < b.n_conns; i++) {
        conn *c = &b.conns[i];
        if (c->fd >= 0) close(c->fd);
        lg_buf_free(&c->out);
        lg_buf_free(&c->in);
        free(c->ring);
    }
    report(&b);
    if (b.opt.fast)
        fast_unregister_all(&b);
    rc = 0;
    if (b.timeline && write_timeline(&b) != 0) rc = 1;
    free(b.conns);
    free(b.hist);
    free(b.interval_hist);
    free(b.value_pool);
    free(b.timeline);
    close(b.epfd);
    return rc;
}
