#!/usr/bin/env bash
# Records the transcripts of book/src/ch10/workers.md from the real debug
# binaries (cargo xtask transcripts ch10-workers builds them first):
# hot_reload_lb with two loops (--workers 2) serving the shipped lb.yaml,
# one client after another and then several at once, stopped with SIGTERM
# so that each loop says how many connections it accepted; then the same
# with a rate limit, to show that the two loops keep one limit. Every
# snippet goes to $OUT/NAME.txt; page.md.tmpl says where each goes. Needs
# ports 8080, 8081 and 9001-9003 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080 8081 9001 9002 9003
target/debug/simple_http_backend --count 3 --base-port 9001 > "$OUT/backends.log" 2>&1 & started $!
wait_port 9003
# The balancer with two loops; waits until both serve (the line comes
# once the admin listener is up, just before the loops start).
lb() { # LOG ARGS...
  local log=$1; shift
  target/debug/hot_reload_lb -c ch10-hot-reload/configs/lb.yaml --workers 2 "$@" > "$OUT/$log" 2>&1 & L=$!; started $L
  wait_log "$OUT/$log" "one loop per thread" 1
}
# SIGTERM, and the log from the signal on (request lines left out).
term() { # LOG SNIPPET
  local before; before=$(wc -l < "$OUT/$1")
  kill -TERM "$L"; wait "$L" 2>/dev/null
  tail -n +$((before + 1)) "$OUT/$1" | grep -v ' request peer=' > "$OUT/$2.txt"
}

# --- two loops, one listening socket ---------------------------------------------
lb workers.log
snip start
say "target/debug/hot_reload_lb -c ch10-hot-reload/configs/lb.yaml --workers 2 &"
cat "$OUT/workers.log" >> "$SNIP"

snip requests
for i in 1 2 3 4 5 6; do run "curl -s localhost:8080/"; done

# Forty requests, eight at a time, a new connection for each.
snip burst
run "seq 40 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' localhost:8080/ | sort | uniq -c"
run "curl -s localhost:8081/metrics | grep '^lb_requests_total'"

term workers.log stop

# --- one rate limit for both loops -------------------------------------------------
# Ten requests at once per client, then one every ten seconds.
lb limited.log --rate 0.1 --burst 10
snip limited
say "target/debug/hot_reload_lb -c ch10-hot-reload/configs/lb.yaml --workers 2 --rate 0.1 --burst 10 &"
run "seq 40 | xargs -P 20 -I{} curl -s -o /dev/null -w '%{http_code}\n' localhost:8080/ | sort | uniq -c"
term limited.log limited-stop
