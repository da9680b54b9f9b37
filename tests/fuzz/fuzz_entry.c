/*
 * fuzz_entry.c -- libFuzzer entry point; FUZZ_TARGET names the check from fuzz_checks.h
 * (compiled once per target by CMakeLists.txt when RAFTKV_FUZZ is on and the compiler is clang).
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FUZZ_TARGET(data, size);
    return 0;
}
