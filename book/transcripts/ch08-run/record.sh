#!/usr/bin/env bash
# Records the transcripts of book/src/ch08/run.md from the real debug
# binaries (cargo xtask transcripts ch08-run builds them first). Every
# snippet goes to $OUT/NAME.txt as "$ command" lines and what the command
# printed, every program's log to $OUT/NAME.log, a saved scrape to
# $OUT/scrape.log and each SIGUSR1 report to $OUT/NAME.txt; page.md.tmpl
# says where each goes. Needs ports 18080, 18081 and 18001-18003 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 18080 18081 18001 18002 18003
DEMO=/tmp/lbs-demo
rm -rf "$DEMO"
on_exit() { rm -rf "$DEMO"; }
LB=$ROOT/target/debug/metrics_lb
BACKENDS="--backend 127.0.0.1:18001 --backend 127.0.0.1:18002 --backend 127.0.0.1:18003"
# lb LOG ARGS...: metrics_lb, its output to $OUT/LOG, until its admin listener is up.
lb() { local log=$1; shift; "$LB" "$@" > "$OUT/$log" 2>&1 & L=$!; started $L; wait_log "$OUT/$log" "admin listening" 1; }

# --- --help ------------------------------------------------------------------------
snip help
run "target/debug/metrics_lb -h"

# --- start-up --------------------------------------------------------------------------
snip start-backends
say "target/debug/simple_http_backend --count 3 --base-port 18001 &"
target/debug/simple_http_backend --count 3 --base-port 18001 > "$OUT/backends.log" 2>&1 & B=$!; started $B
wait_log "$OUT/backends.log" "backend listening" 3
snip start-lb
say "target/debug/metrics_lb -p 18080 $BACKENDS"
lb main.log -p 18080 $BACKENDS

# --- counting requests ------------------------------------------------------------------
snip requests
run "for i in 1 2 3 4; do curl -s localhost:18080/; done"
run 'curl -s -o /dev/null -w "%{http_code}\n" localhost:18080/status/503'
# one scrape, which the next blocks show through their filters
curl -s localhost:18081/metrics > "$OUT/scrape.log"
# scraped NAME FILTER: "curl ... | FILTER", and FILTER applied to that scrape
scraped() { snip "$1"; say "curl -s localhost:18081/metrics | $2"; eval "$2" < "$OUT/scrape.log" >> "$SNIP"; }
scraped head 'head -12'
scraped histogram 'grep "backend=\"127.0.0.1:18001\"" | grep duration'
scraped series 'grep -E "^lb_(requests_total|backend_up|pool_checkouts_total|connections_accepted)"'

# --- /lb-stats, /healthz, /readyz --------------------------------------------------------
snip lbstats
run "curl -s localhost:18081/lb-stats"
snip probes
run "curl -si localhost:18081/healthz"
run "curl -si localhost:18081/readyz"
run "curl -si -X POST localhost:18081/metrics"
run "curl -si localhost:18081/nothing"
run "curl -sI localhost:18081/metrics"
# a terminal shows no \r
sed -i 's/\r$//' "$SNIP"

# --- OpenMetrics -----------------------------------------------------------------------------
snip openmetrics
run "curl -s -H 'Accept: application/openmetrics-text; version=1.0.0' localhost:18081/metrics | grep -A3 'TYPE lb_requests '"
run "curl -s -H 'Accept: application/openmetrics-text; version=1.0.0' localhost:18081/metrics | grep -B2 -A1 'UNIT'"
run "curl -s -H 'Accept: application/openmetrics-text; version=1.0.0' localhost:18081/metrics | tail -3"
snip content-type
run "curl -s -o /dev/null -w '%{content_type}\n' -H 'Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' localhost:18081/metrics"
stop $L

# --- the limiter in the metrics ----------------------------------------------------------------
snip limiter-start
say "target/debug/metrics_lb -p 18080 $BACKENDS --rate 1 --burst 3"
lb limiter.log -p 18080 $BACKENDS --rate 1 --burst 3
snip limiter
run "for i in \$(seq 6); do curl -s -o /dev/null -w '%{http_code} ' localhost:18080/; done; echo"
run 'curl -s localhost:18081/metrics | grep -E "^lb_requests_total|^lb_ratelimit"'
run "curl -s localhost:18081/lb-stats | grep -A2 answered_without_backend"
snip promtool
say 'curl -s localhost:18081/metrics | promtool check metrics; echo "exit $?"'
{ curl -s localhost:18081/metrics | promtool check metrics; echo "exit $?"; } >> "$SNIP" 2>&1
report usr1 $L "$OUT/limiter.log"
stop $L

# --- not ready ----------------------------------------------------------------------------------
snip notready-start
say "target/debug/metrics_lb -p 18080 $BACKENDS --health-interval-ms 500 --unhealthy-threshold 1"
lb notready.log -p 18080 $BACKENDS --health-interval-ms 500 --unhealthy-threshold 1
snip notready
run "curl -s localhost:18081/readyz"
run "for p in 18001 18002 18003; do curl -s -X POST localhost:\$p/admin/health/down; done"
wait_log "$OUT/notready.log" "backend is DOWN" 3
run "curl -si localhost:18081/readyz"
run "curl -si localhost:18081/healthz"
run "curl -s localhost:18081/metrics | grep ^lb_backend_up"
run 'curl -s -o /dev/null -w "%{http_code}\n" localhost:18080/'
run "curl -s localhost:18081/metrics | grep ^lb_requests_total"
sed -i 's/\r$//' "$SNIP"
snip ready-again
run "for p in 18001 18002 18003; do curl -s -X POST localhost:\$p/admin/health/up; done"
wait_log "$OUT/notready.log" "backend is UP" 3
run "curl -s localhost:18081/readyz"
stop $L

# --- the access log, and a rotation ----------------------------------------------------------------
snip access-start
run "mkdir $DEMO && cd $DEMO"
say "\$LBS/target/debug/metrics_lb -p 18080 $BACKENDS --access-log access.log"
lb access-lb.log -p 18080 $BACKENDS --access-log access.log
snip access
run "curl -s -o /dev/null localhost:18080/"
run "curl -s -o /dev/null 'localhost:18080/status/404?q=1'"
run "curl -s -o /dev/null -d 'x=1' 'localhost:18080/echo'"
wait_log access.log "outcome=" 3
run "cat access.log"
snip rotate
run "mv access.log access.log.1"
say 'kill -HUP $(pgrep -x metrics_lb)'
kill -HUP $L
wait_log "$OUT/access-lb.log" "access log reopened" 1
run "curl -s -o /dev/null localhost:18080/after"
wait_log access.log "outcome=" 1
run "ls"
run "cat access.log"
run "wc -l access.log.1"
stop $L

lb access-json.log -p 18080 $BACKENDS --log-format json --access-log access.json
curl -s -o /dev/null localhost:18080/
wait_log access.json '"outcome"' 1
snip access-json
run "cat access.json"
stop $L

lb access-stderr.log -p 18080 $BACKENDS --log-format json --access-log -
curl -s -o /dev/null localhost:18080/
wait_log "$OUT/access-stderr.log" '"target":"access"' 1
stop $L
cd "$ROOT"

# --- ports -----------------------------------------------------------------------------------------
snip admin-taken
RUN_STDERR=1 run "target/debug/metrics_lb -p 18080 -b 127.0.0.1:18001 --admin-port 18001"
snip port0
say "target/debug/metrics_lb -p 0 -b 127.0.0.1:18001"
lb port0.log -p 0 -b 127.0.0.1:18001
stop $L
stop $B
