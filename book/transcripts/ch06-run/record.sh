#!/usr/bin/env bash
# Records the transcripts of book/src/ch06/run.md from the real debug
# binaries (cargo xtask transcripts ch06-run builds them first). Every
# snippet goes to $OUT/NAME.txt as "$ command" lines and what the command
# printed, every balancer's log to $OUT/NAME.log, and each report it printed
# on SIGUSR1 to $OUT/NAME.txt; page.md.tmpl says where each goes. Needs
# ports 18080, 18081, 18001-18003 and 9001-9003 free (nothing on 9001-9003,
# so that pooled_lb starts its demo backends). Takes a little over a minute:
# one section waits for the backends' 60-second idle timeout.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 18080 18081 18001 18002 18003 9001 9002 9003
workdir ch06
LB=$ROOT/target/debug/pooled_lb
BACKENDS=(-b 127.0.0.1:18001 -b 127.0.0.1:18002 -b 127.0.0.1:18003)
# backends [FLAGS]: the test backends on 18001-18003, in a process of their own.
backends() {
  "$ROOT/target/debug/simple_http_backend" --count 3 --base-port 18001 "$@" >> "$OUT/backends.log" 2>&1 & B=$!; started $B
  for p in 18001 18002 18003; do wait_listen $p; done
}
# lb LOG ARGS...: pooled_lb, its log to $OUT/LOG, until it listens.
lb() { local log=$1; shift; "$LB" "$@" > "$OUT/$log" 2>&1 & L=$!; started $L; wait_log "$OUT/$log" "pooled load balancer listening" 1; }
POOL='^(backend connection pool|  evicted)'
# no_conns P...: until pooled_lb holds no connection to the ports P.
no_conns() {
  local f; f=$(printf 'dport = :%s or ' "$@"); f="( ${f% or } )"
  for _ in $(seq 200); do [ -z "$(ss -tnH state established state close-wait "$f")" ] && return; sleep 0.05; done
  echo "connections to $* still open" >&2; exit 1
}

# --- --help ------------------------------------------------------------------------
snip help
help_excerpt pooled_lb --pool-max-idle

# --- the demo ------------------------------------------------------------------------
snip demo
say "target/debug/pooled_lb 18080"
lb demo.log 18080
wait_log "$OUT/demo.log" "demo backends run in this process" 1
snip demo-requests
run "curl -si localhost:18080/"
run 'for i in $(seq 6); do curl -s localhost:18080/; done'
report demo-report $L "$OUT/demo.log"
stop $L

# The first half of "Whose timeout fires first" starts now and ends last: it
# waits for the demo backends' 60-second idle timeout.
snip equal
say "target/debug/pooled_lb 18081 &"
"$LB" 18081 > "$OUT/equal.log" 2>&1 & E=$!; started $E
wait_log "$OUT/equal.log" "demo backends run in this process" 1
run "for i in 1 2 3; do curl -s localhost:18081/; done"
EQUAL_AT=$SECONDS

# --- counting handshakes --------------------------------------------------------------
cd "$WORK"
# traced NAME ARGS...: pooled_lb under strace -o NAME.strace; S is strace, L the balancer.
traced() {
  local name=$1; shift
  # Descriptors this script inherited are closed first, so that the balancer
  # numbers its sockets as it would from a terminal.
  (
    for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
    exec strace -f -e trace=connect -o "$name.strace" "$LB" "$@"
  ) > "$OUT/$name.log" 2>&1 & S=$!; started $S
  wait_log "$OUT/$name.log" "pooled load balancer listening" 1
  L=$(pgrep -P $S)
}
snip pool-start
say "target/debug/simple_http_backend --count 3 --base-port 18001 &"
backends
say "strace -f -e trace=connect -o pool.strace target/debug/pooled_lb 18080 \\
      -b 127.0.0.1:18001 -b 127.0.0.1:18002 -b 127.0.0.1:18003 --health-check off"
traced pool 18080 "${BACKENDS[@]}" --health-check off
snip pool
run "curl -s \"localhost:18080/?n=[1-100]\" -w '%{http_code}\n' | grep -c '^200\$'"
run "grep -c 'connect(' pool.strace"
run "grep 'connect(' pool.strace"
run "curl -s localhost:18001/stats"
echo >> "$SNIP"
report pool-report $L "$OUT/pool.log"
stop $L; wait $S 2>/dev/null
stop $B

backends
snip nopool
say "strace -f -e trace=connect -o nopool.strace target/debug/pooled_lb 18080 \\
      -b 127.0.0.1:18001 -b 127.0.0.1:18002 -b 127.0.0.1:18003 --health-check off --no-pool"
traced nopool 18080 "${BACKENDS[@]}" --health-check off --no-pool
run "curl -s \"localhost:18080/?n=[1-100]\" -w '%{http_code}\n' | grep -c '^200\$'"
run "grep -c 'connect(' nopool.strace"
run "grep 'connect(' nopool.strace | head -4"
run "curl -s localhost:18001/stats"
echo >> "$SNIP"
report nopool-report $L "$OUT/nopool.log"
stop $L; wait $S 2>/dev/null
stop $B
cd "$ROOT"

# --- watching the pool evict ------------------------------------------------------------
snip evict-start
say "target/debug/simple_http_backend --count 3 --base-port 18001 &"
backends
say "target/debug/pooled_lb 18080 -b 127.0.0.1:18001 -b 127.0.0.1:18002 -b 127.0.0.1:18003 \\
      --pool-max-idle 2 --pool-idle-timeout-ms 3000 --pool-max-requests 10 --health-interval-ms 500"
lb evict.log 18080 "${BACKENDS[@]}" --pool-max-idle 2 --pool-idle-timeout-ms 3000 --pool-max-requests 10 --health-interval-ms 500
snip evict-serial
run "curl -s \"localhost:18080/?n=[1-30]\" > /dev/null"
report evict-serial-report $L "$OUT/evict.log" "$POOL"
snip evict-parallel
run "curl -s --no-progress-meter -Z --parallel-immediate \"localhost:18080/slow?ms=300&n=[1-12]\" > /dev/null"
report evict-parallel-report $L "$OUT/evict.log" "$POOL"
sleep 4
report evict-ttl-report $L "$OUT/evict.log" "$POOL"
snip evict-down
run "curl -s \"localhost:18080/?n=[1-3]\""
run "curl -s -X POST localhost:18002/admin/health/down; echo"
wait_log "$OUT/evict.log" "backend is DOWN" 1
report evict-down-report $L "$OUT/evict.log" "$POOL"
kill -TERM $B; wait $B 2>/dev/null
no_conns 18001 18002 18003
report evict-peer-report $L "$OUT/evict.log" "$POOL"
stop $L

# --- whose timeout fires first: backends with a shorter one --------------------------------
snip shorter
say "target/debug/simple_http_backend --count 3 --base-port 18001 --idle-timeout-ms 2000 &"
backends --idle-timeout-ms 2000
say "target/debug/pooled_lb 18080 -b 127.0.0.1:18001 -b 127.0.0.1:18002 -b 127.0.0.1:18003 &"
lb shorter.log 18080 "${BACKENDS[@]}"
run "curl -s \"localhost:18080/?n=[1-3]\""
say "sleep 3; kill -USR1 %2"
sleep 3
report shorter-report $L "$OUT/shorter.log" "$POOL"
stop $L
stop $B

# --- the race, on purpose -------------------------------------------------------------------
python3 book/src/ch06/flaky_backend.py 18001 > "$OUT/flaky.log" 2>&1 & F=$!; started $F
wait_listen 18001
RUST_LOG=info,ch05_event_loop::lb::conn::failover=debug lb race.log 18080 -b 127.0.0.1:18001 --health-check off
snip race
run "curl -s localhost:18080/a"
run "curl -s localhost:18080/b"
run "curl -s -d hello localhost:18080/order"
run "curl -s localhost:18080/c"
wait_log "$OUT/flaky.log" "GET #1" 3
report race-report $L "$OUT/race.log"
stop $L
kill $F; wait $F 2>/dev/null

# --- whose timeout fires first: equal timeouts, a minute later --------------------------------
left=$((62 - (SECONDS - EQUAL_AT)))
[ $left -gt 0 ] && sleep $left
SNIP=$OUT/equal.txt
say "sleep 62; kill -USR1 %1"
report equal-report $E "$OUT/equal.log" "$POOL"
stop $E
