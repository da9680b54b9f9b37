/*
 * proc.h -- the launcher's process handling: pid files, "is this pid still our raftkvd?", and
 * starting a daemon in the background.
 *
 * IDENTITY. A pid file can outlive its process and the pid can be reused by anything. Before it
 * signals a pid the launcher checks /proc/PID/cmdline: argv[0] must be named "raftkvd" (or argv[1],
 * for a raftkvd script run by its interpreter) and one of the arguments must be exactly the peers
 * file path this cluster passes to its nodes (an absolute path). A zombie counts as not running.
 *
 * ERRORS. Functions return 0 or -1; those with err fill it with a message naming the file or pid.
 * THREADS. Single-threaded use (proc_spawn forks).
 */
#ifndef RAFTKV_PROC_H
#define RAFTKV_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* 0 with *pid > 0, or -1 when the file is missing or does not hold a pid. */
int proc_read_pid(const char *path, pid_t *pid);
/* Writes "PID\n" atomically (temp file + rename). */
int proc_write_pid(const char *path, pid_t pid, char *err, size_t errcap);

/* The process exists and is not a zombie. */
bool proc_running(pid_t pid);
/* proc_running(pid), and its cmdline is raftkvd with must_have_arg among its arguments. */
bool proc_is_our_daemon(pid_t pid, const char *must_have_arg);

/* Starts argv[0] (a path) with argv in a new session, stdin from /dev/null, stdout and stderr
 * appended to log_path. Returns 0 with *pid once exec succeeded; -1 with err when the log cannot
 * be opened or exec failed (err then carries exec's reason). */
int proc_spawn(char *const argv[], const char *log_path, pid_t *pid, char *err, size_t errcap);

/* True when the file at path exists and is executable. */
bool proc_executable(const char *path);

#endif /* RAFTKV_PROC_H */
