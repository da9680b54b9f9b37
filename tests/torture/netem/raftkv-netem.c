/* raftkv-netem: tc netem in userspace, over NFQUEUE, for kernels built without sch_netem.
 *
 * An iptables rule hands packets to a netfilter queue; this program binds that queue and decides,
 * for each packet, what netem would have done with it:
 *
 *   1. drop it with probability --loss;
 *   2. with probability --duplicate, remember a copy to send beside it;
 *   3. with probability --reorder (only when there is a delay), send it at once while the others
 *      wait: netem's "reorder" (the packets that skip the delay overtake the ones that wait);
 *   4. otherwise hold it for --delay +- --jitter ms (uniform or normal): the verdicts are issued
 *      in deadline order, not arrival order, so a jitter larger than the packet spacing reorders.
 *
 * The held packets stay in the kernel (only their ids and, for duplicates, a copy live here) in
 * a min-heap ordered by (deadline, arrival). A duplicate is sent through a raw IPv4 socket whose
 * packets carry SO_MARK --mark, so the rule must skip marked packets or the copy would be queued
 * again:
 *
 *   iptables -A OUTPUT -o eth0 -m mark ! --mark 0x7a6b -j NFQUEUE --queue-num 0 --queue-bypass
 *
 * Invariants: at most --limit packets are held (beyond that a packet is accepted at once and
 * counted as "overflow"); every held packet gets exactly one verdict, at its deadline or at
 * shutdown (SIGTERM/SIGINT accept everything still held, in deadline order). The queue is bound
 * fail-open: when the kernel's queue or our socket buffer is full the kernel accepts the packet
 * instead of dropping it, so an overloaded netem degrades to "no fault", never to a partition.
 * If this process dies without a verdict (SIGKILL), the kernel drops what it held, and
 * --queue-bypass lets later packets through.
 *
 * Counters (printed at exit, and every --stats seconds): queued (packets seen), delayed (held),
 * reordered (sent after a packet that arrived later than them; across all flows, so a packet to
 * one peer overtaking a packet to another counts too), duplicated, dropped, overflow.
 *
 * Exit status: 0 after a signal, 1 on a runtime error, 2 on bad arguments or setup failure.
 * Single-threaded; IPv4 duplicates only (IPv6 packets are delayed and dropped, not copied).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter.h> /* NF_ACCEPT, NF_DROP */
#include <libnetfilter_queue/libnetfilter_queue.h>

#define NETEM_DEFAULT_MARK 0x7a6bu
#define NETEM_DEFAULT_LIMIT 10000u
#define NETEM_RCVBUF (8u * 1024 * 1024) /* bursts of queued packets must not overrun it */

typedef struct netem_options {
    unsigned queue;
    double delay_ms, jitter_ms;
    bool normal; /* jitter distribution: normal (sigma = jitter) instead of uniform +-jitter */
    double loss, duplicate, reorder;
    uint64_t seed;
    unsigned limit;
    uint32_t mark;
    double stats_s;
} netem_options;

/* One held packet. `copy` (malloc'd, owned by the entry) is set only when it is duplicated. */
typedef struct netem_held {
    uint64_t deadline_ns;
    uint64_t seq; /* arrival order: the heap's tie-break, and the reorder counter's clock */
    uint32_t id;
    uint32_t copy_len;
    unsigned char *copy;
} netem_held;

typedef struct netem_counters {
    uint64_t queued, delayed, reordered, duplicated, dropped, overflow;
    uint64_t dup_errors, verdict_errors;
} netem_counters;

typedef struct netem {
    netem_options opt;
    struct nfq_q_handle *qh;
    int raw_fd;
    uint64_t rng;
    netem_held *heap; /* min-heap by (deadline_ns, seq), opt.limit slots */
    size_t held;
    uint64_t next_seq;
    uint64_t max_sent_seq; /* the latest arrival already sent (1-based; 0 = none yet) */
    netem_counters count;
} netem;

static volatile sig_atomic_t netem_stop_signal;

static void netem_on_signal(int sig)
{
    netem_stop_signal = sig;
}

/* ---- seeded randomness: splitmix64, so a seed replays the same decisions ---- */

static uint64_t netem_rand(netem *n)
{
    uint64_t z = (n->rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double netem_uniform(netem *n)
{
    return (double)(netem_rand(n) >> 11) * 0x1.0p-53;
}

static bool netem_chance(netem *n, double p)
{
    return p > 0 && netem_uniform(n) < p;
}

/* The hold time of one packet, in ns; <= 0 means "send now". */
static double netem_hold_ns(netem *n)
{
    double ms = n->opt.delay_ms;
    if (n->opt.jitter_ms > 0) {
        if (n->opt.normal) { /* Box-Muller */
            double u1 = 1.0 - netem_uniform(n), u2 = netem_uniform(n);
            ms += n->opt.jitter_ms * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
        } else {
            ms += n->opt.jitter_ms * (2.0 * netem_uniform(n) - 1.0);
        }
    }
    return ms * 1e6;
}

static uint64_t netem_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the hold queue: a binary min-heap by (deadline, arrival) ---- */

static bool netem_before(const netem_held *a, const netem_held *b)
{
    return a->deadline_ns < b->deadline_ns || (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
}

static void netem_heap_push(netem *n, netem_held item)
{
    size_t i = n->held++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!netem_before(&item, &n->heap[parent]))
            break;
        n->heap[i] = n->heap[parent];
        i = parent;
    }
    n->heap[i] = item;
}

static netem_held netem_heap_pop(netem *n)
{
    netem_held top = n->heap[0];
    netem_held last = n->heap[--n->held];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n->held)
            break;
        if (child + 1 < n->held && netem_before(&n->heap[child + 1], &n->heap[child]))
            child++;
        if (!netem_before(&n->heap[child], &last))
            break;
        n->heap[i] = n->heap[child];
        i = child;
    }
    if (n->held > 0)
        n->heap[i] = last;
    return top;
}

/* ---- verdicts ---- */

/* Sends a copy of an IPv4 packet through the raw socket (its mark keeps it out of the queue). */
static void netem_send_copy(netem *n, const unsigned char *packet, uint32_t len)
{
    if (len < sizeof(struct iphdr) || (packet[0] >> 4) != 4)
        return; /* not IPv4: no copy (documented) */
    struct iphdr ip;
    memcpy(&ip, packet, sizeof ip);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = ip.daddr};
    if (sendto(n->raw_fd, packet, len, 0, (struct sockaddr *)&to, sizeof to) < 0) {
        if (n->count.dup_errors++ == 0)
            fprintf(stderr, "raftkv-netem: sending a duplicate failed: %s (counted, not fatal)\n",
                    strerror(errno));
        return;
    }
    n->count.duplicated++;
}

static void netem_release(netem *n, uint32_t id, uint64_t seq, const unsigned char *copy,
                          uint32_t copy_len)
{
    if (nfq_set_verdict(n->qh, id, NF_ACCEPT, 0, NULL) < 0 && n->count.verdict_errors++ == 0)
        fprintf(stderr, "raftkv-netem: verdict for packet %" PRIu32 " failed: %s\n", id,
                strerror(errno));
    if (copy)
        netem_send_copy(n, copy, copy_len);
    if (seq < n->max_sent_seq)
        n->count.reordered++; /* a packet that arrived after it has already gone */
    else
        n->max_sent_seq = seq;
}

static void netem_release_due(netem *n, uint64_t now_ns)
{
    while (n->held > 0 && n->heap[0].deadline_ns <= now_ns) {
        netem_held h = netem_heap_pop(n);
        netem_release(n, h.id, h.seq, h.copy, h.copy_len);
        free(h.copy);
    }
}

/* Called by nfq_handle_packet for each queued packet: decide its fate (see the top comment). */
static int netem_on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                           void *data)
{
    (void)msg;
    netem *n = data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    uint64_t seq = ++n->next_seq;
    n->count.queued++;
    if (netem_chance(n, n->opt.loss)) {
        n->count.dropped++;
        if (nfq_set_verdict(qh, id, NF_DROP, 0, NULL) < 0 && n->count.verdict_errors++ == 0)
            fprintf(stderr, "raftkv-netem: drop verdict failed: %s\n", strerror(errno));
        return 0;
    }
    unsigned char *payload = NULL;
    int len = 0;
    bool dup = netem_chance(n, n->opt.duplicate);
    if (dup)
        len = nfq_get_payload(nfa, &payload);
    if (len <= 0)
        dup = false;
    bool skip_delay = n->opt.delay_ms > 0 && netem_chance(n, n->opt.reorder);
    double hold_ns = skip_delay ? 0 : netem_hold_ns(n);
    if (hold_ns >= 1.0 && n->held >= n->opt.limit) {
        n->count.overflow++;
        hold_ns = 0;
    }
    if (hold_ns < 1.0) {
        netem_release(n, id, seq, dup ? payload : NULL, (uint32_t)len);
        return 0;
    }
    netem_held h = {.deadline_ns = netem_now_ns() + (uint64_t)hold_ns, .seq = seq, .id = id};
    if (dup) {
        h.copy = malloc((size_t)len);
        if (h.copy) {
            memcpy(h.copy, payload, (size_t)len);
            h.copy_len = (uint32_t)len;
        } else {
            n->count.dup_errors++;
        }
    }
    netem_heap_push(n, h);
    n->count.delayed++;
    return 0;
}

static void netem_print_counters(const netem *n, const char *when)
{
    printf("raftkv-netem: %s: queued %" PRIu64 " delayed %" PRIu64 " reordered %" PRIu64
           " duplicated %" PRIu64 " dropped %" PRIu64 " overflow %" PRIu64 " held %zu",
           when, n->count.queued, n->count.delayed, n->count.reordered, n->count.duplicated,
           n->count.dropped, n->count.overflow, n->held);
    if (n->count.dup_errors || n->count.verdict_errors)
        printf(" dup_errors %" PRIu64 " verdict_errors %" PRIu64, n->count.dup_errors,
               n->count.verdict_errors);
    printf("\n");
    fflush(stdout);
}

/* ---- arguments ---- */

static void netem_usage(FILE *to)
{
    fprintf(to,
            "usage: raftkv-netem [--queue N] [--delay MS] [--jitter MS] [--dist uniform|normal]\n"
            "                    [--loss P] [--duplicate P] [--reorder P] [--seed S]\n"
            "                    [--limit PACKETS] [--mark M] [--stats SECONDS]\n"
            "Binds NFQUEUE queue N (default 0) and applies netem-like faults to its packets.\n"
            "P are probabilities in [0, 1]. Duplicates are sent with SO_MARK M (default 0x%x);\n"
            "the rule must skip them, e.g.:\n"
            "  iptables -A OUTPUT -o eth0 -m mark ! --mark 0x%x -j NFQUEUE --queue-num 0 "
            "--queue-bypass\n",
            NETEM_DEFAULT_MARK, NETEM_DEFAULT_MARK);
}

static bool netem_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool netem_parse_u64(const char *s, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-' || v > hi)
        return false;
    *out = v;
    return true;
}

/* Returns 0, or 2 after printing why the arguments are wrong. */
static int netem_parse(int argc, char **argv, netem_options *opt)
{
    static const struct option longs[] = {{"queue", required_argument, NULL, 'q'},
                                          {"delay", required_argument, NULL, 'd'},
                                          {"jitter", required_argument, NULL, 'j'},
                                          {"dist", required_argument, NULL, 'D'},
                                          {"loss", required_argument, NULL, 'l'},
                                          {"duplicate", required_argument, NULL, 'u'},
                                          {"reorder", required_argument, NULL, 'r'},
                                          {"seed", required_argument, NULL, 's'},
                                          {"limit", required_argument, NULL, 'L'},
                                          {"mark", required_argument, NULL, 'm'},
                                          {"stats", required_argument, NULL, 'S'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    *opt = (netem_options){.limit = NETEM_DEFAULT_LIMIT, .mark = NETEM_DEFAULT_MARK, .seed = 1};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        uint64_t u = 0;
        bool ok = true;
        switch (c) {
        case 'q':
            ok = netem_parse_u64(optarg, 65535, &u);
            opt->queue = (unsigned)u;
            break;
        case 'd':
            ok = netem_parse_double(optarg, 0, 60000, &opt->delay_ms);
            break;
        case 'j':
            ok = netem_parse_double(optarg, 0, 60000, &opt->jitter_ms);
            break;
        case 'D':
            ok = !strcmp(optarg, "uniform") || !strcmp(optarg, "normal");
            opt->normal = !strcmp(optarg, "normal");
            break;
        case 'l':
            ok = netem_parse_double(optarg, 0, 1, &opt->loss);
            break;
        case 'u':
            ok = netem_parse_double(optarg, 0, 1, &opt->duplicate);
            break;
        case 'r':
            ok = netem_parse_double(optarg, 0, 1, &opt->reorder);
            break;
        case 's':
            ok = netem_parse_u64(optarg, UINT64_MAX, &opt->seed);
            break;
        case 'L':
            ok = netem_parse_u64(optarg, 1000000, &u) && u > 0;
            opt->limit = (unsigned)u;
            break;
        case 'm':
            ok = netem_parse_u64(optarg, UINT32_MAX, &u) && u > 0;
            opt->mark = (uint32_t)u;
            break;
        case 'S':
            ok = netem_parse_double(optarg, 0, 86400, &opt->stats_s);
            break;
        case 'h':
            netem_usage(stdout);
            exit(0);
        default:
            netem_usage(stderr);
            return 2;
        }
        if (!ok) {
            const char *name = "?";
            for (const struct option *o = longs; o->name; o++)
                if (o->val == c)
                    name = o->name;
            fprintf(stderr, "raftkv-netem: bad value for --%s: '%s'\n", name, optarg);
            netem_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "raftkv-netem: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* ---- setup and the loop ---- */

int main(int argc, char **argv)
{
    netem n = {.raw_fd = -1};
    int rc = netem_parse(argc, argv, &n.opt);
    if (rc)
        return rc;
    n.rng = n.opt.seed;
    n.heap = calloc(n.opt.limit, sizeof *n.heap);
    if (!n.heap) {
        fprintf(stderr, "raftkv-netem: out of memory for %u held packets\n", n.opt.limit);
        return 2;
    }

    /* Signals are blocked except inside ppoll, so a stop can never be missed between checks. */
    sigset_t stop_set, wait_mask;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_set, &wait_mask);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    struct sigaction sa = {.sa_handler = netem_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (n.opt.duplicate > 0) {
        n.raw_fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* IPPROTO_RAW implies IP_HDRINCL */
        if (n.raw_fd < 0 ||
            setsockopt(n.raw_fd, SOL_SOCKET, SO_MARK, &n.opt.mark, sizeof n.opt.mark) < 0) {
            fprintf(stderr,
                    "raftkv-netem: cannot open a raw socket with SO_MARK 0x%" PRIx32
                    " for duplicates: %s (are you root?)\n",
                    n.opt.mark, strerror(errno));
            return 2;
        }
    }
    struct nfq_handle *h = nfq_open();
    if (!h) {
        fprintf(stderr,
                "raftkv-netem: cannot open a netfilter queue socket: %s (is the kernel "
                "built with CONFIG_NETFILTER_NETLINK_QUEUE?)\n",
                strerror(errno));
        return 2;
    }
    n.qh = nfq_create_queue(h, (uint16_t)n.opt.queue, netem_on_packet, &n);
    if (!n.qh) {
        fprintf(stderr,
                "raftkv-netem: cannot bind queue %u: %s (are you root, is another "
                "process bound to it, and is the NFQUEUE rule in the same netns?)\n",
                n.opt.queue, strerror(errno));
        nfq_close(h);
        return 2;
    }
    /* The payload is needed only to duplicate it. The kernel's queue must hold more than we do. */
    uint8_t mode = n.opt.duplicate > 0 ? NFQNL_COPY_PACKET : NFQNL_COPY_META;
    if (nfq_set_mode(n.qh, mode, 0xffff) < 0 ||
        nfq_set_queue_maxlen(n.qh, n.opt.limit + 1024) < 0 ||
        nfq_set_queue_flags(n.qh, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN) < 0) {
        fprintf(stderr, "raftkv-netem: cannot configure queue %u: %s\n", n.opt.queue,
                strerror(errno));
        nfq_destroy_queue(n.qh);
        nfq_close(h);
        return 2;
    }
    nfnl_rcvbufsiz(nfq_nfnlh(h), NETEM_RCVBUF);
    int fd = nfq_fd(h);
    printf("raftkv-netem: queue %u: delay %.1f ms, jitter %.1f ms (%s), loss %.3f, duplicate "
           "%.3f, reorder %.3f, seed %" PRIu64 ", limit %u, mark 0x%" PRIx32 "\n",
           n.opt.queue, n.opt.delay_ms, n.opt.jitter_ms, n.opt.normal ? "normal" : "uniform",
           n.opt.loss, n.opt.duplicate, n.opt.reorder, n.opt.seed, n.opt.limit, n.opt.mark);
    fflush(stdout);

    static unsigned char buf[0x10000 + 4096]; /* one netlink message: packet + attributes */
    uint64_t stats_every = (uint64_t)(n.opt.stats_s * 1e9);
    uint64_t next_stats = stats_every ? netem_now_ns() + stats_every : UINT64_MAX;
    rc = 0;
    while (!netem_stop_signal) {
        uint64_t now = netem_now_ns();
        netem_release_due(&n, now);
        if (now >= next_stats) {
            netem_print_counters(&n, "stats");
            next_stats = now + stats_every;
        }
        uint64_t wake = next_stats;
        if (n.held > 0 && n.heap[0].deadline_ns < wake)
            wake = n.heap[0].deadline_ns;
        struct timespec timeout = {1, 0}, *tp = NULL;
        if (wake != UINT64_MAX) {
            uint64_t wait = wake > now ? wake - now : 0;
            timeout.tv_sec = (time_t)(wait / 1000000000u);
            timeout.tv_nsec = (long)(wait % 1000000000u);
            tp = &timeout;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = ppoll(&pfd, 1, tp, &wait_mask);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "raftkv-netem: poll: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (ready == 0)
            continue;
        /* Drain what is there; ENOBUFS means the kernel could not deliver some packets to us,
         * and fail-open accepted them: not an error. */
        for (;;) {
            ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (got < 0) {
                if (errno == EINTR || errno == ENOBUFS)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                fprintf(stderr, "raftkv-netem: recv from queue %u: %s\n", n.opt.queue,
                        strerror(errno));
                rc = 1;
                break;
            }
            nfq_handle_packet(h, (char *)buf, (int)got);
        }
        if (rc)
            break;
    }
    /* Shutdown: everything still held goes out now, in the order it would have. */
    while (n.held > 0) {
        netem_held held = netem_heap_pop(&n);
        netem_release(&n, held.id, held.seq, held.copy, held.copy_len);
        free(held.copy);
    }
    netem_print_counters(&n, netem_stop_signal ? "exit" : "error exit");
    nfq_destroy_queue(n.qh);
    nfq_close(h);
    if (n.raw_fd >= 0)
        close(n.raw_fd);
    free(n.heap);
    return rc;
}
