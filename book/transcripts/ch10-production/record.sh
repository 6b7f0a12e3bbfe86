#!/usr/bin/env bash
# Records every transcript of book/src/ch10/production.md from the real
# debug binaries (cargo xtask transcripts ch10-production builds them
# first). Each snippet goes to OUT_DIR/NAME.txt as "$ command" lines
# followed by what the command printed; page.md.tmpl says where each
# goes. The files the page shows live in /tmp/prod, as its text says.
# Needs ports 8080, 8081 and 9001-9003 free, and promtool, logrotate and
# systemd-analyze for the checks of the example files.
OUT=${1:?usage: record.sh OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
P=/tmp/prod
rm -rf "$OUT" "$P"/cm "$P"/*.log* "$P"/logrotate.state "$P"/lb.pid
RUN_STDERR=1
source "$HERE/../lib.sh"
need_ports 8080 8081 9001 9002 9003
mkdir -p "$P/sd"
cp "$HERE"/files/*.py "$P"/
cp "$HERE"/files/sd/* "$P"/sd/

# --- the configurations -------------------------------------------------
head_yaml() {
cat <<'EOF'
listen:
  address: 127.0.0.1
  port: 8080
algorithm: wrr
backends:
EOF
}
tail_yaml() {
cat <<'EOF'
health_check:
  path: /health
  interval: 1s
  timeout: 500ms
metrics:
  port: 8081
EOF
}
backend() { # PORT WEIGHT [MAX]
  printf '  - host: 127.0.0.1\n    port: %s\n    weight: %s\n' "$1" "$2"
  if [ $# -ge 3 ]; then printf '    max_connections: %s\n' "$3"; fi
}
{ head_yaml; backend 9001 1; backend 9002 1; tail_yaml; } > $P/blue.yaml
{ head_yaml; backend 9001 9; backend 9002 9; backend 9003 1; tail_yaml; } > $P/canary-5.yaml
{ head_yaml; backend 9001 3; backend 9002 3; backend 9003 2; tail_yaml; } > $P/canary-25.yaml
{ head_yaml; backend 9001 3; backend 9002 3; backend 9003 2 1; tail_yaml; } > $P/canary-25-capped.yaml
{ head_yaml; backend 9003 1; tail_yaml; } > $P/green.yaml
{ head_yaml; backend 9001 9; backend 9002 9;
  printf '  - host: 127.0.0.1\n    port: 9003\n    weight: 0\n    max_conections: 1\n'; tail_yaml; } > $P/broken.yaml
sed 's/^  port: 8081$/  port: 8082/' $P/blue.yaml > $P/blue-admin-8082.yaml
sed 's/^  port: 8080$/  port: 9001/' $P/blue.yaml > $P/blue-port-9001.yaml
cp $P/blue.yaml $P/lb.yaml

cat > $P/logrotate.conf <<'EOF'
/tmp/prod/lb.log /tmp/prod/access.log {
    daily
    rotate 14
    missingok
    notifempty
    nocompress
    sharedscripts
    postrotate
        kill -HUP "$(cat /tmp/prod/lb.pid)"
    endscript
}
EOF

cat > $P/alerts.yaml <<'EOF'
groups:
  - name: hot_reload_lb
    rules:
      - alert: LoadBalancerConfigRefused
        expr: increase(lb_config_reloads_total{result=~"invalid|restart_needed|failed"}[15m]) > 0
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.instance }}: a configuration reload was not applied ({{ $labels.result }})"
          description: "The file on disk is not the configuration serving. GET /config on the admin port says why."
EOF

# --- backends -------------------------------------------------------------
target/debug/simple_http_backend --count 3 --base-port 9001 > $OUT/backends.log 2>&1 &
started $!
wait_listen 9001; wait_listen 9002; wait_listen 9003
snip backends-start
printf '$ %s\n' 'target/debug/simple_http_backend --count 3 --base-port 9001 &' >> "$SNIP"
cat $OUT/backends.log >> "$SNIP"

# --- 1. configuration as code ------------------------------------------------
snip check
run 'target/debug/hot_reload_lb --check -c /tmp/prod/lb.yaml; echo "exit status $?"'
run 'target/debug/hot_reload_lb --check -c /tmp/prod/broken.yaml; echo "exit status $?"'

snip check-routes
run 'target/debug/hot_reload_lb --check -c ch10-hot-reload/configs/routes.yaml; echo "exit status $?"'

# Flags win: -a rr over the file's wrr.
target/debug/hot_reload_lb -c /tmp/prod/lb.yaml -a rr > $OUT/pinned.log 2>&1 &
B=$!; started $B
wait_listen 8081; sleep 0.3
snip pinned-start
printf '$ %s\n' 'target/debug/hot_reload_lb -c /tmp/prod/lb.yaml -a rr &' >> "$SNIP"
cat $OUT/pinned.log >> "$SNIP"
snip pinned
run "curl -s localhost:8081/config | jq -c '{generation, algorithm, backends}'"
run "sed -i 's/^algorithm: wrr$/algorithm: lc/' /tmp/prod/lb.yaml"
run 'curl -s -X POST localhost:8081/reload'
run "curl -s localhost:8081/config | jq -c '{generation, algorithm, backends}'"
kill $B; wait_gone $B
cp $P/blue.yaml $P/lb.yaml

# The main run: sections 1 to 5.
target/debug/hot_reload_lb -c /tmp/prod/lb.yaml --log-file /tmp/prod/lb.log --access-log /tmp/prod/access.log --generation-header > $OUT/main.stderr 2>&1 &
LB=$!; started $LB
echo $LB > $P/lb.pid
wait_listen 8080; wait_listen 8081; sleep 0.3
snip main-start
printf '$ %s\n' 'target/debug/hot_reload_lb -c /tmp/prod/lb.yaml --log-file /tmp/prod/lb.log --access-log /tmp/prod/access.log --generation-header &' >> "$SNIP"
cat $OUT/main.stderr >> "$SNIP"
printf '$ %s\n' 'echo $! > /tmp/prod/lb.pid' >> "$SNIP"

snip config
run 'curl -s localhost:8081/config'
snip hash
run 'python3 /tmp/prod/confighash.py /tmp/prod/lb.yaml'
run "curl -s localhost:8081/metrics | grep '^lb_config'"

# --- 2. reload in operations ---------------------------------------------------
snip hup
run 'cp /tmp/prod/broken.yaml /tmp/prod/lb.yaml'
run 'kill -HUP "$(cat /tmp/prod/lb.pid)"'
sleep 0.5
run "curl -s localhost:8081/config | jq -c '{generation, hash, result: .last.result}'"
run 'cp /tmp/prod/blue.yaml /tmp/prod/lb.yaml'

snip post
run "curl -s -w 'HTTP %{http_code}\n' -X POST localhost:8081/reload"
run 'cp /tmp/prod/broken.yaml /tmp/prod/lb.yaml'
run "curl -s -w 'HTTP %{http_code}\n' -X POST localhost:8081/reload"
run 'cp /tmp/prod/blue-admin-8082.yaml /tmp/prod/lb.yaml'
run "curl -s -w 'HTTP %{http_code}\n' -X POST localhost:8081/reload"
run 'cp /tmp/prod/blue-port-9001.yaml /tmp/prod/lb.yaml'
run "curl -s -w 'HTTP %{http_code}\n' -X POST localhost:8081/reload"
run 'cp /tmp/prod/blue.yaml /tmp/prod/lb.yaml'
run "curl -s -w 'HTTP %{http_code}\n' -X POST localhost:8081/reload"

snip deploy
run 'cp /tmp/prod/broken.yaml /tmp/prod/lb.yaml && curl -fsS -X POST localhost:8081/reload; echo "exit status $?"'
run 'cp /tmp/prod/blue.yaml /tmp/prod/lb.yaml && curl -fsS -X POST localhost:8081/reload; echo "exit status $?"'

snip variants
run 'diff /tmp/prod/blue.yaml /tmp/prod/blue-admin-8082.yaml'
run 'diff /tmp/prod/blue.yaml /tmp/prod/blue-port-9001.yaml'

snip reload-metrics
run "curl -s localhost:8081/metrics | grep '^lb_config_reloads_total'"
snip promtool
run 'promtool check rules /tmp/prod/alerts.yaml'

# --- 3. canary and blue-green -------------------------------------------------
snip canary5-diff
run 'diff -u /tmp/prod/blue.yaml /tmp/prod/canary-5.yaml'
snip canary5
run 'target/debug/hot_reload_lb --check -c /tmp/prod/canary-5.yaml'
run 'cp /tmp/prod/canary-5.yaml /tmp/prod/lb.yaml'
run 'curl -s -X POST localhost:8081/reload'
run 'for i in $(seq 19); do curl -s localhost:8080/; done | sort | uniq -c'
run "for i in \$(seq 19); do curl -s localhost:8080/ | cut -d' ' -f3; done | paste -sd' '"
snip canary5-stats
run "curl -s localhost:8081/lb-stats | jq -c '.groups[0].backends[] | {address, weight, requests}'"

snip canary25
run 'diff /tmp/prod/canary-5.yaml /tmp/prod/canary-25.yaml'
run 'cp /tmp/prod/canary-25.yaml /tmp/prod/lb.yaml'
run 'curl -s -X POST localhost:8081/reload'
run 'for i in $(seq 8); do curl -s localhost:8080/; done | sort | uniq -c'
run "for i in \$(seq 16); do curl -s 'localhost:8080/slow?ms=500' & done | sort | uniq -c"

snip capped
run 'diff /tmp/prod/canary-25.yaml /tmp/prod/canary-25-capped.yaml'
run 'cp /tmp/prod/canary-25-capped.yaml /tmp/prod/lb.yaml'
run 'curl -s -X POST localhost:8081/reload'
run "for i in \$(seq 16); do curl -s 'localhost:8080/slow?ms=500' & done | sort | uniq -c"

snip green
run 'cp /tmp/prod/green.yaml /tmp/prod/lb.yaml'
run 'curl -s -X POST localhost:8081/reload'
run "curl -si localhost:8080/ | grep -i -e '^x-lb-config-gen' -e '^hello'"
run 'for i in $(seq 4); do curl -s localhost:8080/; done'

snip rollback
run 'cp /tmp/prod/blue.yaml /tmp/prod/lb.yaml'
run 'curl -s -X POST localhost:8081/reload'
run "curl -si localhost:8080/ | grep -i -e '^x-lb-config-gen' -e '^hello'"
run "curl -s localhost:8081/config | jq -c '{generation, hash, backends}'"
run 'python3 /tmp/prod/confighash.py /tmp/prod/lb.yaml'

# --- 4. log rotation ----------------------------------------------------------------
snip rotate
run 'ls /tmp/prod/*.log*'
run 'logrotate -s /tmp/prod/logrotate.state -f /tmp/prod/logrotate.conf'
sleep 0.5
run 'curl -s localhost:8080/'
sleep 0.3
run 'ls /tmp/prod/*.log*'
run 'wc -l /tmp/prod/access.log.1 /tmp/prod/access.log'
run 'cat /tmp/prod/access.log'

# --- 5. health ------------------------------------------------------------------------
snip health
run "curl -s -w 'HTTP %{http_code}\n' localhost:8081/healthz"
run "curl -s -w 'HTTP %{http_code}\n' localhost:8081/readyz"
run 'for p in 9001 9002; do curl -s -X POST localhost:$p/admin/health/down; done'
run 'sleep 4'
run "curl -s -w 'HTTP %{http_code}\n' localhost:8081/readyz"
run "curl -s -w 'HTTP %{http_code}\n' localhost:8081/healthz"
run "curl -s -w 'HTTP %{http_code}\n' localhost:8080/"
run 'for p in 9001 9002; do curl -s -X POST localhost:$p/admin/health/up; done'
run 'sleep 3'
run "curl -s -w 'HTTP %{http_code}\n' localhost:8081/readyz"

kill $LB; wait_gone $LB
cp $P/lb.log.1 $OUT/lb.log.1; cp $P/lb.log $OUT/lb.log
cp $P/access.log.1 $OUT/access.log.1; cp $P/access.log $OUT/access.log

# --- 2 (again): -w and a ConfigMap-style directory ----------------------------------------
cp $P/blue.yaml $P/lb.yaml
snip cm-setup
run 'mkdir -p /tmp/prod/cm/..v1 /tmp/prod/cm/..v2'
run 'cp /tmp/prod/blue.yaml /tmp/prod/cm/..v1/lb.yaml'
run 'ln -s ..v1 /tmp/prod/cm/..data'
run 'ln -s ..data/lb.yaml /tmp/prod/cm/lb.yaml'
target/debug/hot_reload_lb -c /tmp/prod/cm/lb.yaml -w > $OUT/watch.log 2>&1 &
W=$!; started $W
wait_listen 8081; sleep 0.3
snip cm-start
printf '$ %s\n' 'target/debug/hot_reload_lb -c /tmp/prod/cm/lb.yaml -w &' >> "$SNIP"
cat $OUT/watch.log >> "$SNIP"
snip cm-swap
run 'cp /tmp/prod/canary-5.yaml /tmp/prod/cm/..v2/lb.yaml'
run 'ln -s ..v2 /tmp/prod/cm/..data_tmp && mv -T /tmp/prod/cm/..data_tmp /tmp/prod/cm/..data'
sleep 0.5
run "curl -s localhost:8081/config | jq -c '{generation, last}'"
kill $W; wait_gone $W
cp $OUT/watch.log $OUT/watch-final.log

# --- the examples: checked, not shown --------------------------------------------------
snip examples-check
sed "s#/usr/local/bin/hot_reload_lb#$ROOT/target/debug/hot_reload_lb#" $P/sd/hot_reload_lb.service.tmpl > $P/sd/hot_reload_lb.service
run 'systemd-analyze verify /tmp/prod/sd/hot_reload_lb.service; echo "exit status $?"'
run 'logrotate -d -s /tmp/prod/sd/state /tmp/prod/sd/logrotate-hot_reload_lb 2>&1 | grep -i -e error -e "rotating pattern"'
run 'python3 /tmp/prod/canary_check.py'

echo "recorded into $OUT"
