#!/usr/bin/env bash
# Records the transcripts of book/src/ch02/labs.md from the real debug
# binaries, built with the reference solutions of the labs (cargo xtask
# transcripts ch02-labs builds them first). Every snippet goes to
# $OUT/NAME.txt as "$ command" lines and what the command printed, and
# every proxy's log to $OUT/NAME.log; page.md.tmpl says where each goes.
# Needs ports 3128, 8080, 9001 and 9009 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 3128 8080 9001 9009
workdir ch02-labs
BIN=$ROOT/target/debug
# The proxies leave SIGINT to its default action, which a background job of
# a script ignores: they are stopped with SIGTERM.
halt() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 0; }

# --- lab 6.2: a response served twice, fetched once ---------------------------
cd "$WORK"
snip cache
say "target/debug/forward_proxy --allow-port 9009 --cache-entries 100 &"
"$BIN/forward_proxy" --allow-port 9009 --cache-entries 100 > "$OUT/cache.log" 2>&1 & P=$!; started $P
wait_log "$OUT/cache.log" "forward proxy listening" 1
say "printf 'HTTP/1.1 200 OK\\r\\nCache-Control: max-age=60\\r\\nContent-Length: 7\\r\\n\\r\\ncached\\n' | nc -l 127.0.0.1 9009 > request.txt &"
printf 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 7\r\n\r\ncached\n' | nc -l 127.0.0.1 9009 > request.txt & N=$!; started $N
wait_listen 9009
run "curl -x http://127.0.0.1:3128 http://127.0.0.1:9009/page"
wait_gone $N
run "curl -x http://127.0.0.1:3128 http://127.0.0.1:9009/page"
run "cat request.txt"
wait_log "$OUT/cache.log" "bytes_up=" 2
halt $P
cd "$ROOT"

# --- lab 6.3: Forwarded through the reverse proxy --------------------------------
snip forwarded
say "target/debug/simple_http_backend -p 9001 &"
"$BIN/simple_http_backend" -p 9001 > "$OUT/backend.log" 2>&1 & B=$!; started $B
wait_port 9001
say "target/debug/reverse_proxy --backend 127.0.0.1:9001 --forwarded &"
"$BIN/reverse_proxy" --backend 127.0.0.1:9001 --forwarded > "$OUT/forwarded.log" 2>&1 & R=$!; started $R
wait_port 8080
run "curl -H 'Forwarded: for=198.51.100.1;proto=https' -H 'Host: shop.example' 127.0.0.1:8080/echo"
snip forwarded-nohost
run "curl -s 127.0.0.1:8080/echo | grep '^Forwarded:'"
halt $R
halt $B

# HTTP ends its lines with CR LF; a terminal shows them as plain line ends,
# and so does the page.
sed -i 's/\r$//' "$OUT"/*.txt
