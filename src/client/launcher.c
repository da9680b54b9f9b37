/*
 * launcher.c -- `raftkv cluster start|stop|status`: a local cluster of raftkvd processes in one
 * directory.
 *
 * DIRECTORY (all paths absolute once resolved):
 *   DIR/peers.json, DIR/raft.json   config files (cluster_files.h), written only when missing
 *   DIR/node-N.pid                   pid of node N, written after a successful exec
 *   DIR/node-N.log                   node N's stdout and stderr (appended across restarts)
 *   DIR/node-N/                      node N's data dir (WAL, snapshots): --data-dir
 *
 * The pid files are the launcher's only memory of what it started: stop signals a pid only when
 * /proc says it is raftkvd started with this DIR's peers file (proc.h), so a stale pid file can
 * never make it kill an unrelated process. start is idempotent: nodes already running are left
 * alone, the others are started, so `start` after a crash brings the missing nodes back.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "cli.h"
#include "cluster_files.h"
#include "proc.h"
#include "status.h"

#define LAUNCH_POLL_MS 100
#define LAUNCH_INFO_TIMEOUT_MS 500
#define LAUNCH_KILL_WAIT_MS 5000

typedef struct cluster {
    char dir[PATH_MAX];
    char peers_path[PATH_MAX + 32];
    char raft_path[PATH_MAX + 32];
    ep_list nodes;
} cluster;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void node_path(const cluster *cl, uint64_t id, const char *suffix, char *out, size_t cap)
{
    snprintf(out, cap, "%s/node-%" PRIu64 "%s", cl->dir, id, suffix);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* One start or stop at a time per directory: two starts at once would each spawn the nodes that
 * are down (two raftkvd on one data directory) and race on the pid files. The lock goes with the
 * process (close-on-exec: the nodes do not inherit it). Returns CLI_EXIT_OK or an exit code. */
static int lock_cluster(const char *dir, const char *verb)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "raftkv: cluster %s: %s: %s\n", verb, path, strerror(errno));
        return CLI_EXIT_UNAVAILABLE;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "raftkv: cluster %s: another raftkv cluster start or stop is running on %s "
                "(it holds %s): try again when it is done\n", verb, dir, path);
        close(fd);
        return CLI_EXIT_UNAVAILABLE;
    }
    return CLI_EXIT_OK; /* fd stays open, and locked, until this process exits */
}

/* Resolves DIR (creating it when create), takes its lock when lock, and loads peers.json when
 * present. Returns an exit code; CLI_EXIT_OK with nodes.count == 0 when there is no peers.json
 * yet. */
static int open_cluster(const cli_opts *opts, bool create, bool lock, cluster *cl)
{
    memset(cl, 0, sizeof *cl);
    if (create && make_dirs(opts->dir) != 0) {
        fprintf(stderr, "raftkv: cluster: cannot create %s: %s\n", opts->dir, strerror(errno));
        return CLI_EXIT_UNAVAILABLE;
    }
    if (!realpath(opts->dir, cl->dir)) {
        if (!create && errno == ENOENT) return CLI_EXIT_OK;
        fprintf(stderr, "raftkv: cluster: %s: %s\n", opts->dir, strerror(errno));
        return CLI_EXIT_UNAVAILABLE;
    }
    if (lock) {
        int code = lock_cluster(cl->dir, create ? "start" : "stop");
        if (code != CLI_EXIT_OK) return code;
    }
    snprintf(cl->peers_path, sizeof cl->peers_path, "%s/peers.json", cl->dir);
    snprintf(cl->raft_path, sizeof cl->raft_path, "%s/raft.json", cl->dir);
    if (!exists(cl->peers_path)) return CLI_EXIT_OK;
    char err[512];
    if (ep_load_peers(cl->peers_path, &cl->nodes, err, sizeof err) != EP_OK) {
        fprintf(stderr, "raftkv: cluster: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* raftkvd: --raftkvd, else next to this binary, else on PATH. */
static int find_daemon(const cli_opts *opts, char *out, size_t cap)
{
    if (opts->raftkvd) {
        if (!proc_executable(opts->raftkvd)) {
            fprintf(stderr, "raftkv: cluster: --raftkvd %s: not an executable file\n", opts->raftkvd);
            return CLI_EXIT_USAGE;
        }
        if (!realpath(opts->raftkvd, out)) snprintf(out, cap, "%s", opts->raftkvd);
        return CLI_EXIT_OK;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(out, cap, "%s/raftkvd", self) < (int)cap && proc_executable(out))
                return CLI_EXIT_OK;
        }
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len > 0) {
            snprintf(out, cap, "%.*s/raftkvd", (int)len, p);
            if (proc_executable(out)) return CLI_EXIT_OK;
        }
        if (!colon) break;
        p = colon + 1;
    }
    fprintf(stderr, "raftkv: cluster: raftkvd not found next to raftkv nor on PATH; give --raftkvd "
                    "PATH (build it with cmake --build)\n");
    return CLI_EXIT_USAGE;
}

/* A port another process already holds (the node would fail to listen): 0 free, -1 taken. */
static int port_taken(const char *host, uint16_t port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return 0; /* not checkable here */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* TIME_WAIT is not "taken" */
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    int saved = errno;
    close(fd);
    return rc != 0 && saved == EADDRINUSE ? -1 : 0;
}

static void print_log_tail(const char *log_path, int max_lines)
{
    FILE *f = fopen(log_path, "r");
    if (!f) return;
    char buf[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long start = size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0;
    fseek(f, start, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    int lines = 0;
    char *p = buf + n;
    while (p > buf) {
        p--;
        if (*p == '\n' && p + 1 < buf + n && ++lines > max_lines) {
            p++;
            break;
        }
    }
    fprintf(stderr, "---- last lines of %s ----\n%s%s", log_path, p, n && buf[n - 1] != '\n' ? "\n" : "");
}

static void print_howto(const cluster *cl, const status_row *rows, int leader)
{
    const ep_node *any = &cl->nodes.nodes[0];
    const ep_node *follower = any;
    for (size_t i = 0; i < cl->nodes.count; i++)
        if ((int)i != leader) {
            follower = &cl->nodes.nodes[i];
            break;
        }
    (void)rows;
    printf("\nTalk to the cluster (any node; followers redirect or forward to the leader):\n");
    printf("  raftkv --peers %s set greeting hello\n", cl->peers_path);
    printf("  raftkv --peers %s get greeting\n", cl->peers_path);
    printf("  raftkv --peers %s status\n", cl->peers_path);
    printf("  printf 'get greeting\\r\\n' | nc -q1 %s %u        (text protocol)\n", follower->host,
           (unsigned)follower->client_port);
    if (follower->resp_port)
        printf("  redis-cli -p %u set greeting hello                 (RESP)\n",
               (unsigned)follower->resp_port);
    printf("Logs: %s/node-N.log   data: %s/node-N/   stop: raftkv cluster stop --dir %s\n", cl->dir,
           cl->dir, cl->dir);
}

/* ---- start ---- */

static int spawn_node(const cluster *cl, const char *daemon, const ep_node *node, pid_t *pid)
{
    char id[24], data_dir[PATH_MAX + 32], log_path[PATH_MAX + 32], pid_path[PATH_MAX + 32];
    char err[PATH_MAX + 128];
    snprintf(id, sizeof id, "%" PRIu64, node->id);
    node_path(cl, node->id, "", data_dir, sizeof data_dir);
    node_path(cl, node->id, ".log", log_path, sizeof log_path);
    node_path(cl, node->id, ".pid", pid_path, sizeof pid_path);
    if (make_dirs(data_dir) != 0) {
        fprintf(stderr, "raftkv: cluster: node %s: cannot create %s: %s\n", id, data_dir,
                strerror(errno));
        return -1;
    }
    char *argv[] = {(char *)daemon, "--id", id, "--peers", (char *)cl->peers_path,
                    "--config", (char *)cl->raft_path, "--data-dir", data_dir, NULL};
    if (proc_spawn(argv, log_path, pid, err, sizeof err) != 0) {
        fprintf(stderr, "raftkv: cluster: node %s: %s\n", id, err);
        return -1;
    }
    if (proc_write_pid(pid_path, *pid, err, sizeof err) != 0) {
        /* Without its pid file nothing could stop it, and it would hold the node's ports. */
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        fprintf(stderr, "raftkv: cluster: node %s: %s; the node was stopped again\n", id, err);
        return -1;
    }
    return 0;
}

static int cluster_start(const cli_opts *opts)
{
    cluster cl;
    int code = open_cluster(opts, true, true, &cl);
    if (code != CLI_EXIT_OK) return code;
    char err[PATH_MAX + 128];
    if (cl.nodes.count == 0) {
        bool keep_raft = exists(cl.raft_path);
        if (cluster_files_write_peers(cl.peers_path, opts->nodes, opts->spares, opts->base_port, err,
                                      sizeof err) ||
            (!keep_raft && cluster_files_write_raft(cl.raft_path, "raftkv", err, sizeof err))) {
            fprintf(stderr, "raftkv: cluster: %s\n", err);
            return CLI_EXIT_UNAVAILABLE;
        }
        if ((code = open_cluster(opts, false, false, &cl)) != CLI_EXIT_OK) return code;
        printf("raftkv: wrote %s (%d nodes%s, ports %d+); %s %s\n", cl.peers_path, opts->nodes,
               opts->spares ? " and spares" : "", opts->base_port,
               keep_raft ? "kept the existing" : "wrote", cl.raft_path);
    } else {
        const ep_node *first = &cl.nodes.nodes[0];
        bool other_ports = opts->has_base_port &&
                           (uint64_t)opts->base_port + first->id != first->client_port;
        if ((opts->has_nodes && (size_t)opts->nodes != cl.nodes.count) || other_ports ||
            opts->spares)
            fprintf(stderr, "raftkv: cluster: %s exists: keeping its %zu nodes and ports "
                            "(--nodes/--base-port apply to a new directory)\n",
                    cl.peers_path, cl.nodes.count);
        if (!exists(cl.raft_path) && cluster_files_write_raft(cl.raft_path, "raftkv", err, sizeof err)) {
            fprintf(stderr, "raftkv: cluster: %s\n", err);
            ep_list_free(&cl.nodes);
            return CLI_EXIT_UNAVAILABLE;
        }
    }
    size_t n = cl.nodes.count;
    pid_t *started = calloc(n, sizeof *started);
    bool *running = calloc(n, sizeof *running);
    if (!started || !running) {
        fprintf(stderr, "raftkv: cluster: out of memory\n");
        code = CLI_EXIT_UNAVAILABLE;
        goto out;
    }
    size_t n_running = 0;
    for (size_t i = 0; i < n; i++) {
        char pid_path[PATH_MAX + 32];
        pid_t pid;
        node_path(&cl, cl.nodes.nodes[i].id, ".pid", pid_path, sizeof pid_path);
        if (proc_read_pid(pid_path, &pid) == 0 && proc_is_our_daemon(pid, cl.peers_path)) {
            running[i] = true;
            n_running++;
        }
    }
    if (n_running == n) {
        printf("raftkv: the cluster in %s is already running (%zu nodes)\n", cl.dir, n);
        status_row *rows = status_collect(&cl.nodes, LAUNCH_INFO_TIMEOUT_MS);
        if (rows) status_print(stdout, rows, n);
        free(rows);
        code = CLI_EXIT_OK;
        goto out;
    }
    char daemon[PATH_MAX];
    if ((code = find_daemon(opts, daemon, sizeof daemon)) != CLI_EXIT_OK) goto out;
    for (size_t i = 0; i < n; i++) {
        const ep_node *node = &cl.nodes.nodes[i];
        if (running[i]) continue;
        const uint16_t ports[] = {node->client_port, node->resp_port, node->peer_port};
        for (size_t k = 0; k < 3; k++) {
            if (ports[k] && port_taken(node->host, ports[k])) {
                fprintf(stderr, "raftkv: cluster: node %" PRIu64 ": port %u on %s is in use by "
                                "another process (pick another --base-port or a new --dir)\n",
                        node->id, (unsigned)ports[k], node->host);
                code = CLI_EXIT_UNAVAILABLE;
                goto out;
            }
        }
    }
    int64_t t0 = now_ms();
    for (size_t i = 0; i < n; i++) {
        if (running[i]) continue;
        if (spawn_node(&cl, daemon, &cl.nodes.nodes[i], &started[i]) != 0) {
            code = CLI_EXIT_UNAVAILABLE;
            fprintf(stderr, "raftkv: cluster: nodes already started keep running; "
                            "`raftkv cluster stop --dir %s` stops them\n", cl.dir);
            goto out;
        }
    }
    printf("raftkv: started");
    for (size_t i = 0; i < n; i++)
        if (started[i]) printf(" node %" PRIu64 " (pid %ld)", cl.nodes.nodes[i].id, (long)started[i]);
    if (n_running) printf("; %zu already running", n_running);
    printf(" in %s\n", cl.dir);
    fflush(stdout);

    /* Wait for a leader, watching our children: a node that exits at once (bad config, port
     * taken) is reported with its log instead of waiting out the whole timeout. */
    int64_t deadline = t0 + (int64_t)opts->wait_s * 1000;
    status_row *rows = NULL;
    int leader = -1;
    for (;;) {
        for (size_t i = 0; i < n; i++) {
            int status;
            if (!started[i] || waitpid(started[i], &status, WNOHANG) != started[i]) continue;
            char log_path[PATH_MAX + 32];
            node_path(&cl, cl.nodes.nodes[i].id, ".log", log_path, sizeof log_path);
            fprintf(stderr, "raftkv: cluster: node %" PRIu64 " (pid %ld) exited with %s %d\n",
                    cl.nodes.nodes[i].id, (long)started[i],
                    WIFEXITED(status) ? "status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            print_log_tail(log_path, 10);
            fprintf(stderr, "raftkv: cluster: the other nodes keep running; "
                            "`raftkv cluster stop --dir %s` stops them\n", cl.dir);
            free(rows);
            code = CLI_EXIT_UNAVAILABLE;
            goto out;
        }
        free(rows);
        rows = status_collect(&cl.nodes, LAUNCH_INFO_TIMEOUT_MS);
        if (!rows) {
            code = CLI_EXIT_UNAVAILABLE;
            goto out;
        }
        leader = status_leader(rows, n);
        /* Also wait for the nodes just started to answer, so the table shows them up. */
        bool started_up = true;
        for (size_t i = 0; i < n; i++)
            if (started[i] && !rows[i].up) started_up = false;
        if ((leader >= 0 && started_up) || now_ms() >= deadline) break;
        sleep_ms(LAUNCH_POLL_MS);
    }
    if (leader >= 0) {
        printf("raftkv: leader is node %" PRIu64 " (term %" PRIu64 "), %" PRId64
               " ms after start\n\n",
               rows[leader].state.has_id ? rows[leader].state.id : cl.nodes.nodes[leader].id,
               rows[leader].state.term, now_ms() - t0);
        status_print(stdout, rows, n);
        print_howto(&cl, rows, leader);
        code = CLI_EXIT_OK;
    } else {
        status_print(stdout, rows, n);
        fprintf(stderr, "raftkv: cluster: no leader after %d s; see %s/node-N.log (the nodes keep "
                        "running)\n", opts->wait_s, cl.dir);
        code = CLI_EXIT_UNAVAILABLE;
    }
    free(rows);
out:
    free(started);
    free(running);
    ep_list_free(&cl.nodes);
    return code;
}

/* ---- stop ---- */

static int cluster_stop(const cli_opts *opts)
{
    cluster cl;
    int code = open_cluster(opts, false, true, &cl);
    if (code != CLI_EXIT_OK) return code;
    if (cl.nodes.count == 0) {
        printf("raftkv: no cluster in %s (no peers.json): nothing to stop\n", opts->dir);
        return CLI_EXIT_OK;
    }
    size_t n = cl.nodes.count;
    pid_t *pids = calloc(n, sizeof *pids);
    if (!pids) {
        ep_list_free(&cl.nodes);
        return CLI_EXIT_UNAVAILABLE;
    }
    size_t signalled = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = cl.nodes.nodes[i].id;
        char pid_path[PATH_MAX + 32];
        pid_t pid;
        node_path(&cl, id, ".pid", pid_path, sizeof pid_path);
        if (proc_read_pid(pid_path, &pid) != 0) continue;
        if (!proc_is_our_daemon(pid, cl.peers_path)) {
            if (proc_running(pid))
                fprintf(stderr, "raftkv: cluster: node %" PRIu64 ": pid %ld is not this cluster's "
                                "raftkvd (pid reused?): left alone\n", id, (long)pid);
            unlink(pid_path); /* stale either way */
            continue;
        }
        if (kill(pid, SIGTERM) == 0) {
            pids[i] = pid;
            signalled++;
        } else {
            fprintf(stderr, "raftkv: cluster: node %" PRIu64 ": kill %ld: %s\n", id, (long)pid,
                    strerror(errno));
        }
    }
    if (signalled == 0) {
        printf("raftkv: no node of %s is running\n", cl.dir);
        free(pids);
        ep_list_free(&cl.nodes);
        return CLI_EXIT_OK;
    }
    /* Graceful first (the nodes finish their fsyncs), SIGKILL only past the timeout. */
    int64_t deadline = now_ms() + (int64_t)opts->stop_timeout_s * 1000;
    bool killed = false;
    for (;;) {
        size_t alive = 0;
        for (size_t i = 0; i < n; i++) {
            if (!pids[i]) continue;
            if (proc_running(pids[i])) alive++;
        }
        if (alive == 0) break;
        if (now_ms() >= deadline) {
            if (killed) break;
            for (size_t i = 0; i < n; i++) {
                if (!pids[i] || !proc_is_our_daemon(pids[i], cl.peers_path)) continue;
                fprintf(stderr, "raftkv: cluster: node %" PRIu64 " (pid %ld) still running after "
                                "%d s: SIGKILL\n", cl.nodes.nodes[i].id, (long)pids[i],
                        opts->stop_timeout_s);
                kill(pids[i], SIGKILL);
            }
            killed = true;
            deadline = now_ms() + LAUNCH_KILL_WAIT_MS;
        }
        sleep_ms(LAUNCH_POLL_MS);
    }
    code = CLI_EXIT_OK;
    printf("raftkv: stopped");
    for (size_t i = 0; i < n; i++) {
        if (!pids[i]) continue;
        char pid_path[PATH_MAX + 32];
        node_path(&cl, cl.nodes.nodes[i].id, ".pid", pid_path, sizeof pid_path);
        if (proc_running(pids[i])) {
            fprintf(stderr, "\nraftkv: cluster: node %" PRIu64 " (pid %ld) would not stop\n",
                    cl.nodes.nodes[i].id, (long)pids[i]);
            code = CLI_EXIT_UNAVAILABLE;
            continue;
        }
        unlink(pid_path);
        printf(" node %" PRIu64, cl.nodes.nodes[i].id);
    }
    printf(" of %s\n", cl.dir);
    free(pids);
    ep_list_free(&cl.nodes);
    return code;
}

/* ---- status ---- */

static int cluster_status(const cli_opts *opts)
{
    cluster cl;
    int code = open_cluster(opts, false, false, &cl);
    if (code != CLI_EXIT_OK) return code;
    if (cl.nodes.count == 0) {
        fprintf(stderr, "raftkv: no cluster in %s (no peers.json); start one with `raftkv cluster "
                        "start --dir %s`\n", opts->dir, opts->dir);
        return CLI_EXIT_UNAVAILABLE;
    }
    size_t own = cl.nodes.count; /* the directory's nodes: those have pid files */
    status_row *rows = status_collect(&cl.nodes, LAUNCH_INFO_TIMEOUT_MS);
    int lead = rows ? status_leader(rows, cl.nodes.count) : -1;
    /* Nodes added by address (`raftkv member add ID HOST:PORTS`) are in no file here: the
     * leader names them, as for `raftkv status`. */
    if (lead >= 0 && status_add_members(&cl.nodes, (size_t)lead, LAUNCH_INFO_TIMEOUT_MS) > 0) {
        free(rows);
        rows = status_collect(&cl.nodes, LAUNCH_INFO_TIMEOUT_MS);
    }
    if (!rows) {
        ep_list_free(&cl.nodes);
        return CLI_EXIT_UNAVAILABLE;
    }
    status_print(stdout, rows, cl.nodes.count);
    bool out_failed = fflush(stdout) != 0 || ferror(stdout);
    if (out_failed) fprintf(stderr, "raftkv: stdout: %s\n", strerror(errno ? errno : EIO));
    for (size_t i = 0; i < own; i++) {
        char pid_path[PATH_MAX + 32];
        pid_t pid;
        node_path(&cl, cl.nodes.nodes[i].id, ".pid", pid_path, sizeof pid_path);
        if (proc_read_pid(pid_path, &pid) != 0 || !proc_is_our_daemon(pid, cl.peers_path))
            fprintf(stderr, "raftkv: node %" PRIu64 ": no raftkvd process (%s)\n",
                    cl.nodes.nodes[i].id, pid_path);
    }
    bool leader = status_leader(rows, cl.nodes.count) >= 0;
    if (!leader) fprintf(stderr, "raftkv: cluster: no node reports itself leader\n");
    code = leader && !out_failed ? CLI_EXIT_OK : CLI_EXIT_UNAVAILABLE;
    free(rows);
    ep_list_free(&cl.nodes);
    return code;
}

int cli_cluster(const cli_opts *opts)
{
    if (opts->nargs != 1) {
        fprintf(stderr, "raftkv: cluster: expected start, stop or status\n(raftkv --help for usage)\n");
        return CLI_EXIT_USAGE;
    }
    const char *verb = opts->args[0];
    if (opts->cluster || opts->peers) {
        fprintf(stderr, "raftkv: cluster %s: --cluster/--peers do not apply (use --dir)\n", verb);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(verb, "start") == 0) return cluster_start(opts);
    if (strcmp(verb, "stop") == 0) return cluster_stop(opts);
    if (strcmp(verb, "status") == 0) return cluster_status(opts);
    fprintf(stderr, "raftkv: cluster: unknown action '%s' (start, stop or status)\n", verb);
    return CLI_EXIT_USAGE;
}
