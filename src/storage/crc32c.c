/*
 * crc32c.c -- slicing-by-8 CRC-32C. table[0] is the classic byte-at-a-time table for the reflected
 * Castagnoli polynomial; table[k][b] is the CRC of byte b followed by k zero bytes, which lets the
 * main loop consume 8 bytes per step with 8 independent look-ups (about 6x the bytewise speed; WAL
 * recovery time is bounded by it).
 */
#include "crc32c.h"

#include <pthread.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_build_tables(void)
{
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1u) ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
        crc_table[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = crc_table[0][byte];
        for (int k = 1; k < 8; k++) {
            crc = crc_table[0][crc & 0xFFu] ^ (crc >> 8);
            crc_table[k][byte] = crc;
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#include <string.h>
#define CRC_HW 1

/* The SSE4.2 crc32 instruction computes exactly this polynomial, 8 bytes per instruction: the WAL
 * checksums every record it writes, and the table loop showed in profiles (3 % of a node). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                             size_t len)
{
    uint64_t c = ~crc;
    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8); /* aligned here; memcpy keeps it strict-aliasing clean */
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return ~(uint32_t)c;
}

static int crc_hw_ok = -1; /* -1 unknown, decided once */
static pthread_once_t crc_hw_once = PTHREAD_ONCE_INIT;

static void crc_hw_detect(void)
{
    __builtin_cpu_init();
    crc_hw_ok = __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#endif

/* The portable table version (also the reference the tests compare the hardware one with). */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
#ifdef CRC_HW
    pthread_once(&crc_hw_once, crc_hw_detect);
    if (crc_hw_ok)
        return crc32c_hw(crc, data, len);
#endif
    return crc32c_sw(crc, data, len);
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_build_tables);
    const uint8_t *p = data;
    crc = ~crc;
    /* Byte at a time until 8-aligned so the wide loads below are aligned. */
    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        crc = crc_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        /* Little-endian assembly of the two words, independent of host alignment rules. */
        uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        lo ^= crc;
        crc = crc_table[7][lo & 0xFFu] ^ crc_table[6][(lo >> 8) & 0xFFu] ^
              crc_table[5][(lo >> 16) & 0xFFu] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xFFu] ^ crc_table[2][(hi >> 8) & 0xFFu] ^
              crc_table[1][(hi >> 16) & 0xFFu] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = crc_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
        len--;
    }
    return ~crc;
}
