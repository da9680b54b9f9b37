/*
 * test_config.c -- the configuration parser (src/server/config.c): valid files and flags, and one
 * exact error line per kind of mistake (the operator reads these, so their wording is tested).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static const char *PEERS3 =
    "[{\"id\":1,\"host\":\"127.0.0.1\",\"peer_port\":7001,\"client_port\":7101,\"resp_port\":7201},"
    " {\"id\":3,\"host\":\"127.0.0.1\",\"peer_port\":7003,\"client_port\":7103,\"resp_port\":7203},"
    " {\"id\":2,\"host\":\"localhost\",\"peer_port\":7002,\"client_port\":7102,\"resp_port\":7202}]";

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/raftkv-test-config-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static const char *write_file(const char *name, const char *text)
{
    static char paths[4][128];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, 128, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Runs config_from_args on a NULL-terminated argument list. */
static int run(config *cfg, char *err, ...)
{
    char *argv[32] = {"raftkvd"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    char *arg;
    while ((arg = va_arg(ap, char *)) != NULL)
        argv[argc++] = arg;
    va_end(ap);
    err[0] = '\0';
    return config_from_args(cfg, argc, argv, err, CONFIG_ERR_SIZE);
}

static void peers_parsed_sorted_by_id(void **state)
{
    (void)state;
    config cfg;
    char err[CONFIG_ERR_SIZE];
    const char *peers = write_file("peers.json", PEERS3);
    assert_int_equal(run(&cfg, err, "--id", "2", "--peers", peers, NULL), CONFIG_OK);
    assert_int_equal(cfg.id, 2);
    assert_int_equal(cfg.n_peers, 3);
    assert_int_equal(cfg.peers[0].id, 1);
    assert_int_equal(cfg.peers[1].id, 2);
    assert_int_equal(cfg.peers[2].id, 3);
    assert_string_equal(cfg.peers[1].host, "localhost");
    assert_int_equal(cfg.peers[2].resp_port, 7203);
    assert_string_equal(cfg.data_dir, "raftkv-data-2"); /* default follows the id */
    assert_true(cfg.fsync);
    assert_int_equal(cfg.max_value_bytes, 1024 * 1024);
}

static void flags_override_the_config_file(void **state)
{
    (void)state;
    config cfg;
    char err[CONFIG_ERR_SIZE];
    const char *peers = write_file("peers.json", PEERS3);
    const char *raft_file = write_file("raft.json",
                                  "{\"tick_ms\": 5, \"heartbeat_ms\": 20, \"data_dir\": \"/x\","
                                  " \"forward_to_leader\": true, \"cluster_id\": \"blue\"}");
    assert_int_equal(run(&cfg, err, "--heartbeat-ms", "40", "--peers", peers, "--config", raft_file,
                         "--id=1", "--data-dir=/y", "--fsync=false", "--clock-offset-ms",
                         "-250", NULL),
                     CONFIG_OK);
    assert_int_equal(cfg.tick_ms, 5);        /* from the file */
    assert_int_equal(cfg.heartbeat_ms, 40);  /* flag wins, even before --config */
    assert_string_equal(cfg.data_dir, "/y");
    assert_true(cfg.forward_to_leader);
    assert_string_equal(cfg.cluster_id, "blue");
    assert_false(cfg.fsync);
    assert_int_equal(cfg.clock_offset_ms, -250);
}

static void bare_boolean_flag_means_true(void **state)
{
    (void)state;
    config cfg;
    char err[CONFIG_ERR_SIZE];
    const char *peers = write_file("peers.json", PEERS3);
    assert_int_equal(run(&cfg, err, "--forward-to-leader", "--id", "3", "--peers", peers, NULL),
                     CONFIG_OK);
    assert_true(cfg.forward_to_leader);
}

static void help_flag(void **state)
{
    (void)state;
    config cfg;
    char err[CONFIG_ERR_SIZE];
    assert_int_equal(run(&cfg, err, "--help", NULL), CONFIG_HELP);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_usage(f);
    fclose(f);
    assert_non_null(strstr(text, "--election-timeout-min-ms"));
    assert_non_null(strstr(text, "--cluster-secret"));
    assert_non_null(strstr(text, "--peer-queue-bytes"));
    free(text);
}

/* Each bad input and the one line it must produce. */
static void expect_error(const char *peers_text, const char *raft_text, const char *flag,
                         const char *flag_value, const char *expected)
{
    config cfg;
    char err[CONFIG_ERR_SIZE];
    const char *peers = write_file("peers.json", peers_text);
    int rc;
    if (raft_text != NULL) {
        const char *raft_file = write_file("raft.json", raft_text);
        rc = run(&cfg, err, "--id", "1", "--peers", peers, "--config", raft_file, NULL);
    } else if (flag != NULL) {
        rc = run(&cfg, err, "--id", "1", "--peers", peers, flag, flag_value, NULL);
    } else {
        rc = run(&cfg, err, "--id", "1", "--peers", peers, NULL);
    }
    assert_int_equal(rc, CONFIG_EBAD);
    /* Paths are in the temp dir: compare with every "<dir>/" removed. */
    char shown[CONFIG_ERR_SIZE];
    size_t used = 0, skip = strlen(dir) + 1;
    for (const char *p = err; *p != '\0';) {
        if (strncmp(p, dir, skip - 1) == 0 && p[skip - 1] == '/')
            p += skip;
        else
            shown[used++] = *p++;
    }
    shown[used] = '\0';
    assert_string_equal(shown, expected);
}

static void bad_peer_port_names_index_and_field(void **state)
{
    (void)state;
    expect_error("[{\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3},"
                 " {\"id\":2,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3},"
                 " {\"id\":3,\"host\":\"h\",\"peer_port\":1,\"client_port\":\"x\",\"resp_port\":3}]",
                 NULL, NULL, NULL,
                 "peers.json: [2].client_port: expected an integer 1..65535, got \"x\"");
    expect_error("[{\"id\":1,\"host\":\"h\",\"peer_port\":70000,\"client_port\":2,\"resp_port\":3}]",
                 NULL, NULL, NULL,
                 "peers.json: [0].peer_port: expected an integer 1..65535, got 70000");
    expect_error("[{\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2}]", NULL, NULL, NULL,
                 "peers.json: [0].resp_port: expected an integer 1..65535, got nothing");
}

static void bad_peers_structure(void **state)
{
    (void)state;
    expect_error("[{\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3},"
                 " {\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3}]",
                 NULL, NULL, NULL, "peers.json: [1].id: 1 is already the id of [0]");
    expect_error("[{\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3,"
                 "\"port\":4}]", NULL, NULL, NULL, "peers.json: [0].port: unknown field");
    expect_error("[{\"id\":1.5,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3}]",
                 NULL, NULL, NULL, "peers.json: [0].id: expected an integer 1..2^53, got 1.5");
    expect_error("{}", NULL, NULL, NULL, "peers.json: expected a JSON array of 1..16 nodes");
    expect_error("[{\"id\":1,\n \"host\": h}]", NULL, NULL, NULL,
                 "peers.json: line 2: invalid JSON near \"h}]\"");
    expect_error("[{\"id\":2,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3}]",
                 NULL, NULL, NULL, "--id: 1 is not in peers.json (ids 2)");
    expect_error("[{\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3,"
                 "\"voter\":1}]", NULL, NULL, NULL,
                 "peers.json: [0].voter: expected true or false, got 1");
    expect_error("[{\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3,"
                 "\"voter\":false}]", NULL, NULL, NULL,
                 "peers.json: every node has \"voter\": false; the initial configuration needs "
                 "at least one voter");
}

/* "voter": false marks a spare, outside the initial configuration; absent means a voter. */
static void spare_peers_parsed(void **state)
{
    (void)state;
    config cfg;
    char err[CONFIG_ERR_SIZE];
    const char *peers = write_file(
        "peers.json",
        "[{\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3},"
        " {\"id\":2,\"host\":\"h\",\"peer_port\":4,\"client_port\":5,\"resp_port\":6,"
        "\"voter\":false},"
        " {\"id\":3,\"host\":\"h\",\"peer_port\":7,\"client_port\":8,\"resp_port\":9,"
        "\"voter\":true}]");
    assert_int_equal(run(&cfg, err, "--id", "2", "--peers", peers, NULL), CONFIG_OK);
    assert_false(cfg.peers[0].spare);
    assert_true(cfg.peers[1].spare);
    assert_false(cfg.peers[2].spare);
}

static void bad_settings_name_the_field(void **state)
{
    (void)state;
    const char *one = "[{\"id\":1,\"host\":\"h\",\"peer_port\":1,\"client_port\":2,\"resp_port\":3}]";
    expect_error(one, "{\"tick_ms\": \"fast\"}", NULL, NULL,
                 "raft.json: tick_ms: expected an integer 1..1000, got \"fast\"");
    expect_error(one, "{\"heartbeat\": 5}", NULL, NULL,
                 "raft.json: heartbeat: unknown field (raftkvd --help lists them)");
    expect_error(one, "{\"fsync\": 1}", NULL, NULL,
                 "raft.json: fsync: expected true or false, got 1");
    expect_error(one, "{\"election_timeout_min_ms\": 500, \"election_timeout_max_ms\": 400}",
                 NULL, NULL,
                 "raft.json: election_timeout_max_ms: must exceed election_timeout_min_ms (500), "
                 "got 400");
    expect_error(one, "{\"check_quorum_ms\": 100}", NULL, NULL,
                 "raft.json: check_quorum_ms: must be 0 or at least election_timeout_min_ms (300), "
                 "got 100");
    expect_error(one, "{\"poll_us\": 5000000}", NULL, NULL,
                 "raft.json: poll_us: expected an integer 0..1000000, got 5000000");
    expect_error(one, NULL, "--tick-ms", "x", "--tick-ms: expected an integer 1..1000, got \"x\"");
    expect_error(one, NULL, "--no-such-flag", "1", "--no-such-flag: unknown flag (raftkvd --help)");
    expect_error(one, NULL, "--heartbeat-ms", "400",
                 "flags: heartbeat_ms: must be in tick_ms..election_timeout_min_ms-1 (10..299), "
                 "got 400");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(peers_parsed_sorted_by_id),
        cmocka_unit_test(flags_override_the_config_file),
        cmocka_unit_test(bare_boolean_flag_means_true),
        cmocka_unit_test(help_flag),
        cmocka_unit_test(bad_peer_port_names_index_and_field),
        cmocka_unit_test(bad_peers_structure),
        cmocka_unit_test(spare_peers_parsed),
        cmocka_unit_test(bad_settings_name_the_field),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
