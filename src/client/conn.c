/*
 * conn.c -- blocking TCP with poll() deadlines (see conn.h).
 *
 * The read buffer holds at most one line plus whatever the server sent after it; [start, end) are
 * the unread bytes. It is compacted only when a line does not fit after start, so a long stream of
 * small replies never moves memory twice.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_BUF_CAP (CONN_MAX_LINE + 4096)

struct conn {
    int fd;
    int timeout_ms;
    char addr[300];
    char errmsg[600];
    uint8_t *buf;
    size_t start, end;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(conn *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(conn *c, int rc, const char *fmt, ...)
{
    char what[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    snprintf(c->errmsg, sizeof c->errmsg, "%s: %s", c->addr, what);
    return rc;
}

/* Waits until fd is ready for events or the deadline passes: the ready events (> 0), 0 on
 * timeout, -1 on error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0) return pfd.revents ? pfd.revents : events;
        if (rc == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

/* Non-blocking connect bounded by deadline; returns a connected blocking-mode-agnostic fd or -1. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *err_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        *err_out = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    if (errno != EINPROGRESS) {
        *err_out = errno;
        close(fd);
        return -1;
    }
    int ready = wait_fd(fd, POLLOUT, deadline);
    if (ready <= 0) {
        *err_out = ready == 0 ? ETIMEDOUT : errno;
        close(fd);
        return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        *err_out = soerr ? soerr : errno;
        close(fd);
        return -1;
    }
    return fd;
}

void conn_set_timeout(conn *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms;
}

int conn_open(const char *host, uint16_t port, int timeout_ms, conn **out, char *err,
              size_t errcap)
{
    *out = NULL;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        snprintf(err, errcap, "%s:%u: cannot resolve host: %s", host, (unsigned)port,
                 gai_strerror(gai));
        return CONN_ECONNECT;
    }
    int64_t deadline = now_ms() + timeout_ms;
    int fd = -1, last_err = ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline, &last_err);
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errcap, "%s:%u: cannot connect: %s", host, (unsigned)port,
                 last_err == ETIMEDOUT ? "timed out" : strerror(last_err));
        return last_err == ETIMEDOUT ? CONN_ETIMEOUT : CONN_ECONNECT;
    }
    int one = 1;
    /* Requests are small and we wait for each reply: Nagle would only add latency. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    conn *c = calloc(1, sizeof *c);
    uint8_t *buf = malloc(CONN_BUF_CAP);
    if (!c || !buf) {
        free(c);
        free(buf);
        close(fd);
        snprintf(err, errcap, "%s:%u: out of memory", host, (unsigned)port);
        return CONN_ENOMEM;
    }
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    c->buf = buf;
    snprintf(c->addr, sizeof c->addr, "%s:%u", host, (unsigned)port);
    *out = c;
    return CONN_OK;
}

void conn_close(conn *c)
{
    if (!c) return;
    close(c->fd);
    free(c->buf);
    free(c);
}

const char *conn_errmsg(const conn *c) { return c->errmsg; }
const char *conn_addr(const conn *c) { return c->addr; }

int conn_write_all(conn *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int64_t deadline = now_ms() + c->timeout_ms;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            deadline = now_ms() + c->timeout_ms; /* the deadline bounds a stall, not a big value */
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A server that answers a request before it has all of it refused it (a value over
             * its limit): stop sending and let the caller read why, before the server's close
             * turns into a reset that would lose the answer. */
            int ready = wait_fd(c->fd, POLLOUT | POLLIN, deadline);
            if (ready == 0) return fail(c, CONN_ETIMEOUT, "send timed out after %d ms", c->timeout_ms);
            if (ready < 0) return fail(c, CONN_EIO, "poll: %s", strerror(errno));
            if (ready & POLLIN)
                return fail(c, CONN_EANSWERED, "the server answered before the request was sent");
            continue;
        }
        if (errno == EPIPE || errno == ECONNRESET)
            return fail(c, CONN_ECLOSED, "connection closed by the server while sending");
        return fail(c, CONN_EIO, "send: %s", strerror(errno));
    }
    return CONN_OK;
}

/* Reads more bytes after end; compacts first when the buffer's tail is full. */
static int fill(conn *c)
{
    if (c->end == CONN_BUF_CAP) {
        if (c->start == 0) return fail(c, CONN_ELINE, "reply line longer than %d bytes", CONN_MAX_LINE);
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    int64_t deadline = now_ms() + c->timeout_ms;
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->end, CONN_BUF_CAP - c->end, MSG_DONTWAIT);
        if (n > 0) {
            c->end += (size_t)n;
            return CONN_OK;
        }
        if (n == 0) return fail(c, CONN_ECLOSED, "connection closed by the server");
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int ready = wait_fd(c->fd, POLLIN, deadline);
            if (ready == 0)
                return fail(c, CONN_ETIMEOUT, "no reply within %d ms", c->timeout_ms);
            if (ready < 0) return fail(c, CONN_EIO, "poll: %s", strerror(errno));
            continue;
        }
        if (errno == ECONNRESET) return fail(c, CONN_ECLOSED, "connection reset by the server");
        return fail(c, CONN_EIO, "recv: %s", strerror(errno));
    }
}

int conn_read_line(conn *c, const char **line, size_t *len)
{
    size_t scanned = c->start;
    for (;;) {
        uint8_t *nl = memchr(c->buf + scanned, '\n', c->end - scanned);
        if (nl) {
            size_t n = (size_t)(nl - (c->buf + c->start));
            if (n > CONN_MAX_LINE)
                return fail(c, CONN_ELINE, "reply line longer than %d bytes", CONN_MAX_LINE);
            *line = (const char *)c->buf + c->start;
            *len = (n > 0 && c->buf[c->start + n - 1] == '\r') ? n - 1 : n;
            c->start += n + 1;
            return CONN_OK;
        }
        size_t before = c->start;
        scanned = c->end;
        int rc = fill(c);
        if (rc != CONN_OK) return rc;
        scanned -= before - c->start; /* fill may have moved the unread bytes to the front */
    }
}

int conn_read_exact(conn *c, uint8_t *dst, size_t len)
{
    size_t have = c->end - c->start;
    size_t take = have < len ? have : len;
    if (take) memcpy(dst, c->buf + c->start, take);
    c->start += take;
    dst += take;
    len -= take;
    if (c->start == c->end) c->start = c->end = 0;
    int64_t deadline = now_ms() + c->timeout_ms;
    while (len > 0) {
        ssize_t n = recv(c->fd, dst, len, MSG_DONTWAIT);
        if (n > 0) {
            dst += n;
            len -= (size_t)n;
            deadline = now_ms() + c->timeout_ms;
            continue;
        }
        if (n == 0) return fail(c, CONN_ECLOSED, "connection closed by the server in a value");
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int ready = wait_fd(c->fd, POLLIN, deadline);
            if (ready == 0) return fail(c, CONN_ETIMEOUT, "no reply within %d ms", c->timeout_ms);
            if (ready < 0) return fail(c, CONN_EIO, "poll: %s", strerror(errno));
            continue;
        }
        if (errno == ECONNRESET) return fail(c, CONN_ECLOSED, "connection reset by the server");
        return fail(c, CONN_EIO, "recv: %s", strerror(errno));
    }
    return CONN_OK;
}
