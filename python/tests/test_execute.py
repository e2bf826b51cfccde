"""execute(): a Python processor and built-ins in one run see every row; their reports and the
run's statistics."""

import pyarrow as pa
import pytest

import flightline
from conftest import count

SQL = "SELECT time, level, target, msg FROM log_entries"


class Collector:
    """A Python processor: counts rows, batches and error rows (level <= 2) per target."""

    name = "collector"

    def __init__(self):
        self.schema = None
        self.rows = 0
        self.batches = 0
        self.finished = False
        self.errors = {}

    def open(self, schema):
        self.schema = schema

    def process(self, batch):
        assert isinstance(batch, pa.RecordBatch)
        self.rows += batch.num_rows
        self.batches += 1
        for target in batch.filter(pa.compute.less_equal(batch.column("level"), 2)).column("target").to_pylist():
            self.errors[target] = self.errors.get(target, 0) + 1

    def finish(self):
        self.finished = True
        return {"rows": self.rows, "batches": self.batches}


def rows_by(table):
    return {tuple(row[:-1]): row[-1] for row in table["rows"]}


def test_a_python_processor_and_two_builtins_see_every_row(client, mm, servers):
    mine = Collector()
    aggregate = ("aggregate", {"group_by": ["level"], "columns": ["level"], "functions": ["count", "min", "max"]})

    result = client.execute(SQL, [mine, "count_by", aggregate])

    expected_rows = count(mm, "SELECT count(*) AS n FROM log_entries")
    assert expected_rows == servers.rows
    stats = result["stats"]
    assert stats["rows"] == expected_rows
    assert stats["cancelled"] is False
    assert [p["name"] for p in stats["processors"]] == ["collector", "count_by", "aggregate"]
    assert all(p["batches"] == stats["batches"] for p in stats["processors"])

    assert mine.rows == expected_rows and mine.batches == stats["batches"] and mine.finished
    assert mine.schema.names == ["time", "level", "target", "msg"]
    reports = {r["processor"]: r for r in result["reports"]}
    assert reports["collector"]["counts"] == {"rows": expected_rows, "batches": stats["batches"]}

    # count_by's defaults are the guide's: level <= 2, per level and target.
    count_by = reports["count_by"]
    assert count_by["counts"]["rows_seen"] == expected_rows
    errors = mm.query("SELECT level, target, count(*) AS n FROM log_entries WHERE level <= 2 GROUP BY level, target")
    assert count_by["counts"]["rows_matched"] == int(errors["n"].sum()) > 0
    (table,) = count_by["tables"]
    assert table["columns"] == ["level", "target", "rows"]
    assert rows_by(table) == {(int(r.level), r.target): int(r.n) for r in errors.itertuples()}
    per_target = errors.groupby("target")["n"].sum()
    assert mine.errors == {t: int(n) for t, n in per_target.items()}

    by_level = mm.query("SELECT level, count(*) AS n FROM log_entries GROUP BY level")
    agg = reports["aggregate"]
    assert agg["counts"]["rows"] == expected_rows
    (table,) = agg["tables"]
    assert table["columns"] == ["level", "rows", "count(level)", "min(level)", "max(level)"]
    assert {row[0]: row[1:] for row in table["rows"]} == {
        int(r.level): [int(r.n), int(r.n), int(r.level), int(r.level)] for r in by_level.itertuples()
    }


def test_execute_honours_the_time_range(client, mm, window):
    begin, end = window.begin.to_pydatetime(), window.end.to_pydatetime()
    mine = Collector()

    result = client.execute(SQL, [mine, ("count_by", {"column": "level", "threshold": 6, "group_by": []})], begin, end)

    expected = count(mm, window.count_sql("log_entries"))
    assert result["stats"]["rows"] == mine.rows == expected
    count_by = next(r for r in result["reports"] if r["processor"] == "count_by")
    assert count_by["counts"]["rows_matched"] == expected


def test_statistics_are_in_seconds_and_bytes(client, servers):
    result = client.execute(SQL, ["count_by"], target_batch_bytes=64 * 1024)
    stats = result["stats"]

    assert stats["rows"] == servers.rows
    assert stats["batches"] > 3, "64 KiB batches split the result further"
    assert stats["bytes"] > 64 * 1024
    assert 0 < stats["time_to_first_batch"] <= stats["seconds"]
    assert stats["rows_per_second"] == pytest.approx(stats["rows"] / stats["seconds"], rel=0.05)
    (proc,) = stats["processors"]
    assert 0 <= proc["p50"] <= proc["p95"] <= proc["max"]


def test_processors_as_dicts_and_unknown_names(client):
    result = client.execute(
        "SELECT level FROM log_entries",
        [{"name": "count_by", "options": {"column": "level", "threshold": 1, "group_by": []}}],
    )
    assert result["reports"][0]["counts"]["rows_matched"] == count(
        client, "SELECT count(*) AS n FROM log_entries WHERE level <= 1"
    )
    with pytest.raises(flightline.ConfigError, match="unknown processor `no_such`"):
        client.execute(SQL, ["no_such"])
    with pytest.raises(flightline.ConfigError, match="bogus"):
        client.execute(SQL, [("count_by", {"bogus": 1})])
    with pytest.raises(flightline.ConfigError, match="not a processor"):
        client.execute(SQL, [42])
    assert {"count_by", "aggregate", "parquet_sink"} <= set(flightline.processor_names())


def test_wrong_sql_in_execute_is_a_query_error(client):
    with pytest.raises(flightline.QueryError, match="no_such_table"):
        client.execute("SELECT * FROM no_such_table", [Collector()])
