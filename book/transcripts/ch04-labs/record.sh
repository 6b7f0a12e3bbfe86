#!/usr/bin/env bash
# Records the transcripts of book/src/ch04/labs.md from the real debug
# binaries, built with the reference solutions of the labs (cargo xtask
# transcripts ch04-labs builds them first). Every snippet goes to
# $OUT/NAME.txt as "$ command" lines and what the command printed, and
# every balancer's log to $OUT/NAME.log; page.md.tmpl says where each goes.
# Needs ports 8080 and 9001-9002 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080 9001 9002
workdir ch04
backend() { target/debug/simple_http_backend -p "$1" >> "$OUT/backend-$1.log" 2>&1 & eval "B$1=$!"; started $!; wait_port "$1"; }
lb() { local log=$1; shift; "$ROOT/target/debug/advanced_lb" "$@" > "$OUT/$log" 2>&1 & L=$!; started $L; wait_log "$OUT/$log" "advanced load balancer listening" 1; }

# --- lab 4.5: a report every 5 requests ---------------------------------------
lb stats.log --demo --stats-every 5
for i in 1 2 3 4 5; do curl -s -o /dev/null localhost:8080/; done
wait_log "$OUT/stats.log" "after 5 requests" 1
stop $L

# --- labs 4.3 and 4.4: down by real traffic, back by the recovery schedule ----
snip recovery
say "target/debug/simple_http_backend -p 9001 &"
backend 9001
say "target/debug/simple_http_backend -p 9002 &"
backend 9002
say "target/debug/advanced_lb -b 127.0.0.1:9001 -b 127.0.0.1:9002 --failure-counting --max-fails 2 --recovery-check --health-interval-ms 500 &"
lb recovery.log -b 127.0.0.1:9001 -b 127.0.0.1:9002 --failure-counting --max-fails 2 --recovery-check --health-interval-ms 500
run "for i in 1 2 3 4; do curl -s localhost:8080/; done"
say 'kill %2    # the backend on 9002 stops'
stop $B9002
run "for i in 1 2 3 4 5 6; do curl -s localhost:8080/; done"
wait_log "$OUT/recovery.log" "backend is DOWN" 1
say "target/debug/simple_http_backend -p 9002 &"
backend 9002
wait_log "$OUT/recovery.log" "backend is UP" 1
run "for i in 1 2 3 4; do curl -s localhost:8080/; done"
stop $L

# --- lab 7.4: warm-up before a recovering backend takes traffic -------------------
lb warmup.log -b 127.0.0.1:9001 -b 127.0.0.1:9002 --warm-up 3 --health-interval-ms 200
snip warmup
run "curl -s -X POST localhost:9002/admin/health/down"
wait_log "$OUT/warmup.log" "backend is DOWN" 1
run "curl -s -X POST localhost:9002/admin/health/up"
wait_log "$OUT/warmup.log" "backend is UP" 1
stop $L

# --- lab 8.3: /lb-stats ----------------------------------------------------------
snip lbstats
say "target/debug/advanced_lb --demo --stats-path /lb-stats &"
lb lbstats.log --demo --stats-path /lb-stats
run "for i in 1 2 3; do curl -s -o /dev/null localhost:8080/; done"
run "curl -s localhost:8080/lb-stats | python3 -m json.tool"
stop $L

# --- lab 8.4: weights reloaded on SIGHUP -------------------------------------------
snip weights
cd "$WORK"
run "printf '127.0.0.1:9001 1\\n127.0.0.1:9002 1\\n' > weights.txt"
say "advanced_lb -a wrr -b 127.0.0.1:9001 -b 127.0.0.1:9002 --weights-file weights.txt &"
lb weights.log -a wrr -b 127.0.0.1:9001 -b 127.0.0.1:9002 --weights-file weights.txt
hup() { say 'kill -HUP $(pgrep -x advanced_lb)'; kill -HUP "$L"; wait_log "$OUT/weights.log" "$1" "$2"; }
run "for i in 1 2 3 4; do curl -s localhost:8080/; done"
run "sed -i 's/9002 1/9002 3/' weights.txt"
hup "weights reloaded" 1
run "for i in 1 2 3 4; do curl -s localhost:8080/; done"
run "echo '127.0.0.1:9003 2' >> weights.txt"
hup "weights not reloaded" 1
run "for i in 1 2 3 4; do curl -s localhost:8080/; done"
cd "$ROOT"
stop $L
