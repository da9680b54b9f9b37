/*
 * test_transport.c -- the peer transport (src/server/transport.c) between two in-process nodes
 * on one libuv loop over loopback TCP: handshake outcomes (same cluster, other cluster, wrong id,
 * secrets matching or not), message delivery, the send-queue bound, and a snapshot stream read
 * from a real snapshot file. Loops are bounded by iteration counts, never by time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"
#include "snap.h"
#include "transport.h"
#include "vfs.h"

typedef struct side {
    transport *t;
    uint64_t msgs;
    raft_msg last;
    uint64_t snap_bytes, snap_total, snap_chunks;
    bool snap_in_order;
    uint8_t *snap_data;
    uint64_t snap_failed;
} side;

static uv_loop_t loop;
static node_peer peers[2];
static side sides[2];
static char snap_dir[64];

static void on_msg(void *ctx, const raft_msg *msg)
{
    side *s = ctx;
    s->msgs++;
    s->last = *msg;
    s->last.entries = NULL; /* points into the transport's buffer */
}

static uint64_t resume_at; /* != 0: the receiver asks to resume there on the first chunk */
static bool resumed;

static void on_snap_chunk(void *ctx, const raft_msg *msg, uint64_t offset, uint64_t total,
                          const uint8_t *data, size_t len)
{
    side *s = ctx;
    if (offset == 0 && resume_at != 0)
        transport_snap_resume(s->t, msg->from, msg->snapshot.index, msg->snapshot.term,
                              resume_at);
    if (resume_at != 0 && offset == resume_at && s->snap_bytes < resume_at)
        resumed = true; /* jumped over the part we claimed to hold */
    else if (offset != s->snap_bytes)
        s->snap_in_order = false;
    if (s->snap_data == NULL)
        s->snap_data = malloc(total + 1);
    memcpy(s->snap_data + offset, data, len);
    s->snap_bytes = offset + len;
    s->snap_total = total;
    s->snap_chunks++;
}

static void on_snap_failed(void *ctx, raft_id peer)
{
    (void)peer;
    ((side *)ctx)->snap_failed++;
}

static uint16_t free_port(void)
{
    uv_tcp_t tcp;
    struct sockaddr_in sa;
    uv_tcp_init(&loop, &tcp);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&tcp, (const struct sockaddr *)&sa, 0);
    int len = sizeof sa;
    uv_tcp_getsockname(&tcp, (struct sockaddr *)&sa, &len);
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ntohs(sa.sin_port);
}

static int setup(void **state)
{
    (void)state;
    log_init(0, getenv("TEST_LOG") ? 2 : open("/dev/null", O_WRONLY));
    uv_loop_init(&loop);
    memset(sides, 0, sizeof sides);
    for (int i = 0; i < 2; i++) {
        memset(&peers[i], 0, sizeof peers[i]);
        peers[i].id = (raft_id)(i + 1);
        snprintf(peers[i].host, sizeof peers[i].host, "127.0.0.1");
        peers[i].peer_port = free_port();
        sides[i].snap_in_order = true;
    }
    snprintf(snap_dir, sizeof snap_dir, "/tmp/raftkv-test-transport-XXXXXX");
    return mkdtemp(snap_dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        if (sides[i].t != NULL)
            transport_close(sides[i].t);
        free(sides[i].snap_data);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* every handle closed: returns */
    assert_int_equal(uv_loop_close(&loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", snap_dir);
    return system(cmd);
}

static void start_side_with(int i, const char *cluster, const char *secret, uint64_t queue_bytes,
                            raft_id self, const node_peer *table)
{
    transport_config cfg = {.self = self, .peers = table, .n_peers = 2, .cluster_id = cluster,
                            .secret = secret, .queue_bytes = queue_bytes, .chunk_bytes = 4096,
                            .snapshot_dir = snap_dir,
                            /* long: only the frame limit may close the stranger below */
                            .handshake_timeout_ms = 600000};
    transport_cbs cbs = {.ctx = &sides[i], .on_msg = on_msg, .on_snap_chunk = on_snap_chunk,
                         .on_snap_failed = on_snap_failed};
    assert_int_equal(transport_start(&loop, &cfg, &cbs, &sides[i].t), 0);
}

static void start_side(int i, const char *cluster, const char *secret, uint64_t queue_bytes,
                       raft_id self)
{
    start_side_with(i, cluster, secret, queue_bytes, self, peers);
}

/* Runs the loop until cond() holds or the iteration budget is spent (an iteration waits at most
 * 1 ms for events, so a budget bounds a failing test's run); returns cond(). */
static bool run_until(bool (*cond)(void), int budget)
{
    for (int i = 0; i < budget && !cond(); i++)
        if (uv_run(&loop, UV_RUN_NOWAIT) == 0 || !cond())
            usleep(1000);
    return cond();
}

static bool both_connected(void)
{
    return transport_connected(sides[0].t, 2) && transport_connected(sides[1].t, 1);
}

static bool refused_twice(void)
{
    transport_stats a = transport_get_stats(sides[0].t), b = transport_get_stats(sides[1].t);
    return a.handshakes_refused + b.handshakes_refused >= 2;
}

static uint64_t expected_msgs;

static bool all_messages(void)
{
    return sides[1].msgs >= expected_msgs;
}

static void connects_and_delivers_started(void);

static void connects_and_delivers(const char *secret)
{
    start_side(0, "raftkv", secret, 1 << 20, 1);
    start_side(1, "raftkv", secret, 1 << 20, 2);
    connects_and_delivers_started();
}

/* Both sides started: they connect and a message from 1 reaches 2 intact. */
static void connects_and_delivers_started(void)
{
    uint64_t before = sides[1].msgs;
    assert_true(run_until(both_connected, 10000));
    raft_entry e = {.term = 3, .index = 8, .type = RAFT_ENTRY_NORMAL, .len = 3,
                    .data = (const uint8_t *)"abc"};
    raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3, .log_term = 2,
                  .index = 7, .commit = 5, .n_entries = 1, .entries = &e};
    transport_send(sides[0].t, &m);
    transport_flush(sides[0].t);
    expected_msgs = before + 1;
    assert_true(run_until(all_messages, 10000));
    assert_int_equal(sides[1].msgs, before + 1);
    assert_int_equal(sides[1].last.type, RAFT_MSG_APPEND);
    assert_int_equal(sides[1].last.from, 1);
    assert_int_equal(sides[1].last.index, 7);
    assert_int_equal(sides[1].last.commit, 5);
    assert_int_equal(sides[1].last.n_entries, 1);
}

static void same_cluster_connects_and_delivers(void **state)
{
    (void)state;
    connects_and_delivers("");
}

static void host_names_are_resolved(void **state)
{
    (void)state;
    snprintf(peers[0].host, sizeof peers[0].host, "localhost");
    snprintf(peers[1].host, sizeof peers[1].host, "localhost");
    connects_and_delivers("");
}

static void matching_secret_connects_and_delivers(void **state)
{
    (void)state;
    connects_and_delivers("s3cret");
}

static void expect_refused(const char *cluster0, const char *secret0, const char *cluster1,
                           const char *secret1, raft_id self1)
{
    /* Side 1 runs as node self1 at node 2's address. */
    node_peer table1[2] = {peers[0], peers[1]};
    table1[1].id = self1;
    start_side(0, cluster0, secret0, 1 << 20, 1);
    start_side_with(1, cluster1, secret1, 1 << 20, self1, table1);
    assert_true(run_until(refused_twice, 20000));
    assert_false(transport_connected(sides[0].t, 2));
    assert_false(transport_connected(sides[1].t, 1));
    assert_int_equal(sides[0].msgs + sides[1].msgs, 0);
}

static void other_cluster_refused(void **state)
{
    (void)state;
    expect_refused("raftkv", "", "other", "", 2);
}

static void wrong_secret_refused(void **state)
{
    (void)state;
    expect_refused("raftkv", "alpha", "raftkv", "beta", 2);
}

static void secret_on_one_side_refused(void **state)
{
    (void)state;
    expect_refused("raftkv", "alpha", "raftkv", "", 2);
}

static void wrong_node_id_refused(void **state)
{
    (void)state;
    /* Node 3 sits where the peers file of node 1 expects node 2: node 1's dial is refused
     * ("dialed node 2, this is node 3") and so is node 3's ("not a peer"). */
    expect_refused("raftkv", "", "raftkv", "", 3);
}

static void full_queue_drops_and_counts(void **state)
{
    (void)state;
    start_side(0, "raftkv", "", 4096, 1);
    start_side(1, "raftkv", "", 1 << 20, 2);
    assert_true(run_until(both_connected, 10000));
    static uint8_t big[1000];
    raft_entry e = {.term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = sizeof big,
                    .data = big};
    raft_msg m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1, .n_entries = 1,
                  .entries = &e};
    for (int i = 0; i < 100; i++)
        transport_send(sides[0].t, &m); /* no flush: everything sits in the queue */
    transport_stats st = transport_get_stats(sides[0].t);
    assert_int_equal(st.msgs_sent + st.msgs_dropped, 100);
    assert_true(st.msgs_dropped > 90); /* 4096 bytes hold at most 4 such frames */
    transport_flush(sides[0].t);
    expected_msgs = st.msgs_sent;
    assert_true(run_until(all_messages, 10000));
    assert_int_equal(sides[1].msgs, st.msgs_sent);
}

static bool snapshot_received(void)
{
    return sides[1].snap_total > 0 && sides[1].snap_bytes == sides[1].snap_total;
}

static uint8_t data[4 << 20];
static const raft_snapshot_meta meta = {.index = 40, .term = 2,
                                        .conf = {.n_voters = 2, .voters = {1, 2}}};

static void write_snapshot(size_t size)
{
    snap_writer *w;
    char err[SNAP_ERRMSG_SIZE];
    assert_int_equal(snap_writer_begin(snap_dir, vfs_posix(), &meta, &w, err), SNAP_OK);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    assert_int_equal(snap_writer_write(w, 0, data, size), SNAP_OK);
    assert_int_equal(snap_writer_finish(w, err), SNAP_OK);
}

static void snapshot_resume_skips_ahead(void **state)
{
    (void)state;
    write_snapshot(sizeof data);
    resume_at = 3 << 20; /* chunk-aligned (4096) */
    resumed = false;
    start_side(0, "raftkv", "", 1 << 20, 1);
    start_side(1, "raftkv", "", 1 << 20, 2);
    assert_true(run_until(both_connected, 10000));
    raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2, .snapshot = meta};
    transport_send(sides[0].t, &m);
    transport_flush(sides[0].t);
    assert_true(run_until(snapshot_received, 100000));
    resume_at = 0;
    assert_true(resumed);
    assert_true(sides[1].snap_in_order); /* apart from the one jump */
    assert_true(sides[1].snap_chunks < (sizeof data - (3 << 20)) / 4096 + 64);
    assert_memory_equal(sides[1].snap_data + (3 << 20), data + (3 << 20), 1 << 20);
}

static void snapshot_streams_in_order(void **state)
{
    (void)state;
    size_t size = 50000;
    write_snapshot(size);

    start_side(0, "raftkv", "", 1 << 20, 1);
    start_side(1, "raftkv", "", 1 << 20, 2);
    assert_true(run_until(both_connected, 10000));
    raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2, .snapshot = meta};
    transport_send(sides[0].t, &m);
    transport_flush(sides[0].t);
    assert_true(run_until(snapshot_received, 20000));
    assert_true(sides[1].snap_in_order);
    assert_int_equal(sides[1].snap_total, size);
    assert_true(sides[1].snap_chunks >= size / 4096); /* chunked, not one frame */
    assert_memory_equal(sides[1].snap_data, data, size);
    assert_int_equal(transport_get_stats(sides[0].t).snapshots_sent, 1);
    assert_int_equal(sides[0].snap_failed, 0);
}

static void snapshot_of_missing_file_fails(void **state)
{
    (void)state;
    start_side(0, "raftkv", "", 1 << 20, 1);
    start_side(1, "raftkv", "", 1 << 20, 2);
    assert_true(run_until(both_connected, 10000));
    raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2,
                  .snapshot = {.index = 99, .term = 2}};
    transport_send(sides[0].t, &m);
    assert_int_equal(sides[0].snap_failed, 1); /* the core is told at once, and retries */
}

static int stranger_fd = -1;

static bool stranger_closed(void)
{
    char buf[256];
    ssize_t n = recv(stranger_fd, buf, sizeof buf, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* A stranger announcing a 100 MB frame (fine between peers) before any handshake is cut off at once, without the node
 * allocating it, and the real peers still connect. */
static void stranger_with_huge_frame_closed(void **state)
{
    (void)state;
    start_side(0, "raftkv", "", 1 << 20, 1);
    start_side(1, "raftkv", "", 1 << 20, 2);
    stranger_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", peers[0].peer_port, &sa);
    assert_int_equal(connect(stranger_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const uint8_t header[5] = {0x00, 0xe1, 0xf5, 0x05, 1}; /* 1e8 bytes, kind HELLO */
    assert_int_equal(send(stranger_fd, header, sizeof header, 0), 5);
    assert_true(run_until(stranger_closed, 10000));
    close(stranger_fd);
    assert_true(run_until(both_connected, 10000));
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t put_frame(uint8_t *out, uint8_t kind, const uint8_t *payload, size_t len)
{
    out[0] = (uint8_t)len;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 24);
    out[4] = kind;
    memcpy(out + 5, payload, len);
    return 5 + len;
}

/* A valid HELLO from node 2 to node 1 of cluster "raftkv" (no secret) then AUTH. */
static size_t valid_handshake(uint8_t *out)
{
    uint8_t hello[64] = {0x52, 0x4b, 0x56, 0x31, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
                         1, 0, 0, 0, 0, 0, 0, 0};
    hello[23 + 32] = 6; /* cluster id length, then "raftkv" */
    memcpy(hello + 25 + 32, "raftkv", 6);
    uint8_t mac[32] = {0};
    size_t n = put_frame(out, 1, hello, 25 + 32 + 6);
    return n + put_frame(out + n, 3, mac, sizeof mac);
}

static void send_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                uv_run(&loop, UV_RUN_NOWAIT);
                continue;
            }
            return; /* closed by the node: fine */
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Seeded garbage on 300 connections: random bytes, mutated handshakes, and random MSG / SNAP /
 * SNAP_RESUME frames after a valid handshake. The node must survive (ASan/UBSan check the
 * parsers), and the real peers must still connect and deliver. */
static void garbage_never_breaks_the_transport(void **state)
{
    (void)state;
    start_side(0, "raftkv", "", 1 << 20, 1);
    start_side(1, "raftkv", "", 1 << 20, 2);
    static uint8_t buf[1 << 16];
    for (int round = 0; round < 300; round++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa;
        uv_ip4_addr("127.0.0.1", peers[0].peer_port, &sa);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        size_t len = 0;
        int mode = (int)(rng() % 3);
        if (mode == 0) { /* random bytes */
            len = rng() % 2048;
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rng();
        } else { /* a handshake, mutated (mode 1) or followed by random frames (mode 2) */
            len = valid_handshake(buf);
            if (mode == 1) {
                for (int flips = 1 + (int)(rng() % 4); flips > 0; flips--)
                    buf[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
            } else {
                for (int frames = 1 + (int)(rng() % 8); frames > 0; frames--) {
                    uint8_t payload[512];
                    size_t plen = rng() % sizeof payload;
                    for (size_t i = 0; i < plen; i++)
                        payload[i] = (uint8_t)rng();
                    if (plen >= 8 && rng() % 2) /* a plausible codec version byte first */
                        payload[0] = 1;
                    len += put_frame(buf + len, (uint8_t)(5 + rng() % 3), payload, plen);
                }
            }
        }
        send_all(fd, buf, len);
        for (int i = 0; i < 5; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        close(fd);
    }
    assert_true(run_until(both_connected, 10000));
    connects_and_delivers_started();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(same_cluster_connects_and_delivers, setup, teardown),
        cmocka_unit_test_setup_teardown(matching_secret_connects_and_delivers, setup, teardown),
        cmocka_unit_test_setup_teardown(host_names_are_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(other_cluster_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_secret_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(secret_on_one_side_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_node_id_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(full_queue_drops_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_streams_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_of_missing_file_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_resume_skips_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(stranger_with_huge_frame_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_never_breaks_the_transport, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
