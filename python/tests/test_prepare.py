"""prepare_statement() and analyze_schema(): the result's schema without running the query."""

import pyarrow as pa
import pytest

import flightline
from conftest import QUERIES

COLUMNS_SQL = "SELECT time, level, target, msg FROM log_entries"


@pytest.mark.parametrize("sql", QUERIES)
def test_prepare_statement_matches_micromegas(client, mm, sql):
    actual = client.prepare_statement(sql)
    expected = mm.prepare_statement(sql)

    assert actual.query == expected.query == sql
    assert isinstance(actual.dataset_schema, pa.Schema)
    assert actual.dataset_schema.equals(expected.dataset_schema, check_metadata=False)
    assert actual.dataset_schema.equals(client.query_arrow(sql).schema, check_metadata=False)


def test_prepare_statement_gives_the_guide_columns(client):
    schema = client.prepare_statement(COLUMNS_SQL).dataset_schema

    assert schema.names == ["time", "level", "target", "msg"]
    assert pa.types.is_timestamp(schema.field("time").type)
    assert schema.field("time").type.unit == "ns"
    assert schema.field("level").type == pa.int32()
    assert schema.field("msg").type == pa.string()


def test_analyze_schema_reports_types_and_sizes(client):
    analysis = client.analyze_schema(COLUMNS_SQL)

    assert analysis["column_count"] == 4
    columns = {c["name"]: c for c in analysis["columns"]}
    assert list(columns) == ["time", "level", "target", "msg"]
    assert columns["time"]["temporal"] is True
    assert columns["time"]["type"].startswith("Timestamp(")
    assert columns["level"]["type"] == "Int32"
    assert columns["level"]["estimated_bytes"] == 4
    assert columns["time"]["estimated_bytes"] == 8
    assert columns["msg"]["type"] == "Utf8"
    assert all(c["nullable"] is False for c in analysis["columns"])
    assert analysis["estimated_row_bytes"] == pytest.approx(sum(c["estimated_bytes"] for c in analysis["columns"]))


def test_analyze_schema_of_fewer_columns_is_smaller(client):
    narrow = client.analyze_schema("SELECT time, level FROM log_entries")
    wide = client.analyze_schema("SELECT * FROM log_entries")

    assert narrow["column_count"] == 2
    assert wide["column_count"] == 12
    assert narrow["estimated_row_bytes"] < wide["estimated_row_bytes"]


def test_preparing_bad_sql_is_a_query_error(client):
    with pytest.raises(flightline.QueryError):
        client.prepare_statement("SELEC 1")
    with pytest.raises(flightline.QueryError, match="no_such_table"):
        client.analyze_schema("SELECT * FROM no_such_table")
