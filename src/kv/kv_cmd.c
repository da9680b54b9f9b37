/*
 * kv_cmd.c -- encode/decode of replicated key-value commands (format in kv_cmd.h).
 *
 * Decode never trusts a length: each read checks the remaining bytes first, and a command must
 * consume its buffer exactly, so two replicas can never disagree on where a command ends.
 */
#include "kv_cmd.h"

#include <assert.h>
#include <string.h>

#define KV_CMD_HEADER 11 /* version, op, flags, now_ms */

const char *kv_strerror(int rc)
{
    switch (rc) {
    case KV_OK: return "ok";
    case KV_EINVAL: return "invalid argument or malformed command";
    case KV_ENOSPC: return "buffer too small";
    case KV_ENOMEM: return "out of memory";
    case KV_ECORRUPT: return "corrupt snapshot";
    case KV_EBUSY: return "a snapshot is already in progress";
    default: return "unknown kv error";
    }
}

const char *kv_op_name(int op)
{
    switch (op) {
    case KV_OP_SET: return "SET";
    case KV_OP_CAS: return "CAS";
    case KV_OP_DELETE: return "DELETE";
    case KV_OP_MSET: return "MSET";
    case KV_OP_INCR: return "INCR";
    case KV_OP_EXPIRE: return "EXPIRE";
    case KV_OP_TICK: return "TICK";
    case KV_OP_REGISTER: return "REGISTER";
    case KV_OP_UNREGISTER: return "UNREGISTER";
    default: return "UNKNOWN";
    }
}

bool kv_key_valid(const uint8_t *key, size_t len)
{
    if (len == 0 || len > KV_MAX_KEY || key == NULL) return false;
    for (size_t i = 0; i < len; i++) {
        if (key[i] <= 0x20 || key[i] == 0x7f) return false;
    }
    return true;
}

uint64_t kv_deadline_from_ms(uint64_t now_ms, int64_t ms)
{
    if (ms == 0) return 0;
    if (ms < 0) return now_ms > 0 ? now_ms : 1; /* already expired, but never "0 = no expiry" */
    uint64_t add = (uint64_t)ms;
    if (now_ms > UINT64_MAX - add) return UINT64_MAX;
    return now_ms + add;
}

uint64_t kv_deadline_from_seconds(uint64_t now_ms, int64_t seconds)
{
    if (seconds > INT64_MAX / 1000) return UINT64_MAX;
    if (seconds < INT64_MIN / 1000) seconds = -1;
    return kv_deadline_from_ms(now_ms, seconds * 1000);
}

/* ---- encode ---------------------------------------------------------------------------------- */

static bool value_ok(kv_slice value)
{
    return value.len <= KV_MAX_VALUE_HARD && (value.len == 0 || value.base != NULL);
}

size_t kv_cmd_encoded_size(const kv_cmd *cmd)
{
    size_t size = KV_CMD_HEADER;
    switch (cmd->op) {
    case KV_OP_SET:
    case KV_OP_CAS:
        if (cmd->flags & ~(KV_SET_NX | KV_SET_XX)) return 0;
        if (cmd->op == KV_OP_CAS && cmd->flags) return 0;
        if ((cmd->flags & KV_SET_NX) && (cmd->flags & KV_SET_XX)) return 0;
        if (!kv_key_valid(cmd->key.base, cmd->key.len) || !value_ok(cmd->value)) return 0;
        return size + (cmd->op == KV_OP_CAS ? 16 : 8) + 2 + cmd->key.len + 4 + cmd->value.len;
    case KV_OP_DELETE:
    case KV_OP_MSET:
        if (cmd->flags || cmd->n_pairs == 0 || cmd->n_pairs > KV_MAX_MULTI || cmd->pairs == NULL)
            return 0;
        size += 4;
        for (uint32_t i = 0; i < cmd->n_pairs; i++) {
            const kv_pair *pair = &cmd->pairs[i];
            if (!kv_key_valid(pair->key.base, pair->key.len)) return 0;
            size += 2 + pair->key.len;
            if (cmd->op == KV_OP_MSET) {
                if (!value_ok(pair->value)) return 0;
                size += 8 + 4 + pair->value.len;
            }
        }
        /* the whole entry must stay addressable with u32 lengths downstream (raft_entry.len) */
        return size <= UINT32_MAX ? size : 0;
    case KV_OP_INCR:
    case KV_OP_EXPIRE:
        if (cmd->flags || !kv_key_valid(cmd->key.base, cmd->key.len)) return 0;
        return size + 8 + 2 + cmd->key.len;
    case KV_OP_TICK:
    case KV_OP_REGISTER:
        return cmd->flags ? 0 : size;
    case KV_OP_UNREGISTER:
        return cmd->flags || cmd->session == 0 ? 0 : size + 8;
    default:
        return 0;
    }
}

typedef struct writer {
    uint8_t *at;
} writer;

static void put_u8(writer *w, uint8_t v) { *w->at++ = v; }
static void put_u16(writer *w, uint16_t v)
{
    w->at[0] = (uint8_t)v;
    w->at[1] = (uint8_t)(v >> 8);
    w->at += 2;
}
static void put_u32(writer *w, uint32_t v)
{
    for (int i = 0; i < 4; i++) w->at[i] = (uint8_t)(v >> (8 * i));
    w->at += 4;
}
static void put_u64(writer *w, uint64_t v)
{
    for (int i = 0; i < 8; i++) w->at[i] = (uint8_t)(v >> (8 * i));
    w->at += 8;
}
static void put_bytes(writer *w, kv_slice s)
{
    if (s.len) memcpy(w->at, s.base, s.len);
    w->at += s.len;
}
static void put_str16(writer *w, kv_slice s)
{
    assert(s.len <= KV_MAX_KEY);
    put_u16(w, (uint16_t)s.len);
    put_bytes(w, s);
}
static void put_str32(writer *w, kv_slice s)
{
    assert(s.len <= KV_MAX_VALUE_HARD);
    put_u32(w, (uint32_t)s.len);
    put_bytes(w, s);
}

long kv_cmd_encode(const kv_cmd *cmd, uint8_t *buf, size_t cap)
{
    size_t size = kv_cmd_encoded_size(cmd);
    if (size == 0) return KV_EINVAL;
    if (size > cap) return KV_ENOSPC;
    writer w = {buf};
    put_u8(&w, KV_CMD_VERSION);
    put_u8(&w, cmd->op);
    put_u8(&w, cmd->flags);
    put_u64(&w, cmd->now_ms);
    switch (cmd->op) {
    case KV_OP_SET:
    case KV_OP_CAS:
        if (cmd->op == KV_OP_CAS) put_u64(&w, cmd->expected_version);
        put_u64(&w, cmd->deadline_ms);
        put_str16(&w, cmd->key);
        put_str32(&w, cmd->value);
        break;
    case KV_OP_DELETE:
    case KV_OP_MSET:
        put_u32(&w, cmd->n_pairs);
        for (uint32_t i = 0; i < cmd->n_pairs; i++) {
            if (cmd->op == KV_OP_MSET) put_u64(&w, cmd->pairs[i].deadline_ms);
            put_str16(&w, cmd->pairs[i].key);
            if (cmd->op == KV_OP_MSET) put_str32(&w, cmd->pairs[i].value);
        }
        break;
    case KV_OP_INCR:
        put_u64(&w, (uint64_t)cmd->delta);
        put_str16(&w, cmd->key);
        break;
    case KV_OP_EXPIRE:
        put_u64(&w, cmd->deadline_ms);
        put_str16(&w, cmd->key);
        break;
    case KV_OP_UNREGISTER:
        put_u64(&w, cmd->session);
        break;
    default:
        break;
    }
    assert((size_t)(w.at - buf) == size);
    return (long)size;
}

/* ---- decode ---------------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *at;
    size_t left;
    bool bad; /* sticky: once a read fails, every later read fails and returns zeros */
} reader;

static bool take(reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return false;
    }
    return true;
}
static uint8_t get_u8(reader *r)
{
    if (!take(r, 1)) return 0;
    r->left--;
    return *r->at++;
}
static uint16_t get_u16(reader *r)
{
    if (!take(r, 2)) return 0;
    uint16_t v = (uint16_t)(r->at[0] | (r->at[1] << 8));
    r->at += 2;
    r->left -= 2;
    return v;
}
static uint32_t get_u32(reader *r)
{
    if (!take(r, 4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)r->at[i] << (8 * i);
    r->at += 4;
    r->left -= 4;
    return v;
}
static uint64_t get_u64(reader *r)
{
    if (!take(r, 8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)r->at[i] << (8 * i);
    r->at += 8;
    r->left -= 8;
    return v;
}
static kv_slice get_bytes(reader *r, size_t n)
{
    kv_slice s = {NULL, 0};
    if (!take(r, n)) return s;
    s.base = n ? r->at : NULL;
    s.len = n;
    r->at += n;
    r->left -= n;
    return s;
}
static kv_slice get_key(reader *r)
{
    size_t len = get_u16(r);
    kv_slice key = get_bytes(r, len);
    if (!r->bad && !kv_key_valid(key.base, key.len)) r->bad = true;
    return key;
}
static kv_slice get_value(reader *r)
{
    size_t len = get_u32(r);
    if (len > KV_MAX_VALUE_HARD) r->bad = true;
    return get_bytes(r, len);
}

/* Reads one pair of a DELETE/MSET body; shared by decode (validation) and kv_cmd_next_pair. */
static void get_pair(reader *r, uint8_t op, kv_pair *pair)
{
    pair->deadline_ms = op == KV_OP_MSET ? get_u64(r) : 0;
    pair->key = get_key(r);
    if (op == KV_OP_MSET) {
        pair->value = get_value(r);
    } else {
        pair->value.base = NULL;
        pair->value.len = 0;
    }
}

int kv_cmd_decode(const uint8_t *data, size_t len, kv_cmd *out)
{
    memset(out, 0, sizeof *out);
    if (data == NULL) return KV_EINVAL;
    reader r = {data, len, false};
    if (get_u8(&r) != KV_CMD_VERSION) return KV_EINVAL;
    out->op = get_u8(&r);
    out->flags = get_u8(&r);
    out->now_ms = get_u64(&r);
    if (r.bad) return KV_EINVAL;
    switch (out->op) {
    case KV_OP_SET:
    case KV_OP_CAS:
        if (out->flags & ~(KV_SET_NX | KV_SET_XX)) return KV_EINVAL;
        if (out->flags == (KV_SET_NX | KV_SET_XX)) return KV_EINVAL;
        if (out->op == KV_OP_CAS) {
            if (out->flags) return KV_EINVAL;
            out->expected_version = get_u64(&r);
        }
        out->deadline_ms = get_u64(&r);
        out->key = get_key(&r);
        out->value = get_value(&r);
        break;
    case KV_OP_DELETE:
    case KV_OP_MSET: {
        if (out->flags) return KV_EINVAL;
        out->n_pairs = get_u32(&r);
        if (out->n_pairs == 0 || out->n_pairs > KV_MAX_MULTI) return KV_EINVAL;
        const uint8_t *body = r.at;
        for (uint32_t i = 0; i < out->n_pairs && !r.bad; i++) {
            kv_pair pair;
            get_pair(&r, out->op, &pair);
        }
        out->body.base = body;
        out->body.len = (size_t)(r.at - body);
        break;
    }
    case KV_OP_INCR:
        if (out->flags) return KV_EINVAL;
        out->delta = (int64_t)get_u64(&r);
        out->key = get_key(&r);
        break;
    case KV_OP_EXPIRE:
        if (out->flags) return KV_EINVAL;
        out->deadline_ms = get_u64(&r);
        out->key = get_key(&r);
        break;
    case KV_OP_TICK:
    case KV_OP_REGISTER:
        if (out->flags) return KV_EINVAL;
        break;
    case KV_OP_UNREGISTER:
        if (out->flags) return KV_EINVAL;
        out->session = get_u64(&r);
        if (out->session == 0) return KV_EINVAL;
        break;
    default:
        return KV_EINVAL;
    }
    if (r.bad || r.left != 0) return KV_EINVAL;
    return KV_OK;
}

bool kv_cmd_next_pair(const kv_cmd *cmd, size_t *cursor, kv_pair *pair)
{
    assert(cmd->op == KV_OP_DELETE || cmd->op == KV_OP_MSET);
    if (cmd->pairs != NULL) { /* an encode-side cmd: walk the array */
        if (*cursor >= cmd->n_pairs) return false;
        *pair = cmd->pairs[(*cursor)++];
        return true;
    }
    if (*cursor >= cmd->body.len) return false;
    reader r = {cmd->body.base + *cursor, cmd->body.len - *cursor, false};
    get_pair(&r, cmd->op, pair);
    assert(!r.bad); /* decode validated the body */
    *cursor = (size_t)(r.at - cmd->body.base);
    return true;
}
