#!/usr/bin/env bash
# Records the transcripts of book/src/ch01/labs.md from the real debug
# binaries, built with the reference solutions of the labs (cargo xtask
# transcripts ch01-labs builds them first). Every snippet goes to
# $OUT/NAME.txt as "$ command" lines and what the command printed, and
# every server's log to $OUT/NAME.log; page.md.tmpl says where each goes.
# Needs port 7000 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 7000
BIN=$ROOT/target/debug

# --- lab 1: the stamped echo ---------------------------------------------------
"$BIN/lab_server" stamp > "$OUT/stamp.log" 2>&1 & S=$!; started $S
wait_log "$OUT/stamp.log" "lab server listening" 1
snip stamp
run "printf 'hello\\nbye\\n' | nc -q 1 127.0.0.1 7000"
wait_log "$OUT/stamp.log" "\] bye$" 1
# lab_server leaves SIGINT to its default action, which a background job of
# a script ignores: SIGTERM stops it.
kill $S; wait $S 2>/dev/null; true

# --- lab 2 before any code: the stub's todo!() ---------------------------------
# The stubs are what `--no-default-features` builds; built apart, so the
# reference build in target/debug stays as it is.
cargo build -q -p ch01-fundamentals --no-default-features --bin lab_server --target-dir "$ROOT/target/stubs" \
  > "$OUT/stub-build.log" 2>&1 || { cat "$OUT/stub-build.log" >&2; exit 1; }
"$ROOT/target/stubs/debug/lab_server" calc > "$OUT/stub.log" 2>&1 & S=$!; started $S
wait_log "$OUT/stub.log" "lab server listening" 1
printf '1 + 2\n' | nc -q 1 127.0.0.1 7000 > /dev/null 2>&1
wait_log "$OUT/stub.log" "not yet implemented" 1
kill $S; wait $S 2>/dev/null; true
