#!/usr/bin/env bash
# Records the transcripts of book/src/ch04/run.md from the real debug
# binaries (cargo xtask transcripts ch04-run builds them first). Where the
# page shows `cargo run -p PKG -- ARGS`, the same binary runs from
# target/debug. Every snippet goes to $OUT/NAME.txt as "$ command" lines and
# what the command printed, and every program's log to $OUT/NAME.log;
# page.md.tmpl says where each goes. Needs ports 8080 and 9001-9003 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080 9001 9002 9003
workdir ch04-run
LB="$ROOT/target/debug/advanced_lb"
# backend PORT LOG: a test backend on PORT, its log in $OUT/LOG, its pid in B<PORT>
backend() { target/debug/simple_http_backend --port "$1" > "$OUT/$2" 2>&1 & eval "B$1=$!"; started $!; wait_port "$1"; }
# lb LOG ARGS...: the balancer, its log in $OUT/LOG, its pid in L. No request
# is sent to see it is up (that would take a turn of the algorithm).
lb() { local log=$1; shift; "$LB" "$@" > "$OUT/$log" 2>&1 & L=$!; started $L; wait_log "$OUT/$log" "advanced load balancer listening" 1; }
requests() { wait_log "$OUT/$1" "ch04_advanced::balancer: request " "$2"; }
now() { date +%s.%N; }

# --- weighted round robin with the demo backends ---------------------------------
snip wrr-cmd
say "cargo run -p ch04-advanced -- --demo --algorithm wrr"
lb wrr.log --demo --algorithm wrr
wait_log "$OUT/wrr.log" "demo backends are running" 1
snip wrr
run 'for i in $(seq 12); do curl -s localhost:8080/; done'
run 'for i in $(seq 60); do curl -s localhost:8080/; done | sort | uniq -c'
snip wrr-id
run "curl -i localhost:8080/"
requests wrr.log 73
stop $L

# --- forwarding headers and request ids ----------------------------------------------
lb headers.log --demo --algorithm wrr
snip keep-id
run "curl -si -H 'X-Request-ID: trace-42' localhost:8080/echo | grep -i '^x-request-id'"
run "curl -s -H 'X-Request-ID: trace-42' localhost:8080/echo"
snip replace
run "curl -s -H 'X-Forwarded-For: 203.0.113.9' -H 'X-Real-IP: 6.6.6.6' localhost:8080/echo | grep -E 'Forwarded-For|Real-IP'"
run "curl -si -H 'X-Request-ID: has space' localhost:8080/ | grep -i request-id"
stop $L

# --- IP hash behind a trusted proxy ------------------------------------------------------
lb iphash.log --demo --algorithm iphash
snip iphash
run 'for xff in 203.0.113.9 198.51.100.23; do curl -s -H "X-Forwarded-For: $xff" localhost:8080/; done'
stop $L
lb trusted.log --demo --algorithm iphash --trusted-proxy 127.0.0.1
snip trusted
run "curl -s localhost:8080/"
run "curl -s -H 'X-Forwarded-For: 203.0.113.9' localhost:8080/"
run "curl -s -H 'X-Forwarded-For: 198.51.100.23' localhost:8080/"
run "curl -s -H 'X-Forwarded-For: 6.6.6.6, 203.0.113.9' localhost:8080/"
stop $L

# --- sticky sessions -------------------------------------------------------------------------
lb sticky.log --demo --algorithm sticky
cd "$WORK"
snip sticky
run "curl -i -c jar -b jar localhost:8080/"
run 'for i in $(seq 5); do curl -s -c jar -b jar localhost:8080/; done'
snip sticky-new
run 'for i in $(seq 6); do curl -s localhost:8080/; done'
snip sticky-stale
run "curl -si -H 'Cookie: lbs_backend=0000dead' localhost:8080/ | grep -E 'Set-Cookie|Hello'"
cd "$ROOT"
stop $L

# --- consistent hashing by path ------------------------------------------------------------
lb hash.log --demo --algorithm hash --hash-key path
snip hash
run 'for p in /a /b /c /objects/1 /objects/2 /objects/3 /a /b /c; do curl -s localhost:8080$p; done'
run "for i in \$(seq 300); do curl -s localhost:8080/objects/\$i; done | cut -d' ' -f3 | sort | uniq -c"
stop $L

# --- health checks: a backend stops and comes back -------------------------------------------
backend 9001 backend-9001.log
backend 9002 backend-9002-first.log
backend 9003 backend-9003.log
snip health-cmd
say "cargo run -p ch04-advanced -- --backend 127.0.0.1:9001 --backend 127.0.0.1:9002 --backend 127.0.0.1:9003"
lb health.log --backend 127.0.0.1:9001 --backend 127.0.0.1:9002 --backend 127.0.0.1:9003
# the first round of probes finds every backend up
sleep 0.5
stop $B9002
wait_log "$OUT/health.log" "backend is DOWN" 1
snip health-down
run 'for i in $(seq 6); do curl -s localhost:8080/; done'
backend 9002 backend-9002-second.log
wait_log "$OUT/health.log" "backend is UP" 1
snip health-503
run "curl -X POST localhost:9002/admin/health/down"
run "curl -i localhost:9002/health"
wait_log "$OUT/health.log" "backend is DOWN" 2
curl -s -X POST localhost:9002/admin/health/up > /dev/null
wait_log "$OUT/health.log" "backend is UP" 2
stop $L

# --- passive checks ------------------------------------------------------------------------------
lb passive.log --backend 127.0.0.1:9001 --backend 127.0.0.1:9002 --backend 127.0.0.1:9003 --health-check off --fail-timeout-secs 5
stop $B9002
snip passive
run "for i in \$(seq 9); do curl -s -o /dev/null -w '%{http_code} ' localhost:8080/; done; echo"
wait_log "$OUT/passive.log" "backend is DOWN" 1
down_at=$(now)
backend 9002 backend-9002-third.log
sleep "$(echo "$down_at + 5.3 - $(now)" | bc)"
# requests until one lands on 9002 and brings it back
for _ in 1 2 3 4 5 6; do
  curl -s -o /dev/null localhost:8080/
  grep -q "backend is UP" "$OUT/passive.log" && break
done
wait_log "$OUT/passive.log" "backend is UP" 1
stop $L

# --- slow start ----------------------------------------------------------------------------------
snip slow-cmd
say "cargo run -p ch04-advanced -- -a wrr -b 127.0.0.1:9001 -b 127.0.0.1:9002 -b 127.0.0.1:9003 \\
    --health-interval-ms 500 --slow-start-secs 10"
lb slow.log -a wrr -b 127.0.0.1:9001 -b 127.0.0.1:9002 -b 127.0.0.1:9003 --health-interval-ms 500 --slow-start-secs 10
curl -s -X POST localhost:9002/admin/health/down > /dev/null
wait_log "$OUT/slow.log" "backend is DOWN" 1
curl -s -X POST localhost:9002/admin/health/up > /dev/null
for _ in $(seq 400); do grep -q "backend is UP" "$OUT/slow.log" && break; sleep 0.01; done
wait_log "$OUT/slow.log" "backend is UP" 1
up_at=$(now)
snip slow
printf '%s  %5s  %5s  %5s\n' "seconds after UP" 9001 9002 9003 >> "$SNIP"
for at in 0 3 6 10; do
  wait_s=$(echo "$up_at + $at - $(now)" | bc)
  case $wait_s in -*) ;; *) sleep "$wait_s" ;; esac
  t=$(echo "$(now) - $up_at" | bc)
  for i in $(seq 30); do curl -s localhost:8080/; done > "$WORK/shares"
  row=()
  for b in 9001 9002 9003; do row+=("$(grep -c "backend-$b " "$WORK/shares")"); done
  printf '%16.1f  %5s  %5s  %5s\n' "$t" "${row[@]}" >> "$SNIP"
done
stop $L

# --- routing by path ----------------------------------------------------------------------------
snip route-cmd
say "cargo run -p ch04-advanced -- -b 127.0.0.1:9001 -b 127.0.0.1:9003 --route /api/=127.0.0.1:9002"
lb route.log -b 127.0.0.1:9001 -b 127.0.0.1:9003 --route /api/=127.0.0.1:9002
snip route
run "for p in / /api/users '/api/orders?id=7' /apiary /static/app.css /; do curl -s \"localhost:8080\$p\"; done"
requests route.log 6

# --- statistics on demand ------------------------------------------------------------------------
snip usr1
say 'kill -USR1 $(pgrep -x advanced_lb)'
kill -USR1 "$L"
wait_log "$OUT/route.log" "^/api/ " 1
stop $L

# --- draining: Ctrl-C with a slow request in flight ---------------------------------------------
lb drain.log -b 127.0.0.1:9001 -b 127.0.0.1:9002 -b 127.0.0.1:9003
( TIMEFORMAT=$'\nreal\t%3lR'; time curl -s 'localhost:8080/slow?ms=3000' ) > "$WORK/slow.txt" 2>&1 &
C=$!
sleep 0.5
kill -INT "$L"
wait_log "$OUT/drain.log" "draining connections" 1
curl -sS localhost:8080/ > "$WORK/refused.txt" 2>&1
wait "$C"
stop $L
snip drain
say "time curl -s 'localhost:8080/slow?ms=3000'"
cat "$WORK/slow.txt" >> "$SNIP"
say "curl -sS localhost:8080/"
cat "$WORK/refused.txt" >> "$SNIP"

lb drain1.log -b 127.0.0.1:9001 -b 127.0.0.1:9002 -b 127.0.0.1:9003 --drain-timeout-secs 1
snip drain1-curl
say "curl -sS 'localhost:8080/slow?ms=3000'"
curl -sS 'localhost:8080/slow?ms=3000' >> "$SNIP" 2>&1 &
C=$!
sleep 0.5
stop $L
wait "$C"

# --- --help ------------------------------------------------------------------------------------------
"$LB" --help > "$WORK/help.txt"
# entry RE: the help of the option whose line matches RE, without the blank line after it
entry() {
  awk -v re="$1" '/^  (-[a-zA-Z], |    )--[a-z]/ { on = ($0 ~ re) } on' "$WORK/help.txt" | awk '{ l[NR] = $0 } END { n = NR; while (n > 0 && l[n] ~ /^ *$/) n--; for (i = 1; i <= n; i++) print l[i] }'
}
snip help
say "cargo run -p ch04-advanced -- --help"
{
  awk '/^  (-[a-zA-Z], |    )--[a-z]/ { exit } { print }' "$WORK/help.txt"
  entry '^  -p, --port '
  echo ...
  entry '^  -a, --algorithm '
  echo ...
  entry '^      --trusted-proxy '
  echo ...
} >> "$SNIP"
