/*
 * log.h -- the daemon's event log: one line per event on stderr,
 *
 *     2026-11-24T11:40:02.123Z node=2 role follower -> leader (term 5)
 *
 * with a UTC timestamp (ms) and the node id, so the logs of a cluster can be merged with `sort`.
 * Role and term changes, snapshot installs, truncations, peer connects/disconnects and handshake
 * refusals are each one readable line (callers word them; this module only formats).
 *
 * THREADS. log_printf may be called from any thread (the disk thread logs too): each line is
 * formatted into a local buffer and written with one write(2), so lines never interleave.
 * log_init is called once, before any other thread starts.
 */
#ifndef RAFTKV_LOG_H
#define RAFTKV_LOG_H

#include <stdint.h>

/* Sets the node id printed on every line (0 before the config is known) and the output fd. */
void log_init(uint64_t node_id, int fd);

/* One line; a trailing newline is added. Longer than 1 KiB: truncated with "...". */
void log_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* RAFTKV_LOG_H */
