#!/usr/bin/env bash
# Records the transcripts of book/src/ch10/upgrade.md from the real debug
# binaries (cargo xtask transcripts ch10-upgrade builds them first): an
# upgrade by SIGUSR2 under a stream of requests, one asked for by POST
# /upgrade on the admin listener, and one whose new process fails (by
# both). The balancer runs two loops (--workers 2) whatever the machine's
# cores, so that its log has the same lines everywhere. Needs ports 8080,
# 8081, 9001 and 9002 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080 8081 9001 9002
W=/tmp/ch10-upgrade
rm -rf "$W"; mkdir -p "$W"
on_exit() { pkill -f "hot_reload_lb -c lb.yaml" 2>/dev/null; rm -rf "$W"; }
printf 'backends:\n  - 127.0.0.1:9001\n  - 127.0.0.1:9002\nhealth_check: {enabled: false}\n' > "$W/lb.yaml"
target/debug/simple_http_backend --count 2 --base-port 9001 > "$OUT/backends.log" 2>&1 & started $!
wait_port 9002
# Run from the folder of lb.yaml, as the page shows it.
cd "$W"
lb() { "$ROOT/target/debug/hot_reload_lb" -c lb.yaml --workers 2 >> "$OUT/$1" 2>&1 & L=$!; started $L; wait_log "$OUT/$1" "one loop per thread" 1; }

# --- an upgrade under load ----------------------------------------------------
lb upgrade.log
snip upgrade
run "curl -s localhost:8081/config | grep '\"pid\"'"
# A client asking without pause, one new connection per request, while the upgrade runs.
say "for i in \$(seq 400); do curl -s -o /dev/null -w '%{http_code}\\n' localhost:8080/; done | sort | uniq -c > codes.txt &"
( for i in $(seq 400); do curl -s -o /dev/null -w '%{http_code}\n' localhost:8080/; done | sort | uniq -c > codes.txt ) & C=$!
sleep 0.3
say "pkill -USR2 -f 'hot_reload_lb -c lb.yaml'"
kill -USR2 "$L"
wait_log "$OUT/upgrade.log" "this one stops accepting and drains" 1
wait_gone "$L"
wait "$C"
say "wait; cat codes.txt"
cat codes.txt >> "$SNIP"
run "curl -s localhost:8081/config | grep '\"pid\"'"
run "pgrep -fc 'hot_reload_lb -c lb.yaml'"
NEW=$(pgrep -f "hot_reload_lb -c lb.yaml")
kill -INT "$NEW"; wait_gone "$NEW"

# --- an upgrade asked for on the admin listener -----------------------------------
lb post.log
snip post
run "curl -s localhost:8081/config | grep '\"pid\"'"
run "curl -s -w '%{http_code}\n' localhost:8081/upgrade"
run "curl -s -X POST localhost:8081/upgrade"
# The old process takes no more admin clients once the new one is ready;
# wait until it has drained and exited, so that one process is counted.
wait_gone "$L"
run "pgrep -fc 'hot_reload_lb -c lb.yaml'"
run "curl -s localhost:8081/config | grep '\"pid\"'"
NEW=$(pgrep -f "hot_reload_lb -c lb.yaml")
kill -INT "$NEW"; wait_gone "$NEW"

# --- a new process that cannot start ---------------------------------------------
lb failed.log
snip failed
say "printf 'backends: []\\n' > lb.yaml"
printf 'backends: []\n' > lb.yaml
say "pkill -USR2 -f 'hot_reload_lb -c lb.yaml'"
kill -USR2 "$L"
wait_log "$OUT/failed.log" "upgrade failed" 1
run "curl -s localhost:8080/"
run "curl -s -X POST localhost:8081/upgrade"
run "pgrep -fc 'hot_reload_lb -c lb.yaml'"
stop $L
