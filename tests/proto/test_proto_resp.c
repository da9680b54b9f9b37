/*
 * test_proto_resp.c -- RESP2 parser (multibulk and inline, any split, pipelining, every protocol
 * error), the mapping of every supported command with Redis's exact error texts, and the encoders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto_test_util.h"

static events ev_whole, ev_split;

static void parse_resp(const char *stream, size_t len, const proto_resp_limits *limits, events *ev)
{
    proto_resp_parser *parser = proto_resp_new(limits);
    assert_non_null(parser);
    run_resp(parser, (const uint8_t *)stream, len, 0, 0, ev);
    proto_resp_free(parser);
}

static void expect_resp(const char *stream, ...)
{
    parse_resp(stream, strlen(stream), NULL, &ev_whole);
    va_list args;
    va_start(args, stream);
    int i = 0;
    for (const char *want; (want = va_arg(args, const char *)) != NULL; i++) {
        assert_true(i < ev_whole.n);
        assert_string_equal(ev_whole.text[i], want);
    }
    va_end(args);
    assert_int_equal(ev_whole.n, i);
}

static void multibulkAndInlineParse(void **state)
{
    (void)state;
    expect_resp("*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n", "argc=2 GET foo", NULL);
    expect_resp("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", "argc=3 SET k ", NULL);
    expect_resp("PING\r\n", "argc=1 PING", NULL);
    expect_resp("set  k   v\n", "argc=3 set k v", NULL);
    expect_resp("set k \"a b\\r\\n\\x41\\\"\" 'it\\'s'\r\n", "argc=4 set k a\\x20b\\x0d\\x0aA\" it's",
                NULL);
    expect_resp("set k \"\"\r\n", "argc=3 set k ", NULL);
    /* empty requests are skipped without a reply */
    expect_resp("*0\r\n*-1\r\n\r\n   \r\nPING\r\n", "argc=1 PING", NULL);
    /* binary bulk data with \r\n and NUL inside */
    const char bin[] = "*2\r\n$4\r\nECHO\r\n$5\r\n\r\n\0\r\n\r\n";
    parse_resp(bin, sizeof bin - 1, NULL, &ev_whole);
    assert_int_equal(ev_whole.n, 1);
    assert_string_equal(ev_whole.text[0], "argc=2 ECHO \\x0d\\x0a\\x00\\x0d\\x0a");
}

static void protocolErrorsCloseWithRedisTexts(void **state)
{
    (void)state;
    expect_resp("*abc\r\n", "ERROR -ERR Protocol error: invalid multibulk length", NULL);
    expect_resp("*99999\r\n", "ERROR -ERR Protocol error: invalid multibulk length", NULL);
    expect_resp("*1\r\nGET\r\n", "ERROR -ERR Protocol error: expected '$', got 'G'", NULL);
    expect_resp("*1\r\n$-3\r\n", "ERROR -ERR Protocol error: invalid bulk length", NULL);
    expect_resp("*1\r\n$x\r\n", "ERROR -ERR Protocol error: invalid bulk length", NULL);
    expect_resp("*1\r\n$1048577\r\n", "ERROR -ERR Protocol error: invalid bulk length", NULL);
    expect_resp("*1\r\n$3\r\nGETXX", "ERROR -ERR Protocol error: expected \\r\\n after bulk data", NULL);
    expect_resp("set k \"abc\r\n", "ERROR -ERR Protocol error: unbalanced quotes in request", NULL);
    expect_resp("set k \"abc\"d\r\n", "ERROR -ERR Protocol error: unbalanced quotes in request", NULL);
    expect_resp("set k 'abc\r\n", "ERROR -ERR Protocol error: unbalanced quotes in request", NULL);
    /* commands before the error are still returned, nothing after it */
    expect_resp("PING\r\n*1\r\n$x\r\nPING\r\n", "argc=1 PING",
                "ERROR -ERR Protocol error: invalid bulk length", NULL);

    proto_resp_limits limits = {.max_inline = 32, .max_args = 3, .max_bulk = 10, .max_request = 15};
    char big[100];
    memset(big, 'a', sizeof big);
    parse_resp(big, sizeof big, &limits, &ev_whole);
    assert_int_equal(ev_whole.n, 1);
    assert_string_equal(ev_whole.text[0], "ERROR -ERR Protocol error: too big inline request");
    const char *four = "*4\r\n";
    parse_resp(four, strlen(four), &limits, &ev_whole);
    assert_string_equal(ev_whole.text[0], "ERROR -ERR Protocol error: invalid multibulk length");
    const char *inline_four = "a b c d\r\n";
    parse_resp(inline_four, strlen(inline_four), &limits, &ev_whole);
    assert_string_equal(ev_whole.text[0], "ERROR -ERR Protocol error: invalid multibulk length");
    const char *bulk11 = "*1\r\n$11\r\n";
    parse_resp(bulk11, strlen(bulk11), &limits, &ev_whole);
    assert_string_equal(ev_whole.text[0], "ERROR -ERR Protocol error: invalid bulk length");
    const char *total = "*2\r\n$10\r\naaaaaaaaaa\r\n$10\r\n";
    parse_resp(total, strlen(total), &limits, &ev_whole);
    assert_string_equal(ev_whole.text[0], "ERROR -ERR Protocol error: request larger than 15 bytes");
    const char *long_count = "*1\r\n$000000000000000000000000000000000000000000000000000000000000000001\r\n";
    parse_resp(long_count, strlen(long_count), NULL, &ev_whole);
    assert_string_equal(ev_whole.text[0], "ERROR -ERR Protocol error: too big bulk count string");
    assert_null(proto_resp_new(&(proto_resp_limits){.max_bulk = KV_MAX_VALUE_HARD + 1}));
}

static const char pipeline[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\n\0\r\n"
                               "GET k\r\n"
                               "*0\r\n"
                               "\r\n"
                               "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"
                               "set \"a b\" 'c'\n"
                               "*1\r\n$4\r\nPING\r\n";

static void splitAtEveryByteGivesSameCommands(void **state)
{
    (void)state;
    size_t len = sizeof pipeline - 1;
    proto_resp_parser *parser = proto_resp_new(NULL);
    run_resp(parser, (const uint8_t *)pipeline, len, 0, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 5);
    assert_string_equal(ev_whole.text[0], "argc=3 SET k v\\x0d\\x0a\\x00");
    assert_string_equal(ev_whole.text[3], "argc=3 set a\\x20b c");
    for (size_t chunk = 1; chunk <= 3; chunk++) {
        run_resp(parser, (const uint8_t *)pipeline, len, chunk, 0, &ev_split);
        assert_int_equal(ev_split.n, ev_whole.n);
        for (int i = 0; i < ev_whole.n; i++) assert_string_equal(ev_split.text[i], ev_whole.text[i]);
    }
    for (size_t split = 1; split < len; split++) {
        run_resp(parser, (const uint8_t *)pipeline, len, SIZE_MAX, split, &ev_split);
        assert_int_equal(ev_split.n, ev_whole.n);
        for (int i = 0; i < ev_whole.n; i++) assert_string_equal(ev_split.text[i], ev_whole.text[i]);
    }
    proto_resp_free(parser);
}

/* ---- mapping --------------------------------------------------------------------------------- */

static kv_pair pairs[KV_MAX_MULTI];
static proto_resp_request request;

/* Parse one inline request and map it at now = 1,000,000 ms with a 16-byte value limit. */
static const proto_resp_request *map(const char *line)
{
    static proto_resp_parser *parser;
    if (parser == NULL) parser = proto_resp_new(NULL);
    size_t used;
    proto_resp_cmd cmd;
    proto_resp_error err;
    assert_int_equal(proto_resp_parse(parser, (const uint8_t *)line, strlen(line), &used, &cmd, &err),
                     PROTO_RESP_COMMAND);
    proto_resp_map(&cmd, 1000000, 16, pairs, &request);
    return &request;
}

static void expect_reply(const char *line, const char *reply)
{
    const proto_resp_request *req = map(line);
    assert_int_equal(req->kind, PROTO_RESP_KIND_REPLY);
    assert_int_equal(req->reply_len, strlen(reply));
    assert_memory_equal(req->reply, reply, req->reply_len);
}

static void mappingErrorsAreRedisExact(void **state)
{
    (void)state;
    expect_reply("FOO\r\n", "-ERR unknown command 'FOO', with args beginning with: \r\n");
    expect_reply("foo a \"b c\"\r\n", "-ERR unknown command 'foo', with args beginning with: 'a' 'b c' \r\n");
    expect_reply("foo \"x\\r\\ny\"\r\n", "-ERR unknown command 'foo', with args beginning with: 'x  y' \r\n");
    /* long arguments are cut at 128 bytes of arguments in all */
    char line[600], want[600];
    char a100[101], b100[101];
    memset(a100, 'a', 100);
    a100[100] = 0;
    memset(b100, 'b', 100);
    b100[100] = 0;
    snprintf(line, sizeof line, "foo %s %s c\r\n", a100, b100);
    snprintf(want, sizeof want, "-ERR unknown command 'foo', with args beginning with: '%s' '%.25s' \r\n",
             a100, b100);
    expect_reply(line, want);

    expect_reply("get\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    expect_reply("GET a b\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    expect_reply("set k\r\n", "-ERR wrong number of arguments for 'set' command\r\n");
    expect_reply("del\r\n", "-ERR wrong number of arguments for 'del' command\r\n");
    expect_reply("exists\r\n", "-ERR wrong number of arguments for 'exists' command\r\n");
    expect_reply("mget\r\n", "-ERR wrong number of arguments for 'mget' command\r\n");
    expect_reply("mset a 1 b\r\n", "-ERR wrong number of arguments for 'mset' command\r\n");
    expect_reply("incr\r\n", "-ERR wrong number of arguments for 'incr' command\r\n");
    expect_reply("expire k\r\n", "-ERR wrong number of arguments for 'expire' command\r\n");
    expect_reply("ttl\r\n", "-ERR wrong number of arguments for 'ttl' command\r\n");
    expect_reply("dbsize x\r\n", "-ERR wrong number of arguments for 'dbsize' command\r\n");
    expect_reply("ping a b\r\n", "-ERR wrong number of arguments for 'ping' command\r\n");

    expect_reply("set k v nx xx\r\n", "-ERR syntax error\r\n");
    expect_reply("set k v ex 10 px 10\r\n", "-ERR syntax error\r\n");
    expect_reply("set k v ex\r\n", "-ERR syntax error\r\n");
    expect_reply("set k v keepttl\r\n", "-ERR syntax error\r\n");
    expect_reply("set k v ex abc nx xx\r\n", "-ERR syntax error\r\n"); /* syntax before number */
    expect_reply("set k v ex abc\r\n", "-ERR value is not an integer or out of range\r\n");
    expect_reply("set k v px 1.5\r\n", "-ERR value is not an integer or out of range\r\n");
    expect_reply("set k v ex 0\r\n", "-ERR invalid expire time in 'set' command\r\n");
    expect_reply("set k v px -5\r\n", "-ERR invalid expire time in 'set' command\r\n");
    expect_reply("set k v ex 9223372036854775807\r\n", "-ERR invalid expire time in 'set' command\r\n");
    expect_reply("expire k x\r\n", "-ERR value is not an integer or out of range\r\n");
    expect_reply("expire k 10 nx\r\n", "-ERR Unsupported option nx\r\n");
    expect_reply("set \"a b\" v\r\n",
                 "-ERR invalid key: 1 to 250 bytes without spaces or control characters\r\n");
    expect_reply("set k 01234567890123456\r\n", "-ERR value too large (17 bytes, the limit is 16)\r\n");
    expect_reply("mset a 1 b 01234567890123456\r\n",
                 "-ERR value too large (17 bytes, the limit is 16)\r\n");
    expect_reply("incr \"\"\r\n",
                 "-ERR invalid key: 1 to 250 bytes without spaces or control characters\r\n");
    expect_reply("expire k 9223372036854775807\r\n", "-ERR invalid expire time in 'expire' command\r\n");
    static char many[4 + 2 * (KV_MAX_MULTI + 1) + 3];
    size_t at = (size_t)snprintf(many, sizeof many, "del");
    for (int i = 0; i <= KV_MAX_MULTI; i++) at += (size_t)snprintf(many + at, sizeof many - at, " k");
    snprintf(many + at, sizeof many - at, "\r\n");
    expect_reply(many, "-ERR too many keys in one command (the limit is 1024)\r\n");
    /* keys that cannot exist need no log entry */
    expect_reply("del \"a b\" \"\"\r\n", ":0\r\n");
    expect_reply("expire \"a b\" 5\r\n", ":0\r\n");
}

static void mappingBuildsKvCommands(void **state)
{
    (void)state;
    const proto_resp_request *req = map("SET k v\r\n");
    assert_int_equal(req->kind, PROTO_RESP_KIND_WRITE);
    assert_int_equal(req->name, PROTO_RESP_CMD_SET);
    assert_int_equal(req->cmd.op, KV_OP_SET);
    assert_int_equal(req->cmd.now_ms, 1000000);
    assert_int_equal(req->cmd.deadline_ms, 0);
    assert_int_equal(req->cmd.flags, 0);
    req = map("set k v EX 10 nx\r\n");
    assert_int_equal(req->cmd.deadline_ms, 1010000);
    assert_int_equal(req->cmd.flags, KV_SET_NX);
    req = map("set k v xx px 1500\r\n");
    assert_int_equal(req->cmd.deadline_ms, 1001500);
    assert_int_equal(req->cmd.flags, KV_SET_XX);
    uint8_t bytes[512];
    assert_true(kv_cmd_encode(&req->cmd, bytes, sizeof bytes) > 0);

    req = map("del a b \"c d\"\r\n");
    assert_int_equal(req->kind, PROTO_RESP_KIND_WRITE);
    assert_int_equal(req->cmd.op, KV_OP_DELETE);
    assert_int_equal(req->cmd.n_pairs, 2);
    assert_true(kv_cmd_encode(&req->cmd, bytes, sizeof bytes) > 0);

    req = map("mset a 1 b 2\r\n");
    assert_int_equal(req->cmd.op, KV_OP_MSET);
    assert_int_equal(req->cmd.n_pairs, 2);
    assert_memory_equal(pairs[1].value.base, "2", 1);
    assert_true(kv_cmd_encode(&req->cmd, bytes, sizeof bytes) > 0);

    req = map("incr n\r\n");
    assert_int_equal(req->cmd.op, KV_OP_INCR);
    assert_int_equal(req->cmd.delta, 1);
    req = map("expire k 5\r\n");
    assert_int_equal(req->cmd.op, KV_OP_EXPIRE);
    assert_int_equal(req->cmd.deadline_ms, 1005000);
    req = map("expire k -5\r\n");
    assert_int_equal(req->kind, PROTO_RESP_KIND_WRITE);
    assert_true(req->cmd.deadline_ms != 0 && req->cmd.deadline_ms <= 1000000); /* deletes */
    req = map("expire k 0\r\n");
    assert_true(req->cmd.deadline_ms != 0 && req->cmd.deadline_ms <= 1000000);

    req = map("mget a b c\r\n");
    assert_int_equal(req->kind, PROTO_RESP_KIND_READ);
    assert_int_equal(req->name, PROTO_RESP_CMD_MGET);
    assert_int_equal(req->n_keys, 3);
    assert_memory_equal(req->keys[2].base, "c", 1);
    req = map("GET k\r\n");
    assert_int_equal(req->kind, PROTO_RESP_KIND_READ);
    req = map("exists a b\r\n");
    assert_int_equal(req->name, PROTO_RESP_CMD_EXISTS);
    req = map("ttl a\r\n");
    assert_int_equal(req->name, PROTO_RESP_CMD_TTL);
    const char *local[] = {"ping\r\n", "PING hi\r\n", "info raft\r\n", "dbsize\r\n", "command docs\r\n",
                           "quit\r\n"};
    proto_resp_name names[] = {PROTO_RESP_CMD_PING, PROTO_RESP_CMD_PING, PROTO_RESP_CMD_INFO,
                               PROTO_RESP_CMD_DBSIZE, PROTO_RESP_CMD_COMMAND, PROTO_RESP_CMD_QUIT};
    for (size_t i = 0; i < 6; i++) {
        req = map(local[i]);
        assert_int_equal(req->kind, PROTO_RESP_KIND_LOCAL);
        assert_int_equal(req->name, names[i]);
    }
}

static void writeRepliesAndEncoders(void **state)
{
    (void)state;
    char buf[128];
    size_t n;
#define REPLY(name, status_, expected)                                                              \
    do {                                                                                           \
        kv_result r = {.status = (status_), .count = 2, .integer = -7, .version = 3};              \
        n = proto_resp_reply_write(buf, sizeof buf, (name), &r);                                   \
        assert_int_equal(n, strlen(expected));                                                     \
        assert_memory_equal(buf, (expected), n);                                                   \
    } while (0)
    REPLY(PROTO_RESP_CMD_SET, KV_ST_OK, "+OK\r\n");
    REPLY(PROTO_RESP_CMD_SET, KV_ST_NOT_SET, "$-1\r\n");
    REPLY(PROTO_RESP_CMD_MSET, KV_ST_OK, "+OK\r\n");
    REPLY(PROTO_RESP_CMD_DEL, KV_ST_DELETED, ":2\r\n");
    REPLY(PROTO_RESP_CMD_INCR, KV_ST_OK, ":-7\r\n");
    REPLY(PROTO_RESP_CMD_INCR, KV_ST_NOT_INTEGER, "-ERR value is not an integer or out of range\r\n");
    REPLY(PROTO_RESP_CMD_INCR, KV_ST_OVERFLOW, "-ERR increment or decrement would overflow\r\n");
    REPLY(PROTO_RESP_CMD_EXPIRE, KV_ST_OK, ":1\r\n");
    REPLY(PROTO_RESP_CMD_EXPIRE, KV_ST_NOT_FOUND, ":0\r\n");
    REPLY(PROTO_RESP_CMD_SET, KV_ST_BAD_CMD, "-ERR internal error: unexpected result\r\n");
#undef REPLY
    kv_result zero = {.status = KV_ST_NOT_FOUND, .count = 0};
    n = proto_resp_reply_write(buf, sizeof buf, PROTO_RESP_CMD_DEL, &zero);
    assert_memory_equal(buf, ":0\r\n", n);

    n = proto_resp_bulk(buf, sizeof buf, (const uint8_t *)"a\r\nb", 4);
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "$4\r\na\r\nb\r\n", n);
    n = proto_resp_null_bulk(buf, sizeof buf);
    assert_memory_equal(buf, "$-1\r\n", n);
    n = proto_resp_array_header(buf, sizeof buf, 3);
    assert_memory_equal(buf, "*3\r\n", n);
    n = proto_resp_integer(buf, sizeof buf, INT64_MIN);
    assert_memory_equal(buf, ":-9223372036854775808\r\n", n);
    n = proto_resp_simple(buf, sizeof buf, "PONG");
    assert_memory_equal(buf, "+PONG\r\n", n);
    n = proto_resp_error_reply(buf, sizeof buf, "ERR x");
    assert_memory_equal(buf, "-ERR x\r\n", n);
    memset(buf, '#', sizeof buf);
    assert_int_equal(proto_resp_bulk(buf, 5, (const uint8_t *)"abc", 3), 9);
    assert_int_equal(buf[0], '#');

    assert_int_equal(proto_resp_ttl_seconds(-2), -2);
    assert_int_equal(proto_resp_ttl_seconds(-1), -1);
    assert_int_equal(proto_resp_ttl_seconds(1499), 1);
    assert_int_equal(proto_resp_ttl_seconds(1500), 2);
    assert_int_equal(proto_resp_ttl_seconds(10000), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multibulkAndInlineParse),
        cmocka_unit_test(protocolErrorsCloseWithRedisTexts),
        cmocka_unit_test(splitAtEveryByteGivesSameCommands),
        cmocka_unit_test(mappingErrorsAreRedisExact),
        cmocka_unit_test(mappingBuildsKvCommands),
        cmocka_unit_test(writeRepliesAndEncoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
