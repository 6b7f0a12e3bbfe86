# Shared by every book/transcripts/NAME/record.sh: source it after setting
# OUT (the folder snippets go to). It moves to the workspace root, checks
# that the ports the page uses are free, kills what the script started when
# it exits, and gives the helpers below.
#
#   need_ports P...        stop unless every port P is free
#   snip NAME              later output goes to $OUT/NAME.txt
#   say CMD                writes "$ CMD" into the snippet (not run)
#   run CMD                writes "$ CMD", runs it in this shell, appends its
#                          stdout (stderr too with RUN_STDERR=1)
#   started PID            kill PID when the script exits
#   wait_port P            until something answers HTTP on localhost:P
#   wait_listen P          until something listens on port P (any protocol)
#   wait_log FILE RE N     until FILE has N lines matching RE
#   wait_gone PID          until PID has exited
#   stop PID               SIGINT (SIGTERM if it is still running 5 s later), then wait
#   workdir NAME           a fresh /tmp/NAME as $WORK, removed at exit
#   help_excerpt BIN FLAG  "$ target/debug/BIN -h", then its help down to
#                          Usage, and from FLAG's line to before -h/--help
#   report NAME PID LOG [RE]  SIGUSR1 to PID; the report it then prints in
#                          LOG (its lines matching RE) goes to $OUT/NAME.txt
#
# RUST_BACKTRACE, RUST_LIB_BACKTRACE and RUST_LOG are unset: pages show what a user sees.
set -u
: "${OUT:?set OUT before sourcing lib.sh}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
mkdir -p "$OUT"
PIDS=()
RUN_STDERR=${RUN_STDERR:-0}
unset RUST_BACKTRACE RUST_LIB_BACKTRACE RUST_LOG
WORK=
SNIP=/dev/null
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if declare -F on_exit > /dev/null; then on_exit; fi
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
need_ports() {
  for port in "$@"; do
    if ss -ltn "sport = :$port" | grep -q LISTEN; then echo "port $port is busy" >&2; exit 1; fi
  done
}
snip() { SNIP=$OUT/$1.txt; : > "$SNIP"; }
say() { printf '$ %s\n' "$1" >> "$SNIP"; }
run() {
  say "$1"
  if [ "$RUN_STDERR" = 1 ]; then eval "$1" >> "$SNIP" 2>&1; else eval "$1" >> "$SNIP" 2>/dev/null; fi
}
started() { PIDS+=("$1"); }
wait_port() { for _ in $(seq 200); do curl -s -o /dev/null "localhost:$1/" && return; sleep 0.05; done; echo "port $1 never answered" >&2; exit 1; }
wait_listen() { for _ in $(seq 200); do ss -ltn "sport = :$1" | grep -q LISTEN && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
wait_log() { for _ in $(seq 400); do [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return; sleep 0.05; done; echo "$1: no '$2'" >&2; exit 1; }
wait_gone() { for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; echo "pid $1 still running" >&2; exit 1; }
# A script's background jobs start with SIGINT ignored: a program that
# does not handle it itself (forward_proxy, say) would never stop. So
# SIGTERM follows after 5 s.
stop() {
  kill -INT "$1" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -TERM "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}
workdir() { WORK=/tmp/$1; rm -rf "$WORK"; mkdir -p "$WORK"; }
report() {
  local name=$1 pid=$2 log=$3 filter=${4:-.} before n size=-1
  before=$(wc -l < "$log"); n=$(grep -c '^=== ' "$log")
  kill -USR1 "$pid"
  wait_log "$log" '^=== ' $((n + 1))
  # The report is written a line at a time: wait until it stops growing.
  while [ "$size" != "$(wc -c < "$log")" ]; do size=$(wc -c < "$log"); sleep 0.1; done
  tail -n +$((before + 1)) "$log" | grep -v '^20[0-9][0-9]-' | grep -E "$filter" > "$OUT/$name.txt"
}
help_excerpt() {
  say "target/debug/$1 -h"
  "$ROOT/target/debug/$1" -h > "$OUT/help.full"
  { sed -n '1,/^Usage:/p' "$OUT/help.full"; echo '...'
    sed -n "/$2 </,/^  -h, --help/p" "$OUT/help.full" | grep -v '^  -h, --help'; echo '...'; } >> "$SNIP"
}
