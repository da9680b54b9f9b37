/*
 * proc.c -- pid files, /proc checks and background spawning (see proc.h).
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int proc_read_pid(const char *path, pid_t *pid)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long value = 0;
    int n = fscanf(f, "%ld", &value);
    fclose(f);
    if (n != 1 || value <= 1 || value > 0x3fffffff) return -1;
    *pid = (pid_t)value;
    return 0;
}

int proc_write_pid(const char *path, pid_t pid, char *err, size_t errcap)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errcap, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "%ld\n", (long)pid);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errcap, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

bool proc_running(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may hold spaces and parens, the state follows the last ')'. */
    char *close = strrchr(buf, ')');
    if (!close || close[1] != ' ') return false;
    char state = close[2];
    return state != 'Z' && state != 'X' && state != 'x';
}

bool proc_is_our_daemon(pid_t pid, const char *must_have_arg)
{
    if (!proc_running(pid)) return false;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char buf[8192]; /* raftkvd's command line is a few paths and flags */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n == 0) return false;
    buf[n] = '\0';
    /* argv[0] is raftkvd, or argv[1] is when an interpreter runs a raftkvd script. */
    bool named = false, has_arg = false;
    size_t index = 0;
    for (size_t off = 0; off < n; off += strlen(buf + off) + 1, index++) {
        const char *arg = buf + off;
        if (index < 2) {
            const char *slash = strrchr(arg, '/');
            if (strcmp(slash ? slash + 1 : arg, "raftkvd") == 0) named = true;
        }
        if (strcmp(arg, must_have_arg) == 0) has_arg = true;
    }
    return named && has_arg;
}

bool proc_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int proc_spawn(char *const argv[], const char *log_path, pid_t *pid, char *err, size_t errcap)
{
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        snprintf(err, errcap, "%s: cannot open: %s", log_path, strerror(errno));
        return -1;
    }
    /* exec failure is reported through a close-on-exec pipe: EOF means exec succeeded. */
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        snprintf(err, errcap, "pipe: %s", strerror(errno));
        close(log_fd);
        return -1;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        snprintf(err, errcap, "fork: %s", strerror(errno));
        close(log_fd);
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (child == 0) {
        close(report[0]);
        setsid(); /* a Ctrl-C in the launcher's terminal must not reach the nodes */
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        int code = errno;
        ssize_t ignored = write(report[1], &code, sizeof code);
        (void)ignored;
        _exit(127);
    }
    close(log_fd);
    close(report[1]);
    int code = 0;
    ssize_t n;
    do {
        n = read(report[0], &code, sizeof code);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof code) {
        waitpid(child, NULL, 0);
        snprintf(err, errcap, "%s: cannot execute: %s", argv[0], strerror(code));
        return -1;
    }
    *pid = child;
    return 0;
}
