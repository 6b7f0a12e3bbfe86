#!/usr/bin/env bash
# Records the transcript of book/src/reliability.md: the hostile-client
# suite run as the page shows it. No fixed port: the tests use port 0.
OUT=${1:?usage: record.sh OUT_DIR}
source "$(dirname "$0")/../lib.sh"
snip hostile
# cargo's own progress goes to standard error, which `run` leaves out.
run "cargo test -p tests --test hostile"
# The test binary starts its output with an empty line; a terminal shows it, the page need not.
sed -i '2{/^$/d}' "$SNIP"
