/*
 * conn.h -- one blocking TCP connection of the raftkv client, with timeouts and a read buffer.
 *
 * The CLI talks to one node at a time and waits for every reply, so a blocking socket guarded by
 * poll() is the simplest thing that can never hang: every call gets its own deadline of
 * timeout_ms (connect, each write, each read), and a peer that stops talking yields CONN_ETIMEOUT.
 *
 * READS. conn_read_line() returns the next line without its "\r\n" (a bare "\n" is accepted);
 * lines longer than CONN_MAX_LINE are an error (a server never sends one; refusing bounds memory).
 * conn_read_exact() reads raw bytes (values are binary-safe), draining the buffer first.
 *
 * ERRORS. Every function returns CONN_OK or a negative CONN_E* code and leaves a message naming the
 * address and what failed in conn_errmsg() (or in the caller's buffer for conn_open).
 *
 * OWNERSHIP. conn_open allocates the conn; conn_close frees it (NULL ok). A line returned by
 * conn_read_line points into the conn's buffer and is valid until the next call on that conn.
 * THREADS. One conn is used by one thread.
 */
#ifndef RAFTKV_CONN_H
#define RAFTKV_CONN_H

#include <stddef.h>
#include <stdint.h>

#define CONN_MAX_LINE 65536

enum {
    CONN_OK = 0,
    CONN_ECONNECT = -1, /* could not connect (refused, unreachable, unknown host) */
    CONN_ETIMEOUT = -2, /* no progress within timeout_ms */
    CONN_ECLOSED = -3,  /* the server closed the connection */
    CONN_EIO = -4,      /* any other socket error */
    CONN_ELINE = -5,    /* a reply line longer than CONN_MAX_LINE */
    CONN_ENOMEM = -6,
    CONN_EANSWERED = -7, /* conn_write_all: the server answered before taking it all (a refusal:
                            read its reply) */
};

typedef struct conn conn;

/* Resolves host (name or address), connects within timeout_ms. On failure *out is NULL and err
 * holds "connect HOST:PORT: reason". */
int conn_open(const char *host, uint16_t port, int timeout_ms, conn **out, char *err,
              size_t errcap);
void conn_close(conn *c);

int conn_write_all(conn *c, const void *buf, size_t len);
int conn_read_line(conn *c, const char **line, size_t *len);
int conn_read_exact(conn *c, uint8_t *dst, size_t len);

/* Changes the timeout of the calls that follow (a short probe, then the request's own). */
void conn_set_timeout(conn *c, int timeout_ms);

const char *conn_errmsg(const conn *c);
/* "host:port" of this connection, for messages. */
const char *conn_addr(const conn *c);

#endif /* RAFTKV_CONN_H */
