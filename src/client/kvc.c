/*
 * kvc.c -- redirect following, failover between nodes and bounded retries (see kvc.h).
 */
#include "kvc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KVC_MAX_PAUSE_MS 1000
#define KVC_PROBE_MS 1000 /* a live node answers the probe at once: no consensus behind it */

void kvc_opts_default(kvc_opts *opts)
{
    opts->timeout_ms = 3000;
    opts->max_redirects = 5;
    opts->read_retries = 3;
    opts->rounds = 6; /* pauses 0.1+0.2+0.4+0.8+1 s: outlasts an election after a leader dies */
    opts->retry_pause_ms = 100;
    opts->verbose = false;
}

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

typedef struct target {
    char host[EP_HOST_MAX];
    uint16_t port;
} target;

static void mark_tried(const ep_list *nodes, bool *tried, const target *t)
{
    for (size_t i = 0; i < nodes->count; i++)
        if (nodes->nodes[i].client_port == t->port && strcmp(nodes->nodes[i].host, t->host) == 0)
            tried[i] = true;
}

/* One request on one node. Returns KVC_OK with a reply, or an error with err set; *sent tells
 * whether the whole request reached the node. */
static int ask(const target *t, const kvc_opts *opts, const txt_req *req, const uint8_t *wire,
               size_t wire_len, txt_reply *out, bool *sent, char *err, size_t errcap)
{
    *sent = false;
    conn *c = NULL;
    if (conn_open(t->host, t->port, opts->timeout_ms, &c, err, errcap) != CONN_OK)
        return KVC_EUNAVAILABLE;
    /* A stopped process still completes TCP handshakes (its kernel does): sent a write, such a
     * node would leave its outcome unknown. So every node must first answer an empty line, which
     * any live node answers at once with ERR_CMD_ERR, before it is sent the request. */
    const char *line;
    size_t line_len;
    conn_set_timeout(c, opts->timeout_ms < KVC_PROBE_MS ? opts->timeout_ms : KVC_PROBE_MS);
    if (conn_write_all(c, "\r\n", 2) != CONN_OK || conn_read_line(c, &line, &line_len) != CONN_OK) {
        snprintf(err, errcap, "%s (probe before the request)", conn_errmsg(c));
        conn_close(c);
        return KVC_EUNAVAILABLE;
    }
    if (line_len != strlen("ERR_CMD_ERR") || memcmp(line, "ERR_CMD_ERR", line_len) != 0) {
        snprintf(err, errcap, "%s: answered the probe (an empty line) with \"%.*s\", not ERR_CMD_ERR",
                 conn_addr(c), (int)(line_len < 60 ? line_len : 60), line);
        conn_close(c);
        return KVC_EUNAVAILABLE;
    }
    conn_set_timeout(c, opts->timeout_ms);
    int wrc = conn_write_all(c, wire, wire_len);
    if (wrc == CONN_EANSWERED) { /* refused before it was all sent: its reply says why */
        int rc = txt_read_reply(c, req, out, err, errcap);
        conn_close(c);
        if (rc == TXT_OK) return KVC_OK;
        txt_reply_free(out);
        return rc == TXT_ENOMEM ? KVC_ENOMEM : KVC_EUNAVAILABLE;
    }
    if (wrc != CONN_OK) {
        snprintf(err, errcap, "%s", conn_errmsg(c));
        conn_close(c);
        return KVC_EUNAVAILABLE;
    }
    *sent = true;
    int rc = txt_read_reply(c, req, out, err, errcap);
    conn_close(c);
    if (rc == TXT_OK) return KVC_OK;
    txt_reply_free(out);
    if (rc == TXT_ENOMEM) return KVC_ENOMEM;
    return rc == TXT_EPROTO ? KVC_EPROTO : KVC_EUNAVAILABLE;
}

static void trace(const kvc_opts *opts, const target *t, const char *what)
{
    if (opts->verbose) fprintf(stderr, "raftkv: %s:%u: %s\n", t->host, (unsigned)t->port, what);
}

int kvc_execute(const ep_list *nodes, const kvc_opts *opts, const txt_req *req, txt_reply *out,
                char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    int rc = txt_encode(req, &wire, &wire_len, err, errcap);
    if (rc != TXT_OK) return rc == TXT_ENOMEM ? KVC_ENOMEM : KVC_EINVAL;

    bool *tried = calloc(nodes->count, sizeof *tried);
    if (!tried) {
        free(wire);
        snprintf(err, errcap, "out of memory");
        return KVC_ENOMEM;
    }
    const bool is_read = txt_is_read(req->op);
    char last[1024] = "no node in the list";
    int pause = opts->retry_pause_ms;
    int result = KVC_EUNAVAILABLE;
    int redirects_total = 0;

    for (int round = 0; round < opts->rounds; round++) {
        if (round > 0) {
            pause_ms(pause);
            pause = pause * 2 > KVC_MAX_PAUSE_MS ? KVC_MAX_PAUSE_MS : pause * 2;
        }
        memset(tried, 0, nodes->count * sizeof *tried);
        int redirects = 0, internal_retries = 0;
        bool have_target = false;
        target t;
        for (;;) {
            if (!have_target) {
                size_t i = 0;
                while (i < nodes->count && tried[i]) i++;
                if (i == nodes->count) break; /* round over */
                tried[i] = true;
                snprintf(t.host, sizeof t.host, "%s", nodes->nodes[i].host);
                t.port = nodes->nodes[i].client_port;
                have_target = true;
                redirects = 0; /* the limit bounds one chain of redirects */
            }
            bool sent;
            rc = ask(&t, opts, req, wire, wire_len, out, &sent, err, errcap);
            if (rc == KVC_EPROTO || rc == KVC_ENOMEM) {
                result = rc;
                goto done;
            }
            if (rc != KVC_OK) {
                if (opts->verbose) fprintf(stderr, "raftkv: %s\n", err); /* err names the node */
                if (sent && !is_read) {
                    snprintf(last, sizeof last, "%s", err);
                    snprintf(err, errcap, "%s; the %s may or may not have been applied", last,
                             txt_op_name(req->op));
                    result = KVC_EUNKNOWN;
                    goto done;
                }
                snprintf(last, sizeof last, "%s", err);
                mark_tried(nodes, tried, &t);
                have_target = false;
                continue;
            }
            if (out->kind == TXT_R_REDIRECT) {
                char what[300];
                snprintf(what, sizeof what, "redirected to %s:%u", out->host, (unsigned)out->port);
                trace(opts, &t, what);
                mark_tried(nodes, tried, &t);
                if (++redirects > opts->max_redirects) {
                    snprintf(last, sizeof last, "more than %d redirects (last: %s:%u -> %s:%u)",
                             opts->max_redirects, t.host, (unsigned)t.port, out->host,
                             (unsigned)out->port);
                    txt_reply_free(out);
                    have_target = false;
                    continue; /* the list's untried nodes still get their turn */
                }
                redirects_total++;
                snprintf(t.host, sizeof t.host, "%s", out->host);
                t.port = out->port;
                txt_reply_free(out);
                continue;
            }
            if (out->kind == TXT_R_INTERNAL) {
                trace(opts, &t, "ERR_INTERNAL");
                txt_reply_free(out);
                if (!is_read) {
                    snprintf(err, errcap,
                             "%s:%u: ERR_INTERNAL (no leader in time or commit outcome unknown); "
                             "the %s may or may not have been applied",
                             t.host, (unsigned)t.port, txt_op_name(req->op));
                    result = KVC_EUNKNOWN;
                    goto done;
                }
                snprintf(last, sizeof last, "%s:%u: ERR_INTERNAL", t.host, (unsigned)t.port);
                if (internal_retries++ < opts->read_retries) {
                    pause_ms(opts->retry_pause_ms << (internal_retries - 1));
                    continue;
                }
                mark_tried(nodes, tried, &t);
                have_target = false;
                continue;
            }
            result = KVC_OK;
            goto done;
        }
    }
    snprintf(err, errcap, "cluster unavailable after %d round%s over %zu node%s (%d redirect%s); "
             "last error: %s",
             opts->rounds, opts->rounds == 1 ? "" : "s", nodes->count,
             nodes->count == 1 ? "" : "s", redirects_total, redirects_total == 1 ? "" : "s", last);
    result = KVC_EUNAVAILABLE;
done:
    free(tried);
    free(wire);
    return result;
}
