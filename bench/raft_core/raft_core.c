/*
 * bench/raft_core -- how many entries per second the pure Raft core can commit, with storage and
 * network taken out of the picture: three cores in one thread, an instant in-memory network, and
 * persistence as a no-op. It is the upper bound the server can approach, and it shows the core's
 * own costs: copying entries into Readies, building and stepping messages.
 *
 * Each core is driven by the Ready loop of raft.h, in its order: (1-3) persist = nothing to do in
 * memory, (4) deliver rd.msgs (raft_step on the addressee, at once), (5) apply rd.committed (count
 * and checksum them), raft_advance. After electing node 1 (raft_campaign, then pumping), the bench
 * proposes `batch` entries of `size` bytes on the leader and pumps until the leader has applied
 * them, until `entries` have been committed. No ticks are fed while measuring, so no heartbeats or
 * elections interfere. With --codec every message also goes through raft_codec encode + decode.
 * Logs are compacted as a snapshot-holding server would (the state machine here is a counter).
 *
 * usage: bench_raft_core [--entries N] [--batch B] [--size BYTES] [--codec]
 * Timing uses clock_gettime(CLOCK_MONOTONIC) here; the core never reads a clock.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft.h"
#include "raft_codec.h"

#define N_NODES 3
#define COMPACT_EVERY 65536u  /* entries applied between compactions */
#define COMPACT_TRAILING 1024u

typedef struct bench_node {
    raft *core;
    raft_index applied;
    raft_index compacted_at;
    uint64_t applied_bytes;
} bench_node;

typedef struct bench {
    bench_node nodes[N_NODES];
    bool use_codec;
    uint8_t *codec_buf; /* reused encode buffer */
    size_t codec_cap;
    uint64_t msgs_delivered;
    uint64_t readies;
} bench;

static void die(const char *what, int rc) {
    fprintf(stderr, "bench_raft_core: %s: %s\n", what, raft_strerror(rc));
    exit(1);
}

static bench_node *node_by_id(bench *b, raft_id id) {
    return id >= 1 && id <= N_NODES ? &b->nodes[id - 1] : NULL;
}

/* Step 4 of the loop: the network is instant, so "send" is raft_step on the addressee. */
static void deliver(bench *b, const raft_msg *m) {
    bench_node *to = node_by_id(b, m->to);
    if (to == NULL)
        return;
    b->msgs_delivered++;
    if (!b->use_codec) {
        int rc = raft_step(to->core, m);
        if (rc != RAFT_OK)
            die("raft_step", rc);
        return;
    }
    size_t need = raft_codec_msg_size(m);
    if (need > b->codec_cap) {
        free(b->codec_buf);
        b->codec_cap = need * 2;
        b->codec_buf = malloc(b->codec_cap);
        if (b->codec_buf == NULL)
            die("codec buffer", RAFT_ENOMEM);
    }
    int rc = raft_codec_msg_encode(m, b->codec_buf, b->codec_cap, NULL);
    if (rc != RAFT_OK)
        die("raft_codec_msg_encode", rc);
    raft_msg decoded;
    char err[128];
    rc = raft_codec_msg_decode(b->codec_buf, need, &decoded, err, sizeof err);
    if (rc != RAFT_OK) {
        fprintf(stderr, "bench_raft_core: decode: %s\n", err);
        exit(1);
    }
    rc = raft_step(to->core, &decoded);
    raft_codec_msg_release(&decoded);
    if (rc != RAFT_OK)
        die("raft_step", rc);
}

/* Runs one Ready of one node if it has one; returns whether it did anything. */
static bool handle_ready(bench *b, bench_node *n) {
    if (!raft_has_ready(n->core))
        return false;
    raft_ready rd;
    raft_ready_get(n->core, &rd);
    b->readies++;
    /* 1-3: snapshot install, truncation, append, hard state: durable at once in memory. */
    for (size_t i = 0; i < rd.n_msgs; i++) /* 4 */
        deliver(b, &rd.msgs[i]);
    for (size_t i = 0; i < rd.n_committed; i++) { /* 5 */
        if (rd.committed[i].index != n->applied + 1 && rd.snapshot.index == 0) {
            fprintf(stderr, "bench_raft_core: node %" PRIu64 " applied %" PRIu64 " after %" PRIu64 "\n",
                    raft_self(n->core), rd.committed[i].index, n->applied);
            exit(1);
        }
        n->applied = rd.committed[i].index;
        n->applied_bytes += rd.committed[i].len;
    }
    if (rd.snapshot.index > n->applied)
        n->applied = rd.snapshot.index;
    raft_advance(n->core, &rd);
    /* A real server compacts after writing a snapshot; the "state machine" here is a counter. */
    if (n->applied >= n->compacted_at + COMPACT_EVERY) {
        int rc = raft_compact(n->core, n->applied, COMPACT_TRAILING);
        if (rc != RAFT_OK)
            die("raft_compact", rc);
        n->compacted_at = n->applied;
    }
    return true;
}

/* One pass over all nodes; returns whether any had work. */
static bool pump_once(bench *b) {
    bool busy = false;
    for (int i = 0; i < N_NODES; i++)
        busy |= handle_ready(b, &b->nodes[i]);
    return busy;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t parse_u64(const char *flag, const char *text) {
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v == 0) {
        fprintf(stderr, "bench_raft_core: %s wants a positive integer, got '%s'\n", flag, text);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    uint64_t total = 1000000, batch = 256, size = 256;
    bench b;
    memset(&b, 0, sizeof b);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--codec") == 0)
            b.use_codec = true;
        else if (i + 1 < argc && strcmp(argv[i], "--entries") == 0)
            total = parse_u64(argv[i], argv[i + 1]), i++;
        else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0)
            batch = parse_u64(argv[i], argv[i + 1]), i++;
        else if (i + 1 < argc && strcmp(argv[i], "--size") == 0)
            size = parse_u64(argv[i], argv[i + 1]), i++;
        else {
            fprintf(stderr, "usage: %s [--entries N] [--batch B] [--size BYTES] [--codec]\n", argv[0]);
            return 2;
        }
    }
    if (size > UINT32_MAX) {
        fprintf(stderr, "bench_raft_core: --size %" PRIu64 " exceeds an entry's 4 GiB limit\n", size);
        return 2;
    }

    raft_conf conf = {.n_voters = N_NODES, .voters = {1, 2, 3}};
    for (int i = 0; i < N_NODES; i++) {
        raft_config cfg;
        raft_config_default(&cfg);
        cfg.id = (raft_id)(i + 1);
        cfg.conf = conf;
        cfg.seed = 42 + (uint64_t)i;
        int rc = raft_new(&cfg, NULL, &b.nodes[i].core);
        if (rc != RAFT_OK)
            die("raft_new", rc);
    }

    /* Election: node 1 campaigns, messages flow until nobody has work left. */
    raft_campaign(b.nodes[0].core);
    for (int rounds = 0; pump_once(&b); rounds++)
        if (rounds > 1000)
            die("election did not settle", RAFT_EINVAL);
    raft *leader = b.nodes[0].core;
    if (raft_get_role(leader) != RAFT_LEADER) {
        fprintf(stderr, "bench_raft_core: node 1 is %s after campaigning, not leader\n",
                raft_role_name(raft_get_role(leader)));
        return 1;
    }

    uint8_t *payload = malloc(size);
    if (payload == NULL)
        die("payload", RAFT_ENOMEM);
    for (uint64_t i = 0; i < size; i++)
        payload[i] = (uint8_t)(i * 31 + 7);

    uint64_t msgs_before = b.msgs_delivered, readies_before = b.readies;
    raft_index applied_before = b.nodes[0].applied;
    double start = now_seconds();
    uint64_t proposed = 0;
    raft_index last = 0;
    while (proposed < total) {
        uint64_t n = total - proposed < batch ? total - proposed : batch;
        for (uint64_t i = 0; i < n; i++) {
            int rc = raft_propose(leader, RAFT_ENTRY_NORMAL, payload, (uint32_t)size, &last, NULL);
            if (rc != RAFT_OK)
                die("raft_propose", rc);
        }
        proposed += n;
        while (b.nodes[0].applied < last)
            if (!pump_once(&b))
                die("cluster went idle before committing", RAFT_EINVAL);
    }
    double elapsed = now_seconds() - start;
    uint64_t msgs = b.msgs_delivered - msgs_before;
    uint64_t committed = b.nodes[0].applied - applied_before;

    /* Let followers learn the final commit index (not timed). */
    while (pump_once(&b)) {
    }

    printf("raft core: 3 nodes, instant network%s, %" PRIu64 " entries x %" PRIu64
           " B, batches of %" PRIu64 "\n",
           b.use_codec ? " + codec" : "", total, size, batch);
    printf("  committed      %" PRIu64 " entries in %.3f s\n", committed, elapsed);
    printf("  entries/s      %.0f\n", (double)committed / elapsed);
    printf("  MB/s           %.2f (payload)\n", (double)committed * (double)size / 1e6 / elapsed);
    printf("  msgs/entry     %.4f (%" PRIu64 " messages)\n", (double)msgs / (double)committed, msgs);
    printf("  readies/batch  %.1f\n", (double)(b.readies - readies_before) /
                                          ((double)(total + batch - 1) / (double)batch));
    for (int i = 0; i < N_NODES; i++)
        printf("  node %d         applied %" PRIu64 " commit %" PRIu64 " role %s\n", i + 1,
               b.nodes[i].applied, raft_commit_index(b.nodes[i].core),
               raft_role_name(raft_get_role(b.nodes[i].core)));

    for (int i = 0; i < N_NODES; i++)
        raft_free(b.nodes[i].core);
    free(payload);
    free(b.codec_buf);
    return 0;
}
