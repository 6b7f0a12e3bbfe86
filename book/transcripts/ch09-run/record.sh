#!/usr/bin/env bash
# Records the transcripts of book/src/ch09/run.md from the real debug
# binaries (cargo xtask transcripts ch09-run builds them first). Every
# snippet goes to $OUT/NAME.txt as "$ command" lines and what the command
# printed, and every program's log to $OUT/NAME.log; page.md.tmpl says where
# each goes. Needs ports 18090, 18096, 18097, 18201 and 18202 free, and
# nothing on 9001-9003 (so that l4_proxy starts its demo backends).
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 18090 18096 18097 18201 18202 9001 9002 9003
SITE=/tmp/site
on_exit() { rm -rf "$SITE" /tmp/secret.txt; }

# --- static_server ---------------------------------------------------------------
# The files, with a fixed modification time so that ETag and Last-Modified
# are the same on every run.
rm -rf "$SITE"; mkdir -p "$SITE/docs"
printf '<h1>home</h1>\n' > "$SITE/index.html"
printf 'abcdefghijklmnopqrstuvwxyz\n' > "$SITE/docs/letters.txt"
printf 'the secret\n' > /tmp/secret.txt
touch -d '2026-12-03 18:33:14 UTC' "$SITE/index.html" "$SITE/docs/letters.txt" /tmp/secret.txt
target/debug/static_server -p 18090 --root "$SITE" > "$OUT/static.log" 2>&1 & S=$!; started $S
wait_log "$OUT/static.log" "static server listening" 1
snip static
brun() { run "$1"; echo >> "$SNIP"; }
brun "curl -i localhost:18090/"
brun "curl -i -r 0-9 localhost:18090/docs/letters.txt"
run "curl -I localhost:18090/docs/letters.txt"
etag=$(curl -sI localhost:18090/docs/letters.txt | tr -d '\r' | sed -n 's/^ETag: //p')
brun "curl -i -H 'If-None-Match: $etag' localhost:18090/docs/letters.txt"
run "curl --path-as-is localhost:18090/../secret.txt"
run "curl localhost:18090/%2e%2e/secret.txt"
run "curl -r 100- localhost:18090/docs/letters.txt"
wait_log "$OUT/static.log" "ch09_zero_copy::server: request " 8
stop $S

# --- l4_proxy with its demo backends -----------------------------------------------------
target/debug/l4_proxy -p 18096 > "$OUT/l4demo.log" 2>&1 & P=$!; started $P
wait_log "$OUT/l4demo.log" "demo backends run in this process" 1
snip l4demo
for i in 1 2 3; do run "curl localhost:18096/"; done
say 'kill -USR1 $(pgrep -x l4_proxy)'
kill -USR1 "$P"
wait_log "$OUT/l4demo.log" "connections accepted" 1
stop $P

# --- l4_proxy's health checks --------------------------------------------------------------
backend() { target/debug/simple_http_backend -p "$1" -n "$2" >> "$OUT/backend-$1.log" 2>&1 & eval "B$1=$!"; started $!; wait_port "$1"; }
backend 18201 alpha
backend 18202 beta
target/debug/l4_proxy -p 18097 -b 127.0.0.1:18201 -b 127.0.0.1:18202 --health-interval-ms 500 > "$OUT/l4health.log" 2>&1 & P=$!; started $P
wait_log "$OUT/l4health.log" "l4 proxy listening" 1
snip l4health
run "curl -s localhost:18097/"
run "curl -s localhost:18097/"
say 'kill %2          # the backend on 18202 stops'
stop $B18202
wait_log "$OUT/l4health.log" "backend is DOWN" 1
run "curl -s localhost:18097/"
run "curl -s localhost:18097/"
say "target/debug/simple_http_backend -p 18202 -n beta &"
backend 18202 beta
wait_log "$OUT/l4health.log" "backend is UP" 1
run "curl -s localhost:18097/"
run "curl -s localhost:18097/"
stop $P
