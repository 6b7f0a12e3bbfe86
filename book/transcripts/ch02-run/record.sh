#!/usr/bin/env bash
# Records the transcripts of book/src/ch02/run.md from the real debug
# binaries (cargo xtask transcripts ch02-run builds them first). The page
# shows `cargo run -p ...`; this runs the same programs from target/debug.
# Every snippet goes to $OUT/NAME.txt, every server's log to $OUT/NAME.log;
# page.md.tmpl says where each goes. Needs ports 3128, 8080 and 9001 free,
# and nothing on 9002 (the port the proxies refuse).
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 3128 8080 9001 9002
workdir ch02-run
# The snippets hold what a terminal shows: no \r (a pty adds one to curl's
# own CRLF), no trailing blanks, and curl's bold header names (it draws them
# on a terminal) as plain text.
on_exit() { sed -i 's/\x1b\[[0-9;]*m//g; s/[ \r]*$//' "$OUT"/*.txt; }
BIN=$ROOT/target/debug
export TIMEFORMAT=$'\nreal\t%3lR'   # `time` shows the wall-clock time only

# shown SHOWN ACTUAL: "$ SHOWN" in the snippet, then what ACTUAL prints.
shown() {
  say "$1"
  if [ "$RUN_STDERR" = 1 ]; then eval "$2" >> "$SNIP" 2>&1; else eval "$2" >> "$SNIP" 2>/dev/null; fi
}
# logged LOG REGEX: the lines of $OUT/LOG matching REGEX, into the snippet.
logged() { grep -E "$2" "$OUT/$1" >> "$SNIP"; }
# in_tty CMD: "$ CMD", then what CMD shows on a terminal (stderr included;
# curl draws no progress meter there, as it does into a file).
in_tty() { say "$1"; SHELL=/bin/bash script -qec "$1" /dev/null >> "$SNIP"; }
# with_status CMD: in_tty CMD, then `echo $?` and its status.
with_status() { in_tty "$1"; local rc=$?; say 'echo $?'; echo $rc >> "$SNIP"; }
backend() { "$BIN/simple_http_backend" >> "$OUT/backend.log" 2>&1 & B=$!; started $B; wait_port 9001; }
# proxy LOG BIN ARGS...: a proxy with its log in $OUT/LOG; its pid in P.
proxy() { local log=$1 bin=$2; shift 2; "$BIN/$bin" "$@" > "$OUT/$log" 2>&1 & P=$!; started $P; wait_log "$OUT/$log" "proxy listening" 1; }
# The proxies leave SIGINT to its default action (Ctrl-C ends them in a
# terminal), and a script's background job ignores SIGINT: SIGTERM them.
end() { kill "$1"; wait "$1" 2>/dev/null; true; }

# --- the backend -------------------------------------------------------------
snip backend
say "cargo run -p backends"
backend
logged backend.log "backend listening"

# --- the forward proxy ---------------------------------------------------------
snip fwd-start
say "cargo run -p ch02-proxy --bin forward_proxy -- --allow-port 9001"
proxy fwd.log forward_proxy --allow-port 9001
logged fwd.log "forward proxy listening"
snip fwd-curl
run "curl -p -x http://127.0.0.1:3128 http://127.0.0.1:9001/"
run "curl -x http://127.0.0.1:3128 http://127.0.0.1:9001/"
wait_log "$OUT/fwd.log" " request peer=" 2
snip fwd-echo
run "curl -p -x http://127.0.0.1:3128 http://127.0.0.1:9001/echo"
run "curl -x http://127.0.0.1:3128 http://127.0.0.1:9001/echo"
snip fwd-denied
with_status "curl -p -x http://127.0.0.1:3128 http://127.0.0.1:9002/"
snip fwd-denied-v
in_tty "curl -v -p -x http://127.0.0.1:3128 http://127.0.0.1:9002/"
n=$(grep -c " request peer=" "$OUT/fwd.log")
snip fwd-denied-nc
run "printf 'CONNECT 127.0.0.1:9002 HTTP/1.1\\r\\nHost: 127.0.0.1:9002\\r\\n\\r\\n' | nc 127.0.0.1 3128"
wait_log "$OUT/fwd.log" " request peer=" $((n + 1))
cp "$OUT/fwd.log" "$OUT/fwd-denied.log"     # up to the hand-made CONNECT
snip fwd-denied-plain
with_status "curl -i -x http://127.0.0.1:3128 http://127.0.0.1:9002/"
end $P

# --- an idle tunnel --------------------------------------------------------------
snip idle
say "RUST_LOG=debug cargo run -p ch02-proxy --bin forward_proxy -- --allow-port 9001 --idle-timeout-ms 2000"
RUST_LOG=debug proxy idle.log forward_proxy --allow-port 9001 --idle-timeout-ms 2000
run "(printf 'CONNECT 127.0.0.1:9001 HTTP/1.1\\r\\nHost: 127.0.0.1:9001\\r\\n\\r\\n'; sleep 5) | nc 127.0.0.1 3128"
wait_log "$OUT/idle.log" " request peer=" 1
end $P

# --- the reverse proxy -------------------------------------------------------------
snip rev-start
say "cargo run -p ch02-proxy -- --backend 127.0.0.1:9001"
proxy rev.log reverse_proxy --backend 127.0.0.1:9001
logged rev.log "reverse proxy listening"
snip rev-i
run "curl -i 127.0.0.1:8080/"
snip rev-direct
run "curl -i 127.0.0.1:9001/"
snip rev-echo
run "curl 127.0.0.1:8080/echo"
run "curl -H 'X-Forwarded-For: 203.0.113.7' 127.0.0.1:8080/echo"
wait_log "$OUT/rev.log" " request peer=" 3

# --- the backend is down -------------------------------------------------------------
stop $B
snip rev-down
run "curl -i 127.0.0.1:8080/"
wait_log "$OUT/rev.log" "status=502 ms=" 1
end $P

# --- a slow backend, slowloris, malformed requests ---------------------------------------
backend
snip rev-slow-start
say "cargo run -p ch02-proxy -- --backend 127.0.0.1:9001 --response-timeout-ms 1000"
proxy slow.log reverse_proxy --backend 127.0.0.1:9001 --response-timeout-ms 1000
snip rev-slow
in_tty "time curl -i '127.0.0.1:8080/slow?ms=5000'"
run "curl -i '127.0.0.1:8080/slow?ms=500'"
wait_log "$OUT/slow.log" " request peer=" 2
snip slowloris
run "(printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nX-Slow: '; while sleep 1; do printf a; done) | nc 127.0.0.1 8080"
wait_log "$OUT/slow.log" "status=408 ms=" 1
snip bad
run "printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 5\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n' | nc 127.0.0.1 8080"
run "printf 'GET / HTTP/1.1\\r\\n\\r\\n' | nc 127.0.0.1 8080 | tail -1"
run "printf 'GET / HTTP/1.1\\r\\nHost : a\\r\\n\\r\\n' | nc 127.0.0.1 8080 | tail -1"
run "printf 'POST / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 5\\r\\nContent-Length: 6\\r\\n\\r\\nhello!' | nc 127.0.0.1 8080 | tail -1"
run "printf 'POST / HTTP/1.1\\r\\nHost: a\\r\\nTransfer-Encoding: gzip, chunked\\r\\n\\r\\n' | nc 127.0.0.1 8080 | tail -1"
run "printf 'CONNECT a:443 HTTP/1.1\\r\\nHost: a:443\\r\\n\\r\\n' | nc 127.0.0.1 8080 | tail -1"
run "printf 'POST /echo HTTP/1.1\\r\\nHost: a\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\nzz\\r\\nhello\\r\\n0\\r\\n\\r\\n' | nc 127.0.0.1 8080 | tail -1"
snip limits
run "curl -s \"127.0.0.1:8080/\$(head -c 9000 /dev/zero | tr '\\0' a)\""
run "curl -s -H \"X-Big: \$(head -c 17000 /dev/zero | tr '\\0' a)\" 127.0.0.1:8080/"
wait_log "$OUT/slow.log" " request peer=" 12
end $P

# --- an access log (lab 6.1) -----------------------------------------------------------
cd "$WORK"
snip access-start
say "cargo run -p ch02-proxy -- --backend 127.0.0.1:9001 --access-log access.log"
proxy access-proxy.log reverse_proxy --backend 127.0.0.1:9001 --access-log access.log
snip access
run "curl -s 127.0.0.1:8080/ > /dev/null"
run "curl -s '127.0.0.1:8080/echo?x=1' > /dev/null"
run "curl -s 127.0.0.1:8080/status/404 > /dev/null"
run "curl -s '127.0.0.1:8080/slow?ms=120' > /dev/null"
wait_log "$WORK/access.log" "" 4
run "cat access.log"
snip access-refused
run "printf 'GET / HTTP/1.1\\r\\n\\r\\n' | nc 127.0.0.1 8080 > /dev/null"
wait_log "$WORK/access.log" "" 5
run "tail -1 access.log"
cd "$ROOT"
end $P
stop $B
