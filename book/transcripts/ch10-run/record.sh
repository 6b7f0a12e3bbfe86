#!/usr/bin/env bash
# Records the transcripts of book/src/ch10/run.md from the real debug
# binaries (cargo xtask transcripts ch10-run builds them first). Every
# snippet goes to $OUT/NAME.txt as "$ command" lines and what the command
# printed, and every balancer's log to $OUT/NAME.log; page.md.tmpl says
# where each goes. Needs ports 8080, 8081 and 9001-9003 free.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080 8081 9001 9002 9003
mkdir -p /tmp/ch10
backends() { target/debug/simple_http_backend --count "$1" --base-port 9001 > "$OUT/backends.log" 2>&1 & B=$!; started $B; wait_port $((9000 + $1)); }

# --- checking files -------------------------------------------------------
cat > /tmp/ch10/broken.yaml <<'Y'
listen:
  port: 8080
algoritm: round-robin
backends:
  - host: 127.0.0.1
    port: 9001
    weight: 0
  - host: 127.0.0.1
    port: 9001
health_check:
  interval: 1s
  timeout: 5s
Y
snip check
for cmd in "target/debug/hot_reload_lb --check -c ch10-hot-reload/configs/lb.yaml" \
           "target/debug/hot_reload_lb ch10-hot-reload/configs/lb.json --check" \
           "target/debug/hot_reload_lb --check -c /tmp/ch10/broken.yaml"; do
  say "$cmd"; eval "$cmd" >> "$SNIP" 2>&1; rc=$?; say 'echo $?'; echo $rc >> "$SNIP"
done

# --- serving lb.yaml -------------------------------------------------------
backends 3
target/debug/hot_reload_lb -c ch10-hot-reload/configs/lb.yaml > "$OUT/serve.log" 2>&1 & L=$!; started $L
wait_log "$OUT/serve.log" "admin listening" 1
snip serve
for i in 1 2 3 4 5 6; do run "curl -s localhost:8080/"; done
run "curl -s localhost:8081/metrics | grep '^lb_requests_total'"
stop $L

# --- routes.yaml -------------------------------------------------------------
target/debug/hot_reload_lb -c ch10-hot-reload/configs/routes.yaml > "$OUT/routes.log" 2>&1 & L=$!; started $L
wait_log "$OUT/routes.log" "admin listening" 1
snip routes
run "for i in 1 2 3 4; do curl -s localhost:8080/api/users; done"
run "for i in 1 2; do curl -s localhost:8080/static/app.css; done"
run "for i in 1 2 3; do curl -s localhost:8080/; done"
stop $L

# --- SIGHUP ------------------------------------------------------------------
printf 'algorithm: wrr\nbackends:\n  - 127.0.0.1:9001:1\n  - 127.0.0.1:9002:1\n' > /tmp/ch10/lb.yaml
target/debug/hot_reload_lb -c /tmp/ch10/lb.yaml > "$OUT/reload.log" 2>&1 & L=$!; started $L
wait_log "$OUT/reload.log" "admin listening" 1
hup() { say 'kill -HUP $(pgrep -x hot_reload_lb)'; kill -HUP "$L"; wait_log "$OUT/reload.log" "$1" "$2"; }
snip reload
run "for i in 1 2 3 4; do curl -s localhost:8080/; done"
run "sed -i 's/9002:1/9002:0/' /tmp/ch10/lb.yaml"
hup "running one stays" 1
run "sed -i 's/9002:0/9002:3/' /tmp/ch10/lb.yaml"
hup "configuration reloaded" 1
run "for i in 1 2 3 4; do curl -s localhost:8080/; done"
run "sed -i 's/9002:3/9003:3/' /tmp/ch10/lb.yaml"
hup "configuration reloaded" 2
run "for i in 1 2 3 4; do curl -s localhost:8080/; done"
run "echo 'rate_limit: {per_ip: 0.1, burst: 3}' >> /tmp/ch10/lb.yaml"
hup "configuration reloaded" 3
run "for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%{http_code} ' localhost:8080/; done; echo"
run "echo 'metrics: {port: 8082}' >> /tmp/ch10/lb.yaml"
hup "restart to apply it" 1
run "for i in 1 2; do curl -s -o /dev/null -w '%{http_code} ' localhost:8080/; done; echo"
stop $L

# --- the admin listener ----------------------------------------------------------
printf 'backends:\n  - 127.0.0.1:9001\n  - 127.0.0.1:9002\n' > /tmp/ch10/admin.yaml
target/debug/hot_reload_lb -c /tmp/ch10/admin.yaml --generation-header > "$OUT/admin.log" 2>&1 & L=$!; started $L
wait_log "$OUT/admin.log" "admin listening" 1
snip admin
brun() { run "$1"; echo >> "$SNIP"; }
brun "curl -si localhost:8080/ | grep -i -e '^HTTP' -e '^x-lb-config-gen' -e '^Hello'"
brun "curl -s localhost:8081/config"
brun "sed -i 's/9002/9003/' /tmp/ch10/admin.yaml"
brun "curl -si -X POST localhost:8081/reload"
brun "curl -si localhost:8080/ | grep -i -e '^HTTP' -e '^x-lb-config-gen' -e '^Hello'"
brun "echo 'pool: {max_size: 0}' >> /tmp/ch10/admin.yaml"
brun "curl -s -w '%{http_code}\n' -X POST localhost:8081/reload"
brun "echo 'metrics: {port: 8082}' >> /tmp/ch10/admin.yaml"
brun "curl -s -w '%{http_code}\n' -X POST localhost:8081/reload"
brun "printf 'backends: []\n' > /tmp/ch10/admin.yaml"
brun "curl -s -w '%{http_code}\n' -X POST localhost:8081/reload"
brun "curl -s localhost:8081/config"
run "curl -s localhost:8081/metrics | grep '^lb_config'"
stop $L
kill "$B"; wait "$B" 2>/dev/null

# --- watching the file -----------------------------------------------------------
backends 2
printf 'algorithm: wrr\nbackends: ["127.0.0.1:9001:1", "127.0.0.1:9002:1"]\n' > /tmp/ch10/watched.yaml
target/debug/hot_reload_lb -c /tmp/ch10/watched.yaml -w > "$OUT/watch.log" 2>&1 & L=$!; started $L
wait_log "$OUT/watch.log" "watching the configuration file" 1
snip watch
run "printf 'algorithm: wrr\nbackends: [\"127.0.0.1:9001:1\", \"127.0.0.1:9002:4\"]\n' > /tmp/ch10/.watched.yaml.new"
run "mv /tmp/ch10/.watched.yaml.new /tmp/ch10/watched.yaml"
wait_log "$OUT/watch.log" "configuration reloaded" 1
run "for i in 1 2 3 4 5; do curl -s localhost:8080/; done"
stop $L
