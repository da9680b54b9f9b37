/*
 * crc32c.h -- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the SSE4.2 crc32 instruction
 * when the CPU has it (checked once at run time), table-driven slicing-by-8 otherwise.
 *
 * Used by every on-disk format of src/storage: WAL segment headers and records, snapshot headers and
 * data. Check value: crc32c("123456789") == 0xE3069283. Thread-safe: the tables are built once, on
 * first use, under pthread_once.
 */
#ifndef RAFTKV_CRC32C_H
#define RAFTKV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over len bytes at data; returns the new value. data may be NULL if
 * len == 0. crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* The table version alone, whatever the CPU: the reference the tests compare crc32c() with. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif /* RAFTKV_CRC32C_H */
