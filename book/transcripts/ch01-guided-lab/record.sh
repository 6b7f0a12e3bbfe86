#!/usr/bin/env bash
# Records the transcripts of book/src/ch01/guided-lab.md: ss, strace -f and
# tcpdump watching the real echo_server (target/debug) serve one client.
# strace and tcpdump run as root (the page shows `sudo tcpdump`; this runs
# tcpdump itself, as root). Every snippet goes to $OUT/NAME.txt;
# page.md.tmpl says where each goes. Needs port 8080 free, and waits until
# no socket of an earlier run is left on it (TIME-WAIT lasts a minute), so
# that ss shows only this page's connection.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
need_ports 8080
# Descriptors this script inherited (flock's lock, for one) would be the
# servers' too, and shift every number the page shows: close them.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-"; fi
done
for tool in strace tcpdump nc ss; do command -v $tool > /dev/null || { echo "needs $tool" >&2; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "needs root (strace, tcpdump)" >&2; exit 1; }
workdir ch01-guided-lab
on_exit() { exec 7>&- 2>/dev/null; }
BIN=$ROOT/target/debug
SOCKETS="( sport = :8080 or dport = :8080 )"

# sockets: the states of every TCP socket on port 8080, one a line.
sockets() { ss -tanH "$SOCKETS" | awk '{print $1}' | sort | tr '\n' ' '; }
# wait_sockets STATES: until `sockets` prints exactly STATES (bounded).
wait_sockets() {
  for _ in $(seq 1600); do [ "$(sockets)" = "$1" ] && return; sleep 0.05; done
  echo "port 8080: '$(sockets)', not '$1'" >&2; exit 1
}
# wait_closed: until nothing listens on 8080 (a server strace let go of
# finishes stopping on its own).
wait_closed() { for _ in $(seq 200); do ss -ltn "sport = :8080" | grep -q LISTEN || return 0; sleep 0.05; done; echo "port 8080 still open" >&2; exit 1; }
server() { "$BIN/echo_server" > "$OUT/$1" 2>&1 & S=$!; started $S; wait_log "$OUT/$1" "echo server listening" 1; }

# --- ss: one nc connected, then gone ---------------------------------------
wait_sockets ""
server ss.log
mkfifo "$WORK/in"
nc 127.0.0.1 8080 < "$WORK/in" > /dev/null & N=$!; started $N
exec 7> "$WORK/in"    # nc's standard input stays open: it waits, connected
wait_sockets "ESTAB ESTAB LISTEN "
snip ss
run "ss -tanp '$SOCKETS'"
kill $N; wait $N 2>/dev/null    # Ctrl-C in nc's terminal (SIGTERM: a background
                                 # job of a script ignores SIGINT)
exec 7>&-
wait_log "$OUT/ss.log" "client closed" 1
wait_sockets "LISTEN TIME-WAIT "
snip timewait
run "ss -tanp '$SOCKETS'"
sed -i 's/^/  /' "$SNIP"    # the block sits in a list item on the page
stop $S

# --- strace -f: one echo_client --message hello, then Ctrl-C ----------------
snip strace
say "strace -f -e trace=network,write target/debug/echo_server"
# setsid: a process group of its own, as in a terminal, so that Ctrl-C
# (SIGINT to the group) reaches strace and the server together.
setsid strace -f -e trace=network,write "$BIN/echo_server" >> "$SNIP" 2>&1 & T=$!; started $T
wait_log "$SNIP" "echo server listening" 1
"$BIN/echo_client" --message hello > "$OUT/client.txt"
grep -qx hello "$OUT/client.txt" || { echo "echo_client did not get its echo" >&2; exit 1; }
wait_log "$SNIP" "+++ exited with 0 +++" 1
kill -INT -- -$T
wait $T 2>/dev/null
wait_log "$SNIP" "server stopped" 1
wait_closed

# The page's claim about the clone: made by the main thread as descriptor
# 5, and both closed by the connection thread. Not shown; checked.
setsid strace -f -e trace=close,fcntl -o "$OUT/strace-clone.txt" "$BIN/echo_server" > /dev/null 2>&1 & T=$!; started $T
wait_listen 8080
"$BIN/echo_client" --message hello > /dev/null
wait_log "$OUT/strace-clone.txt" "+++ exited with 0 +++" 1
kill -INT -- -$T; wait $T 2>/dev/null
wait_closed
for call in 'fcntl\(4, F_DUPFD_CLOEXEC, 3\) += 5' 'close\(4\) += 0' 'close\(5\) += 0'; do
  grep -qE "$call" "$OUT/strace-clone.txt" || echo "warning: the page says strace shows $call; it did not" >&2
done

# --- tcpdump: the packets of one echo_client --message hello ----------------
server tcpdump.log
snip tcpdump
say "sudo tcpdump -i lo -n -t -l port 8080 | sed -E 's/options \\[[^]]*\\]/options [...]/'"
mkfifo "$WORK/packets"
tcpdump -i lo -n -t -l port 8080 > "$WORK/packets" 2> "$OUT/tcpdump.err" & D=$!; started $D
sed -E 's/options \[[^]]*\]/options [...]/' < "$WORK/packets" >> "$SNIP" & E=$!; started $E
wait_log "$OUT/tcpdump.err" "listening on" 1
"$BIN/echo_client" --message hello > /dev/null
wait_log "$OUT/tcpdump.log" "client closed" 1
sleep 1.5    # tcpdump hands packets over in blocks, at least once a second
kill $D    # Ctrl-C (SIGTERM, for the same reason); sed then reads
          # the end of its input and exits
wait $D $E 2>/dev/null
stop $S

# What the page says of these outputs, checked (a warning, not a failure).
warn() { echo "warning: the page says $1" >&2; }
server_end=$(grep '^ESTAB.*echo_server' "$OUT/ss.txt")
case "$server_end" in *fd=4*fd=5*|*fd=5*fd=4*) ;; *) warn "two descriptors, 4 and 5, hold the server's end";; esac
[ "$(grep -c Flags "$OUT/tcpdump.txt")" = 10 ] || warn "ten packets; tcpdump saw $(grep -c Flags "$OUT/tcpdump.txt")"
sed -n 7p "$OUT/tcpdump.txt" | grep -q '> 127.0.0.1.8080: Flags \[F.\]' || warn "the client's FIN comes before the echo"
