#!/usr/bin/env bash
# Checks an installed `flightline` package (CI, after `pip install ./python`): imports it from
# outside the source tree and queries a `flightline serve` started here, then stops it.
#   python/install_check.sh PYTHON
set -euo pipefail
# Absolute, without resolving the venv's symlink: the check runs from another directory.
python="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="$(mktemp)"
"${CARGO_TARGET_DIR:-$root/target}/debug/flightline" serve --listen 127.0.0.1:0 --demo-rows 1000 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    uri="$(grep -o 'grpc://127.0.0.1:[0-9]*' "$log" | head -1 || true)"
    [ -n "$uri" ] && break
    sleep 0.1
done
[ -n "$uri" ] || { echo "install_check.sh: the server did not start"; cat "$log"; exit 1; }
cd /
"$python" - "$uri" <<'PY'
import sys
import flightline

assert "site-packages" in flightline.__file__, flightline.__file__
client = flightline.connect(sys.argv[1])
rows = client.query("SELECT count(*) AS n FROM log_entries")["n"][0]
streamed = sum(b.num_rows for b in client.query_stream("SELECT level FROM log_entries"))
assert rows == streamed == 1000, (rows, streamed)
print(f"installed flightline from {flightline.__file__}: {rows} rows")
PY
