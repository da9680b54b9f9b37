/*
 * test_proto_text.c -- the text protocol parser and replies: every command and every error, any
 * split of the stream, pipelining, binary values, oversize numbytes and garbage.
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

static void parse_string(const char *stream, events *ev)
{
    proto_text_parser *parser = proto_text_new(NULL);
    assert_non_null(parser);
    run_text(parser, (const uint8_t *)stream, strlen(stream), 0, 0, ev);
    proto_text_free(parser);
}

/* Parse stream whole, and expect exactly the listed events (NULL-terminated). */
static void expect_events(const char *stream, ...)
{
    parse_string(stream, &ev_whole);
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

static void everyCommandParses(void **state)
{
    (void)state;
    expect_events("set foo 0 5\r\nhello\r\n", "set nr=0 e=0 v=0 foo val=hello", NULL);
    expect_events("set foo 60 3 noreply\r\nabc\r\n", "set nr=1 e=60 v=0 foo val=abc", NULL);
    expect_events("set e 0 0\r\n\r\n", "set nr=0 e=0 v=0 e val=", NULL);
    expect_events("get foo\r\n", "get nr=0 e=0 v=0 foo val=", NULL);
    expect_events("getm foo\r\n", "getm nr=0 e=0 v=0 foo val=", NULL);
    expect_events("cas foo 10 42 2\r\nhi\r\n", "cas nr=0 e=10 v=42 foo val=hi", NULL);
    expect_events("cas foo 0 18446744073709551615 2 noreply\r\nhi\r\n",
                  "cas nr=1 e=0 v=18446744073709551615 foo val=hi", NULL);
    expect_events("delete foo\r\n", "delete nr=0 e=0 v=0 foo val=", NULL);
    expect_events("delete foo noreply\r\n", "delete nr=1 e=0 v=0 foo val=", NULL);
    expect_events("mset 2\r\na 0 1\r\nx\r\nb 30 2\r\nyz\r\n",
                  "mset nr=0 e=0 v=0  val= [0 a=x] [30 b=yz]", NULL);
    expect_events("mset 1 noreply\r\na 0 0\r\n\r\n", "mset nr=1 e=0 v=0  val= [0 a=]", NULL);
    expect_events("mget a bb ccc\r\n", "mget nr=0 e=0 v=0  val= [0 a=] [0 bb=] [0 ccc=]", NULL);
    /* a bare \n ends a line too, and runs of blanks separate words */
    expect_events("get  foo \n", "get nr=0 e=0 v=0 foo val=", NULL);
}

static void binaryValuesKeepCrLfAndNul(void **state)
{
    (void)state;
    const char stream[] = "set bin 0 6\r\n\r\n\0\xff\r\n\r\nget bin\r\n";
    proto_text_parser *parser = proto_text_new(NULL);
    run_text(parser, (const uint8_t *)stream, sizeof stream - 1, 0, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 2);
    assert_string_equal(ev_whole.text[0], "set nr=0 e=0 v=0 bin val=\\x0d\\x0a\\x00\\xff\\x0d\\x0a");
    assert_string_equal(ev_whole.text[1], "get nr=0 e=0 v=0 bin val=");
    proto_text_free(parser);
    /* a value that looks like a command is only a value */
    expect_events("set k 0 9\r\nget k\r\n\r\n\r\n", "set nr=0 e=0 v=0 k val=get\\x20k\\x0d\\x0a\\x0d\\x0a",
                  NULL);
}

static void errorsThatKeepTheConnection(void **state)
{
    (void)state;
    const char *err = "ERROR ERR_CMD_ERR close=0";
    char long_key[300];
    memset(long_key, 'k', 251);
    long_key[251] = 0;
    char line[400];
    expect_events("frobnicate\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    expect_events("\r\n", err, NULL);
    expect_events("GET a\r\n", err, NULL); /* commands are lowercase, as in the seed */
    expect_events("get\r\n", err, NULL);
    expect_events("get a b\r\n", err, NULL);
    expect_events("get a noreply\r\n", err, NULL);
    expect_events("getm\r\n", err, NULL);
    expect_events("delete\r\n", err, NULL);
    expect_events("delete a b\r\n", err, NULL);
    expect_events("mget\r\n", err, NULL);
    snprintf(line, sizeof line, "get %s\r\n", long_key);
    expect_events(line, err, NULL);
    long_key[250] = 0;
    snprintf(line, sizeof line, "get %s\r\n", long_key);
    char want[400];
    snprintf(want, sizeof want, "get nr=0 e=0 v=0 %s val=", long_key);
    expect_events(line, want, NULL);
    expect_events("get a\x01z\r\n", err, NULL);
    expect_events("mget a b\x7f\r\n", err, NULL);
    /* set/cas with a readable numbytes: error at once, the value is skipped, the stream goes on */
    expect_events("set a -1 3\r\nabc\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    expect_events("set a x 3\r\nabc\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    expect_events("set a 2147483648 3\r\nabc\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    expect_events("cas a 0 v1 3\r\nabc\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    expect_events("cas a 0 -5 3\r\nabc\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    snprintf(line, sizeof line, "set %sk 0 1\r\nx\r\nget a\r\n", long_key);
    expect_events(line, err, "get nr=0 e=0 v=0 a val=", NULL);
    /* a bad mset block: every block is still read, one error, then the stream goes on */
    expect_events("mset 3\r\na 0 1\r\nx\r\nb\x01 0 2\r\nyz\r\nc 0 1\r\nq\r\nget a\r\n", err,
                  "get nr=0 e=0 v=0 a val=", NULL);
    expect_events("mset 2\r\na zero 1\r\nx\r\nb 0 1\r\ny\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=",
                  NULL);
    expect_events("mset 1\r\na 0 1 extra\r\nx\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    /* a bad header with a readable count: the n blocks are read and dropped */
    expect_events("mset 0\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    expect_events("mset 1 please\r\na 0 1\r\nx\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=", NULL);
    expect_events("mset 1 noreply x\r\na 0 1\r\nx\r\nget a\r\n", err, "get nr=0 e=0 v=0 a val=",
                  NULL);
    expect_events("mset 1025\r\nget 0 1\r\nx\r\n", NULL); /* 1 of 1025 blocks read: no reply yet */
    proto_text_parser *parser = proto_text_new(&(proto_text_limits){.max_keys = 2});
    const char *three = "mset 3\r\na 0 1\r\nx\r\nb 0 1\r\ny\r\nc 0 1\r\nz\r\nget a\r\n";
    run_text(parser, (const uint8_t *)three, strlen(three), 0, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 2);
    assert_string_equal(ev_whole.text[0], err);
    assert_string_equal(ev_whole.text[1], "get nr=0 e=0 v=0 a val=");
    proto_text_free(parser);
}

static void errorsThatCloseTheConnection(void **state)
{
    (void)state;
    const char *err = "ERROR ERR_CMD_ERR close=1";
    /* value without its \r\n: cannot resynchronize */
    expect_events("set a 0 3\r\nabcdget a\r\n", err, NULL);
    expect_events("set a 0 3\r\nabc\n\nget a\r\n", err, NULL);
    expect_events("mset 1\r\na 0 1\r\nxyz\r\n", err, NULL);
    expect_events("mset 2\r\na 0 1\r\nx\r\nb\x01 0 1\r\nyyy\r\n", err, NULL); /* also when failed */
    /* mset without a readable count: the blocks cannot be told from commands */
    expect_events("mset\r\n", err, NULL);
    expect_events("mset x\r\n", err, NULL);
    expect_events("mset -1\r\n", err, NULL);
    expect_events("mset 4294967296\r\n", err, NULL);
    expect_events("mset 1\r\na 0\r\n", err, NULL);
    /* set/cas whose value's end is not known (wrong number of words, a last word that is not
     * noreply, numbytes unreadable): the value could read as commands */
    expect_events("set a 0 many\r\nget a\r\n", err, NULL);
    expect_events("set a 0 +3\r\nget a\r\n", err, NULL);
    expect_events("set a\r\nget a\r\n", err, NULL);
    expect_events("set a 0 3 please\r\nabc\r\nget a\r\n", err, NULL);
    expect_events("cas a 0 3\r\nget a\r\n", err, NULL);
    expect_events("set k 0 -8\r\ndelete victim\r\n", err, NULL);
    expect_events("set k 13\r\ndelete victim\r\n", err, NULL);
    expect_events("set k 0 0 15\r\nxxdelete victim\r\n", err, NULL); /* memcached's shape */
    expect_events("set big 0 99999999999999999999999\r\n", err, NULL);
}

/* An mset block line that fits max_line but not what is left of max_line + max_value once the
 * earlier values are in: an error that closes, never a write past the buffer. */
static void msetLineAfterValuesIsBounded(void **state)
{
    (void)state;
    proto_text_limits limits = {.max_value = 100, .max_line = 200};
    proto_text_parser *parser = proto_text_new(&limits);
    char stream[600];
    int n = snprintf(stream, sizeof stream, "mset 2\r\na 0 100\r\n%0100d\r\nb 0 1%180s\r\ny\r\n",
                     0, "");
    assert_true(n > 0 && (size_t)n < sizeof stream);
    run_text(parser, (const uint8_t *)stream, (size_t)n, 0, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 1);
    assert_string_equal(ev_whole.text[0], "ERROR ERR_CMD_ERR close=1");
    proto_text_free(parser);
}

/* numbytes over the limit: reply and close as soon as the line is read, nothing buffered */
static void oversizeNumbytesClosesWithoutBuffering(void **state)
{
    (void)state;
    proto_text_limits limits = {.max_value = 100};
    proto_text_parser *parser = proto_text_new(&limits);
    const char *line = "set big 0 101\r\n";
    size_t used = 0;
    proto_text_cmd cmd;
    proto_text_error err;
    assert_int_equal(proto_text_parse(parser, (const uint8_t *)line, strlen(line), &used, &cmd, &err),
                     PROTO_TEXT_ERROR);
    assert_int_equal(used, strlen(line));
    assert_true(err.close);
    assert_string_equal(err.reply, "ERR_CMD_ERR\r\n");
    assert_non_null(err.reason);
    proto_text_free(parser);

    parser = proto_text_new(&limits);
    const char *ok = "set big 0 100\r\n";
    assert_int_equal(proto_text_parse(parser, (const uint8_t *)ok, strlen(ok), &used, &cmd, &err),
                     PROTO_TEXT_NEED_MORE);
    proto_text_free(parser);

    expect_events("set big 0 1048577\r\n", "ERROR ERR_CMD_ERR close=1", NULL);
    expect_events("cas big 0 1 1048577 noreply\r\n", "ERROR ERR_CMD_ERR close=1", NULL);
    expect_events("mset 1\r\nbig 0 1048577\r\n", "ERROR ERR_CMD_ERR close=1", NULL);
    /* an mset as a whole is bounded by max_line + max_value */
    parser = proto_text_new(&(proto_text_limits){.max_value = 100, .max_line = 64});
    const char *many = "mset 3\r\na 0 80\r\n";
    char stream[512];
    size_t at = (size_t)snprintf(stream, sizeof stream, "%s", many);
    memset(stream + at, 'v', 80);
    at += 80;
    at += (size_t)snprintf(stream + at, sizeof stream - at, "\r\nb 0 80\r\n");
    run_text(parser, (const uint8_t *)stream, at, 0, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 1);
    assert_string_equal(ev_whole.text[0], "ERROR ERR_CMD_ERR close=1");
    proto_text_free(parser);
}

static void longLineCloses(void **state)
{
    (void)state;
    proto_text_parser *parser = proto_text_new(&(proto_text_limits){.max_line = 32});
    char stream[200];
    memset(stream, 'a', sizeof stream);
    run_text(parser, (const uint8_t *)stream, sizeof stream, 7, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 1);
    assert_string_equal(ev_whole.text[0], "ERROR ERR_CMD_ERR close=1");
    proto_text_free(parser);
    /* exactly max_line bytes (with \r\n) is accepted */
    parser = proto_text_new(&(proto_text_limits){.max_line = 32});
    snprintf(stream, sizeof stream, "get %026d\r\n", 7);
    assert_int_equal(strlen(stream), 32);
    run_text(parser, (const uint8_t *)stream, 32, 0, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 1);
    assert_string_equal(ev_whole.text[0], "get nr=0 e=0 v=0 00000000000000000000000007 val=");
    proto_text_free(parser);
    /* mget over max_keys */
    parser = proto_text_new(&(proto_text_limits){.max_keys = 2});
    const char *mget = "mget a b c\r\nmget a b\r\n";
    run_text(parser, (const uint8_t *)mget, strlen(mget), 0, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 2);
    assert_string_equal(ev_whole.text[0], "ERROR ERR_CMD_ERR close=0");
    assert_string_equal(ev_whole.text[1], "mget nr=0 e=0 v=0  val= [0 a=] [0 b=]");
    proto_text_free(parser);
    assert_null(proto_text_new(&(proto_text_limits){.max_value = KV_MAX_VALUE_HARD + 1}));
    assert_null(proto_text_new(&(proto_text_limits){.max_keys = KV_MAX_MULTI + 1}));
}

/* A pipelined stream of every command and every non-closing error gives the same events whether it
 * arrives whole, one byte at a time, or split in two at any byte. */
static const char pipeline[] =
    "set a 0 5\r\nhel\r\n\r\n"
    "get a\r\n"
    "bogus\r\n"
    "getm a\r\n"
    "set bad\x01key 0 2\r\nzz\r\n"
    "cas a 30 7 3 noreply\r\n\r\n\0\r\n"
    "delete a\r\n"
    "mset 2 noreply\r\nk1 0 2\r\n\r\n\r\nk2 5 0\r\n\r\n"
    "mset 2\r\nk1 0 2\r\nab\r\nk\x01 0 1\r\nc\r\n"
    "mget k1 k2 a\r\n"
    "delete a noreply\n"
    "set z 0 1\r\nz\r\n";

static void splitAtEveryByteGivesSameEvents(void **state)
{
    (void)state;
    size_t len = sizeof pipeline - 1;
    proto_text_parser *parser = proto_text_new(NULL);
    run_text(parser, (const uint8_t *)pipeline, len, 0, 0, &ev_whole);
    assert_int_equal(ev_whole.n, 12);
    assert_false(ev_whole.closed);
    assert_string_equal(ev_whole.text[11], "set nr=0 e=0 v=0 z val=z");
    proto_text_free(parser);

    parser = proto_text_new(NULL); /* one parser for all runs: state must not leak between them */
    for (size_t chunk = 1; chunk <= 3; chunk++) {
        run_text(parser, (const uint8_t *)pipeline, len, chunk, 0, &ev_split);
        assert_int_equal(ev_split.n, ev_whole.n);
        for (int i = 0; i < ev_whole.n; i++) assert_string_equal(ev_split.text[i], ev_whole.text[i]);
    }
    for (size_t split = 1; split < len; split++) {
        run_text(parser, (const uint8_t *)pipeline, len, SIZE_MAX, split, &ev_split);
        assert_int_equal(ev_split.n, ev_whole.n);
        for (int i = 0; i < ev_whole.n; i++) assert_string_equal(ev_split.text[i], ev_whole.text[i]);
    }
    proto_text_free(parser);
}

static void pipelinedCommandsComeOneByOne(void **state)
{
    (void)state;
    const char *stream = "get a\r\nget b\r\nget c\r\n";
    proto_text_parser *parser = proto_text_new(NULL);
    size_t used = 0, off = 0, len = strlen(stream);
    proto_text_cmd cmd;
    proto_text_error err;
    const char *keys[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(proto_text_parse(parser, (const uint8_t *)stream + off, len - off, &used, &cmd,
                                          &err),
                         PROTO_TEXT_COMMAND);
        assert_int_equal(used, 7);
        assert_int_equal(cmd.op, PROTO_TEXT_GET);
        assert_memory_equal(cmd.key.base, keys[i], 1);
        off += used;
    }
    assert_int_equal(off, len);
    proto_text_free(parser);
}

static void writesMapToKvCommands(void **state)
{
    (void)state;
    proto_text_parser *parser = proto_text_new(NULL);
    const char *stream = "set k 10 1\r\nv\r\n";
    size_t used;
    proto_text_cmd cmd;
    proto_text_error err;
    kv_pair pairs[4];
    kv_cmd kv;
    assert_int_equal(proto_text_parse(parser, (const uint8_t *)stream, strlen(stream), &used, &cmd, &err),
                     PROTO_TEXT_COMMAND);
    assert_int_equal(proto_text_to_kv(&cmd, 5000, pairs, 4, &kv), KV_OK);
    assert_int_equal(kv.op, KV_OP_SET);
    assert_int_equal(kv.deadline_ms, 15000);
    assert_int_equal(kv.now_ms, 5000);
    uint8_t bytes[256];
    assert_true(kv_cmd_encode(&kv, bytes, sizeof bytes) > 0);

    stream = "mset 2\r\na 0 1\r\nx\r\nb 3 1\r\ny\r\n";
    assert_int_equal(proto_text_parse(parser, (const uint8_t *)stream, strlen(stream), &used, &cmd, &err),
                     PROTO_TEXT_COMMAND);
    assert_int_equal(proto_text_to_kv(&cmd, 1000, pairs, 1, &kv), KV_EINVAL);
    assert_int_equal(proto_text_to_kv(&cmd, 1000, pairs, 4, &kv), KV_OK);
    assert_int_equal(kv.op, KV_OP_MSET);
    assert_int_equal(kv.n_pairs, 2);
    assert_int_equal(pairs[0].deadline_ms, 0);
    assert_int_equal(pairs[1].deadline_ms, 4000);
    assert_true(kv_cmd_encode(&kv, bytes, sizeof bytes) > 0);

    stream = "cas k 0 77 1\r\nv\r\ndelete k\r\nget k\r\n";
    size_t off = 0;
    assert_int_equal(proto_text_parse(parser, (const uint8_t *)stream, strlen(stream), &used, &cmd, &err),
                     PROTO_TEXT_COMMAND);
    off += used;
    assert_int_equal(proto_text_to_kv(&cmd, 1000, pairs, 4, &kv), KV_OK);
    assert_int_equal(kv.op, KV_OP_CAS);
    assert_int_equal(kv.expected_version, 77);
    assert_int_equal(kv.deadline_ms, 0);
    assert_int_equal(proto_text_parse(parser, (const uint8_t *)stream + off, strlen(stream) - off, &used,
                                      &cmd, &err),
                     PROTO_TEXT_COMMAND);
    off += used;
    assert_int_equal(proto_text_to_kv(&cmd, 1000, pairs, 4, &kv), KV_OK);
    assert_int_equal(kv.op, KV_OP_DELETE);
    assert_int_equal(kv.n_pairs, 1);
    assert_int_equal(proto_text_parse(parser, (const uint8_t *)stream + off, strlen(stream) - off, &used,
                                      &cmd, &err),
                     PROTO_TEXT_COMMAND);
    assert_int_equal(proto_text_to_kv(&cmd, 1000, pairs, 4, &kv), KV_EINVAL); /* a read */
    proto_text_free(parser);
}

static void repliesAreExact(void **state)
{
    (void)state;
    char buf[128];
    size_t n = proto_text_reply_ok(buf, sizeof buf, 42);
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "OK 42\r\n", n);
    n = proto_text_reply_value(buf, sizeof buf, (const uint8_t *)"a\r\nb", 4);
    assert_int_equal(n, 15);
    assert_memory_equal(buf, "VALUE 4\r\na\r\nb\r\n", n);
    n = proto_text_reply_valuem(buf, sizeof buf, 7, 30, (const uint8_t *)"xy", 2);
    assert_memory_equal(buf, "VALUE 7 30 2\r\nxy\r\n", n);
    n = proto_text_reply_redirect(buf, sizeof buf, "10.0.0.2", 9001);
    assert_memory_equal(buf, "ERR_REDIRECT 10.0.0.2 9001\r\n", n);
    /* too small: the length is reported and nothing written */
    memset(buf, '#', sizeof buf);
    assert_int_equal(proto_text_reply_value(buf, 10, (const uint8_t *)"abcdef", 6), 17);
    assert_int_equal(buf[0], '#');
    assert_int_equal(proto_text_reply_ok(buf, 3, 1), 6); /* "OK 1\r\n" */
    assert_int_equal(buf[0], '#');

    kv_result result = {.status = KV_ST_OK, .version = 9};
    n = proto_text_reply_result(buf, sizeof buf, PROTO_TEXT_SET, &result);
    assert_memory_equal(buf, "OK 9\r\n", n);
    n = proto_text_reply_result(buf, sizeof buf, PROTO_TEXT_MSET, &result);
    assert_memory_equal(buf, "OK 9\r\n", n);
    result.status = KV_ST_VERSION;
    n = proto_text_reply_result(buf, sizeof buf, PROTO_TEXT_CAS, &result);
    assert_memory_equal(buf, "ERR_VERSION\r\n", n);
    result.status = KV_ST_NOT_FOUND;
    n = proto_text_reply_result(buf, sizeof buf, PROTO_TEXT_CAS, &result);
    assert_memory_equal(buf, "ERR_NOT_FOUND\r\n", n);
    result.status = KV_ST_DELETED;
    n = proto_text_reply_result(buf, sizeof buf, PROTO_TEXT_DELETE, &result);
    assert_memory_equal(buf, "DELETED\r\n", n);
    result.status = KV_ST_BAD_CMD;
    n = proto_text_reply_result(buf, sizeof buf, PROTO_TEXT_SET, &result);
    assert_memory_equal(buf, "ERR_INTERNAL\r\n", n);

    assert_int_equal(proto_text_exptime_left(0, 5000), 0);
    assert_int_equal(proto_text_exptime_left(6000, 5000), 1);
    assert_int_equal(proto_text_exptime_left(6001, 5000), 2);
    assert_int_equal(proto_text_exptime_left(65000, 5000), 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(everyCommandParses),
        cmocka_unit_test(binaryValuesKeepCrLfAndNul),
        cmocka_unit_test(errorsThatKeepTheConnection),
        cmocka_unit_test(msetLineAfterValuesIsBounded),
        cmocka_unit_test(errorsThatCloseTheConnection),
        cmocka_unit_test(oversizeNumbytesClosesWithoutBuffering),
        cmocka_unit_test(longLineCloses),
        cmocka_unit_test(splitAtEveryByteGivesSameEvents),
        cmocka_unit_test(pipelinedCommandsComeOneByOne),
        cmocka_unit_test(writesMapToKvCommands),
        cmocka_unit_test(repliesAreExact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
