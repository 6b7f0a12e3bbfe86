#!/usr/bin/env bash
# Records the transcripts of book/src/ch03/run.md from the real debug
# binaries (cargo xtask transcripts ch03-run builds them first). The page
# shows `cargo run -p PKG -- ARGS`; the script runs the same program from
# target/debug. Every snippet goes to $OUT/NAME.txt as "$ command" lines
# and what the command printed, and every program's log to $OUT/NAME.log;
# page.md.tmpl says where each goes. Needs ports 8080 and 9001-9003 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080 9001 9002 9003
# say CMD, then run the equivalent ARGV... and append its stdout and stderr
shown() { say "$1"; shift; "$@" >> "$SNIP" 2>&1 || true; }
lb() { local log=$1; shift; target/debug/load_balancer "$@" > "$OUT/$log" 2>&1 & L=$!; started $L; wait_log "$OUT/$log" "load balancer listening" 1; }
backends() { local log=$1; shift; target/debug/simple_http_backend "$@" > "$OUT/$log" 2>&1 & B=$!; started $B; }
usr1() { kill -USR1 "$L"; wait_log "$OUT/$1" "^=== load balancer statistics" "$2"; }

# --- the demo: nothing on 9001-9003 -------------------------------------------
snip start
say "cargo run -p ch03-load-balancer"
lb demo.log
wait_log "$OUT/demo.log" "demo backends run in this process" 1
snip rotation
for i in 1 2 3 4 5 6; do run "curl localhost:8080/"; done
usr1 demo.log 1
snip echo
say "curl localhost:8080/echo"
curl -s localhost:8080/echo | tr -d '\r' >> "$SNIP"   # a terminal shows no \r
stop $L

# --- separate backends on 9001-9003 ---------------------------------------------
snip backends
say "cargo run -p backends -- --count 3 --base-port 9001"
backends backends.log --count 3 --base-port 9001; B3=$B
wait_log "$OUT/backends.log" "backend listening" 3
snip separate
say "cargo run -p ch03-load-balancer"
lb separate.log
snip loop
run 'for i in $(seq 6); do curl -s localhost:8080/; done'
stop $L
snip tls
shown "cargo run -p ch03-load-balancer -- --backend https://example.com" target/debug/load_balancer --backend https://example.com
stop $B3

# --- failover: 9003 stops, then comes back, then every backend stops ----------------
backends failover-12.log --count 2 --base-port 9001; B12=$B
backends failover-3.log -p 9003; B3=$B
wait_port 9001; wait_port 9002; wait_port 9003
lb failover.log
for i in 1 2 3; do curl -s -o /dev/null localhost:8080/; done
stop $B3
snip failover
run "for i in \$(seq 6); do curl -s -w '  -> %{http_code}\n' localhost:8080/; done"
grep -B1 -A1 "backend is DOWN" "$OUT/failover.log" > "$OUT/failover-down.log"
usr1 failover.log 1
snip spread
run 'for i in $(seq 30); do curl -s localhost:8080/; done | sort | uniq -c'
backends failover-3b.log -p 9003; B3=$B
wait_port 9003
# requests until the retry time has passed and the probe brings 9003 back
for _ in $(seq 150); do
  curl -s -o /dev/null localhost:8080/
  grep -q "backend is UP again" "$OUT/failover.log" && break
  sleep 0.1
done
wait_log "$OUT/failover.log" "backend is UP again" 1
stop $B12; stop $B3
snip nobackend
run "curl localhost:8080/"
run "curl localhost:8080/"
stop $L

# --- weighted selection -------------------------------------------------------------
backends weighted-backends.log --count 3 --base-port 9001; B3=$B
wait_log "$OUT/weighted-backends.log" "backend listening" 3
lb weighted.log --strategy weighted --backend 127.0.0.1:9001:3 --backend 127.0.0.1:9002:1
snip weighted
run 'for i in $(seq 8); do curl -s localhost:8080/; done | sort | uniq -c'
stop $L
stop $B3

# --- every option -------------------------------------------------------------------
snip help
shown "cargo run -p ch03-load-balancer -- --help" target/debug/load_balancer --help
snip bad
shown "cargo run -p ch03-load-balancer -- --backend 127.0.0.1:9001:0" target/debug/load_balancer --backend 127.0.0.1:9001:0
