/*
 * raft_codec.c -- binary encoding of raft messages and persistent state (contract: raft_codec.h).
 *
 * FORMAT (version 1). Every integer is little-endian and fixed-width; there is no padding and no
 * varint. Every top-level encoding starts with one version byte (RAFT_CODEC_VERSION); nested parts
 * (the entries and the snapshot meta inside a message) do not repeat it. Lengths and counts are
 * explicit, and a decoder consumes exactly the bytes it is given: leftovers are corruption.
 *
 * ENTRY BODY (21 + len bytes), used inside messages:
 *
 *     off  size  field
 *       0     8  term
 *       8     8  index
 *      16     1  type     raft_entry_type: 0 noop, 1 normal, 2 config, 3 fast, 4 barrier;
 *                         others are rejected
 *      17     4  len      bytes of data that follow
 *      21   len  data     opaque
 *
 * SNAPSHOT META BODY (20 + 8 * (n_voters + n_learners) bytes):
 *
 *       0     8  index
 *       8     8  term
 *      16     2  n_voters
 *      18     2  n_learners (n_voters + n_learners <= RAFT_MAX_NODES); before learners these
 *                two fields were one u32 n_voters, so old data reads the same and an old reader
 *                refuses a configuration with learners as too many voters
 *      20  8*n   voters[0 .. n_voters-1], then learners[0 .. n_learners-1]; the unused slots of
 *                raft_conf are not stored
 *
 * MESSAGE (99 + 8 * (n_voters + n_learners) + sum of entry bodies):
 *
 *       0     1  version (1)
 *       1     1  type     raft_msg_type, 1..RAFT_MSG_TYPE_MAX
 *       2     1  flags    bit 0 = reject; bits 1-7 reserved, must be 0
 *       3     8  from
 *      11     8  to
 *      19     8  term
 *      27     8  log_term
 *      35     8  index
 *      43     8  commit
 *      51     8  hint_index
 *      59     8  hint_term
 *      67     8  context
 *      75   20+  snapshot meta body (every type carries it; all-zero with no voters = 20 bytes)
 *       .     4  n_entries
 *       .        n_entries entry bodies, back to back
 *
 * Every type uses the same layout: unused fields are simply 0 (see raft.h for which type uses
 * what). A uniform layout costs a heartbeat ~20 bytes and buys a decoder with no per-type branches.
 *
 * CONFIG ENTRY DATA, the data of a RAFT_ENTRY_CONFIG entry. Without learners (6 + 8n + ctx_len
 * bytes, what every release wrote before learners, so older nodes still read it): version (1),
 * n_voters (1; 1..RAFT_MAX_NODES), voters (8 each; nonzero, distinct), ctx_len (4), ctx (opaque).
 * With learners (7 + 8 (n + l) + ctx_len bytes): version (2), n_voters (1), n_learners (1; n + l
 * <= RAFT_MAX_NODES), voters, learners (8 each; nonzero, distinct from each other and from the
 * voters), ctx_len (4), ctx.
 *
 * TOP-LEVEL ENTRY (22 + len bytes): version (1), then an entry body.
 * HARD STATE (25 bytes):           version (1), term (8), vote (8), commit (8).
 * SNAPSHOT META (21 + 8n bytes):   version (1), then a snapshot meta body (n voters + learners).
 *
 * INVARIANTS. size(x) == bytes written by encode(x); decode(encode(x)) == x field for field (the
 * unused voters slots decode as 0); decode never reads outside [buf, buf + len) and allocates at
 * most one array, sized from a count already checked against the remaining input (an entry body
 * is at least 21 bytes), so hostile input cannot make it allocate more than len / 21 entries.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "raft_codec.h"

#define ENTRY_BODY_FIXED 21u
#define SNAPSHOT_BODY_FIXED 20u
#define CONF_VERSION_LEARNERS 2u /* config entry data with learners */
#define MSG_FLAG_REJECT 0x01u
#define NO_INDEX UINT64_MAX

/* ---- little-endian writers: the caller has checked the capacity ---- */

static uint8_t *put_u8(uint8_t *p, uint8_t v) {
    p[0] = v;
    return p + 1;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static uint32_t get_u32_at(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64_at(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- error text without stdio (the core may not include it) ---- */

typedef struct errbuf {
    char *text;
    size_t cap;
    size_t len;
} errbuf;

static void err_str(errbuf *eb, const char *s) {
    if (eb->cap == 0)
        return;
    while (*s != '\0' && eb->len + 1 < eb->cap)
        eb->text[eb->len++] = *s++;
    eb->text[eb->len] = '\0';
}

static void err_u64(errbuf *eb, uint64_t v) {
    char digits[21];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    char out[21];
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = '\0';
    err_str(eb, out);
}

/* ---- the decoding cursor ---- */

/* A field's printable name is root + sub + field + [idx] + tail, e.g. "msg" "" ".entries" [3]
 * ".len" or "msg" ".snapshot" ".conf.voters" [2] "": nested bodies are decoded by shared code
 * that only knows its own part of the name. */
typedef struct fname {
    const char *sub;
    const char *field;
    uint64_t idx;
    const char *tail;
} fname;

typedef struct cursor {
    const uint8_t *buf;
    size_t len;
    size_t off;
    const char *root; /* "msg", "entry", "hard_state", "snapshot_meta" */
    errbuf eb;
} cursor;

static void cursor_init(cursor *c, const uint8_t *buf, size_t len, const char *root, char *err,
                        size_t errlen) {
    c->buf = buf;
    c->len = len;
    c->off = 0;
    c->root = root;
    c->eb.text = err;
    c->eb.cap = err != NULL ? errlen : 0;
    c->eb.len = 0;
    if (c->eb.cap > 0)
        err[0] = '\0';
}

static size_t remaining(const cursor *c) {
    return c->len - c->off;
}

static void err_name(cursor *c, fname n) {
    err_str(&c->eb, c->root);
    err_str(&c->eb, n.sub);
    err_str(&c->eb, n.field);
    if (n.idx != NO_INDEX) {
        err_str(&c->eb, "[");
        err_u64(&c->eb, n.idx);
        err_str(&c->eb, "]");
    }
    err_str(&c->eb, n.tail);
}

static void err_at(cursor *c, size_t off) {
    err_str(&c->eb, " at offset ");
    err_u64(&c->eb, off);
}

/* "<name>=<value> <why> at offset <off>" */
static int fail_value(cursor *c, fname n, uint64_t value, const char *why, size_t off) {
    err_name(c, n);
    err_str(&c->eb, "=");
    err_u64(&c->eb, value);
    err_str(&c->eb, " ");
    err_str(&c->eb, why);
    err_at(c, off);
    return RAFT_ECORRUPT;
}

/* "<name>=<value> exceeds <what> <limit>... at offset <off>" */
static int fail_exceeds(cursor *c, fname n, uint64_t value, const char *what, uint64_t limit,
                        const char *unit, size_t off) {
    err_name(c, n);
    err_str(&c->eb, "=");
    err_u64(&c->eb, value);
    err_str(&c->eb, " exceeds ");
    err_str(&c->eb, what);
    err_str(&c->eb, " ");
    err_u64(&c->eb, limit);
    err_str(&c->eb, unit);
    err_at(c, off);
    return RAFT_ECORRUPT;
}

/* Returns a pointer to the next `size` bytes and consumes them, or NULL (with the error set) if
 * the input ends first. */
static const uint8_t *take(cursor *c, fname n, size_t size) {
    if (remaining(c) < size) {
        err_name(c, n);
        err_str(&c->eb, " truncated: needs ");
        err_u64(&c->eb, size);
        err_str(&c->eb, " bytes, ");
        err_u64(&c->eb, remaining(c));
        err_str(&c->eb, " remain");
        err_at(c, c->off);
        return NULL;
    }
    const uint8_t *p = c->buf + c->off;
    c->off += size;
    return p;
}

static bool get_u8(cursor *c, fname n, uint8_t *v) {
    const uint8_t *p = take(c, n, 1);
    if (p == NULL)
        return false;
    *v = p[0];
    return true;
}

static bool get_u32(cursor *c, fname n, uint32_t *v) {
    const uint8_t *p = take(c, n, 4);
    if (p == NULL)
        return false;
    *v = get_u32_at(p);
    return true;
}

static bool get_u64(cursor *c, fname n, uint64_t *v) {
    const uint8_t *p = take(c, n, 8);
    if (p == NULL)
        return false;
    *v = get_u64_at(p);
    return true;
}

static fname plain(const char *field) {
    return (fname){"", field, NO_INDEX, ""};
}

static int get_version(cursor *c) {
    uint8_t version;
    if (!get_u8(c, plain(".version"), &version))
        return RAFT_ECORRUPT;
    if (version != RAFT_CODEC_VERSION)
        return fail_value(c, plain(".version"), version, "unsupported (this build reads 1)", 0);
    return RAFT_OK;
}

static int expect_end(cursor *c) {
    if (remaining(c) == 0)
        return RAFT_OK;
    err_str(&c->eb, c->root);
    err_str(&c->eb, ": ");
    err_u64(&c->eb, remaining(c));
    err_str(&c->eb, " trailing bytes");
    err_at(c, c->off);
    return RAFT_ECORRUPT;
}

/* ---- sizes ---- */

/* Saturating add: a size that cannot be represented becomes SIZE_MAX, which no buffer has. */
static size_t size_add(size_t a, size_t b) {
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t snapshot_body_size(const raft_snapshot_meta *sm) {
    return SNAPSHOT_BODY_FIXED + 8u * ((size_t)sm->conf.n_voters + sm->conf.n_learners);
}

size_t raft_codec_msg_size(const raft_msg *m) {
    /* n_voters beyond the limit is refused by encode; sized here as stored so size stays exact
     * for everything encode accepts. */
    size_t size = (RAFT_CODEC_MSG_FIXED_SIZE - SNAPSHOT_BODY_FIXED) + snapshot_body_size(&m->snapshot);
    for (uint32_t i = 0; i < m->n_entries && m->entries != NULL; i++)
        size = size_add(size, ENTRY_BODY_FIXED + (size_t)m->entries[i].len);
    return size;
}

size_t raft_codec_entry_size(const raft_entry *e) {
    return size_add(RAFT_CODEC_ENTRY_FIXED_SIZE, (size_t)e->len);
}

size_t raft_codec_snapshot_meta_size(const raft_snapshot_meta *sm) {
    return 1 + snapshot_body_size(sm);
}

/* ---- validation before encoding: encode only what decode accepts ---- */

static bool entry_encodable(const raft_entry *e) {
    return e->type <= RAFT_ENTRY_BARRIER && (e->len == 0 || e->data != NULL);
}

static bool snapshot_encodable(const raft_snapshot_meta *sm) {
    return sm->conf.n_voters <= RAFT_MAX_NODES && sm->conf.n_learners <= RAFT_MAX_NODES &&
           sm->conf.n_voters + sm->conf.n_learners <= RAFT_MAX_NODES;
}

static bool msg_encodable(const raft_msg *m) {
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX)
        return false;
    if (!snapshot_encodable(&m->snapshot))
        return false;
    if (m->n_entries > 0 && m->entries == NULL)
        return false;
    for (uint32_t i = 0; i < m->n_entries; i++)
        if (!entry_encodable(&m->entries[i]))
            return false;
    return true;
}

/* Common prologue of every encode: checks, then tells the caller how much it needs. */
static int encode_check(bool encodable, size_t size, size_t cap, size_t *written) {
    if (!encodable) {
        if (written != NULL)
            *written = 0;
        return RAFT_EINVAL;
    }
    if (written != NULL)
        *written = size;
    return cap < size ? RAFT_ETOOBIG : RAFT_OK;
}

/* ---- encoders ---- */

static uint8_t *put_entry_body(uint8_t *p, const raft_entry *e) {
    p = put_u64(p, e->term);
    p = put_u64(p, e->index);
    p = put_u8(p, e->type);
    p = put_u32(p, e->len);
    if (e->len > 0)
        memcpy(p, e->data, e->len);
    return p + e->len;
}

static uint8_t *put_snapshot_body(uint8_t *p, const raft_snapshot_meta *sm) {
    p = put_u64(p, sm->index);
    p = put_u64(p, sm->term);
    p = put_u32(p, sm->conf.n_voters | sm->conf.n_learners << 16);
    for (uint32_t i = 0; i < sm->conf.n_voters; i++)
        p = put_u64(p, sm->conf.voters[i]);
    for (uint32_t i = 0; i < sm->conf.n_learners; i++)
        p = put_u64(p, sm->conf.learners[i]);
    return p;
}

int raft_codec_msg_encode(const raft_msg *m, uint8_t *buf, size_t cap, size_t *written) {
    bool ok = msg_encodable(m);
    size_t size = ok ? raft_codec_msg_size(m) : 0;
    int rc = encode_check(ok, size, cap, written);
    if (rc != RAFT_OK)
        return rc;
    uint8_t *p = buf;
    p = put_u8(p, RAFT_CODEC_VERSION);
    p = put_u8(p, m->type);
    p = put_u8(p, m->reject ? MSG_FLAG_REJECT : 0);
    p = put_u64(p, m->from);
    p = put_u64(p, m->to);
    p = put_u64(p, m->term);
    p = put_u64(p, m->log_term);
    p = put_u64(p, m->index);
    p = put_u64(p, m->commit);
    p = put_u64(p, m->hint_index);
    p = put_u64(p, m->hint_term);
    p = put_u64(p, m->context);
    p = put_snapshot_body(p, &m->snapshot);
    p = put_u32(p, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries; i++)
        p = put_entry_body(p, &m->entries[i]);
    (void)p; /* p - buf == size: checked by tests/codec for every message shape */
    return RAFT_OK;
}

int raft_codec_entry_encode(const raft_entry *e, uint8_t *buf, size_t cap, size_t *written) {
    bool ok = entry_encodable(e);
    int rc = encode_check(ok, ok ? raft_codec_entry_size(e) : 0, cap, written);
    if (rc != RAFT_OK)
        return rc;
    put_entry_body(put_u8(buf, RAFT_CODEC_VERSION), e);
    return RAFT_OK;
}

int raft_codec_hard_state_encode(const raft_hard_state *hs, uint8_t *buf, size_t cap,
                                 size_t *written) {
    int rc = encode_check(true, RAFT_CODEC_HARD_STATE_SIZE, cap, written);
    if (rc != RAFT_OK)
        return rc;
    uint8_t *p = put_u8(buf, RAFT_CODEC_VERSION);
    p = put_u64(p, hs->term);
    p = put_u64(p, hs->vote);
    put_u64(p, hs->commit);
    return RAFT_OK;
}

int raft_codec_snapshot_meta_encode(const raft_snapshot_meta *sm, uint8_t *buf, size_t cap,
                                    size_t *written) {
    bool ok = snapshot_encodable(sm);
    int rc = encode_check(ok, ok ? raft_codec_snapshot_meta_size(sm) : 0, cap, written);
    if (rc != RAFT_OK)
        return rc;
    put_snapshot_body(put_u8(buf, RAFT_CODEC_VERSION), sm);
    return RAFT_OK;
}

bool raft_codec_conf_valid(const raft_conf *conf) {
    if (conf->n_voters == 0 || conf->n_voters > RAFT_MAX_NODES ||
        conf->n_learners > RAFT_MAX_NODES - conf->n_voters)
        return false;
    uint32_t n = conf->n_voters + conf->n_learners;
    for (uint32_t i = 0; i < n; i++) {
        if (raft_conf_member(conf, i) == 0)
            return false;
        for (uint32_t j = 0; j < i; j++)
            if (raft_conf_member(conf, j) == raft_conf_member(conf, i))
                return false;
    }
    return true;
}

size_t raft_codec_conf_size(const raft_conf *conf, uint32_t ctx_len) {
    size_t learners = conf->n_learners > 0 ? 1u + 8u * (size_t)conf->n_learners : 0;
    return 6u + 8u * (size_t)conf->n_voters + learners + (size_t)ctx_len;
}

int raft_codec_conf_encode(const raft_conf *conf, const void *ctx, uint32_t ctx_len, uint8_t *buf,
                           size_t cap, size_t *written) {
    bool ok = raft_codec_conf_valid(conf) && (ctx_len == 0 || ctx != NULL);
    int rc = encode_check(ok, ok ? raft_codec_conf_size(conf, ctx_len) : 0, cap, written);
    if (rc != RAFT_OK)
        return rc;
    /* Without learners, the format every release reads. */
    uint8_t *p = put_u8(buf, conf->n_learners > 0 ? CONF_VERSION_LEARNERS : RAFT_CODEC_VERSION);
    p = put_u8(p, (uint8_t)conf->n_voters);
    if (conf->n_learners > 0)
        p = put_u8(p, (uint8_t)conf->n_learners);
    for (uint32_t i = 0; i < conf->n_voters + conf->n_learners; i++)
        p = put_u64(p, raft_conf_member(conf, i));
    p = put_u32(p, ctx_len);
    if (ctx_len > 0)
        memcpy(p, ctx, ctx_len);
    return RAFT_OK;
}

/* ---- decoders ---- */

/* Entry body; `base` names the entry ("msg.entries[3]" or "entry"). */
static int get_entry_body(cursor *c, fname base, raft_entry *e) {
    fname n = base;
    n.tail = ".term";
    if (!get_u64(c, n, &e->term))
        return RAFT_ECORRUPT;
    n.tail = ".index";
    if (!get_u64(c, n, &e->index))
        return RAFT_ECORRUPT;
    n.tail = ".type";
    size_t type_off = c->off;
    if (!get_u8(c, n, &e->type))
        return RAFT_ECORRUPT;
    if (e->type > RAFT_ENTRY_BARRIER)
        return fail_value(c, n, e->type,
                          "unknown (known: 0 noop, 1 normal, 2 config, 3 fast, 4 barrier)",
                          type_off);
    n.tail = ".len";
    size_t len_off = c->off;
    if (!get_u32(c, n, &e->len))
        return RAFT_ECORRUPT;
    if (e->len > remaining(c))
        return fail_exceeds(c, n, e->len, "remaining", remaining(c), " bytes", len_off);
    e->data = e->len > 0 ? c->buf + c->off : NULL; /* zero copy: points into the input */
    c->off += e->len;
    return RAFT_OK;
}

/* Snapshot meta body; `sub` is ".snapshot" inside a message, "" at top level. */
static int get_snapshot_body(cursor *c, const char *sub, raft_snapshot_meta *sm) {
    if (!get_u64(c, (fname){sub, ".index", NO_INDEX, ""}, &sm->index))
        return RAFT_ECORRUPT;
    if (!get_u64(c, (fname){sub, ".term", NO_INDEX, ""}, &sm->term))
        return RAFT_ECORRUPT;
    fname n_voters = {sub, ".conf.n_voters", NO_INDEX, ""};
    fname n_learners = {sub, ".conf.n_learners", NO_INDEX, ""};
    size_t n_off = c->off;
    uint32_t counts;
    if (!get_u32(c, n_voters, &counts))
        return RAFT_ECORRUPT;
    sm->conf.n_voters = counts & 0xffffu;
    sm->conf.n_learners = counts >> 16;
    if (sm->conf.n_voters > RAFT_MAX_NODES)
        return fail_exceeds(c, n_voters, sm->conf.n_voters, "RAFT_MAX_NODES", RAFT_MAX_NODES, "",
                            n_off);
    if (sm->conf.n_learners > RAFT_MAX_NODES - sm->conf.n_voters)
        return fail_exceeds(c, n_learners, sm->conf.n_learners, "RAFT_MAX_NODES - n_voters",
                            RAFT_MAX_NODES - sm->conf.n_voters, "", n_off + 2);
    for (uint32_t i = 0; i < sm->conf.n_voters; i++)
        if (!get_u64(c, (fname){sub, ".conf.voters", i, ""}, &sm->conf.voters[i]))
            return RAFT_ECORRUPT;
    for (uint32_t i = 0; i < sm->conf.n_learners; i++)
        if (!get_u64(c, (fname){sub, ".conf.learners", i, ""}, &sm->conf.learners[i]))
            return RAFT_ECORRUPT;
    return RAFT_OK;
}

/* Everything of a message but its entries; leaves the cursor on the first entry. */
static int get_msg_header(cursor *c, raft_msg *m, uint32_t *n_entries) {
    int rc = get_version(c);
    if (rc != RAFT_OK)
        return rc;
    size_t type_off = c->off;
    if (!get_u8(c, plain(".type"), &m->type))
        return RAFT_ECORRUPT;
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX)
        return fail_value(c, plain(".type"), m->type, "unknown (known: 1..13)", type_off);
    size_t flags_off = c->off;
    uint8_t flags;
    if (!get_u8(c, plain(".flags"), &flags))
        return RAFT_ECORRUPT;
    if ((flags & ~MSG_FLAG_REJECT) != 0)
        return fail_value(c, plain(".flags"), flags, "has reserved bits set (known: 0x01 reject)",
                          flags_off);
    m->reject = (flags & MSG_FLAG_REJECT) != 0;
    struct {
        const char *name;
        uint64_t *field;
    } u64s[] = {
        {".from", &m->from},         {".to", &m->to},         {".term", &m->term},
        {".log_term", &m->log_term}, {".index", &m->index},   {".commit", &m->commit},
        {".hint_index", &m->hint_index}, {".hint_term", &m->hint_term},
        {".context", &m->context},
    };
    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++)
        if (!get_u64(c, plain(u64s[i].name), u64s[i].field))
            return RAFT_ECORRUPT;
    rc = get_snapshot_body(c, ".snapshot", &m->snapshot);
    if (rc != RAFT_OK)
        return rc;
    size_t count_off = c->off;
    if (!get_u32(c, plain(".n_entries"), n_entries))
        return RAFT_ECORRUPT;
    /* Every entry takes at least ENTRY_BODY_FIXED bytes: bounds the allocation by the input. */
    if (*n_entries > remaining(c) / ENTRY_BODY_FIXED)
        return fail_exceeds(c, plain(".n_entries"), *n_entries, "remaining", remaining(c),
                            " bytes", count_off);
    return RAFT_OK;
}

int raft_codec_msg_decode(const uint8_t *buf, size_t len, raft_msg *out, char *err,
                          size_t errlen) {
    cursor c;
    cursor_init(&c, buf, len, "msg", err, errlen);
    memset(out, 0, sizeof *out);
    uint32_t n_entries = 0;
    int rc = get_msg_header(&c, out, &n_entries);
    raft_entry *entries = NULL;
    if (rc == RAFT_OK && n_entries > 0) {
        entries = calloc(n_entries, sizeof *entries);
        if (entries == NULL) {
            err_str(&c.eb, "msg: out of memory for entries");
            rc = RAFT_ENOMEM;
        }
    }
    for (uint32_t i = 0; rc == RAFT_OK && i < n_entries; i++)
        rc = get_entry_body(&c, (fname){"", ".entries", i, ""}, &entries[i]);
    if (rc == RAFT_OK)
        rc = expect_end(&c);
    if (rc != RAFT_OK) {
        free(entries);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->n_entries = n_entries;
    out->entries = entries;
    return RAFT_OK;
}

void raft_codec_msg_release(raft_msg *m) {
    if (m == NULL)
        return;
    /* The array was allocated here (decode) and is only ever read through a const pointer. */
    free((void *)(uintptr_t)m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}

int raft_codec_entry_decode(const uint8_t *buf, size_t len, raft_entry *out, char *err,
                            size_t errlen) {
    cursor c;
    cursor_init(&c, buf, len, "entry", err, errlen);
    memset(out, 0, sizeof *out);
    int rc = get_version(&c);
    if (rc == RAFT_OK)
        rc = get_entry_body(&c, plain(""), out);
    if (rc == RAFT_OK)
        rc = expect_end(&c);
    if (rc != RAFT_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int raft_codec_hard_state_decode(const uint8_t *buf, size_t len, raft_hard_state *out, char *err,
                                 size_t errlen) {
    cursor c;
    cursor_init(&c, buf, len, "hard_state", err, errlen);
    memset(out, 0, sizeof *out);
    int rc = get_version(&c);
    if (rc == RAFT_OK && !(get_u64(&c, plain(".term"), &out->term) &&
                           get_u64(&c, plain(".vote"), &out->vote) &&
                           get_u64(&c, plain(".commit"), &out->commit)))
        rc = RAFT_ECORRUPT;
    if (rc == RAFT_OK)
        rc = expect_end(&c);
    if (rc != RAFT_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int raft_codec_snapshot_meta_decode(const uint8_t *buf, size_t len, raft_snapshot_meta *out,
                                    char *err, size_t errlen) {
    cursor c;
    cursor_init(&c, buf, len, "snapshot_meta", err, errlen);
    memset(out, 0, sizeof *out);
    int rc = get_version(&c);
    if (rc == RAFT_OK)
        rc = get_snapshot_body(&c, "", out);
    if (rc == RAFT_OK)
        rc = expect_end(&c);
    if (rc != RAFT_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int raft_codec_conf_decode(const uint8_t *buf, size_t len, raft_conf *out, const uint8_t **ctx,
                           uint32_t *ctx_len, char *err, size_t errlen) {
    cursor c;
    cursor_init(&c, buf, len, "conf", err, errlen);
    memset(out, 0, sizeof *out);
    *ctx = NULL;
    *ctx_len = 0;
    int rc = RAFT_OK;
    uint8_t version = 0, n = 0, l = 0;
    if (!get_u8(&c, plain(".version"), &version))
        rc = RAFT_ECORRUPT;
    else if (version != RAFT_CODEC_VERSION && version != CONF_VERSION_LEARNERS)
        rc = fail_value(&c, plain(".version"), version, "unsupported (this build reads 1 and 2)",
                        0);
    size_t n_off = c.off;
    if (rc == RAFT_OK && !get_u8(&c, plain(".n_voters"), &n))
        rc = RAFT_ECORRUPT;
    if (rc == RAFT_OK && (n == 0 || n > RAFT_MAX_NODES))
        rc = fail_value(&c, plain(".n_voters"), n, "is not in 1..RAFT_MAX_NODES (16)", n_off);
    size_t l_off = c.off;
    if (rc == RAFT_OK && version == CONF_VERSION_LEARNERS) {
        if (!get_u8(&c, plain(".n_learners"), &l))
            rc = RAFT_ECORRUPT;
        else if (l == 0 || l > RAFT_MAX_NODES - n)
            rc = fail_value(&c, plain(".n_learners"), l,
                            "is not in 1..RAFT_MAX_NODES (16) - n_voters", l_off);
    }
    for (uint32_t i = 0; rc == RAFT_OK && i < (uint32_t)n + l; i++) {
        size_t off = c.off;
        bool voter = i < n;
        fname name = {"", voter ? ".voters" : ".learners", voter ? i : i - n, ""};
        raft_id *id = voter ? &out->voters[i] : &out->learners[i - n];
        if (!get_u64(&c, name, id)) {
            rc = RAFT_ECORRUPT;
            break;
        }
        if (*id == 0)
            rc = fail_value(&c, name, 0, "is not a node id", off);
        for (uint32_t j = 0; rc == RAFT_OK && j < i; j++)
            if (raft_conf_member(out, j) == *id)
                rc = fail_value(&c, name, *id, "is listed twice", off);
        out->n_voters = voter ? i + 1 : n; /* raft_conf_member reads only what is set so far */
        out->n_learners = voter ? 0 : i - n + 1;
    }
    size_t ctx_off = c.off;
    uint32_t clen = 0;
    if (rc == RAFT_OK && !get_u32(&c, plain(".ctx_len"), &clen))
        rc = RAFT_ECORRUPT;
    if (rc == RAFT_OK && clen != remaining(&c))
        rc = fail_value(&c, plain(".ctx_len"), clen, "does not match the bytes that follow",
                        ctx_off);
    if (rc != RAFT_OK) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    *ctx = clen > 0 ? buf + c.off : NULL;
    *ctx_len = clen;
    return RAFT_OK;
}
