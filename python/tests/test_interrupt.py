"""Ctrl-C during a long query stops it within a second (the wait for the next batch runs in Rust,
which looks for signals between short slices)."""

import signal
import subprocess
import sys
import time

import pytest

from conftest import subprocess_env

# Counting a three-way cross join of the demo table (8e12 rows) sends its one row after hours:
# the client waits in Rust for a batch that does not come.
ENDLESS_SQL = "SELECT count(*) AS n FROM log_entries a, log_entries b, log_entries c"

# Everything is imported before "waiting" (pyarrow imports pandas lazily, and an import takes long
# enough to receive the signal itself).
SCRIPT = r'''
import sys, asyncio
import pandas
import pyarrow as pa
import flightline

uri, how, sql = sys.argv[1:4]
client = flightline.connect(uri)
if how == "iterate":
    stream = client.query_stream(sql)
    print("waiting", flush=True)
    for batch in stream:
        pass
elif how == "arrow_c_stream":
    stream = client.query_stream(sql)
    print("waiting", flush=True)
    table = pa.table(stream)
elif how == "query":
    print("waiting", flush=True)
    client.query(sql)
elif how == "execute":
    print("waiting", flush=True)
    client.execute(sql, ["print"])
elif how == "async":
    async def main():
        print("waiting", flush=True)
        async for batch in client.query_stream_async(sql):
            pass
    asyncio.run(main())
print("finished", flush=True)
'''


@pytest.mark.parametrize("how", ["iterate", "arrow_c_stream", "query", "execute", "async"])
def test_ctrl_c_stops_a_long_query_within_a_second(servers, how):
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, servers.uri, how, ENDLESS_SQL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "waiting", child.stderr.read()
        # Let the child get into the wait for the batch.
        time.sleep(0.5)
        assert child.poll() is None, "the query ended by itself"

        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert "finished" not in out
    assert "KeyboardInterrupt" in err, err
    # Python re-raises an unhandled KeyboardInterrupt as SIGINT on exit.
    assert child.returncode == -signal.SIGINT, (child.returncode, err)
    assert elapsed < 1.0, f"the child took {elapsed:.2f} s to stop after Ctrl-C"
