/*
 * sim_main.c -- the raftkv-sim / raftkv-sim-bugs command line.
 *
 *   raftkv-sim --seeds N --from S [--nodes K] [--profile P] [--jobs J] [--trace] [--quiet]
 *              [--process-exits] [--no-storage-workarounds] [--fast]
 *   raftkv-sim --demo
 *   raftkv-sim-bugs --bug NAME --expect CHECK[,CHECK] --seeds N --from S [--jobs J] ...
 *
 * --jobs forks J worker processes that take seeds S+j, S+j+J, ...; their totals come back through
 * a shared anonymous mapping. The last line is always "sim: N seeds, V violations, X steps, T s"
 * (V counts seeds with a violation); the exit code is 1 on any violation. In bug mode (built with
 * SIM_WITH_BUGS, linked with raftcore_bugs) the exit code is 0 iff some seed violated one of the
 * expected checks, and that seed is printed; workers stop as soon as one finds it.
 */
#include "sim.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef SIM_WITH_BUGS
#define SIM_PROGRAM "raftkv-sim-bugs"
#else
#define SIM_PROGRAM "raftkv-sim"
#endif

/* Bugs in the core (RAFT_BUG_*) or in the harness's disk (SIM_BUG_*). */
static const struct {
    const char *name;
    uint32_t bit;
    uint32_t harness_bit;
} bug_names[] = {
    {"COMMIT_OLD_TERM", RAFT_BUG_COMMIT_OLD_TERM, 0},
    {"VOTE_ANY_LOG", RAFT_BUG_VOTE_ANY_LOG, 0},
    {"DOUBLE_VOTE", RAFT_BUG_DOUBLE_VOTE, 0},
    {"READ_NO_CONFIRM", RAFT_BUG_READ_NO_CONFIRM, 0},
    {"SKIP_PREV_CHECK", RAFT_BUG_SKIP_PREV_CHECK, 0},
    {"COMMIT_REGRESS", RAFT_BUG_COMMIT_REGRESS, 0},
    {"NO_HEARTBEAT", RAFT_BUG_NO_HEARTBEAT, 0},
    {"CONF_ANY", RAFT_BUG_CONF_ANY, 0},
    {"FAST_NO_RECOVERY", RAFT_BUG_FAST_NO_RECOVERY, 0},
    {"FAST_READ_COMMIT", RAFT_BUG_FAST_READ_COMMIT, 0},
    {"FAST_PROPOSE_EARLY", RAFT_BUG_FAST_PROPOSE_EARLY, 0},
    {"FAST_CONF_CHANGE", RAFT_BUG_FAST_CONF_CHANGE, 0},
    {"LEARNER_CAMPAIGNS", RAFT_BUG_LEARNER_CAMPAIGNS, 0},
    {"LYING_FSYNC", 0, SIM_BUG_LYING_FSYNC},
};

typedef struct worker_result {
    uint64_t seeds, violations, steps;
    sim_disk_stats disk;
    sim_member_stats member;
    sim_fast_stats fast;
    uint64_t found_seed;   /* bug mode: a seed that violated an expected check */
    uint64_t current_seed; /* the seed being run, to name it if the worker dies */
    int found;
} worker_result;

typedef struct shared_area {
    int found;
    worker_result results[]; /* one per worker */
} shared_area;

typedef struct cli {
    uint64_t from, seeds;
    int jobs;
    bool quiet;
    uint32_t expect_mask; /* bug mode when != 0 */
    const char *bug_name;
    sim_options opt;
} cli;

static void usage(void)
{
    fprintf(stderr,
            "usage: %s --seeds N --from S [--nodes 3|5|7] [--profile P] [--jobs J] [--trace] "
            "[--quiet] [--process-exits] [--no-storage-workarounds] [--fast]\n"
            "       %s --demo\n"
            "       %s --bug NAME --expect CHECK[,CHECK] --seeds N --from S [--jobs J]\n"
            "profiles: calm lossy partitions crashes everything churn\n"
            "checks: election-safety log-matching leader-completeness state-machine-safety\n"
            "        commit-monotonic stale-read liveness contract durability fast-path\n"
            "--fast: the fast path on every seed (else on a third)\n",
            SIM_PROGRAM, SIM_PROGRAM, SIM_PROGRAM);
}

static bool parse_u64(const char *flag, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text ? text : "", &end, 10);
    if (!text || errno || *end || end == text) {
        fprintf(stderr, "%s: %s needs a number, got '%s'\n", SIM_PROGRAM, flag,
                text ? text : "(nothing)");
        return false;
    }
    *out = value;
    return true;
}

static bool parse_args(int argc, char **argv, cli *c)
{
    memset(c, 0, sizeof(*c));
    c->from = 1;
    c->seeds = 1;
    c->jobs = 1;
    c->opt.profile = -1;
    c->opt.fault_ticks = 400;
    c->opt.liveness_ticks = 500;
    c->opt.stable_ticks = 60;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t number;
        if (strcmp(arg, "--seeds") == 0 || strcmp(arg, "--from") == 0 ||
            strcmp(arg, "--jobs") == 0 || strcmp(arg, "--nodes") == 0 ||
            strcmp(arg, "--fault-ticks") == 0 || strcmp(arg, "--liveness-ticks") == 0) {
            if (!parse_u64(arg, value, &number))
                return false;
            i++;
            if (strcmp(arg, "--seeds") == 0)
                c->seeds = number;
            else if (strcmp(arg, "--from") == 0)
                c->from = number;
            else if (strcmp(arg, "--jobs") == 0)
                c->jobs = number < 1 ? 1 : number > 64 ? 64 : (int)number;
            else if (strcmp(arg, "--nodes") == 0) {
                if (number < 1 || number > SIM_MAX_NODES) {
                    fprintf(stderr, "%s: --nodes must be 1..%d, got %llu\n", SIM_PROGRAM,
                            SIM_MAX_NODES, (unsigned long long)number);
                    return false;
                }
                c->opt.nodes = (int)number;
            } else if (strcmp(arg, "--fault-ticks") == 0)
                c->opt.fault_ticks = (uint32_t)number;
            else
                c->opt.liveness_ticks = (uint32_t)number;
        } else if (strcmp(arg, "--profile") == 0) {
            c->opt.profile = sim_profile_parse(value ? value : "");
            if (c->opt.profile < 0) {
                fprintf(stderr, "%s: unknown --profile '%s'\n", SIM_PROGRAM, value ? value : "");
                return false;
            }
            i++;
        } else if (strcmp(arg, "--bug") == 0) {
#ifndef SIM_WITH_BUGS
            fprintf(stderr,
                    "%s: --bug needs the core built with RAFT_TEST_BUGS: use "
                    "raftkv-sim-bugs\n",
                    SIM_PROGRAM);
            return false;
#endif
            const char *name = value ? value : "";
            if (strncasecmp(name, "RAFT_BUG_", 9) == 0)
                name += 9;
            bool known = false;
            for (size_t b = 0; b < sizeof(bug_names) / sizeof(bug_names[0]); b++) {
                if (strcasecmp(name, bug_names[b].name) == 0) {
                    c->opt.test_bugs |= bug_names[b].bit;
                    c->opt.harness_bugs |= bug_names[b].harness_bit;
                    c->bug_name = bug_names[b].name;
                    known = true;
                }
            }
            if (!known) {
                fprintf(stderr, "%s: unknown --bug '%s'\n", SIM_PROGRAM, value ? value : "");
                return false;
            }
            i++;
        } else if (strcmp(arg, "--expect") == 0) {
            char list[256];
            snprintf(list, sizeof(list), "%s", value ? value : "");
            for (char *save, *tok = strtok_r(list, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                int check = sim_check_parse(tok);
                if (check < 0) {
                    fprintf(stderr, "%s: unknown check '%s' in --expect\n", SIM_PROGRAM, tok);
                    return false;
                }
                c->expect_mask |= 1u << check;
            }
            i++;
        } else if (strcmp(arg, "--trace") == 0) {
            c->opt.trace = true;
        } else if (strcmp(arg, "--process-exits") == 0) {
            c->opt.process_exits = true;
        } else if (strcmp(arg, "--fast") == 0) {
            c->opt.fast = true;
        } else if (strcmp(arg, "--no-storage-workarounds") == 0) {
            c->opt.no_storage_workarounds = true;
        } else if (strcmp(arg, "--quiet") == 0) {
            c->quiet = true;
        } else if (strcmp(arg, "--demo") == 0) {
            c->opt.demo = true;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage();
            exit(0);
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", SIM_PROGRAM, arg);
            usage();
            return false;
        }
    }
    if ((c->expect_mask != 0) != (c->opt.test_bugs != 0 || c->opt.harness_bugs != 0)) {
        fprintf(stderr, "%s: --bug and --expect go together\n", SIM_PROGRAM);
        return false;
    }
    return true;
}

/* "<dir>/raftkv-sim[-bugs] [--bug X] [--nodes K] [--profile P]" for replay lines. */
static void build_replay(const cli *c, char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        snprintf(exe, sizeof(exe), "./%s", SIM_PROGRAM);
    else
        exe[n] = '\0';
    size_t used = (size_t)snprintf(buf, len, "%s", exe);
    if (c->bug_name)
        used += (size_t)snprintf(buf + used, len - used, " --bug %s", c->bug_name);
    if (c->opt.nodes)
        used += (size_t)snprintf(buf + used, len - used, " --nodes %d", c->opt.nodes);
    if (c->opt.profile >= 0)
        used += (size_t)snprintf(buf + used, len - used, " --profile %s",
                                 sim_profile_name(c->opt.profile));
    if (c->opt.fault_ticks != 400)
        used += (size_t)snprintf(buf + used, len - used, " --fault-ticks %u", c->opt.fault_ticks);
    if (c->opt.liveness_ticks != 500 && used < len)
        used += (size_t)snprintf(buf + used, len - used, " --liveness-ticks %u",
                                 c->opt.liveness_ticks);
    if (c->opt.process_exits && used < len)
        used += (size_t)snprintf(buf + used, len - used, " --process-exits");
    if (c->opt.no_storage_workarounds && used < len)
        used += (size_t)snprintf(buf + used, len - used, " --no-storage-workarounds");
    if (c->opt.fast && used < len)
        snprintf(buf + used, len - used, " --fast");
}

static void run_worker(const cli *c, int worker, worker_result *out, volatile int *found_flag)
{
    for (uint64_t seed = c->from + (uint64_t)worker; seed < c->from + c->seeds;
         seed += (uint64_t)c->jobs) {
        if (c->expect_mask && *found_flag)
            break;
        sim_result res;
        out->current_seed = seed;
        sim_run_seed(&c->opt, seed, &res);
        out->seeds++;
        out->steps += res.steps;
        out->disk.saves += res.disk.saves;
        out->disk.power_losses += res.disk.power_losses;
        out->disk.torn += res.disk.torn;
        out->disk.midsave += res.disk.midsave;
        out->disk.disk_errors += res.disk.disk_errors;
        out->disk.recoveries += res.disk.recoveries;
        out->disk.tails_cut += res.disk.tails_cut;
        out->disk.wal_resets += res.disk.wal_resets;
        out->disk.workarounds += res.disk.workarounds;
        out->disk.other_notes += res.disk.other_notes;
        sim_member_stats_add(&out->member, &res.member);
        out->fast.seeds += res.fast.seeds;
        out->fast.started += res.fast.started;
        out->fast.completed += res.fast.completed;
        out->fast.applied_dup += res.fast.applied_dup;
        if (res.violated_mask)
            out->violations++;
        if (!c->quiet && c->seeds <= 50)
            printf("seed %llu: %d nodes, profile %s, %llu steps, commit %llu, %llu terms with a "
                   "leader: %s\n",
                   (unsigned long long)seed, res.nodes, sim_profile_name(res.profile),
                   (unsigned long long)res.steps, (unsigned long long)res.commit,
                   (unsigned long long)res.terms_with_leader,
                   res.violated_mask ? "VIOLATION" : "ok");
        if (c->expect_mask && (res.violated_mask & c->expect_mask)) {
            out->found = 1;
            out->found_seed = seed;
            *found_flag = 1;
            break;
        }
    }
}

int main(int argc, char **argv)
{
    cli c;
    if (!parse_args(argc, argv, &c))
        return 2;
    char replay[PATH_MAX + 128];
    build_replay(&c, replay, sizeof(replay));
    c.opt.replay_cmd = replay;

    if (c.opt.demo) {
        c.opt.nodes = 5;
        c.opt.profile = SIM_PROFILE_CALM;
        c.opt.fault_ticks = 900;
        sim_result res;
        printf("raftkv simulator demo: 5 nodes, one scenario, virtual time (seed %llu)\n",
               (unsigned long long)c.from);
        return sim_run_seed(&c.opt, c.from, &res) == 0 ? 0 : 1;
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0); /* wall time for the summary only, never for the run */
    int jobs = c.jobs;
    if ((uint64_t)jobs > c.seeds)
        jobs = c.seeds ? (int)c.seeds : 1;
    c.jobs = jobs;
    /* Workers report through shared memory: no pipes to drain, and the found flag lets a bug
     * hunt stop every worker early. */
    size_t shared_size = sizeof(shared_area) + (size_t)jobs * sizeof(worker_result);
    shared_area *shared =
        mmap(NULL, shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror(SIM_PROGRAM ": mmap for worker results");
        return 2;
    }
    memset(shared, 0, shared_size);
    volatile int *found_flag = &shared->found;
    worker_result *results = shared->results;

    fflush(stdout);
    if (jobs == 1) {
        run_worker(&c, 0, &results[0], found_flag);
    } else {
        pid_t pids[64];
        for (int j = 0; j < jobs; j++) {
            pids[j] = fork();
            if (pids[j] < 0) {
                perror(SIM_PROGRAM ": fork");
                return 2;
            }
            if (pids[j] == 0) {
                setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, so workers do not interleave */
                run_worker(&c, j, &results[j], found_flag);
                fflush(stdout);
                _exit(0);
            }
        }
        for (int j = 0; j < jobs; j++) {
            int status = 0;
            if (waitpid(pids[j], &status, 0) < 0 || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0) {
                printf("VIOLATION seed=%llu step=? check=contract: worker %d died (wait status "
                       "%d), e.g. an assertion failed in the core\nreplay: %s --from %llu "
                       "--seeds 1 --trace\n",
                       (unsigned long long)results[j].current_seed, j, status, replay,
                       (unsigned long long)results[j].current_seed);
                results[j].violations++;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);

    worker_result total;
    memset(&total, 0, sizeof(total));
    for (int j = 0; j < jobs; j++) {
        total.seeds += results[j].seeds;
        total.violations += results[j].violations;
        total.steps += results[j].steps;
        total.disk.saves += results[j].disk.saves;
        total.disk.power_losses += results[j].disk.power_losses;
        total.disk.torn += results[j].disk.torn;
        total.disk.midsave += results[j].disk.midsave;
        total.disk.disk_errors += results[j].disk.disk_errors;
        total.disk.recoveries += results[j].disk.recoveries;
        total.disk.tails_cut += results[j].disk.tails_cut;
        total.disk.wal_resets += results[j].disk.wal_resets;
        total.disk.workarounds += results[j].disk.workarounds;
        total.disk.other_notes += results[j].disk.other_notes;
        sim_member_stats_add(&total.member, &results[j].member);
        total.fast.seeds += results[j].fast.seeds;
        total.fast.started += results[j].fast.started;
        total.fast.completed += results[j].fast.completed;
        total.fast.applied_dup += results[j].fast.applied_dup;
        if (results[j].found && (!total.found || results[j].found_seed < total.found_seed)) {
            total.found = 1;
            total.found_seed = results[j].found_seed;
        }
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int rc;
    if (c.expect_mask) {
        char expected[160] = "";
        size_t used = 0;
        for (int k = 0; k < SIM_CHECK_COUNT; k++)
            if (c.expect_mask & (1u << k))
                used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s%s",
                                         used ? " or " : "", sim_check_name(k));
        if (total.found)
            printf("bug %s: caught by %s at seed %llu\n", c.bug_name, expected,
                   (unsigned long long)total.found_seed);
        else
            printf("bug %s: NOT caught by %s in seeds %llu..%llu\n", c.bug_name, expected,
                   (unsigned long long)c.from, (unsigned long long)(c.from + c.seeds - 1));
        rc = total.found ? 0 : 1;
    } else {
        rc = total.violations ? 1 : 0;
    }
    printf("disks: %llu saves, %llu power losses (%llu torn, %llu inside a save), %llu injected "
           "disk errors, %llu recoveries (%llu torn tails cut, %llu WAL resets, %llu other "
           "repairs, %llu storage workarounds)\n",
           (unsigned long long)total.disk.saves, (unsigned long long)total.disk.power_losses,
           (unsigned long long)total.disk.torn, (unsigned long long)total.disk.midsave,
           (unsigned long long)total.disk.disk_errors, (unsigned long long)total.disk.recoveries,
           (unsigned long long)total.disk.tails_cut, (unsigned long long)total.disk.wal_resets,
           (unsigned long long)total.disk.other_notes, (unsigned long long)total.disk.workarounds);
    const uint64_t *kind = total.member.by_kind; /* the order of sim_nemesis.c's kinds */
    printf("membership: %llu seeds with changes, %llu changes (%llu voters added, %llu removed, "
           "%llu of them their leader; %llu learners added, %llu promoted, %llu voters demoted, "
           "%llu of them their leader, %llu learners removed), %llu refused as busy\n",
           (unsigned long long)total.member.seeds, (unsigned long long)total.member.proposed,
           (unsigned long long)kind[0], (unsigned long long)kind[1],
           (unsigned long long)total.member.leader_removed, (unsigned long long)kind[2],
           (unsigned long long)kind[3], (unsigned long long)kind[4],
           (unsigned long long)total.member.leader_demoted, (unsigned long long)kind[5],
           (unsigned long long)total.member.refused);
    printf("fast path: %llu seeds, %llu fast writes sent, %llu completed, %llu duplicates "
           "skipped\n",
           (unsigned long long)total.fast.seeds, (unsigned long long)total.fast.started,
           (unsigned long long)total.fast.completed, (unsigned long long)total.fast.applied_dup);
    printf("sim: %llu seeds, %llu violations, %llu steps, %.1f s\n",
           (unsigned long long)total.seeds, (unsigned long long)total.violations,
           (unsigned long long)total.steps, secs);
    munmap(shared, shared_size);
    return rc;
}
