/* test_wal_tool.c -- raftkv-wal check/dump on a real temporary directory (vfs_posix): a sound
 * store, a torn tail, a mid-log bit flip. The tool's path comes from RAFTKV_WAL_TOOL. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage.h"
#include "workload.h"

static char tmpdir[256];
static char datadir[300];

/* Runs the tool; returns its exit code and its stdout+stderr in out. */
static int run_tool(const char *verb, char *out, size_t out_len)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s '%s' 2>&1", RAFTKV_WAL_TOOL, verb, datadir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, out_len - 1, p);
    out[n] = 0;
    int status = pclose(p);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/raftkv-wal-test-XXXXXX", base);
    assert_non_null(mkdtemp(tmpdir));
    snprintf(datadir, sizeof datadir, "%s/node", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_store(void)
{
    storage_opts o;
    storage_opts_default(&o);
    o.segment_bytes = 8192;
    storage *st;
    storage_loaded l;
    assert_int_equal(storage_open(datadir, vfs_posix(), &o, &st, &l), STORAGE_OK);
    storage_loaded_free(&l);
    raft_entry es[40];
    uint8_t data[40][WL_MAX_DATA];
    for (int i = 0; i < 40; i++)
        wl_entry(&es[i], data[i], 1 + (raft_index)i, 1);
    raft_ready rd;
    memset(&rd, 0, sizeof rd);
    rd.entries = es;
    rd.n_entries = 40;
    rd.hard_state_changed = true;
    rd.hard_state = (raft_hard_state){.term = 1, .vote = 2, .commit = 30};
    assert_int_equal(storage_save(st, &rd), STORAGE_OK);
    memset(&rd, 0, sizeof rd);
    rd.truncate_from = 36;
    assert_int_equal(storage_save(st, &rd), STORAGE_OK);
    assert_int_equal(wl_write_snapshot(st, 30, 1), STORAGE_OK);
    storage_close(st);
}

static void flip_byte(const char *name, off_t offset)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", datadir, name);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, offset), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, offset), 1);
    close(fd);
}

static void checkAndDumpSoundStore(void **state)
{
    (void)state;
    write_store();
    char out[65536];
    assert_int_equal(run_tool("check", out, sizeof out), 0);
    assert_non_null(strstr(out, "snapshot: snap-00000000000000000030.snap index=30 term=1"));
    assert_non_null(strstr(out, "ok: 1 segments"));
    assert_non_null(strstr(out, "log 1..35"));
    assert_non_null(strstr(out, "commit=30"));
    assert_int_equal(run_tool("dump", out, sizeof out), 0);
    assert_non_null(strstr(out, "00000000000000000001.seg@40 HARD_STATE term=0 vote=0 commit=0"));
    assert_non_null(strstr(out, "00000000000000000001.seg@96 ENTRY index=1 term=1 type=1"));
    assert_non_null(strstr(out, "ENTRY index=40 term=1"));
    assert_non_null(strstr(out, "TRUNCATE from=36"));
    assert_non_null(strstr(out, "HARD_STATE term=1 vote=2 commit=30"));
    assert_int_equal(run_tool("bogus", out, sizeof out), 2);
}

static void checkReportsTornTailAsNote(void **state)
{
    (void)state;
    write_store();
    /* a record header's worth of junk right after the data */
    char out[65536];
    assert_int_equal(run_tool("dump", out, sizeof out), 0);
    /* the last record is TRUNCATE at some offset; its end is offset + 32 */
    const char *last = strstr(out, "TRUNCATE");
    assert_non_null(last);
    const char *at = last;
    while (at > out && *at != '@')
        at--;
    long off = strtol(at + 1, NULL, 10) + 32;
    flip_byte("00000000000000000001.seg", off + 4);
    assert_int_equal(run_tool("check", out, sizeof out), 0);
    assert_non_null(strstr(out, "note: wal: 00000000000000000001.seg offset"));
    assert_non_null(strstr(out, "torn tail"));
    /* Startup cuts it; check is then silent. */
    storage *st;
    storage_loaded l;
    assert_int_equal(storage_open(datadir, vfs_posix(), NULL, &st, &l), STORAGE_OK);
    assert_int_equal(l.n_entries, 5); /* 31..35 after the snapshot at 30 */
    storage_loaded_free(&l);
    storage_close(st);
    assert_int_equal(run_tool("check", out, sizeof out), 0);
    assert_null(strstr(out, "torn tail"));
}

static void checkRejectsMidLogBitFlip(void **state)
{
    (void)state;
    write_store();
    flip_byte("00000000000000000001.seg", 96 + 32 + 2); /* payload of entry 1 */
    char out[65536];
    assert_int_equal(run_tool("check", out, sizeof out), 1);
    assert_non_null(strstr(out, "wal: 00000000000000000001.seg offset 96: record crc mismatch (stored 0x"));
    assert_non_null(strstr(out, "followed by valid records"));
    assert_int_equal(run_tool("dump", out, sizeof out), 1);
    /* and the store refuses to open, with the same message */
    storage *st;
    storage_loaded l;
    assert_int_equal(storage_open(datadir, vfs_posix(), NULL, &st, &l), STORAGE_ECORRUPT);
    assert_non_null(strstr(l.errmsg, "00000000000000000001.seg offset 96"));
}

static void checkRejectsBadSnapshot(void **state)
{
    (void)state;
    write_store();
    flip_byte("snap-00000000000000000030.snap", 8); /* its index */
    char out[65536];
    assert_int_equal(run_tool("check", out, sizeof out), 1);
    assert_non_null(strstr(out, "snap-00000000000000000030.snap offset 0: header crc mismatch"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(checkAndDumpSoundStore, setup, teardown),
        cmocka_unit_test_setup_teardown(checkReportsTornTailAsNote, setup, teardown),
        cmocka_unit_test_setup_teardown(checkRejectsMidLogBitFlip, setup, teardown),
        cmocka_unit_test_setup_teardown(checkRejectsBadSnapshot, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
