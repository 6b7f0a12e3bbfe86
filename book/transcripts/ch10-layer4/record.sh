#!/usr/bin/env bash
# Records the transcripts of book/src/ch10/layer4.md from the real debug
# binaries (cargo xtask transcripts ch10-layer4 builds them first):
# hot_reload_lb in layer 4 mode (mode: tcp). --check on the shipped l4.yaml
# and on routes.yaml made tcp; then the balancer from a copy of l4.yaml in
# a scratch folder (the page edits it): connections spread by least
# connections, one connection kept open across a reload that changes the
# backend set, two reloads refused, what the admin listener shows, and
# SIGINT, which drains the kept connection. The balancer runs two loops
# (--workers 2) whatever the machine's cores, so that its log has the same
# lines everywhere (one "serving with a new backend set" a loop). Every
# snippet goes to $OUT/NAME.txt, the balancer's log to $OUT/serve.log;
# page.md.tmpl says where each goes. Needs ports 8080, 8081 and 9001-9003
# free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080 8081 9001 9002 9003
workdir ch10-layer4

# --- checking files -----------------------------------------------------------
snip check
check() { say "$1"; eval "$1" >> "$SNIP" 2>&1; rc=$?; say 'echo $?'; echo $rc >> "$SNIP"; }
check "target/debug/hot_reload_lb --check -c ch10-hot-reload/configs/l4.yaml"
run "printf 'mode: tcp\nalgorithm: sticky\n' | cat - ch10-hot-reload/configs/routes.yaml > /tmp/ch10-layer4/routes-tcp.yaml"
check "target/debug/hot_reload_lb --check -c /tmp/ch10-layer4/routes-tcp.yaml"

# --- serving l4.yaml ------------------------------------------------------------
target/debug/simple_http_backend --count 3 --base-port 9001 > "$OUT/backends.log" 2>&1 & started $!
wait_port 9003
cp ch10-hot-reload/configs/l4.yaml "$WORK/"
# Run from the folder of the copy, as the page shows it.
cd "$WORK"
"$ROOT/target/debug/hot_reload_lb" -c l4.yaml --workers 2 > "$OUT/serve.log" 2>&1 & L=$!; started $L
wait_log "$OUT/serve.log" "admin listening" 1
snip serve
for i in 1 2 3 4 5 6; do run "curl -s localhost:8080/"; done

# A connection kept open on file descriptor 3: a request written, the
# answer's last line read (grep stops there; the connection stays open).
snip kept
say "exec 3<>/dev/tcp/127.0.0.1/8080"
exec 3<>/dev/tcp/127.0.0.1/8080
ask() {
  say "printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n' >&3; grep -m1 Hello <&3"
  printf 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' >&3
  timeout 5 grep -m1 Hello <&3 >> "$SNIP" || { echo "no answer on the kept connection" >&2; exit 1; }
}
ask

# --- a reload: 9001 leaves ------------------------------------------------------------
snip reload
run "sed -i '15,16d' l4.yaml"
run "curl -s -X POST localhost:8081/reload"
for i in 1 2 3 4; do run "curl -s localhost:8080/"; done
ask

# --- reloads refused ----------------------------------------------------------------
snip refused
run "echo 'rate_limit: {per_ip: 10, burst: 20}' >> l4.yaml"
run "curl -s -w '%{http_code}\n' -X POST localhost:8081/reload"
run "sed -i '\$d' l4.yaml"
run "sed -i 's/^mode: tcp/mode: http/' l4.yaml"
run "curl -s -w '%{http_code}\n' -X POST localhost:8081/reload"
run "sed -i 's/^mode: http/mode: tcp/' l4.yaml"

# --- the admin listener -------------------------------------------------------------------
# Each curl's pair closes just after the curl exits: wait until only the
# kept connection is open, on one loop, so the figures are the same on
# every run (but for which loop holds it).
for _ in $(seq 100); do curl -s localhost:8081/lb-stats | tr -d ' \n' | grep -qE '"loops":\[(0,1|1,0)\].*"open":1,' && break; sleep 0.05; done
snip stats
run "curl -s localhost:8081/lb-stats"
run "curl -s localhost:8081/readyz"
snip metrics
run "curl -s localhost:8081/metrics | grep -e '^lb_l4' -e '^lb_backend_up'"

# --- SIGINT: the kept connection drains -------------------------------------------------
snip stop
say 'kill -INT $(pgrep -x hot_reload_lb)'
kill -INT "$L"
wait_log "$OUT/serve.log" "draining connections under way" 1
ask
say "exec 3>&-"
exec 3>&-
wait_gone "$L"
wait "$L" 2>/dev/null
