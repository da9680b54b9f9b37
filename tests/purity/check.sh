#!/usr/bin/env bash
# Purity check of the Raft core: every .c/.h file in the directory may include only
#   <stdint.h> <stddef.h> <stdbool.h> <string.h> <stdlib.h> <assert.h> <limits.h>
# or a "local.h" that lives in the same directory, and may not call I/O, clock, randomness or
# thread functions (printf, fopen, time, clock_gettime, rand, pthread_*, socket, ...). malloc and
# free are allowed. Comments and string literals are ignored, so prose may name printf(.
#
# usage: check.sh DIR            check DIR (e.g. src/raft); prints file:line of each violation
#        check.sh --self-test DIR  prove the checker fails: runs it on temp copies with injected
#                                  violations (and on DIR with an injected #include <time.h>)
# Exit status: 0 clean, 1 violations (or self-test failure), 2 usage error.
set -euo pipefail

ALLOWED_SYSTEM='stdint.h stddef.h stdbool.h string.h stdlib.h assert.h limits.h'
# Unambiguous names only: generic ones (read, write, send, open) would flag innocent helpers.
FORBIDDEN_CALLS='printf|fprintf|sprintf|snprintf|vprintf|vfprintf|vsprintf|vsnprintf|dprintf'
FORBIDDEN_CALLS+='|puts|fputs|putchar|fputc|perror|fopen|fdopen|freopen|fclose|fread|fwrite|fflush'
FORBIDDEN_CALLS+='|fgets|getline|fsync|fdatasync|pread|pwrite|lseek|mmap|unlink|rename'
FORBIDDEN_CALLS+='|time|clock|clock_gettime|gettimeofday|nanosleep|usleep|sleep'
FORBIDDEN_CALLS+='|rand|rand_r|srand|random|srandom|drand48|getrandom|arc4random'
FORBIDDEN_CALLS+='|pthread_[A-Za-z0-9_]+|thrd_[A-Za-z0-9_]+|mtx_[A-Za-z0-9_]+'
FORBIDDEN_CALLS+='|socket|sendto|sendmsg|recvfrom|recvmsg|epoll_[A-Za-z0-9_]+|getenv|exit|_exit|signal'

# Prints the file with comments blanked (and string/char literals too if $2 = 1), keeping lines.
strip_source() {
    awk -v strip_strings="$2" '
    BEGIN { in_comment = 0 }
    {
        line = $0; out = ""; n = length(line); i = 1
        while (i <= n) {
            c = substr(line, i, 1); d = substr(line, i, 2)
            if (in_comment) {
                if (d == "*/") { in_comment = 0; out = out "  "; i += 2 } else { out = out " "; i++ }
                continue
            }
            if (d == "/*") { in_comment = 1; out = out "  "; i += 2; continue }
            if (d == "//") break
            if (c == "\"" || c == "\x27") {
                q = c; out = out q; i++
                while (i <= n) {
                    c = substr(line, i, 1)
                    if (c == "\\") { out = out (strip_strings ? "  " : substr(line, i, 2)); i += 2; continue }
                    if (c == q) break
                    out = out (strip_strings ? " " : c); i++
                }
                out = out q; i++
                continue
            }
            out = out c; i++
        }
        print out
    }' "$1"
}

# check_dir DIR: prints violations, returns 1 if any.
check_dir() {
    local dir=$1 bad=0 file name
    shopt -s nullglob
    local files=("$dir"/*.c "$dir"/*.h)
    if [ ${#files[@]} -eq 0 ]; then
        echo "purity: no .c/.h files in $dir" >&2
        return 1
    fi
    for file in "${files[@]}"; do
        # Includes: comments stripped, strings kept (the "local.h" name is a string).
        while IFS=: read -r lineno text; do
            if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^>]*)\> ]]; then
                name=${BASH_REMATCH[1]}
                if [[ " $ALLOWED_SYSTEM " != *" $name "* ]]; then
                    echo "$file:$lineno: forbidden include <$name> (the core may include only <${ALLOWED_SYSTEM// /> <}>)"
                    bad=1
                fi
            elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]*)\" ]]; then
                name=${BASH_REMATCH[1]}
                if [[ $name == */* || ! -f $dir/$name ]]; then
                    echo "$file:$lineno: forbidden include \"$name\" (only headers of $dir itself)"
                    bad=1
                fi
            else
                echo "$file:$lineno: unrecognised include: $text"
                bad=1
            fi
        done < <(strip_source "$file" 0 | grep -nE '^[[:space:]]*#[[:space:]]*include' || true)
        # Calls: comments and literals stripped; member calls (x.time(), p->clock()) are fine.
        while IFS=: read -r lineno text; do
            name=$(grep -oE "(^|[^A-Za-z0-9_.>])($FORBIDDEN_CALLS)[[:space:]]*\(" <<<"$text" |
                   head -1 | sed -E 's/^[^A-Za-z_]//; s/[[:space:]]*\($//')
            echo "$file:$lineno: forbidden call $name() (the core does no I/O, clock, randomness or threads)"
            bad=1
        done < <(strip_source "$file" 1 |
                 grep -nE "(^|[^A-Za-z0-9_.>])($FORBIDDEN_CALLS)[[:space:]]*\(" || true)
    done
    return $bad
}

# expect_failure DESCRIPTION DIR PATTERN: the checker must fail on DIR and print PATTERN.
expect_failure() {
    local output
    if output=$(check_dir "$2"); then
        echo "purity self-test FAILED: $1: checker passed" >&2
        return 1
    fi
    if ! grep -qF -- "$3" <<<"$output"; then
        echo "purity self-test FAILED: $1: expected '$3' in: $output" >&2
        return 1
    fi
    echo "ok: $1 -> $(head -1 <<<"$output")"
}

self_test() {
    local real_dir=$1
    tmp=$(mktemp -d) # global: the EXIT trap runs after this function has returned
    trap 'rm -rf "$tmp"' EXIT
    mkdir "$tmp/clean"
    cat >"$tmp/clean/core.h" <<'H'
#include <stdint.h>
int core_step(int x);
H
    cat >"$tmp/clean/core.c" <<'C'
#include <assert.h>
#include <limits.h>
#include "core.h"
/* Prose may say printf("x") or time(NULL) or #include <stdio.h>: comments do not count. */
static const char *text = "fopen(\"f\") time(0)"; // rand() in a line comment
int core_step(int x) { struct { int (*time)(void); } s = {0}; (void)s.time; (void)text; return x; }
C
    if ! out=$(check_dir "$tmp/clean"); then
        echo "purity self-test FAILED: a clean file was rejected: $out" >&2
        return 1
    fi
    echo "ok: clean fixture passes"

    local case
    for case in time_include printf_call pthread_call foreign_header clock_call; do
        rm -rf "${tmp:?}/$case"
        cp -r "$tmp/clean" "$tmp/$case"
    done
    sed -i '2a #include <time.h>' "$tmp/time_include/core.c"
    expect_failure "injected #include <time.h>" "$tmp/time_include" "core.c:3: forbidden include <time.h>"
    sed -i '$a void core_log(void) { printf("%d", 1); }' "$tmp/printf_call/core.c"
    expect_failure "injected printf call" "$tmp/printf_call" "core.c:7: forbidden call printf()"
    sed -i '$a void core_lock(void *m) { pthread_mutex_lock(m); }' "$tmp/pthread_call/core.c"
    expect_failure "injected pthread call" "$tmp/pthread_call" "core.c:7: forbidden call pthread_mutex_lock()"
    sed -i '1a #include "../storage/wal.h"' "$tmp/foreign_header/core.h"
    expect_failure "header from another module" "$tmp/foreign_header" 'core.h:2: forbidden include "../storage/wal.h"'
    sed -i '$a long core_now(void) { struct timespec ts; return clock_gettime (1, &ts); }' "$tmp/clock_call/core.c"
    expect_failure "injected clock_gettime" "$tmp/clock_call" "core.c:7: forbidden call clock_gettime()"

    # The real core with one injected include: the checker must see it whatever else is there.
    mkdir "$tmp/real"
    cp "$real_dir"/*.c "$real_dir"/*.h "$tmp/real/"
    local victim
    victim=$(ls "$tmp/real"/*.c | head -1)
    sed -i '1i #include <time.h>' "$victim"
    expect_failure "real core with injected #include <time.h>" "$tmp/real" "$(basename "$victim"):1: forbidden include <time.h>"
    echo "purity self-test passed"
}

case "${1:-}" in
--self-test)
    [ $# -eq 2 ] || { echo "usage: $0 --self-test DIR" >&2; exit 2; }
    self_test "$2"
    ;;
"" | -*)
    echo "usage: $0 DIR | --self-test DIR" >&2
    exit 2
    ;;
*)
    if check_dir "$1"; then
        echo "purity: $1 is clean"
    else
        echo "purity: $1 breaks the core's purity rule (see above)" >&2
        exit 1
    fi
    ;;
esac
