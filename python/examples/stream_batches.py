"""The guide's large-result loop: stream record batches (never the whole result in memory),
filter each with pyarrow.compute and count the errors per target.

    FLIGHTLINE_URI=grpc://127.0.0.1:50051 python python/examples/stream_batches.py

Every batch is a pyarrow.RecordBatch whose buffers are the ones Rust received: nothing is copied,
and the GIL is released while the next batch is awaited. Ctrl-C stops the query.
"""

import collections
import os
import time

import pyarrow as pa
import pyarrow.compute as pc

import flightline

SQL = "SELECT time, level, target, msg FROM log_entries"


def main() -> None:
    client = flightline.connect(
        os.environ.get("FLIGHTLINE_URI", "grpc://127.0.0.1:50051"),
        token=os.environ.get("FLIGHTLINE_TOKEN"),
    )
    started = time.perf_counter()
    rows = batches = 0
    errors_by_target: collections.Counter = collections.Counter()
    for batch in client.query_stream(SQL):
        errors = pc.filter(batch.column("target"), pc.less_equal(batch.column("level"), 2))
        for entry in pc.value_counts(errors).to_pylist():
            errors_by_target[entry["values"]] += entry["counts"]
        rows += batch.num_rows
        batches += 1
    seconds = time.perf_counter() - started

    print(f"{rows:,} rows in {batches} batches, {seconds:.2f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)")
    print(f"{sum(errors_by_target.values()):,} errors (level <= 2):")
    for target, n in errors_by_target.most_common():
        print(f"  {target:<20} {n:>8,}")

    # The stream is also an Arrow C stream: pyarrow (or polars, DuckDB) reads it directly.
    stream = client.query_stream("SELECT level, count(*) AS n FROM log_entries GROUP BY level ORDER BY level")
    print("\nrows per level, read by pyarrow.table(stream):")
    print(pa.table(stream).to_pandas().to_string(index=False))


if __name__ == "__main__":
    main()
