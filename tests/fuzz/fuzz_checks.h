/*
 * fuzz_checks.h -- one entry point per fuzzed input format. Each one runs an input through a parser
 * and checks the parser's contract, calling abort() on any violation, so the same checks serve the
 * libFuzzer targets (clang, RAFTKV_FUZZ) and the deterministic random test run by ctest.
 *
 *   fuzz_text     proto_text_parse over the input, split in chunks chosen by its first byte
 *   fuzz_resp     proto_resp_parse + proto_resp_map of every command, writes encoded and decoded
 *   fuzz_kv_cmd   kv_cmd_decode; accepted bytes re-encode identically and apply to a store
 *   fuzz_restore  kv_restore_feed/finish of arbitrary bytes never crashes; a good snapshot is found
 *   fuzz_members  the address book (members.h) as a snapshot's head and as a configuration
 *                 entry's context: what is accepted re-encodes to the same bytes
 */
#ifndef RAFTKV_FUZZ_CHECKS_H
#define RAFTKV_FUZZ_CHECKS_H

#include <stddef.h>
#include <stdint.h>

void fuzz_text(const uint8_t *data, size_t len);
void fuzz_resp(const uint8_t *data, size_t len);
void fuzz_kv_cmd(const uint8_t *data, size_t len);
void fuzz_restore(const uint8_t *data, size_t len);
void fuzz_members(const uint8_t *data, size_t len);

#endif
