#!/usr/bin/env bash
# CPU profiles behind the benchmark's explanations, with perf (root, or perf_event_paranoid <= 1):
# the server while it serves line 2 and while it runs the ceiling query (nothing sent), line 2's
# client, and line 3b's client beside line 5's (the same processor, linked or a plugin).
#
#   bench/profile.sh [DIR] [RUNS]     # default /tmp/flightline-profile, 30 runs per profile
#
# Uses the release binaries and the 10M-row Parquet file that bench/run.sh built. Prints each
# profile's share of samples by crate (bench/perf_crates.py); the perf.data files stay in DIR for
# `perf report -i`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-/tmp/flightline-profile}"
runs="${2:-30}"
bin="$root/target/release"
table="$root/bench/data/log_entries-10000000.parquet"
plugin="$bin/libtop_targets.so"
sql="SELECT time, level, target, msg FROM log_entries WHERE level <= 3"
for need in "$bin/flightline" "$bin/flightline-bench" "$plugin" "$table"; do
    [ -e "$need" ] || { echo "missing $need: run bench/run.sh first" >&2; exit 2; }
done
mkdir -p "$out"
cd "$out"

"$bin/flightline" serve --listen 127.0.0.1:0 --demo-rows 0 --query-timeout 0 \
    --table "log_entries=$table" --in-memory >server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 120); do grep -q "listening on grpc://" server.log && break; sleep 0.5; done
uri=$(grep -o "listening on grpc://[^ ]*" server.log | head -1 | sed 's/listening on //')
[ -n "$uri" ] || { echo "the server did not start: see $out/server.log" >&2; exit 1; }

client() { # NAME SUBCOMMAND [ARGS...]: perf over RUNS client processes, one after another
    local name=$1
    shift
    perf record -q -F 2999 -o "$name.data" -- bash -c \
        "for _ in \$(seq $runs); do \"\$@\" >/dev/null; done" _ "$bin/flightline-bench" "$@"
}
server_during() { # NAME SUBCOMMAND [ARGS...]: perf on the server while RUNS clients run
    local name=$1 recorder
    shift
    perf record -q -F 2999 -o "$name.data" -p "$server" &
    recorder=$!
    sleep 0.5
    for _ in $(seq "$runs"); do "$bin/flightline-bench" "$@" >/dev/null; done
    kill -INT "$recorder"
    wait "$recorder" || true
}

# Warm the server's caches before the first profile.
for _ in 1 2 3; do "$bin/flightline-bench" sdk --uri "$uri" --sql "$sql" >/dev/null; done
server_during server-line2 sdk --uri "$uri" --sql "$sql"
server_during server-ceiling flight --uri "$uri" --sql "EXPLAIN ANALYZE $sql"
client client-line2 sdk --uri "$uri" --sql "$sql"
client client-line3b job --uri "$uri" --sql "$sql" --processor top-targets
client client-line5 job --uri "$uri" --sql "$sql" --processor plugin --plugin "$plugin"

for name in server-line2 server-ceiling client-line2 client-line3b client-line5; do
    echo "== $name ($out/$name.data)"
    python3 "$root/bench/perf_crates.py" "$name.data"
done
