"""query() and query_arrow() return what the Micromegas client returns, for the guide's queries."""

import pandas as pd
import pyarrow as pa
import pytest

from conftest import GUIDE_SQL, QUERIES, assert_same_table, count


@pytest.mark.parametrize("sql", QUERIES)
def test_query_arrow_matches_micromegas(client, mm, sql):
    actual = client.query_arrow(sql)
    expected = mm.query_arrow(sql)

    assert isinstance(actual, pa.Table)
    assert actual.num_rows > 0
    assert_same_table(actual, expected)


@pytest.mark.parametrize("sql", [GUIDE_SQL, "SELECT name, max(value) AS high FROM measures GROUP BY name"])
def test_query_returns_the_same_dataframe_as_micromegas(client, mm, sql):
    order = list(pa.schema(client.prepare_statement(sql).dataset_schema).names)
    actual = client.query(sql).sort_values(order, ignore_index=True)
    expected = mm.query(sql).sort_values(order, ignore_index=True)

    assert isinstance(actual, pd.DataFrame)
    assert len(actual) > 0
    pd.testing.assert_frame_equal(actual, expected)


def test_query_of_nested_columns_matches_micromegas(client, mm):
    sql = "SELECT time, properties FROM log_entries ORDER BY time LIMIT 50"
    actual = client.query(sql)
    expected = mm.query(sql)

    assert list(actual.columns) == ["time", "properties"]
    assert len(actual) == 50
    assert actual["time"].equals(expected["time"])
    assert [list(p) for p in actual["properties"]] == [list(p) for p in expected["properties"]]


def test_counts_match_the_demo_data(client, servers):
    assert count(client, "SELECT count(*) AS n FROM log_entries") == servers.rows
    assert count(client, "SELECT count(*) AS n FROM measures") == servers.rows


def test_an_empty_result_keeps_its_schema(client, mm):
    sql = "SELECT time, level FROM log_entries WHERE level > 100"
    actual = client.query_arrow(sql)

    assert actual.num_rows == 0
    assert actual.schema.names == ["time", "level"]
    assert actual.schema.field("level").type == pa.int32()
    assert len(client.query(sql)) == 0 == len(mm.query(sql))


def test_preserve_dictionary_matches_micromegas(servers):
    from micromegas.flightsql.client import FlightSQLClient

    import flightline

    sql = "SELECT target, level FROM log_entries ORDER BY time, target LIMIT 300"
    encoded = flightline.connect(servers.uri, preserve_dictionary=True)
    reference = FlightSQLClient(servers.uri, preserve_dictionary=True)

    table = encoded.query_arrow(sql)

    assert pa.types.is_dictionary(table.schema.field("target").type)
    expected = reference.query_arrow(sql)
    assert table.schema.equals(expected.schema, check_metadata=False)
    assert table.column("target").cast(pa.string()).to_pylist() == expected.column("target").cast(pa.string()).to_pylist()
    df = encoded.query(sql)
    assert isinstance(df["target"].dtype, pd.CategoricalDtype)
    assert df["target"].astype(str).tolist() == reference.query(sql)["target"].astype(str).tolist()
