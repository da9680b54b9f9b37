/* log.c -- one formatted line per event, one write(2) per line (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t log_node_id;
static int log_fd = 2;

void log_init(uint64_t node_id, int fd)
{
    log_node_id = node_id;
    log_fd = fd;
}

void log_printf(const char *fmt, ...)
{
    char line[1100];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    int len = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ node=%llu ",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, now.tv_nsec / 1000000L, (unsigned long long)log_node_id);
    size_t used = len > 0 ? (size_t)len : 0;
    va_list ap;
    va_start(ap, fmt);
    int body = vsnprintf(line + used, 1024, fmt, ap);
    va_end(ap);
    if (body < 0)
        body = 0;
    if (body >= 1024) {
        used += 1023;
        memcpy(line + used - 3, "...", 3);
    } else {
        used += (size_t)body;
    }
    line[used++] = '\n';
    /* A log line that cannot be written is not worth stopping the node for. */
    ssize_t rc = write(log_fd, line, used);
    (void)rc;
}
