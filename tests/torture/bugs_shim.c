/*
 * bugs_shim.c -- turns raftcore's test-only bug switches on inside raftkvd-bugs, without touching
 * the daemon: raftkvd-bugs is raftkvd linked with raftcore_bugs and with raft_new wrapped
 * (-Wl,--wrap=raft_new), so the switches named in $RAFTKV_TEST_BUGS (comma-separated:
 * vote-any-log, double-vote, read-no-confirm, commit-old-term, skip-prev-check, commit-regress)
 * are OR-ed into the config every node core is created with. For torture tests only: a node with
 * a switch on is unsafe on purpose.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

int __real_raft_new(const raft_config *cfg, const raft_restore *restore, raft **out);
int __wrap_raft_new(const raft_config *cfg, const raft_restore *restore, raft **out);

static const struct {
    const char *name;
    uint32_t bit;
} BUGS[] = {
    {"vote-any-log", RAFT_BUG_VOTE_ANY_LOG},       {"double-vote", RAFT_BUG_DOUBLE_VOTE},
    {"read-no-confirm", RAFT_BUG_READ_NO_CONFIRM}, {"commit-old-term", RAFT_BUG_COMMIT_OLD_TERM},
    {"skip-prev-check", RAFT_BUG_SKIP_PREV_CHECK}, {"commit-regress", RAFT_BUG_COMMIT_REGRESS},
};

int __wrap_raft_new(const raft_config *cfg, const raft_restore *restore, raft **out)
{
    raft_config buggy = *cfg;
    const char *list = getenv("RAFTKV_TEST_BUGS");
    char word[64];
    while (list != NULL && *list != '\0') {
        size_t len = strcspn(list, ",");
        snprintf(word, sizeof word, "%.*s", (int)(len < sizeof word ? len : sizeof word - 1), list);
        size_t k = 0;
        while (k < sizeof BUGS / sizeof BUGS[0] && strcmp(BUGS[k].name, word) != 0) k++;
        if (k == sizeof BUGS / sizeof BUGS[0]) {
            fprintf(stderr, "raftkvd-bugs: RAFTKV_TEST_BUGS: unknown switch '%s'\n", word);
            exit(2);
        }
        buggy.test_bugs |= BUGS[k].bit;
        fprintf(stderr, "raftkvd-bugs: TEST BUG SWITCH ON: %s (this node is unsafe on purpose)\n",
                word);
        list += len + (list[len] == ',');
    }
    return __real_raft_new(&buggy, restore, out);
}
