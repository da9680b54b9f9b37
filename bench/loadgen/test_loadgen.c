/*
 * test_loadgen.c -- unit tests of raftkv-bench's histogram (lg_hist) and protocol codecs (lg_proto).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lg_hist.h"
#include "lg_proto.h"

/* ---- histogram -------------------------------------------------------------------------------- */

static void hist_small_values_are_exact(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < LG_HIST_SUB; v++) {
        size_t b = lg_hist_bucket(v);
        assert_int_equal(b, v);
        assert_int_equal(lg_hist_low(b), v);
        assert_int_equal(lg_hist_high(b), v);
    }
}

static void hist_buckets_tile_the_range(void **state)
{
    (void)state;
    /* Adjacent buckets touch, with no gap or overlap, up to UINT64_MAX. */
    for (size_t b = 0; b + 1 < LG_HIST_BUCKETS; b++) {
        assert_true(lg_hist_low(b) <= lg_hist_high(b));
        assert_int_equal(lg_hist_high(b) + 1, lg_hist_low(b + 1));
    }
    assert_int_equal(lg_hist_high(LG_HIST_BUCKETS - 1), UINT64_MAX);
    assert_int_equal(lg_hist_bucket(UINT64_MAX), LG_HIST_BUCKETS - 1);
}

static void hist_bucket_holds_value_within_relative_error(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t v = x >> (x % 64); /* all magnitudes */
        size_t b = lg_hist_bucket(v);
        uint64_t low = lg_hist_low(b), high = lg_hist_high(b);
        assert_true(low <= v && v <= high);
        /* width <= low / 64: at most 1/64 = 1.6% relative error */
        assert_true(high - low <= (low >> LG_HIST_SUB_BITS));
    }
}

static void hist_percentiles_of_uniform_samples(void **state)
{
    (void)state;
    lg_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    lg_hist_init(h);
    assert_int_equal(lg_hist_percentile(h, 50), 0);
    for (uint64_t v = 1; v <= 100000; v++) lg_hist_record(h, v * 1000);
    assert_int_equal(h->count, 100000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 100000000);
    struct { double p; double expect; } cases[] = {
        {50, 50000000}, {90, 90000000}, {99, 99000000}, {99.9, 99900000}, {1, 1000000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = (double)lg_hist_percentile(h, cases[i].p);
        assert_true(got >= cases[i].expect);               /* an upper estimate */
        assert_true(got <= cases[i].expect * (1 + 1.0 / 64)); /* within one bucket */
    }
    assert_int_equal(lg_hist_percentile(h, 100), 100000000); /* exactly the max */
    assert_true(lg_hist_mean(h) > 50000000 - 1 && lg_hist_mean(h) < 50001000);
    free(h);
}

static void hist_percentile_never_exceeds_max(void **state)
{
    (void)state;
    lg_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    lg_hist_init(h);
    lg_hist_record(h, 1000003);
    assert_int_equal(lg_hist_percentile(h, 50), 1000003);
    assert_int_equal(lg_hist_percentile(h, 99.9), 1000003);
    free(h);
}

static void hist_merge_equals_recording_everything(void **state)
{
    (void)state;
    lg_hist *a = malloc(sizeof *a), *b = malloc(sizeof *b), *all = malloc(sizeof *all);
    assert_true(a && b && all);
    lg_hist_init(a), lg_hist_init(b), lg_hist_init(all);
    for (uint64_t v = 1; v < 5000; v++) {
        lg_hist_record(v % 3 ? a : b, v * v);
        lg_hist_record(all, v * v);
    }
    lg_hist_merge(a, b);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    assert_memory_equal(a->counts, all->counts, sizeof a->counts);
    assert_int_equal(lg_hist_percentile(a, 99), lg_hist_percentile(all, 99));
    free(a), free(b), free(all);
}

/* ---- encoders --------------------------------------------------------------------------------- */

static void base64_rfc4648_vectors(void **state)
{
    (void)state;
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char buf[16];
        size_t n = lg_base64_encode(in[i], strlen(in[i]), buf);
        assert_int_equal(n, strlen(out[i]));
        assert_int_equal(n, lg_base64_len(strlen(in[i])));
        assert_memory_equal(buf, out[i], n);
    }
}

static void expect_bytes(lg_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
    b->len = 0;
}

static void encode_text_and_resp(void **state)
{
    (void)state;
    lg_buf b = {0};
    assert_int_equal(lg_proto_encode_set(&b, LG_PROTO_TEXT, "", "k1", 2, "a\r\nb", 4), 0);
    expect_bytes(&b, "set k1 0 4\r\na\r\nb\r\n");
    assert_int_equal(lg_proto_encode_get(&b, LG_PROTO_TEXT, "", "k1", 2), 0);
    expect_bytes(&b, "get k1\r\n");
    assert_int_equal(lg_proto_encode_set(&b, LG_PROTO_RESP, "", "k1", 2, "abc", 3), 0);
    expect_bytes(&b, "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$3\r\nabc\r\n");
    assert_int_equal(lg_proto_encode_get(&b, LG_PROTO_RESP, "", "k1", 2), 0);
    expect_bytes(&b, "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n");
    /* Requests append: two in a row are one pipelined stream. */
    lg_proto_encode_get(&b, LG_PROTO_TEXT, "", "a", 1);
    lg_proto_encode_get(&b, LG_PROTO_TEXT, "", "b", 1);
    expect_bytes(&b, "get a\r\nget b\r\n");
    lg_buf_free(&b);
}

static void encode_etcd_gateway_requests(void **state)
{
    (void)state;
    lg_buf b = {0};
    assert_int_equal(lg_proto_encode_set(&b, LG_PROTO_ETCD, "127.0.0.1:2379", "k1", 2, "abc", 3), 0);
    expect_bytes(&b, "POST /v3/kv/put HTTP/1.1\r\nHost: 127.0.0.1:2379\r\n"
                     "Content-Type: application/json\r\nContent-Length: 29\r\n\r\n"
                     "{\"key\":\"azE=\",\"value\":\"YWJj\"}");
    assert_int_equal(lg_proto_encode_get(&b, LG_PROTO_ETCD, "127.0.0.1:2379", "k1", 2), 0);
    expect_bytes(&b, "POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1:2379\r\n"
                     "Content-Type: application/json\r\nContent-Length: 14\r\n\r\n"
                     "{\"key\":\"azE=\"}");
    lg_buf_free(&b);
}

/* ---- decoders --------------------------------------------------------------------------------- */

/* Decodes a complete reply; every shorter prefix must ask for more bytes. */
static lg_reply decode_whole(lg_proto_kind kind, bool is_get, const char *text)
{
    size_t len = strlen(text);
    lg_reply r;
    for (size_t cut = 0; cut < len; cut++) {
        lg_proto_decode(kind, is_get, text, cut, &r);
        assert_int_equal(r.status, LG_REPLY_NEED_MORE);
    }
    lg_proto_decode(kind, is_get, text, len, &r);
    assert_int_equal(r.consumed, len);
    return r;
}

static void decode_text_replies(void **state)
{
    (void)state;
    assert_int_equal(decode_whole(LG_PROTO_TEXT, false, "OK 17\r\n").status, LG_REPLY_OK);
    lg_reply r = decode_whole(LG_PROTO_TEXT, true, "VALUE 4\r\na\r\nb\r\n");
    assert_int_equal(r.status, LG_REPLY_OK);
    assert_int_equal(r.value_len, 4);
    r = decode_whole(LG_PROTO_TEXT, true, "VALUE 9 0 3\r\nabc\r\n"); /* getm */
    assert_int_equal(r.status, LG_REPLY_OK);
    assert_int_equal(r.value_len, 3);
    assert_int_equal(decode_whole(LG_PROTO_TEXT, true, "ERR_NOT_FOUND\r\n").status,
                     LG_REPLY_NOT_FOUND);
    r = decode_whole(LG_PROTO_TEXT, false, "ERR_REDIRECT 127.0.0.2 7002\r\n");
    assert_int_equal(r.status, LG_REPLY_REDIRECT);
    assert_string_equal(r.redirect_host, "127.0.0.2");
    assert_int_equal(r.redirect_port, 7002);
    r = decode_whole(LG_PROTO_TEXT, false, "ERR_INTERNAL\r\n");
    assert_int_equal(r.status, LG_REPLY_ERROR);
    assert_string_equal(r.kind, "ERR_INTERNAL");

    /* Pipelined replies come out one at a time. */
    const char *two = "OK 1\r\nVALUE 1\r\nx\r\n";
    lg_proto_decode(LG_PROTO_TEXT, false, two, strlen(two), &r);
    assert_int_equal(r.status, LG_REPLY_OK);
    assert_int_equal(r.consumed, 6);
    lg_proto_decode(LG_PROTO_TEXT, true, two + 6, strlen(two) - 6, &r);
    assert_int_equal(r.status, LG_REPLY_OK);
    assert_int_equal(r.consumed, strlen(two) - 6);

    /* Garbage is reported, not waited for. */
    lg_proto_decode(LG_PROTO_TEXT, true, "VALUE 3\r\nabcXY", 14, &r);
    assert_int_equal(r.status, LG_REPLY_BAD);
    lg_proto_decode(LG_PROTO_TEXT, false, "HELLO\r\n", 7, &r);
    assert_int_equal(r.status, LG_REPLY_BAD);
    lg_proto_decode(LG_PROTO_TEXT, false, "ERR_REDIRECT nowhere\r\n", 22, &r);
    assert_int_equal(r.status, LG_REPLY_BAD);
}

static void decode_resp_replies(void **state)
{
    (void)state;
    assert_int_equal(decode_whole(LG_PROTO_RESP, false, "+OK\r\n").status, LG_REPLY_OK);
    assert_int_equal(decode_whole(LG_PROTO_RESP, false, ":1\r\n").status, LG_REPLY_OK);
    assert_int_equal(decode_whole(LG_PROTO_RESP, true, "$-1\r\n").status, LG_REPLY_NOT_FOUND);
    lg_reply r = decode_whole(LG_PROTO_RESP, true, "$5\r\na\r\nbc\r\n");
    assert_int_equal(r.status, LG_REPLY_OK);
    assert_int_equal(r.value_len, 5);
    r = decode_whole(LG_PROTO_RESP, false, "-ERR not the leader\r\n");
    assert_int_equal(r.status, LG_REPLY_ERROR);
    assert_string_equal(r.kind, "-ERR not the");
    lg_proto_decode(LG_PROTO_RESP, true, "$3\r\nabcde", 9, &r);
    assert_int_equal(r.status, LG_REPLY_BAD);
    lg_proto_decode(LG_PROTO_RESP, true, "?\r\n", 3, &r);
    assert_int_equal(r.status, LG_REPLY_BAD);
}

static void decode_etcd_replies(void **state)
{
    (void)state;
    const char *put = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: 18\r\n\r\n{\"header\":{\"r\":1}}";
    assert_int_equal(decode_whole(LG_PROTO_ETCD, false, put).status, LG_REPLY_OK);
    const char *found = "HTTP/1.1 200 OK\r\ncontent-length: 30\r\n\r\n{\"kvs\":[{\"key\":\"azE=\"}],\"c\":1}";
    assert_int_equal(decode_whole(LG_PROTO_ETCD, true, found).status, LG_REPLY_OK);
    const char *missing = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"header\":1}";
    assert_int_equal(decode_whole(LG_PROTO_ETCD, true, missing).status, LG_REPLY_NOT_FOUND);
    const char *unavailable = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 15\r\n\r\n"
                              "{\"error\":\"lc\"}\n";
    lg_reply r = decode_whole(LG_PROTO_ETCD, false, unavailable);
    assert_int_equal(r.status, LG_REPLY_ERROR);
    assert_string_equal(r.kind, "http-503");
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "7\r\n{\"kvs\":\r\n2\r\n1}\r\n0\r\n\r\n";
    assert_int_equal(decode_whole(LG_PROTO_ETCD, true, chunked).status, LG_REPLY_OK);

    /* Two keep-alive replies back to back. */
    char both[512];
    snprintf(both, sizeof both, "%s%s", put, missing);
    lg_proto_decode(LG_PROTO_ETCD, false, both, strlen(both), &r);
    assert_int_equal(r.status, LG_REPLY_OK);
    assert_int_equal(r.consumed, strlen(put));

    const char *no_length = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc";
    lg_proto_decode(LG_PROTO_ETCD, false, no_length, strlen(no_length), &r);
    assert_int_equal(r.status, LG_REPLY_BAD);
    lg_proto_decode(LG_PROTO_ETCD, false, "SMTP ready\r\n\r\n", 14, &r);
    assert_int_equal(r.status, LG_REPLY_BAD);
}

static void proto_names_round_trip(void **state)
{
    (void)state;
    lg_proto_kind k;
    const char *names[] = {"text", "resp", "etcd"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(lg_proto_from_name(names[i], &k), 0);
        assert_string_equal(lg_proto_name(k), names[i]);
    }
    assert_int_equal(lg_proto_from_name("http", &k), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hist_small_values_are_exact),
        cmocka_unit_test(hist_buckets_tile_the_range),
        cmocka_unit_test(hist_bucket_holds_value_within_relative_error),
        cmocka_unit_test(hist_percentiles_of_uniform_samples),
        cmocka_unit_test(hist_percentile_never_exceeds_max),
        cmocka_unit_test(hist_merge_equals_recording_everything),
        cmocka_unit_test(base64_rfc4648_vectors),
        cmocka_unit_test(encode_text_and_resp),
        cmocka_unit_test(encode_etcd_gateway_requests),
        cmocka_unit_test(decode_text_replies),
        cmocka_unit_test(decode_resp_replies),
        cmocka_unit_test(decode_etcd_replies),
        cmocka_unit_test(proto_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
