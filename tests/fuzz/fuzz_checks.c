/*
 * fuzz_checks.c -- the contract checks shared by the libFuzzer targets and the ctest random test.
 *
 * The parsers are checked for: never consuming more than given; NEED_MORE consuming everything;
 * every returned command respecting the limits (valid keys, value sizes, key counts); every write
 * mapping to a kv command that encodes and decodes; error replies being complete lines; and the
 * SAME events whether the input arrives whole or in small chunks. Small limits are used so that
 * random inputs reach the limit paths.
 */
#include "fuzz_checks.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_cmd.h"
#include "kv_store.h"
#include "members.h"
#include "proto_resp.h"
#include "proto_text.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_VALUE 256

static uint64_t mix(uint64_t hash, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    for (size_t i = 0; i < len; i++) {
        hash ^= bytes[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

static uint64_t mix_u64(uint64_t hash, uint64_t value) { return mix(hash, &value, sizeof value); }

static uint64_t mix_slice(uint64_t hash, kv_slice s)
{
    hash = mix_u64(hash, s.len);
    return s.len ? mix(hash, s.base, s.len) : hash;
}

/* Encode cmd, decode it back, and check the decode agrees on the op. */
static void check_kv_roundtrip(const kv_cmd *cmd)
{
    size_t size = kv_cmd_encoded_size(cmd);
    CHECK(size > 0);
    uint8_t *bytes = malloc(size);
    CHECK(bytes != NULL);
    CHECK(kv_cmd_encode(cmd, bytes, size) == (long)size);
    kv_cmd back;
    CHECK(kv_cmd_decode(bytes, size, &back) == KV_OK);
    CHECK(back.op == cmd->op);
    CHECK(back.n_pairs == cmd->n_pairs);
    free(bytes);
}

static size_t chunk_size(const uint8_t *data, size_t len)
{
    return len ? (size_t)(data[0] % 13) + 1 : 1;
}

/* ---- text protocol --------------------------------------------------------------------------- */

static const proto_text_limits text_limits = {.max_line = 128, .max_value = MAX_VALUE, .max_keys = 8};

static uint64_t check_text_cmd(const proto_text_cmd *cmd, uint64_t hash)
{
    static kv_pair pairs[KV_MAX_MULTI];
    hash = mix_u64(hash, (uint64_t)cmd->op * 2 + cmd->noreply);
    hash = mix_u64(hash, cmd->exptime);
    hash = mix_u64(hash, cmd->version);
    hash = mix_slice(hash, cmd->key);
    hash = mix_slice(hash, cmd->value);
    CHECK(cmd->value.len <= MAX_VALUE);
    if (cmd->op == PROTO_TEXT_MSET || cmd->op == PROTO_TEXT_MGET) {
        CHECK(cmd->n_items >= 1 && cmd->n_items <= text_limits.max_keys);
        for (uint32_t i = 0; i < cmd->n_items; i++) {
            CHECK(kv_key_valid(cmd->items[i].key.base, cmd->items[i].key.len));
            CHECK(cmd->items[i].value.len <= MAX_VALUE);
            hash = mix_slice(hash, cmd->items[i].key);
            hash = mix_slice(hash, cmd->items[i].value);
            hash = mix_u64(hash, cmd->items[i].exptime);
        }
    } else {
        CHECK(kv_key_valid(cmd->key.base, cmd->key.len));
    }
    kv_cmd kv;
    int rc = proto_text_to_kv(cmd, 1000000, pairs, KV_MAX_MULTI, &kv);
    bool write = cmd->op == PROTO_TEXT_SET || cmd->op == PROTO_TEXT_CAS ||
                 cmd->op == PROTO_TEXT_DELETE || cmd->op == PROTO_TEXT_MSET;
    CHECK((rc == KV_OK) == write);
    if (write) check_kv_roundtrip(&kv);
    return hash;
}

static uint64_t run_text(const uint8_t *data, size_t len, size_t chunk)
{
    proto_text_parser *parser = proto_text_new(&text_limits);
    CHECK(parser != NULL);
    uint64_t hash = 0xcbf29ce484222325ull;
    size_t off = 0;
    bool closed = false;
    while (off < len && !closed) {
        size_t piece = len - off < chunk ? len - off : chunk;
        const uint8_t *at = data + off;
        size_t left = piece;
        while (left > 0) {
            size_t used = 99999999;
            proto_text_cmd cmd;
            proto_text_error err;
            proto_text_status status = proto_text_parse(parser, at, left, &used, &cmd, &err);
            CHECK(used <= left);
            at += used;
            left -= used;
            if (status == PROTO_TEXT_NEED_MORE) {
                CHECK(left == 0);
                break;
            }
            CHECK(used > 0);
            if (status == PROTO_TEXT_COMMAND) {
                hash = check_text_cmd(&cmd, hash);
            } else {
                CHECK(status == PROTO_TEXT_ERROR);
                CHECK(err.reply_len >= 2 && memcmp(err.reply + err.reply_len - 2, "\r\n", 2) == 0);
                CHECK(err.reason != NULL);
                hash = mix_u64(hash, 7 + err.close);
                hash = mix(hash, err.reply, err.reply_len);
                if (err.close) {
                    closed = true;
                    break;
                }
            }
        }
        off += piece;
    }
    proto_text_free(parser);
    return hash;
}

void fuzz_text(const uint8_t *data, size_t len)
{
    uint64_t whole = run_text(data, len, len ? len : 1);
    CHECK(run_text(data, len, chunk_size(data, len)) == whole);
}

/* ---- RESP ------------------------------------------------------------------------------------ */

static const proto_resp_limits resp_limits = {
    .max_args = 9, .max_bulk = MAX_VALUE, .max_inline = 128, .max_request = 600};

static uint64_t check_resp_cmd(const proto_resp_cmd *cmd, uint64_t hash)
{
    static kv_pair pairs[KV_MAX_MULTI];
    static proto_resp_request request;
    CHECK(cmd->argc >= 1 && cmd->argc <= resp_limits.max_args);
    size_t total = 0;
    for (uint32_t i = 0; i < cmd->argc; i++) {
        CHECK(cmd->argv[i].len <= MAX_VALUE);
        total += cmd->argv[i].len;
        hash = mix_slice(hash, cmd->argv[i]);
    }
    CHECK(total <= 600 + 128);
    proto_resp_map(cmd, 1000000, MAX_VALUE, pairs, &request);
    hash = mix_u64(hash, (uint64_t)request.kind * 100 + request.name);
    switch (request.kind) {
    case PROTO_RESP_KIND_REPLY:
        CHECK(request.reply_len >= 3 && request.reply_len < sizeof request.reply);
        CHECK(request.reply[0] == '-' || request.reply[0] == ':');
        CHECK(memcmp(request.reply + request.reply_len - 2, "\r\n", 2) == 0);
        /* exactly one line: sanitized, no CR/LF inside */
        CHECK(memchr(request.reply, '\n', request.reply_len - 1) == NULL);
        CHECK(memchr(request.reply, '\r', request.reply_len - 2) == NULL);
        break;
    case PROTO_RESP_KIND_WRITE: {
        check_kv_roundtrip(&request.cmd);
        char reply[128];
        kv_result result = {.status = KV_ST_OK};
        CHECK(proto_resp_reply_write(reply, sizeof reply, request.name, &result) > 0);
        break;
    }
    case PROTO_RESP_KIND_READ:
    case PROTO_RESP_KIND_LOCAL:
        CHECK(request.n_keys == cmd->argc - 1);
        break;
    default:
        CHECK(!"unknown request kind");
    }
    return hash;
}

static uint64_t run_resp(const uint8_t *data, size_t len, size_t chunk)
{
    proto_resp_parser *parser = proto_resp_new(&resp_limits);
    CHECK(parser != NULL);
    uint64_t hash = 0xcbf29ce484222325ull;
    size_t off = 0;
    bool closed = false;
    while (off < len && !closed) {
        size_t piece = len - off < chunk ? len - off : chunk;
        const uint8_t *at = data + off;
        size_t left = piece;
        while (left > 0) {
            size_t used = 99999999;
            proto_resp_cmd cmd;
            proto_resp_error err;
            proto_resp_status status = proto_resp_parse(parser, at, left, &used, &cmd, &err);
            CHECK(used <= left);
            at += used;
            left -= used;
            if (status == PROTO_RESP_NEED_MORE) {
                CHECK(left == 0);
                break;
            }
            CHECK(used > 0);
            if (status == PROTO_RESP_COMMAND) {
                hash = check_resp_cmd(&cmd, hash);
            } else {
                CHECK(status == PROTO_RESP_ERROR && err.close);
                CHECK(err.reply_len > 20 && memcmp(err.reply, "-ERR Protocol error: ", 21) == 0);
                hash = mix(hash, err.reply, err.reply_len);
                closed = true;
                break;
            }
        }
        off += piece;
    }
    proto_resp_free(parser);
    return hash;
}

void fuzz_resp(const uint8_t *data, size_t len)
{
    uint64_t whole = run_resp(data, len, len ? len : 1);
    CHECK(run_resp(data, len, chunk_size(data, len)) == whole);
}

/* ---- kv commands and snapshots --------------------------------------------------------------- */

void fuzz_kv_cmd(const uint8_t *data, size_t len)
{
    static kv_pair pairs[KV_MAX_MULTI];
    kv_cmd cmd;
    int rc = kv_cmd_decode(data, len, &cmd);
    kv_store *store = kv_store_new(NULL);
    CHECK(store != NULL);
    kv_result result;
    CHECK(kv_apply(store, 1, data, len, &result) == KV_OK);
    CHECK((rc == KV_OK) == (result.status != KV_ST_BAD_CMD));
    if (rc == KV_OK) {
        /* accepted bytes are canonical: re-encoding gives them back exactly */
        kv_cmd again = cmd;
        if (cmd.op == KV_OP_DELETE || cmd.op == KV_OP_MSET) {
            size_t cursor = 0;
            uint32_t n = 0;
            while (kv_cmd_next_pair(&cmd, &cursor, &pairs[n])) {
                n++;
                CHECK(n <= KV_MAX_MULTI);
            }
            CHECK(n == cmd.n_pairs);
            again.pairs = pairs;
        }
        uint8_t *bytes = malloc(len);
        CHECK(bytes != NULL);
        CHECK(kv_cmd_encode(&again, bytes, len) == (long)len);
        CHECK(memcmp(bytes, data, len) == 0);
        free(bytes);
        /* and a snapshot of the result restores to the same size */
        kv_snapshot *snap = NULL;
        CHECK(kv_snapshot_begin(store, &snap) == KV_OK);
        kv_restore *restore = kv_restore_begin(NULL);
        CHECK(restore != NULL);
        uint8_t chunk[97];
        size_t n;
        while ((n = kv_snapshot_next(snap, chunk, sizeof chunk)) > 0)
            CHECK(kv_restore_feed(restore, chunk, n) == KV_OK);
        kv_snapshot_end(snap);
        kv_store *copy = kv_store_new(NULL);
        CHECK(kv_restore_finish(restore, copy) == KV_OK);
        kv_restore_free(restore);
        kv_stats a, b;
        kv_get_stats(store, &a);
        kv_get_stats(copy, &b);
        CHECK(a.keys == b.keys && a.applied_index == b.applied_index);
        kv_store_free(copy);
    }
    kv_store_free(store);
}

void fuzz_restore(const uint8_t *data, size_t len)
{
    kv_restore *restore = kv_restore_begin(NULL);
    CHECK(restore != NULL);
    size_t chunk = chunk_size(data, len), off = 0;
    int rc = KV_OK;
    while (off < len && rc == KV_OK) {
        size_t piece = len - off < chunk ? len - off : chunk;
        rc = kv_restore_feed(restore, data + off, piece);
        CHECK(rc == KV_OK || rc == KV_ECORRUPT || rc == KV_ENOMEM);
        off += piece;
    }
    kv_store *store = kv_store_new(NULL);
    if (rc == KV_OK) rc = kv_restore_finish(restore, store);
    CHECK(rc == KV_OK || rc == KV_ECORRUPT || rc == KV_ENOMEM);
    CHECK(rc == KV_OK || strlen(kv_restore_error(restore)) > 0);
    kv_restore_free(restore);
    kv_store_free(store);
}

void fuzz_members(const uint8_t *data, size_t len)
{
    /* As a snapshot's head: found, absent or corrupt, and what is found re-frames identically. */
    node_peer book[RAFT_MAX_NODES];
    uint32_t n = 0;
    size_t used = 0;
    char err[160];
    int rc = members_snap_parse(data, len, book, &n, &used, err, sizeof err);
    CHECK(rc == MEMBERS_SNAP_FOUND || rc == MEMBERS_SNAP_ABSENT || rc == MEMBERS_SNAP_CORRUPT);
    static uint8_t again[MEMBERS_SNAP_OVERHEAD + MEMBERS_MAX_BYTES];
    if (rc == MEMBERS_SNAP_FOUND) {
        CHECK(used <= len && n >= 1 && n <= RAFT_MAX_NODES);
        size_t framed = members_snap_encode(book, n, again, sizeof again);
        if (data[8] == MEMBERS_VERSION) { /* version 1 is read, and written again as 2 */
            CHECK(framed == used);
            CHECK(memcmp(again, data, used) == 0);
        } else {
            CHECK(framed == used + n);
        }
    } else {
        CHECK(used == 0);
    }
    /* As a configuration entry's context: an accepted book is canonical, and merges. */
    if (members_decode(data, len, book, &n, err, sizeof err) == 0) {
        CHECK(n >= 1 && n <= RAFT_MAX_NODES);
        size_t encoded = members_encode(book, n, again, sizeof again);
        if (data[0] == MEMBERS_VERSION) { /* canonical */
            CHECK(encoded == len);
            CHECK(memcmp(again, data, len) == 0);
        } else { /* version 1: one flags byte more per node, the same book */
            CHECK(encoded == len + n);
            node_peer back[RAFT_MAX_NODES];
            uint32_t nb = 0;
            CHECK(members_decode(again, encoded, back, &nb, err, sizeof err) == 0 && nb == n);
            for (uint32_t i = 0; i < n; i++)
                CHECK(back[i].id == book[i].id && strcmp(back[i].host, book[i].host) == 0 &&
                      back[i].peer_port == book[i].peer_port && !back[i].given);
        }
        node_peer into[RAFT_MAX_NODES];
        uint32_t have = 0;
        CHECK(members_merge(into, &have, book, n, NULL) == (int)n && have == n);
        for (uint32_t i = 1; i < have; i++)
            CHECK(into[i - 1].id < into[i].id);
    } else {
        CHECK(n == 0);
    }
}
