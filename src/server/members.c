/*
 * members.c -- the replicated address book (members.h).
 */
#include "members.h"

#include <stdio.h>
#include <string.h>

#include "crc32c.h"

static void le_put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#define MAX_ID (1ull << 53)

bool members_peer_valid(const node_peer *p)
{
    if (p->id == 0 || p->id > MAX_ID || p->peer_port == 0 || p->client_port == 0 ||
        p->resp_port == 0)
        return false;
    size_t len = strnlen(p->host, sizeof p->host);
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p->host[i] <= ' ' || (unsigned char)p->host[i] >= 0x7f ||
            p->host[i] == '"' || p->host[i] == '\\')
            return false; /* printed into JSON peers files as is */
    return true;
}

size_t members_encode(const node_peer *peers, uint32_t n, uint8_t *buf, size_t cap)
{
    if (n == 0 || n > RAFT_MAX_NODES)
        return 0;
    size_t need = 2;
    for (uint32_t i = 0; i < n; i++) {
        if (!members_peer_valid(&peers[i]))
            return 0;
        for (uint32_t j = 0; j < i; j++)
            if (peers[j].id == peers[i].id)
                return 0;
        need += 8 + 6 + 1 + 1 + strlen(peers[i].host);
    }
    if (need > cap)
        return 0;
    uint8_t *p = buf;
    *p++ = MEMBERS_VERSION;
    *p++ = (uint8_t)n;
    for (uint32_t i = 0; i < n; i++) {
        size_t hl = strlen(peers[i].host);
        le_put(p, peers[i].id, 8);
        le_put(p + 8, peers[i].peer_port, 2);
        le_put(p + 10, peers[i].client_port, 2);
        le_put(p + 12, peers[i].resp_port, 2);
        p[14] = peers[i].given ? MEMBERS_GIVEN : 0;
        p[15] = (uint8_t)hl;
        memcpy(p + 16, peers[i].host, hl);
        p += 16 + hl;
    }
    return need;
}

int members_decode(const uint8_t *buf, size_t len, node_peer *out, uint32_t *n, char *err,
                   size_t errlen)
{
    *n = 0;
    if (len < 2) {
        snprintf(err, errlen, "members: %zu bytes, too short for a header", len);
        return -1;
    }
    if (buf[0] != 1 && buf[0] != MEMBERS_VERSION) {
        snprintf(err, errlen, "members: version %u (this build reads 1 and %u)", buf[0],
                 MEMBERS_VERSION);
        return -1;
    }
    size_t flags = buf[0] >= 2 ? 1 : 0; /* version 2: a flags byte before host_len */
    uint32_t count = buf[1];
    if (count == 0 || count > RAFT_MAX_NODES) {
        snprintf(err, errlen, "members: %u nodes (1..%u)", count, RAFT_MAX_NODES);
        return -1;
    }
    size_t off = 2;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < 15 + flags) {
            snprintf(err, errlen, "members: node %u at offset %zu: truncated", i, off);
            return -1;
        }
        node_peer *p = &out[i];
        memset(p, 0, sizeof *p);
        p->id = le_get(buf + off, 8);
        p->peer_port = (uint16_t)le_get(buf + off + 8, 2);
        p->client_port = (uint16_t)le_get(buf + off + 10, 2);
        p->resp_port = (uint16_t)le_get(buf + off + 12, 2);
        if (flags && (buf[off + 14] & ~MEMBERS_GIVEN) != 0) {
            snprintf(err, errlen, "members: node %u at offset %zu: unknown flags 0x%02x", i, off,
                     buf[off + 14]);
            return -1;
        }
        p->given = flags && (buf[off + 14] & MEMBERS_GIVEN) != 0;
        size_t hl = buf[off + 14 + flags];
        if (hl == 0 || len - off - 15 - flags < hl) {
            snprintf(err, errlen, "members: node %u at offset %zu: host length %zu%s", i, off, hl,
                     hl == 0 ? "" : " runs past the end");
            return -1;
        }
        memcpy(p->host, buf + off + 15 + flags, hl);
        p->host[hl] = '\0';
        p->spare = true;
        p->learned = true;
        if (strlen(p->host) != hl || !members_peer_valid(p)) { /* a NUL would shorten the host */
            snprintf(err, errlen, "members: node %u at offset %zu: id %llu, ports %u/%u/%u or "
                     "host not valid", i, off, (unsigned long long)p->id, p->peer_port,
                     p->client_port, p->resp_port);
            return -1;
        }
        for (uint32_t j = 0; j < i; j++)
            if (out[j].id == p->id) {
                snprintf(err, errlen, "members: node %llu listed twice",
                         (unsigned long long)p->id);
                return -1;
            }
        off += 15 + flags + hl;
    }
    if (off != len) {
        snprintf(err, errlen, "members: %zu bytes after the last node", len - off);
        return -1;
    }
    *n = count;
    return 0;
}

static bool has_id(const node_peer *peers, uint32_t n, raft_id id)
{
    for (uint32_t i = 0; i < n; i++)
        if (peers[i].id == id)
            return true;
    return false;
}

int members_merge(node_peer *into, uint32_t *n_into, const node_peer *from, uint32_t n_from,
                  node_peer *added)
{
    uint32_t fresh = 0;
    for (uint32_t i = 0; i < n_from; i++)
        if (!has_id(into, *n_into, from[i].id) && !has_id(from, i, from[i].id))
            fresh++;
    if (*n_into + fresh > RAFT_MAX_NODES)
        return -1;
    int count = 0;
    for (uint32_t i = 0; i < n_from; i++) {
        if (has_id(into, *n_into, from[i].id))
            continue;
        uint32_t at = *n_into;
        while (at > 0 && into[at - 1].id > from[i].id) {
            into[at] = into[at - 1];
            at--;
        }
        into[at] = from[i];
        into[at].spare = true;
        into[at].learned = true;
        (*n_into)++;
        if (added != NULL)
            added[count] = into[at];
        count++;
    }
    return count;
}

size_t members_snap_encode(const node_peer *peers, uint32_t n, uint8_t *buf, size_t cap)
{
    if (cap < MEMBERS_SNAP_OVERHEAD)
        return 0;
    size_t len = members_encode(peers, n, buf + 8, cap - MEMBERS_SNAP_OVERHEAD);
    if (len == 0)
        return 0;
    le_put(buf, MEMBERS_SNAP_MAGIC, 4);
    le_put(buf + 4, len, 4);
    le_put(buf + 8 + len, crc32c(0, buf + 8, len), 4);
    return len + MEMBERS_SNAP_OVERHEAD;
}

int members_snap_parse(const uint8_t *buf, size_t len, node_peer *out, uint32_t *n,
                       size_t *consumed, char *err, size_t errlen)
{
    *n = 0;
    *consumed = 0;
    if (len < 4 || le_get(buf, 4) != MEMBERS_SNAP_MAGIC)
        return MEMBERS_SNAP_ABSENT;
    if (len < 8) {
        snprintf(err, errlen, "members: the book's header is cut short (%zu bytes)", len);
        return MEMBERS_SNAP_CORRUPT;
    }
    size_t book = (size_t)le_get(buf + 4, 4);
    if (book > MEMBERS_MAX_BYTES || len - 8 < book + 4) {
        snprintf(err, errlen, "members: book length %zu (at most %d, %zu bytes there)", book,
                 MEMBERS_MAX_BYTES, len - 8);
        return MEMBERS_SNAP_CORRUPT;
    }
    uint32_t want = (uint32_t)le_get(buf + 8 + book, 4);
    uint32_t got = crc32c(0, buf + 8, book);
    if (want != got) {
        snprintf(err, errlen, "members: book checksum mismatch (stored %08x, computed %08x)",
                 want, got);
        return MEMBERS_SNAP_CORRUPT;
    }
    if (members_decode(buf + 8, book, out, n, err, errlen) != 0)
        return MEMBERS_SNAP_CORRUPT;
    *consumed = book + MEMBERS_SNAP_OVERHEAD;
    return MEMBERS_SNAP_FOUND;
}
