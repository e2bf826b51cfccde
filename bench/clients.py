"""The Python lines of the benchmark (run by bench/run.py, one process per call).

Each prints one JSON object: rows, bytes (Arrow buffer sizes), batches, seconds from connecting to
the last row, and the answer (errors by target) so that the caller can check every line agrees.
Imports happen before the clock starts; the process's CPU time and peak memory, measured by the
caller, include them, as they would for a user's script.
"""

import argparse
import json
import sys
import time


def micromegas_guide(uri: str, sql: str) -> dict:
    """The guide's loop: query_stream, batch.to_pandas(), filter level <= 2, count by target."""
    from micromegas.flightsql.client import FlightSQLClient

    started = time.perf_counter()
    client = FlightSQLClient(uri)
    rows = nbytes = batches = 0
    errors_by_target: dict = {}
    for batch in client.query_stream(sql, None, None):
        df = batch.to_pandas()
        errors = df[df["level"] <= 2]
        for target, n in errors["target"].value_counts().items():
            errors_by_target[target] = errors_by_target.get(target, 0) + int(n)
        rows += batch.num_rows
        nbytes += batch.get_total_buffer_size()
        batches += 1
    return measurement(rows, nbytes, batches, started, errors_by_target)


def micromegas_query(uri: str, sql: str) -> dict:
    """The guide's other way: query() returns the whole result as one pandas DataFrame."""
    from micromegas.flightsql.client import FlightSQLClient

    started = time.perf_counter()
    df = FlightSQLClient(uri).query(sql, None, None)
    errors = df[df["level"] <= 2]
    counts = {t: int(n) for t, n in errors["target"].value_counts().items()}
    return measurement(len(df), int(df.memory_usage(deep=True).sum()), 1, started, counts)


def adbc_compute(uri: str, sql: str) -> dict:
    """ADBC's fetch_record_batch() reader, the filter and the count done by pyarrow.compute."""
    import adbc_driver_flightsql.dbapi as flightsql
    import pyarrow.compute  # noqa: F401  (imported before the clock starts; count_errors uses it)

    started = time.perf_counter()
    rows = nbytes = batches = 0
    errors_by_target: dict = {}
    with flightsql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(sql)
        for batch in cur.fetch_record_batch():
            count_errors(batch, errors_by_target)
            rows += batch.num_rows
            nbytes += batch.get_total_buffer_size()
            batches += 1
    return measurement(rows, nbytes, batches, started, errors_by_target)


def flightline_guide(uri: str, sql: str) -> dict:
    """The guide's loop with the `flightline` package: query_stream (batches arrive from Rust
    without a copy), the filter and the count done by pyarrow.compute."""
    import flightline
    import pyarrow.compute  # noqa: F401  (imported before the clock starts; count_errors uses it)

    started = time.perf_counter()
    client = flightline.connect(uri)
    rows = nbytes = batches = 0
    errors_by_target: dict = {}
    for batch in client.query_stream(sql):
        count_errors(batch, errors_by_target)
        rows += batch.num_rows
        nbytes += batch.get_total_buffer_size()
        batches += 1
    return measurement(rows, nbytes, batches, started, errors_by_target)


def count_errors(batch, errors_by_target: dict) -> None:
    """Adds the batch's errors (level <= 2) per target, with pyarrow.compute. Only the column
    counted is filtered (pyarrow cannot take from a string_view msg)."""
    import pyarrow.compute as pc

    targets = pc.filter(batch.column("target"), pc.less_equal(batch.column("level"), 2))
    for entry in pc.value_counts(targets).to_pylist():
        target = entry["values"]
        errors_by_target[target] = errors_by_target.get(target, 0) + entry["counts"]


def measurement(rows, nbytes, batches, started, errors_by_target) -> dict:
    return {
        "rows": rows,
        "bytes": nbytes,
        "batches": batches,
        "seconds": time.perf_counter() - started,
        "errors": sum(errors_by_target.values()),
    }


LINES = {
    "micromegas-guide": micromegas_guide,
    "micromegas-query": micromegas_query,
    "adbc": adbc_compute,
    "flightline-guide": flightline_guide,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("line", choices=sorted(LINES))
    parser.add_argument("--uri", required=True)
    parser.add_argument("--sql", required=True)
    args = parser.parse_args()
    print(json.dumps(LINES[args.line](args.uri, args.sql)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
