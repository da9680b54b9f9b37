/*
 * test_dlog.c -- the fast path's durability log (src/storage/dlog.h) over the fault-injecting
 * vfs: entries and drops replay in order, a crash keeps exactly what was synced, a torn tail is
 * cut, damage in the middle is refused with the offset, a rewrite is atomic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "dlog.h"
#include "vfs_fault.h"

#define DIR "/d"

static raft_entry entry(raft_term term, const char *text)
{
    return (raft_entry){.term = term, .type = RAFT_ENTRY_FAST, .len = (uint32_t)strlen(text),
                        .data = (const uint8_t *)text};
}

/* An empty fault-injecting disk holding the directory DIR. */
static vfs *fresh_disk(uint64_t seed)
{
    vfs *v = vfs_fault_new(seed);
    assert_non_null(v);
    assert_int_equal(v->mkdir(v, DIR), 0);
    return v;
}

static dlog *reopen(vfs *v, raft_entry **got, size_t *n)
{
    dlog *d = NULL;
    char err[DLOG_ERRMSG_SIZE];
    assert_int_equal(dlog_open(DIR, v, &d, got, n, err), DLOG_OK);
    return d;
}

static void expect(const raft_entry *got, size_t n, const raft_entry *want, size_t m)
{
    assert_int_equal(n, m);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].term, want[i].term);
        assert_int_equal(got[i].type, RAFT_ENTRY_FAST);
        assert_int_equal(got[i].len, want[i].len);
        assert_memory_equal(got[i].data, want[i].data, want[i].len);
    }
}

static void appendsDropsAndCrashes(void **state)
{
    (void)state;
    vfs *v = fresh_disk(1);
    raft_entry *got;
    size_t n;
    dlog *d = reopen(v, &got, &n);
    assert_int_equal(n, 0);
    raft_entry a[3] = {entry(2, "aaaa"), entry(3, "bb"), entry(3, "c")};
    assert_int_equal(dlog_append(d, a, 2, 0), DLOG_OK);
    assert_int_equal(dlog_append(d, a + 2, 1, 3), DLOG_OK); /* drop below 3: "aaaa" goes */
    dlog_close(d);
    vfs_fault_crash(v, 0);
    d = reopen(v, &got, &n);
    expect(got, n, a + 1, 2);
    free(got);
    /* written but never synced: gone after a power loss */
    raft_entry late = entry(4, "late");
    vfs_fault_fail_all(v, VFS_OP_FDATASYNC, EIO);
    assert_int_equal(dlog_append(d, &late, 1, 0), DLOG_EFATAL);
    assert_int_equal(dlog_append(d, &late, 1, 0), DLOG_EFATAL); /* failed for good */
    assert_non_null(strstr(dlog_errmsg(d), "fdatasync"));
    dlog_close(d);
    vfs_fault_free(v);
}

static void tornTailIsCutMiddleDamageIsRefused(void **state)
{
    (void)state;
    /* A torn append: written without a sync, then a torn power loss. */
    for (uint64_t seed = 1; seed <= 40; seed++) {
        vfs *v = fresh_disk(seed);
        raft_entry *got;
        size_t n;
        dlog *d = reopen(v, &got, &n);
        raft_entry a[2] = {entry(1, "first write"), entry(1, "second write, longer")};
        assert_int_equal(dlog_append(d, a, 1, 0), DLOG_OK);
        vfs_fault_crash_at(v, vfs_fault_crash_points(v) + 2); /* written, its sync lost */
        (void)dlog_append(d, a + 1, 1, 0);
        dlog_close(d);
        vfs_fault_crash(v, VFS_FAULT_TORN);
        d = reopen(v, &got, &n);
        assert_true(n == 1 || n == 2);
        expect(got, 1, a, 1); /* what was synced is there, whatever the tear */
        free(got);
        dlog_close(d);
        vfs_fault_free(v);
    }
    /* A flipped bit in the first of two records: refused, naming the offset. */
    vfs *v = fresh_disk(7);
    raft_entry *got;
    size_t n;
    dlog *d = reopen(v, &got, &n);
    raft_entry a[2] = {entry(1, "one"), entry(1, "two")};
    assert_int_equal(dlog_append(d, a, 2, 0), DLOG_OK);
    dlog_close(d);
    assert_int_equal(vfs_fault_flip_bit(v, DIR "/dlog", 8 + 9 + 8, 0), 0);
    char err[DLOG_ERRMSG_SIZE] = "";
    assert_int_equal(dlog_open(DIR, v, &d, &got, &n, err), DLOG_ECORRUPT);
    assert_non_null(strstr(err, "offset 8"));
    assert_non_null(strstr(err, "damaged"));
    vfs_fault_free(v);

    /* A damaged LENGTH field (pointing past the end) in the first of three records is not a
     * torn tail: valid records follow it (a review found this one cut everything). */
    v = fresh_disk(8);
    d = reopen(v, &got, &n);
    raft_entry three[3] = {entry(1, "one"), entry(1, "two"), entry(1, "three")};
    assert_int_equal(dlog_append(d, three, 3, 0), DLOG_OK);
    dlog_close(d);
    assert_int_equal(vfs_fault_flip_bit(v, DIR "/dlog", 8 + 4 + 2, 3), 0); /* length += 2^19 */
    assert_int_equal(dlog_open(DIR, v, &d, &got, &n, err), DLOG_ECORRUPT);
    assert_non_null(strstr(err, "a valid record follows"));
    vfs_fault_free(v);
}

/* A tail of zeros (the file grew, the data never landed) is torn, however long. */
static void zeroTailIsTorn(void **state)
{
    (void)state;
    vfs *v = fresh_disk(9);
    raft_entry *got;
    size_t n;
    dlog *d = reopen(v, &got, &n);
    raft_entry a = entry(5, "kept");
    assert_int_equal(dlog_append(d, &a, 1, 0), DLOG_OK);
    uint64_t size = dlog_size(d);
    dlog_close(d);
    vfs_file *f;
    assert_int_equal(v->open(v, DIR "/dlog", VFS_O_RDWR, &f), 0);
    uint8_t zeros[40] = {0};
    size_t w;
    assert_int_equal(v->pwrite(v, f, zeros, sizeof zeros, size, &w), 0);
    assert_int_equal(v->fdatasync(v, f), 0);
    v->close(v, f);
    d = reopen(v, &got, &n);
    expect(got, n, &a, 1);
    uint64_t at;
    assert_int_equal(dlog_cut(d, &at), 40);
    assert_int_equal(at, size);
    assert_int_equal(dlog_size(d), size);
    free(got);
    dlog_close(d);
    vfs_fault_free(v);
}

static void rewriteKeepsExactlyTheLiveEntries(void **state)
{
    (void)state;
    vfs *v = fresh_disk(3);
    raft_entry *got;
    size_t n;
    dlog *d = reopen(v, &got, &n);
    raft_entry a[3] = {entry(1, "x"), entry(1, "y"), entry(2, "z")};
    assert_int_equal(dlog_append(d, a, 3, 0), DLOG_OK);
    uint64_t before = dlog_size(d);
    assert_int_equal(dlog_rewrite(d, a + 2, 1), DLOG_OK);
    assert_true(dlog_size(d) < before);
    raft_entry b = entry(2, "after");
    assert_int_equal(dlog_append(d, &b, 1, 0), DLOG_OK);
    dlog_close(d);
    vfs_fault_crash(v, 0);
    d = reopen(v, &got, &n);
    raft_entry want[2] = {a[2], b};
    expect(got, n, want, 2);
    free(got);
    dlog_close(d);
    vfs_fault_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appendsDropsAndCrashes),
        cmocka_unit_test(tornTailIsCutMiddleDamageIsRefused),
        cmocka_unit_test(rewriteKeepsExactlyTheLiveEntries),
        cmocka_unit_test(zeroTailIsTorn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
