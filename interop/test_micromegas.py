"""The Micromegas Python client (PyPI `micromegas`) against the embedded server.

This client never calls GetFlightInfo: query/query_stream/query_arrow send DoGet with an Any-packed
TicketStatementQuery whose handle is the SQL, the time range as `query_range_begin`/`query_range_end`
headers (datetime.isoformat()), and prepare_statement sends DoAction CreatePreparedStatement.
"""

import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest
from micromegas.auth import StaticTokenAuthProvider
from micromegas.flightsql.client import FlightSQLClient

from conftest import LEVELS, PROCESS_ROWS, Window, sql_timestamp

COLUMNS_SQL = "SELECT time, level, target, msg FROM log_entries"


@pytest.fixture(scope="module")
def client(servers) -> FlightSQLClient:
    return FlightSQLClient(servers.uri)


def count(client: FlightSQLClient, sql: str, begin=None, end=None) -> int:
    df = client.query(sql, begin, end)
    assert list(df.columns) == ["n"], f"{sql!r} returned columns {list(df.columns)}"
    assert len(df) == 1
    return int(df["n"].iloc[0])


def reference_count(client: FlightSQLClient, window: Window, table: str) -> int:
    """Rows of `table` in the window, counted by SQL without any range header."""
    n = count(client, window.count_sql(table))
    return n


def stream_rows(client: FlightSQLClient, sql: str, begin, end) -> pa.Table:
    batches = list(client.query_stream(sql, begin, end))
    assert batches, "query_stream yielded no batch"
    for batch in batches:
        assert isinstance(batch, pa.RecordBatch)
    return pa.Table.from_batches(batches)


def assert_times_within(times: pa.ChunkedArray, begin, end) -> None:
    low, high = pc.min(times).as_py(), pc.max(times).as_py()
    assert pd.Timestamp(begin) <= pd.Timestamp(low), f"row at {low} is before {begin}"
    assert pd.Timestamp(high) < pd.Timestamp(end), f"row at {high} is not before {end}"


def test_query_without_range_returns_every_demo_row(client, servers):
    assert count(client, "SELECT count(*) AS n FROM log_entries") == servers.rows
    assert count(client, "SELECT count(*) AS n FROM measures") == servers.rows
    assert count(client, "SELECT count(*) AS n FROM processes") == PROCESS_ROWS


def test_query_returns_typed_values_inside_the_demo_window(client, servers):
    df = client.query(f"{COLUMNS_SQL} ORDER BY time LIMIT 200")

    assert list(df.columns) == ["time", "level", "target", "msg"]
    assert len(df) == 200
    assert isinstance(df["time"].dtype, pd.DatetimeTZDtype)
    assert df["time"].is_monotonic_increasing
    assert df["time"].min() >= pd.Timestamp(servers.demo_begin)
    assert df["time"].max() < pd.Timestamp(servers.demo_end)
    assert str(df["level"].dtype) == "int32"
    assert set(df["level"]) <= LEVELS
    # Without preserve_dictionary the server sends target as plain strings, not a pandas Categorical.
    assert df["target"].dtype == object
    assert all(isinstance(t, str) and t for t in df["target"])
    assert all(isinstance(m, str) for m in df["msg"])


def test_query_with_aware_datetimes_keeps_only_the_range(client, servers, window):
    expected = reference_count(client, window, "log_entries")
    assert 0 < expected < servers.rows

    begin, end = window.begin.to_pydatetime(), window.end.to_pydatetime()
    df = client.query("SELECT time, level FROM log_entries", begin, end)

    assert len(df) == expected
    assert df["time"].min() >= window.begin
    assert df["time"].max() < window.end
    assert set(df["level"]) <= LEVELS
    assert count(client, "SELECT count(*) AS n FROM log_entries", begin, end) == expected


def test_range_applies_to_measures_too(client, servers, window):
    expected = reference_count(client, window, "measures")
    assert 0 < expected < servers.rows

    begin, end = window.begin.to_pydatetime(), window.end.to_pydatetime()
    assert count(client, "SELECT count(*) AS n FROM measures", begin, end) == expected
    # processes has no `time` column: the range leaves it whole.
    assert count(client, "SELECT count(*) AS n FROM processes", begin, end) == PROCESS_ROWS


def test_query_stream_with_a_non_utc_offset_matches_the_utc_range(client, servers, window):
    expected = reference_count(client, window, "log_entries")
    india = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    begin = window.begin.to_pydatetime().astimezone(india)
    end = window.end.to_pydatetime().astimezone(india)
    assert begin.isoformat().endswith("+05:30")

    table = stream_rows(client, "SELECT time, level, msg FROM log_entries", begin, end)

    assert table.num_rows == expected
    assert table.schema.names == ["time", "level", "msg"]
    assert_times_within(table.column("time"), window.begin, window.end)
    assert set(table.column("level").to_pylist()) <= LEVELS


def test_query_stream_with_rfc3339_strings(client, window):
    expected = reference_count(client, window, "log_entries")
    begin = window.begin.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    end = window.end.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    table = stream_rows(client, "SELECT count(*) AS n FROM log_entries", begin, end)

    assert table.column("n").to_pylist() == [expected]


def test_range_bounds_are_inclusive_begin_exclusive_end_to_the_nanosecond(client, servers):
    times = client.query("SELECT time FROM log_entries ORDER BY time LIMIT 1 OFFSET 5000")["time"]
    later = client.query("SELECT time FROM log_entries ORDER BY time LIMIT 1 OFFSET 9000")["time"]
    # pandas Timestamps keep nanoseconds, and micromegas sends them as isoformat() with 9 digits.
    begin, end = times.iloc[0], later.iloc[0]
    assert begin < end
    expected = count(
        client,
        "SELECT count(*) AS n FROM log_entries "
        f"WHERE time >= {sql_timestamp(begin)} AND time < {sql_timestamp(end)}",
    )

    df = client.query("SELECT time FROM log_entries", begin, end)

    assert len(df) == expected
    assert 0 < expected < servers.rows
    assert df["time"].min() == begin, "the row at exactly `begin` must be included"
    assert df["time"].max() < end, "the row at exactly `end` must be excluded"


def test_prepare_statement_gives_the_schema_of_the_result(client, window):
    stmt = client.prepare_statement(COLUMNS_SQL)

    assert stmt.query == COLUMNS_SQL
    schema = stmt.dataset_schema
    assert schema.names == ["time", "level", "target", "msg"]
    time_type = schema.field("time").type
    assert pa.types.is_timestamp(time_type) and time_type.unit == "ns"
    assert time_type.tz in ("+00:00", "UTC")
    assert schema.field("level").type == pa.int32()
    assert schema.field("target").type == pa.string()
    assert schema.field("msg").type == pa.string()

    result = client.query_arrow(COLUMNS_SQL, window.begin.to_pydatetime(), window.end.to_pydatetime())
    assert result.num_rows == reference_count(client, window, "log_entries")
    assert result.schema.equals(schema, check_metadata=False), f"{result.schema} != {schema}"


def test_prepare_statement_of_an_aggregate(client):
    stmt = client.prepare_statement(
        "SELECT name, avg(value) AS mean, count(*) AS n FROM measures GROUP BY name"
    )

    assert stmt.dataset_schema.names == ["name", "mean", "n"]
    assert stmt.dataset_schema.field("name").type == pa.string()
    assert stmt.dataset_schema.field("mean").type == pa.float64()
    assert stmt.dataset_schema.field("n").type == pa.int64()


def test_preserve_dictionary_keeps_target_dictionary_encoded(client, servers):
    sql = "SELECT target FROM log_entries ORDER BY time, target, msg LIMIT 300"
    dict_client = FlightSQLClient(servers.uri, preserve_dictionary=True)

    encoded = dict_client.query_arrow(sql)
    plain = client.query_arrow(sql)

    assert pa.types.is_dictionary(encoded.schema.field("target").type)
    assert encoded.schema.field("target").type.value_type == pa.string()
    assert plain.schema.field("target").type == pa.string()
    assert encoded.num_rows == plain.num_rows == 300
    assert encoded.column("target").cast(pa.string()).to_pylist() == plain.column("target").to_pylist()
    # Arrow allows repeated dictionary values, but pandas cannot make a Categorical of them, so the
    # client's query() (which calls to_pandas) fails on them: the server must send unique values.
    for chunk in encoded.column("target").chunks:
        values = chunk.dictionary.to_pylist()
        assert len(values) == len(set(values)), f"dictionary with repeated values: {values}"
    assert isinstance(dict_client.query(sql)["target"].dtype, pd.CategoricalDtype)


def test_unknown_table_is_invalid_argument(client):
    with pytest.raises(pa.ArrowInvalid, match="no_such_table"):
        client.query("SELECT * FROM no_such_table")
    with pytest.raises(pa.ArrowInvalid):
        client.prepare_statement("SELEC 1")


def test_static_token_is_accepted(servers):
    authed = FlightSQLClient(servers.auth_uri, auth_provider=StaticTokenAuthProvider(servers.token))

    assert count(authed, "SELECT count(*) AS n FROM log_entries") == servers.rows
    assert authed.prepare_statement("SELECT level FROM log_entries").dataset_schema.names == ["level"]


def test_api_key_header_is_accepted(servers):
    with pytest.warns(DeprecationWarning):
        keyed = FlightSQLClient(servers.auth_uri, headers={"x-api-key": servers.token})

    assert count(keyed, "SELECT count(*) AS n FROM processes") == PROCESS_ROWS


def test_missing_token_is_unauthenticated(servers):
    anonymous = FlightSQLClient(servers.auth_uri)

    with pytest.raises(flight.FlightUnauthenticatedError):
        anonymous.query("SELECT count(*) AS n FROM log_entries")
    with pytest.raises(flight.FlightUnauthenticatedError):
        anonymous.prepare_statement("SELECT level FROM log_entries")


def test_wrong_token_is_unauthenticated(servers):
    wrong = FlightSQLClient(servers.auth_uri, auth_provider=StaticTokenAuthProvider(servers.token + "x"))

    with pytest.raises(flight.FlightUnauthenticatedError):
        list(wrong.query_stream("SELECT count(*) AS n FROM log_entries"))


def test_request_id_set_by_micromegas_reaches_the_audit_line_and_the_error(servers, audit_log):
    request_id = "micromegas-interop-42"
    with pytest.warns(DeprecationWarning):
        tagged = FlightSQLClient(
            servers.uri, headers={"x-request-id": request_id, "x-client-name": "interop-suite"}
        )

    assert count(tagged, "SELECT count(*) AS n FROM processes") == PROCESS_ROWS
    with pytest.raises(pa.ArrowInvalid) as refused:
        tagged.query("SELECT * FROM no_such_table")

    assert request_id in str(refused.value), str(refused.value)
    lines = audit_log.lines(request_id, count=2)
    assert any("status=ok" in line and "rows=1 " in line for line in lines), lines
    assert any("status=invalidargument" in line for line in lines), lines
    assert all("x-client-name" in line and "interop-suite" in line for line in lines), lines
