/*
 * info.c -- RESP INFO request and "key:value" parsing (see info.h).
 */
#include "info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn.h"

static const char info_request[] = "*1\r\n$4\r\nINFO\r\n";

int info_fetch(const char *host, uint16_t port, int timeout_ms, char **text, size_t *len,
               char *err, size_t errcap)
{
    return info_fetch_bulk(host, port, timeout_ms, info_request, "INFO", text, len, err, errcap);
}

int info_fetch_bulk(const char *host, uint16_t port, int timeout_ms, const char *request,
                    const char *what, char **text, size_t *len, char *err, size_t errcap)
{
    *text = NULL;
    *len = 0;
    conn *c = NULL;
    if (conn_open(host, port, timeout_ms, &c, err, errcap) != CONN_OK) return INFO_ECONN;
    int rc = INFO_ECONN;
    const char *line;
    size_t line_len;
    if (conn_write_all(c, request, strlen(request)) != CONN_OK ||
        conn_read_line(c, &line, &line_len) != CONN_OK) {
        snprintf(err, errcap, "%s", conn_errmsg(c));
        goto out;
    }
    if (line_len < 2 || line[0] != '$') {
        snprintf(err, errcap, "%s: %s: expected a bulk string, got '%.*s'", conn_addr(c), what,
                 (int)(line_len > 60 ? 60 : line_len), line);
        rc = INFO_EPROTO;
        goto out;
    }
    size_t size = 0;
    for (size_t i = 1; i < line_len; i++) {
        if (line[i] < '0' || line[i] > '9' || size > INFO_MAX_REPLY) {
            snprintf(err, errcap, "%s: %s: bad bulk length '%.*s' (limit %d bytes)",
                     conn_addr(c), what, (int)(line_len > 30 ? 30 : line_len), line,
                     INFO_MAX_REPLY);
            rc = INFO_EPROTO;
            goto out;
        }
        size = size * 10 + (size_t)(line[i] - '0');
    }
    if (size > INFO_MAX_REPLY) {
        snprintf(err, errcap, "%s: %s: reply of %zu bytes over the %d-byte limit", conn_addr(c),
                 what, size, INFO_MAX_REPLY);
        rc = INFO_EPROTO;
        goto out;
    }
    char *body = malloc(size + 2);
    if (!body) {
        snprintf(err, errcap, "%s: %s: out of memory", conn_addr(c), what);
        rc = INFO_ENOMEM;
        goto out;
    }
    if (conn_read_exact(c, (uint8_t *)body, size + 2) != CONN_OK) {
        snprintf(err, errcap, "%s", conn_errmsg(c));
        free(body);
        goto out;
    }
    body[size] = '\0';
    *text = body;
    *len = size;
    rc = INFO_OK;
out:
    conn_close(c);
    return rc;
}

static bool parse_u64(const char *s, size_t len, uint64_t *value)
{
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    *value = v;
    return true;
}

/* key matches one of the comma-separated names in names (exact, case-insensitive). */
static bool key_in(const char *key, size_t key_len, const char *names)
{
    const char *p = names;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == key_len && strncasecmp(key, p, n) == 0) return true;
        if (!comma) return false;
        p = comma + 1;
    }
}

typedef enum field {
    F_ID, F_ROLE, F_TERM, F_LEADER, F_COMMIT, F_APPLIED, F_VOTERS, F_LEARNERS, F_NONE
} field;

static const char *const field_names[] = {
    [F_ID] = "id,node_id",
    [F_ROLE] = "role,state",
    [F_TERM] = "term,current_term",
    [F_LEADER] = "leader,leader_id",
    [F_COMMIT] = "commit,commit_index",
    [F_APPLIED] = "applied,applied_index,last_applied",
    [F_VOTERS] = "voters",
    [F_LEARNERS] = "learners",
};

/* Whether id is one of the comma-separated numbers of list. */
static bool list_has(const char *list, size_t len, uint64_t id)
{
    const char *end = list + len;
    for (const char *p = list; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
        uint64_t v;
        if (parse_u64(p, n, &v) && v == id) return true;
        p = comma ? comma + 1 : end;
    }
    return false;
}

static field classify(const char *key, size_t key_len, bool in_raft_section)
{
    bool prefixed = key_len > 5 && strncasecmp(key, "raft_", 5) == 0;
    if (prefixed) {
        key += 5;
        key_len -= 5;
    } else if (!in_raft_section) {
        return F_NONE; /* "role:master" of Redis' replication section is not ours */
    }
    for (int f = F_ID; f < F_NONE; f++)
        if (key_in(key, key_len, field_names[f])) return (field)f;
    return F_NONE;
}

void info_parse(const char *text, size_t len, info_state *out)
{
    memset(out, 0, sizeof *out);
    bool in_raft = false;
    const char *voters = NULL, *learners = NULL;
    size_t voters_len = 0, learners_len = 0;
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = nl ? nl : end;
        size_t n = (size_t)(line_end - line);
        if (n > 0 && line[n - 1] == '\r') n--;
        if (n > 0 && line[0] == '#') {
            const char *name = line + 1;
            size_t name_len = n - 1;
            while (name_len > 0 && *name == ' ') {
                name++;
                name_len--;
            }
            in_raft = name_len == 4 && strncasecmp(name, "raft", 4) == 0;
        } else {
            const char *colon = memchr(line, ':', n);
            if (colon) {
                size_t key_len = (size_t)(colon - line);
                const char *value = colon + 1;
                size_t value_len = n - key_len - 1;
                uint64_t number = 0;
                bool numeric = parse_u64(value, value_len, &number);
                switch (classify(line, key_len, in_raft)) {
                case F_ID: out->has_id = numeric, out->id = number; break;
                case F_TERM: out->has_term = numeric, out->term = number; break;
                case F_COMMIT: out->has_commit = numeric, out->commit = number; break;
                case F_APPLIED: out->has_applied = numeric, out->applied = number; break;
                case F_LEADER:
                    /* "none", "-" or empty mean no leader known */
                    out->has_leader = true;
                    out->leader = numeric ? number : 0;
                    break;
                case F_ROLE:
                    if (value_len > 0 && value_len < sizeof out->role) {
                        memcpy(out->role, value, value_len);
                        out->role[value_len] = '\0';
                        out->has_role = true;
                    }
                    break;
                case F_VOTERS:
                    voters = value;
                    voters_len = value_len;
                    break;
                case F_LEARNERS:
                    learners = value;
                    learners_len = value_len;
                    break;
                case F_NONE: break;
                }
            }
        }
        line = nl ? nl + 1 : end;
    }
    if (voters != NULL && out->has_id) { /* after the loop: the id may come later */
        out->has_voter = true;
        out->voter = list_has(voters, voters_len, out->id);
        out->learner = learners != NULL && list_has(learners, learners_len, out->id);
    }
}

bool info_is_leader(const info_state *state)
{
    return state->has_role &&
           (strcasecmp(state->role, "leader") == 0 || strcasecmp(state->role, "master") == 0);
}
