#!/usr/bin/env bash
# Records the transcripts of book/src/ch05/run.md from the real debug
# binaries (cargo xtask transcripts ch05-run builds them first). The page
# shows `cargo run -p ch05-event-loop -- ARGS`; the script runs
# target/debug/high_perf_lb ARGS. Every snippet goes to $OUT/NAME.txt as
# "$ command" lines and what the command printed, and every balancer's log
# to $OUT/NAME.log; page.md.tmpl says where each goes. Needs port 8080 free
# (the demo backends take ports the kernel chooses).
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080
# a terminal shows no \r: the snippets hold what it shows
on_exit() { sed -i 's/\r$//' "$OUT"/*.txt; }
lb() { local log=$1; shift; target/debug/high_perf_lb "$@" > "$OUT/$log" 2>&1 & L=$!; started $L; wait_log "$OUT/$log" "demo backends are running" 1; }

# --- the demo, its statistics, stopping ------------------------------------------
snip demo
say "cargo run -p ch05-event-loop -- --demo"
lb demo.log --demo
snip first
run "curl -i localhost:8080/"
snip loop
run 'for i in $(seq 6); do curl -s localhost:8080/; done'
wait_log "$OUT/demo.log" " request peer=" 7
kill -USR1 "$L"
wait_log "$OUT/demo.log" "^=== high-performance load balancer statistics" 1
stop $L

# --- starting points against the demo ----------------------------------------------
lb points.log --demo
snip points
run "(printf 'GET / HTTP/1.1\\r\\nHo'; sleep 11) | nc localhost 8080 | head -1   # half a head, then silence"
run "curl -si -H \"X-Big: \$(head -c 17000 /dev/zero | tr '\\0' b)\" localhost:8080/ | head -1"
run "curl -s 'localhost:8080/bytes/70000?chunked=1' | wc -c     # a chunked response, relayed as it is"
say 'ps -o nlwp= -p $(pgrep -x high_perf_lb)                 # how many threads'
ps -o nlwp= -p "$L" >> "$SNIP"
stop $L

# --- --help --------------------------------------------------------------------------
snip help
say "cargo run -p ch05-event-loop -- -h"
target/debug/high_perf_lb -h >> "$SNIP" 2>&1
