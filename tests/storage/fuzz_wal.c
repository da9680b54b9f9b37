/*
 * fuzz_wal.c -- fuzz target for WAL recovery: the input is the content of one segment file; it is
 * stored in a vfs_fault directory and opened with wal_check and storage_open. Whatever the bytes,
 * recovery must return a verdict (never crash, leak or read out of bounds) and, when it accepts the
 * log, the entries must be contiguous.
 *
 * Built two ways:
 *   - with clang and -DRAFTKV_FUZZ=ON: a libFuzzer binary (fuzz_wal corpus/ -max_total_time=60);
 *   - always: test_fuzz_wal_corpus, which runs the target over every file in corpus/ (label unit).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"
#include "vfs_fault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vfs *v = vfs_fault_new(1);
    if (v == NULL)
        return 0;
    v->mkdir(v, "/d");
    vfs_file *f;
    if (v->open(v, "/d/00000000000000000001.seg", VFS_O_RDWR | VFS_O_CREATE, &f) == 0) {
        vfs_write_all(v, f, data, size, 0);
        v->fsync(v, f);
        v->close(v, f);
    }
    v->sync_dir(v, "/d");
    char msg[WAL_ERRMSG_SIZE];
    wal_check("/d", v, NULL, NULL, NULL, msg);
    storage_opts o;
    storage_opts_default(&o);
    o.segment_bytes = 4096;
    storage *st;
    storage_loaded l;
    if (storage_open("/d", v, &o, &st, &l) == STORAGE_OK) {
        for (size_t i = 1; i < l.n_entries; i++)
            if (l.entries[i].index != l.entries[0].index + i)
                abort();
        storage_loaded_free(&l);
        storage_close(st);
    }
    vfs_fault_free(v);
    return 0;
}

#ifndef RAFTKV_LIBFUZZER
/* Corpus runner: each argument is a file to feed to the target. */
int main(int argc, char **argv)
{
    int ran = 0;
    for (int i = 1; i < argc; i++) {
        FILE *fp = fopen(argv[i], "rb");
        if (fp == NULL) {
            fprintf(stderr, "fuzz_wal: cannot open %s\n", argv[i]);
            return 1;
        }
        uint8_t *buf = malloc(1 << 20);
        size_t n = fread(buf, 1, 1 << 20, fp);
        fclose(fp);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        ran++;
    }
    printf("%d passed, 0 failed\n", ran);
    return ran > 0 ? 0 : 1;
}
#endif
