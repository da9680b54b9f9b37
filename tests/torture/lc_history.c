/*
 * lc_history.c -- parsing of torture histories (format in lincheck.h) and string interning.
 *
 * Strings are interned once into an open-addressing table so that the checkers compare values as
 * integers. Id 0 is always "-" (LC_NIL).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lc_int.h"

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int strtab_grow(lc_history *h)
{
    size_t cap = h->slots_cap ? h->slots_cap * 2 : 1024;
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (slots == NULL) return -1;
    for (size_t i = 0; i < cap; i++) slots[i] = UINT32_MAX;
    for (uint32_t id = 0; id < h->n_strs; id++) {
        size_t at = hash_bytes(h->strs[id], strlen(h->strs[id])) & (cap - 1);
        while (slots[at] != UINT32_MAX) at = (at + 1) & (cap - 1);
        slots[at] = id;
    }
    free(h->slots);
    h->slots = slots;
    h->slots_cap = cap;
    return 0;
}

/* Returns the id of s[0..len), interning it; UINT32_MAX when out of memory. */
uint32_t lc_intern(lc_history *h, const char *s, size_t len)
{
    if ((h->n_strs + 1) * 2 > h->slots_cap && strtab_grow(h) != 0) return UINT32_MAX;
    size_t at = hash_bytes(s, len) & (h->slots_cap - 1);
    while (h->slots[at] != UINT32_MAX) {
        const char *other = h->strs[h->slots[at]];
        if (strlen(other) == len && memcmp(other, s, len) == 0) return h->slots[at];
        at = (at + 1) & (h->slots_cap - 1);
    }
    if (h->n_strs == h->strs_cap) {
        size_t cap = h->strs_cap ? h->strs_cap * 2 : 1024;
        char **strs = realloc(h->strs, cap * sizeof *strs);
        if (strs == NULL) return UINT32_MAX;
        h->strs = strs;
        h->strs_cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) return UINT32_MAX;
    memcpy(copy, s, len);
    copy[len] = '\0';
    h->strs[h->n_strs] = copy;
    h->slots[at] = h->n_strs;
    return h->n_strs++;
}

const char *lc_str(const lc_history *h, uint32_t id)
{
    return id < h->n_strs ? h->strs[id] : "?";
}

size_t lc_history_len(const lc_history *h) { return h->n_ops; }

const lc_op *lc_history_op(const lc_history *h, size_t i)
{
    assert(i < h->n_ops);
    return &h->ops[i];
}

void lc_history_free(lc_history *h)
{
    if (h == NULL) return;
    for (uint32_t i = 0; i < h->n_strs; i++) free(h->strs[i]);
    free(h->strs);
    free(h->slots);
    free(h->ops);
    free(h);
}

static const struct {
    const char *name;
    lc_kind kind;
} KINDS[] = {
    {"read", LC_READ}, {"write", LC_WRITE}, {"cas", LC_CAS},   {"add", LC_ADD},
    {"mset", LC_MSET}, {"mget", LC_MGET},   {"setttl", LC_SETTTL},
};

static int bad(char *err, size_t errlen, const char *name, uint32_t line, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s:%" PRIu32 ": %s", name, line, reason);
    return -1;
}

static int parse_time(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v == INT64_MAX) return -1;
    *out = v;
    return 0;
}

static const char *FIELD_NAMES[LC_FIELDS] = {"client", "op",          "key",     "arg1",  "arg2",
                                             "invoke_us", "complete_us", "outcome", "result"};

static int parse_line(lc_history *h, const char *name, uint32_t line, const char *s, size_t len,
                      char *err, size_t errlen)
{
    const char *field[LC_FIELDS];
    size_t flen[LC_FIELDS];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '\t') {
            if (n == LC_FIELDS) return bad(err, errlen, name, line, "more than %d fields", LC_FIELDS);
            field[n] = s + start;
            flen[n] = i - start;
            if (flen[n] == 0)
                return bad(err, errlen, name, line, "field %zu (%s) is empty", n + 1, FIELD_NAMES[n]);
            n++;
            start = i + 1;
        }
    }
    if (n != LC_FIELDS)
        return bad(err, errlen, name, line, "%zu fields, expected %d separated by tabs", n, LC_FIELDS);

    lc_op op = {.line = line};
    int64_t client;
    if (parse_time(field[0], flen[0], &client) != 0 || client > INT32_MAX)
        return bad(err, errlen, name, line, "field 1 (client): expected a non-negative integer");
    op.client = (int32_t)client;
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++)
        if (strlen(KINDS[k].name) == flen[1] && memcmp(KINDS[k].name, field[1], flen[1]) == 0)
            op.kind = KINDS[k].kind;
    if (op.kind == 0)
        return bad(err, errlen, name, line, "field 2 (op): unknown operation '%.*s'", (int)flen[1],
                   field[1]);
    if (flen[7] == 2 && memcmp(field[7], "ok", 2) == 0) op.outcome = LC_OK;
    else if (flen[7] == 4 && memcmp(field[7], "fail", 4) == 0) op.outcome = LC_FAIL;
    else if (flen[7] == 7 && memcmp(field[7], "unknown", 7) == 0) op.outcome = LC_UNKNOWN;
    else
        return bad(err, errlen, name, line, "field 8 (outcome): expected ok, fail or unknown");
    if (parse_time(field[5], flen[5], &op.invoke) != 0)
        return bad(err, errlen, name, line, "field 6 (invoke_us): expected a non-negative integer");
    if (op.outcome == LC_UNKNOWN) {
        op.complete = INT64_MAX;
    } else if (parse_time(field[6], flen[6], &op.complete) != 0 || op.complete < op.invoke) {
        return bad(err, errlen, name, line,
                   "field 7 (complete_us): expected an integer >= invoke_us");
    }
    uint32_t ids[4];
    const int which[4] = {2, 3, 4, 8};
    for (int k = 0; k < 4; k++) {
        ids[k] = lc_intern(h, field[which[k]], flen[which[k]]);
        if (ids[k] == UINT32_MAX) return bad(err, errlen, name, line, "out of memory");
    }
    op.key = ids[0];
    op.arg1 = ids[1];
    op.arg2 = ids[2];
    op.result = ids[3];
    if (op.kind == LC_CAS && op.outcome == LC_OK && op.result != h->id_true &&
        op.result != h->id_false)
        return bad(err, errlen, name, line, "field 9 (result): a cas result is true or false");
    if ((op.kind == LC_WRITE || op.kind == LC_ADD || op.kind == LC_MSET || op.kind == LC_SETTTL) &&
        op.arg1 == LC_NIL)
        return bad(err, errlen, name, line, "field 4 (arg1): a %s needs a value", field[1]);
    if (op.kind == LC_SETTTL) {
        int64_t ttl;
        if (parse_time(field[4], flen[4], &ttl) != 0)
            return bad(err, errlen, name, line, "field 5 (arg2): setttl needs a ttl in ms");
    }
    if (h->n_ops == h->ops_cap) {
        size_t cap = h->ops_cap ? h->ops_cap * 2 : 4096;
        lc_op *ops = realloc(h->ops, cap * sizeof *ops);
        if (ops == NULL) return bad(err, errlen, name, line, "out of memory");
        h->ops = ops;
        h->ops_cap = cap;
    }
    h->ops[h->n_ops++] = op;
    return 0;
}

lc_history *lc_history_parse(const char *text, const char *name, char *err, size_t errlen)
{
    lc_history *h = calloc(1, sizeof *h);
    if (h == NULL || lc_intern(h, "-", 1) != LC_NIL) {
        snprintf(err, errlen, "%s: out of memory", name);
        lc_history_free(h);
        return NULL;
    }
    h->id_true = lc_intern(h, "true", 4);
    h->id_false = lc_intern(h, "false", 5);
    uint32_t line = 0;
    const char *at = text;
    while (*at != '\0') {
        line++;
        const char *eol = strchr(at, '\n');
        size_t len = eol ? (size_t)(eol - at) : strlen(at);
        size_t trimmed = len;
        if (trimmed > 0 && at[trimmed - 1] == '\r') trimmed--;
        if (trimmed > 0 && at[0] != '#' && parse_line(h, name, line, at, trimmed, err, errlen) != 0) {
            lc_history_free(h);
            return NULL;
        }
        at += len + (eol ? 1 : 0);
    }
    return h;
}

lc_history *lc_history_load(const char *path, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    while (text != NULL) {
        if (len + 1 >= cap) {
            char *bigger = realloc(text, cap * 2);
            if (bigger == NULL) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0) break;
    }
    int read_error = ferror(f);
    if (f != stdin) fclose(f);
    if (text == NULL || read_error) {
        snprintf(err, errlen, "%s: %s", path, text == NULL ? "out of memory" : "read error");
        free(text);
        return NULL;
    }
    text[len] = '\0';
    size_t nul = strlen(text);
    if (nul != len) { /* the parser stops at a NUL: the rest would go unchecked */
        snprintf(err, errlen, "%s: NUL byte at offset %zu (a value the harness should have refused)",
                 path, nul);
        free(text);
        return NULL;
    }
    lc_history *h = lc_history_parse(text, path, err, errlen);
    free(text);
    return h;
}
