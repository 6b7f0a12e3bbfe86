#!/usr/bin/env bash
# Records the transcripts of book/src/ch01/run.md from the real debug
# binaries (cargo xtask transcripts ch01-run builds them first). The page
# shows `cargo run -p ch01-fundamentals ...`; this runs the same program
# from target/debug. Every snippet goes to $OUT/NAME.txt, every server's
# log to $OUT/NAME.log; page.md.tmpl says where each goes. Needs ports
# 8080, 9000 and 7000 free, and nothing on port 9 (the refused connect).
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080 9000 7000 9
workdir ch01-run
on_exit() { exec 3>&- 2>/dev/null; }
BIN=$ROOT/target/debug

# shown SHOWN ACTUAL: "$ SHOWN" in the snippet, then what ACTUAL prints.
shown() {
  say "$1"
  if [ "$RUN_STDERR" = 1 ]; then eval "$2" >> "$SNIP" 2>&1; else eval "$2" >> "$SNIP" 2>/dev/null; fi
}
# server LOG ARGS...: an echo_server with its log in $OUT/LOG; its pid in S.
server() { local log=$1; shift; "$BIN/echo_server" "$@" > "$OUT/$log" 2>&1 & S=$!; started $S; wait_log "$OUT/$log" "echo server listening" 1; }
# logged LOG REGEX: the lines of $OUT/LOG matching REGEX, into the snippet.
logged() { grep -E "$2" "$OUT/$1" >> "$SNIP"; }
# typed PORT LINE...: an `nc -N` session typed by hand: each line as the
# terminal shows it, then the line the server answered, before the next
# line is typed; then Ctrl-D (end of input: nc half-closes).
typed() {
  local port=$1 line reply; shift
  coproc NC { nc -N 127.0.0.1 "$port"; }
  local in=${NC[1]} out=${NC[0]} pid=$NC_PID
  for line in "$@"; do
    printf '%s\n' "$line" >> "$SNIP"
    printf '%s\n' "$line" >&"$in"
    IFS= read -r -t 5 reply <&"$out" || { echo "no answer to '$line' on $port" >&2; exit 1; }
    printf '%s\n' "$reply" >> "$SNIP"
  done
  eval "exec $in>&-"
  wait "$pid"
}

# --- the first server and client ------------------------------------------
snip start
say "cargo run -p ch01-fundamentals"
server echo.log
logged echo.log "echo server listening"
snip hello
shown "cargo run -p ch01-fundamentals --bin echo_client -- --message hello" "$BIN/echo_client --message hello"
wait_log "$OUT/echo.log" "client closed" 1
snip two-lines
shown "printf 'hi there\\nsecond\\n' | cargo run -p ch01-fundamentals --bin echo_client" "printf 'hi there\\nsecond\\n' | $BIN/echo_client"
wait_log "$OUT/echo.log" "client closed" 2
snip nc
say "nc -N 127.0.0.1 8080"
typed 8080 "hello" "line two"
wait_log "$OUT/echo.log" "client closed" 3
snip nc-no-newline
run "printf 'no newline at all' | nc -N 127.0.0.1 8080"
wait_log "$OUT/echo.log" "client closed" 4
stop $S
# one log per client, in order, for the page's @@lines@@ markers
grep "client closed" "$OUT/echo.log" | sed -n 1p > "$OUT/closed-hello.log"
grep "client closed" "$OUT/echo.log" | sed -n 2p > "$OUT/closed-two-lines.log"
grep "client closed" "$OUT/echo.log" | sed -n 3p > "$OUT/closed-nc.log"

# --- RUST_LOG=debug ---------------------------------------------------------
snip debug
say "RUST_LOG=debug cargo run -p ch01-fundamentals"
RUST_LOG=debug server debug.log
"$BIN/echo_client" --message hello > /dev/null
wait_log "$OUT/debug.log" "client closed" 1
stop $S
logged debug.log "client closed|accepted peer|listening|open-files"

# --- JSON logs --------------------------------------------------------------
snip json
say "cargo run -p ch01-fundamentals -- --log-format json"
server json.log --log-format json
"$BIN/echo_client" --message hello > /dev/null
wait_log "$OUT/json.log" "client closed" 1
stop $S
logged json.log '"message":"(echo server listening|client closed)"'

# --- another port, and mistakes -----------------------------------------------
snip port
say "cargo run -p ch01-fundamentals -- 9000"
server port.log 9000
logged port.log "echo server listening"
shown 'cargo run -p ch01-fundamentals --bin echo_client -- -p 9000 --message "on nine thousand"' "$BIN/echo_client -p 9000 --message 'on nine thousand'"
snip errors
RUN_STDERR=1
shown "cargo run -p ch01-fundamentals -- 9000      # while another server holds 9000" "$BIN/echo_server 9000"
echo >> "$SNIP"
shown "cargo run -p ch01-fundamentals -- 9000 --port 9001" "$BIN/echo_server 9000 --port 9001"
echo >> "$SNIP"
shown "cargo run -p ch01-fundamentals --bin echo_client -- -p 9 --message x" "$BIN/echo_client -p 9 --message x"
RUN_STDERR=0
stop $S

snip help
shown "cargo run -p ch01-fundamentals -- --help" "$BIN/echo_server --help"

# --- SO_REUSEADDR: a connection left open while the server stops --------------
server reuse.log
mkfifo "$WORK/typing"
nc 127.0.0.1 8080 < "$WORK/typing" > /dev/null & NCPID=$!; started $NCPID
exec 3> "$WORK/typing"          # the terminal nc reads from, left open
for _ in $(seq 100); do ss -tn state established '( dport = :8080 )' | grep -q 127 && break; sleep 0.05; done
stop $S
snip reuse-ss
run "ss -tan exclude time-wait '( sport = :8080 or dport = :8080 )'"
sed -i 's/ *$//' "$SNIP"         # a terminal shows no trailing blanks
snip reuse-bind
RUN_STDERR=1 run "python3 -c \"import socket; socket.socket().bind(('127.0.0.1', 8080))\""
snip reuse-again
say "cargo run -p ch01-fundamentals"
server reuse-again.log
logged reuse-again.log "echo server listening"
stop $S
exec 3>&-
wait_gone $NCPID

# --- the lab server -------------------------------------------------------------
snip lab
say "cargo run -p ch01-fundamentals --bin lab_server -- calc"
"$BIN/lab_server" calc > "$OUT/lab.log" 2>&1 & S=$!; started $S
wait_log "$OUT/lab.log" "lab server listening" 1
logged lab.log "lab server listening"
snip calc
say "nc -N 127.0.0.1 7000"
typed 7000 "ADD 5 3" "DIV 7 2" "DIV 1 0" "POW 2 3" "MUL 9223372036854775807 2" "add x 1" "ADD 1"
# lab_server has no signal handler of its own, and a background job of a
# script ignores SIGINT: end it with SIGTERM.
kill $S; wait $S 2>/dev/null
exit 0
