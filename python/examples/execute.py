"""The guide's execute_large_query + process_error_logs: the streaming executor feeds every batch
to processors (built-ins running in Rust without the GIL, and one written in Python), shows
progress, and returns their reports and the run's statistics.

    FLIGHTLINE_URI=grpc://127.0.0.1:50051 python python/examples/execute.py
"""

import os

import pyarrow as pa
import pyarrow.compute as pc

import flightline

SQL = "SELECT time, level, target, msg FROM log_entries"


class LongestErrors:
    """A processor in Python: the longest error message seen per target."""

    name = "longest_errors"

    def open(self, schema: pa.Schema) -> None:
        self.longest: dict = {}

    def process(self, batch: pa.RecordBatch) -> None:
        errors = batch.filter(pc.less_equal(batch.column("level"), 2))
        for target, msg in zip(errors.column("target").to_pylist(), errors.column("msg").to_pylist()):
            if len(msg) > len(self.longest.get(target, "")):
                self.longest[target] = msg

    def finish(self) -> dict:
        return {
            "counts": {"targets": len(self.longest)},
            "tables": [
                {
                    "title": "longest error message per target",
                    "columns": ["target", "length"],
                    "rows": [[t, len(m)] for t, m in sorted(self.longest.items())],
                }
            ],
        }


def main() -> None:
    client = flightline.connect(
        os.environ.get("FLIGHTLINE_URI", "grpc://127.0.0.1:50051"),
        token=os.environ.get("FLIGHTLINE_TOKEN"),
    )
    result = client.execute(
        SQL,
        [
            "count_by",  # the guide's default: level <= 2, per level and target
            ("aggregate", {"group_by": ["level"], "columns": ["level"], "functions": ["count"]}),
            LongestErrors(),
        ],
        progress=True,  # a tqdm bar when tqdm is installed
        estimate=True,  # count the rows first, for a percentage
    )

    stats = result["stats"]
    print(
        f"{stats['rows']:,} rows, {stats['batches']} batches, {stats['bytes'] / 2**20:.1f} MiB "
        f"in {stats['seconds']:.2f} s; first batch after {stats['time_to_first_batch'] or 0:.3f} s"
    )
    for processor in stats["processors"]:
        print(f"  {processor['name']:<16} p50 {processor['p50'] * 1e3:.2f} ms, p95 {processor['p95'] * 1e3:.2f} ms")
    for report in result["reports"]:
        print(f"\n{report['processor']}: {report['counts']}")
        for table in report["tables"]:
            print(f"  {table['title']}: {table['columns']}")
            for row in table["rows"][:10]:
                print(f"    {row}")


if __name__ == "__main__":
    main()
