#!/usr/bin/env bash
# Records the transcripts of book/src/ch07/run.md from the real debug
# binaries (cargo xtask transcripts ch07-run builds them first). Every
# snippet goes to $OUT/NAME.txt as "$ command" lines and what the command
# printed, every balancer's log to $OUT/NAME.log, and each report it printed
# on SIGUSR1 to $OUT/NAME.txt; page.md.tmpl says where each goes. Needs
# ports 18080, 18001-18003 and 9001-9003 free (nothing on 9001-9003, so that
# the demo starts its own backends), and the whole of 127.0.0.0/8 on the
# loopback interface (Linux has it).
#
# The page explains the statuses it shows, and some depend on timing (a
# token that comes back while curl runs) or on the key table's random seed.
# Those sections check their statuses and run again, from a fresh balancer,
# when a run came out differently (at most a few times).
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 18080 18001 18002 18003 9001 9002 9003
LB=$ROOT/target/debug/rate_limited_lb
BACKENDS="-b 127.0.0.1:18001 -b 127.0.0.1:18002 -b 127.0.0.1:18003"
# start LOG ARGS...: rate_limited_lb, its log to $OUT/LOG, until it listens.
start() {
  local log=$1; shift
  "$LB" "$@" > "$OUT/$log" 2>&1 & L=$!; started $L
  wait_log "$OUT/$log" "rate-limited load balancer listening" 1
}
# lbs NAME ARGS...: says and starts the balancer on 18080 in front of the
# test backends; the snippet NAME gets the command and what it printed.
lbs() {
  local name=$1; shift
  snip "$name"
  say "target/debug/rate_limited_lb -p 18080 $BACKENDS $*"
  # shellcheck disable=SC2086
  start "$name.log" -p 18080 $BACKENDS "$@"
  cat "$OUT/$name.log" >> "$SNIP"
}
LIMITS='^(rate limiting|  (client|global|route|keys))'
# expect LINE: the snippet's last line is LINE.
expect() { [ "$(tail -n 1 "$SNIP")" = "$1" ]; }
# again NAME: a section whose statuses came out otherwise; stop its balancer.
again() { echo "$1: statuses differ from the page's, running it again" >&2; stop $L; }
ten() { printf '200 %.0s' $(seq 10); }

# --- --help ------------------------------------------------------------------------
snip help
help_excerpt rate_limited_lb --rate

# --- the demo ------------------------------------------------------------------------
demo() {
  snip demo
  say "target/debug/rate_limited_lb -p 18080"
  start demo.log -p 18080
  wait_log "$OUT/demo.log" "demo backends run in this process" 1
  snip demo-first
  run "for i in \$(seq 15); do curl -s -o /dev/null -w '%{http_code} ' localhost:18080/; done; echo"
  expect "$(ten)429 429 429 429 429 " || return 1
  FIRST=$(date +%s%N)
  snip demo-others
  run "for i in \$(seq 12); do curl -s -o /dev/null -w '%{http_code} ' --interface 127.0.0.2 localhost:18080/; done; echo"
  expect "$(ten)429 429 " || return 1
  run "for i in \$(seq 3); do curl -s -o /dev/null -w '%{http_code} ' --interface 127.0.0.3 localhost:18080/; done; echo"
  expect "200 200 200 "
}
for try in 1 2 3 4; do demo && break; [ $try = 4 ] && exit 1; again demo; done
report demo-report $L "$OUT/demo.log"
# The log's interval closes with the first request 10 s after the first refusal.
sleep "$(awk -v t="$(( $(date +%s%N) - FIRST ))" 'BEGIN { s = 10.2 - t / 1e9; print (s > 0 ? s : 0) }')"
snip demo-summary
run "curl -s -o /dev/null -w '%{http_code}\n' localhost:18080/"
wait_log "$OUT/demo.log" "more refused since" 2
stop $L

# --- a 429 in full ----------------------------------------------------------------------
snip backends
say "target/debug/simple_http_backend --count 3 --base-port 18001 &"
target/debug/simple_http_backend --count 3 --base-port 18001 > "$OUT/backends.log" 2>&1 & B=$!; started $B
wait_log "$OUT/backends.log" "backend listening" 3
cat "$OUT/backends.log" >> "$SNIP"
full() {
  lbs full-lb --rate 1 --burst 5
  snip full
  run "for i in \$(seq 6); do curl -s -o /dev/null -w '%{http_code} ' localhost:18080/; done; echo"
  expect "200 200 200 200 200 429 " || return 1
  run "curl -si localhost:18080/"
  run "curl -s -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' localhost:18080/a localhost:18080/b"
  run "curl -si -d 'order=42' localhost:18080/orders"
  [ "$(grep -c '^HTTP/1.1 429' "$SNIP")" = 2 ] && grep -q '^429 0$' "$SNIP"
}
for try in 1 2 3 4; do full && break; [ $try = 4 ] && exit 1; again full; done
stop $L

# --- route and global limits --------------------------------------------------------------
lbs route-lb --rate-route /login=1:2 --rate-global 20:30
snip route
run "for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' localhost:18080/login; done; echo"
run "curl -si 'localhost:18080/login?user=ann'"
run "curl -s -o /dev/null -w '%{http_code}\n' localhost:18080/"
stop $L

global() {
  lbs global-lb --rate-global 2:8
  snip global
  run "for n in \$(seq 10 21); do curl -s -o /dev/null -w '%{http_code} ' --interface 127.0.0.\$n localhost:18080/; done; echo"
  expect "200 200 200 200 200 200 200 200 429 429 429 429 "
}
for try in 1 2 3 4; do global && break; [ $try = 4 ] && exit 1; again global; done
report global-report $L "$OUT/global-lb.log" "$LIMITS"
stop $L

# --- keys -----------------------------------------------------------------------------------
lbs header-lb --rate 1 --burst 2 --rate-key header:X-Api-Key
snip header
run "for n in 2 3 4; do curl -s -o /dev/null -w '%{http_code} ' -H 'X-Api-Key: alice' --interface 127.0.0.\$n localhost:18080/; done; echo"
run "curl -s -o /dev/null -w '%{http_code}\n' -H 'X-Api-Key: bob' --interface 127.0.0.2 localhost:18080/"
run "for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' --interface 127.0.0.2 localhost:18080/; done; echo"
stop $L

snip xff-refused
say "target/debug/rate_limited_lb -p 18080 $BACKENDS --rate-key xff"
# shellcheck disable=SC2086
timeout 5 "$LB" -p 18080 $BACKENDS --rate-key xff >> "$SNIP" 2>&1 && { echo "xff without --trusted-proxy started" >&2; exit 1; }

lbs xff-lb --rate 1 --burst 2 --rate-key xff --trusted-proxy 127.0.0.1/32
snip xff
for who in "-H 'X-Forwarded-For: 203.0.113.7'" "-H 'X-Forwarded-For: 198.51.100.9'" \
           "-H 'X-Forwarded-For: 192.0.2.1' --interface 127.0.0.2" "-H 'X-Forwarded-For: 192.0.2.2' --interface 127.0.0.2"; do
  run "for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' $who localhost:18080/; done; echo"
done
stop $L

# --- delay mode ----------------------------------------------------------------------------
lbs delay-lb --rate 2 --burst 4 --rate-mode delay
snip delay-at-once
cmd='for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w "$i %{http_code} %{time_total}s\n" localhost:18080/ & done; wait'
say "$cmd"
bash -c "$cmd" >> "$SNIP"
[ "$(grep -c " 429 " "$SNIP")" = 2 ] || { echo "delay: not two refusals" >&2; exit 1; }
# The held requests left by 1.5 s; the next loop starts a second later.
sleep 1
snip delay-in-turn
run "for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} %{time_total}s\n' localhost:18080/; done"
report delay-report $L "$OUT/delay-lb.log"
stop $L

# --- dry run -------------------------------------------------------------------------------
lbs dry-lb --rate 1 --burst 3 --dry-run
snip dry
run "for i in \$(seq 8); do curl -s -o /dev/null -w '%{http_code} ' localhost:18080/; done; echo"
report dry-report $L "$OUT/dry-lb.log" "$LIMITS"
stop $L

# --- many clients refused ------------------------------------------------------------------------
lbs many-lb --rate 1 --burst 1 --rate-log-interval-secs 2
snip many
run 'for n in $(seq 30 49); do for i in 1 2 3; do curl -s -o /dev/null --interface 127.0.0.$n localhost:18080/; done; done'
# The interval (2 s) opened with the first refusal, 127.0.0.30's second request.
first=$(grep -m1 'rate limited 127.0.0.30' "$OUT/many-lb.log" | cut -c1-26)
sleep "$(python3 -c "
import datetime as d, sys
t = d.datetime.strptime(sys.argv[1], '%Y-%m-%dT%H:%M:%S.%f').replace(tzinfo=d.timezone.utc)
print(max(0.0, 2.2 - (d.datetime.now(d.timezone.utc) - t).total_seconds()))" "$first")"
run "curl -s -o /dev/null -w '%{http_code}\n' localhost:18080/"
wait_log "$OUT/many-lb.log" "more requests from other keys" 1
stop $L

# --- a table that is full ------------------------------------------------------------------------
# With two buckets, the seed decides whether each of the first eight clients
# finds a slot; the page shows a run where all eight do.
table() {
  lbs table-lb --rate 1 --burst 2 --rate-max-keys 4
  snip table
  run "for n in \$(seq 50 57); do for i in 1 2; do curl -s -o /dev/null -w '%{http_code} ' --interface 127.0.0.\$n localhost:18080/; done; done; echo"
  expect "$(ten)200 200 200 200 200 200 " || return 1
  run "for n in \$(seq 60 65); do curl -s -o /dev/null -w '%{http_code} ' --interface 127.0.0.\$n localhost:18080/; done; echo"
  # Only a fresh overflow lets two newcomers through: all eight found a slot.
  expect "200 200 429 429 429 429 "
}
for try in $(seq 20); do table && break; [ $try = 20 ] && exit 1; again table; done
sleep 3
run "for n in \$(seq 66 71); do curl -s -o /dev/null -w '%{http_code} ' --interface 127.0.0.\$n localhost:18080/; done; echo"
say 'kill -USR1 $(pgrep -x rate_limited_lb)'
report table-report $L "$OUT/table-lb.log" "$LIMITS"
stop $L
