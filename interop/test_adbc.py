"""The ADBC Flight SQL driver (PyPI `adbc-driver-flightsql`, Go) against the embedded server.

Through DB-API, `execute` prepares first (DoAction CreatePreparedStatement), then
GetFlightInfo(CommandPreparedStatementQuery) and DoGet of the endpoint's ticket. Custom headers such as
the Micromegas time range travel as `adbc.flight.sql.rpc.call_header.<name>` options, at database,
connection or statement level.
"""

import contextlib
import re

import adbc_driver_flightsql.dbapi as flightsql
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from adbc_driver_flightsql import DatabaseOptions
from adbc_driver_manager import AdbcStatusCode

from conftest import LEVELS, PROCESS_ROWS, Window

HEADER = DatabaseOptions.RPC_CALL_HEADER_PREFIX.value
AUTHORIZATION = DatabaseOptions.AUTHORIZATION_HEADER.value


def connect(uri: str, **db_kwargs) -> flightsql.Connection:
    # autocommit=True: a read-only server has no transactions, and asking to disable autocommit
    # would only produce a warning.
    return flightsql.connect(uri, db_kwargs=db_kwargs, autocommit=True)


def fetch(conn: flightsql.Connection, sql: str, **stmt_kwargs) -> pa.Table:
    with contextlib.closing(conn.cursor(adbc_stmt_kwargs=stmt_kwargs or None)) as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def count(conn: flightsql.Connection, sql: str, **stmt_kwargs) -> int:
    table = fetch(conn, sql, **stmt_kwargs)
    assert table.schema.names == ["n"], f"{sql!r} returned columns {table.schema.names}"
    assert table.num_rows == 1
    return table.column("n")[0].as_py()


def range_headers(begin: str, end: str) -> dict:
    return {HEADER + "query_range_begin": begin, HEADER + "query_range_end": end}


def iso(ts: pd.Timestamp, tz: str = "UTC") -> str:
    return ts.tz_convert(tz).isoformat()


@pytest.fixture(scope="module")
def conn(servers):
    with connect(servers.uri) as c:
        yield c


@pytest.fixture(scope="module")
def expected_in_window(conn, window: Window) -> int:
    return count(conn, window.count_sql("log_entries"))


def test_execute_without_range_returns_every_demo_row(conn, servers):
    assert count(conn, "SELECT count(*) AS n FROM log_entries") == servers.rows
    assert count(conn, "SELECT count(*) AS n FROM measures") == servers.rows
    assert count(conn, "SELECT count(*) AS n FROM processes") == PROCESS_ROWS


def test_fetch_arrow_table_returns_typed_values(conn, servers):
    table = fetch(conn, "SELECT time, level, target, msg FROM log_entries ORDER BY time LIMIT 250")

    assert table.num_rows == 250
    assert table.schema.names == ["time", "level", "target", "msg"]
    time_type = table.schema.field("time").type
    assert pa.types.is_timestamp(time_type) and time_type.unit == "ns"
    assert time_type.tz in ("+00:00", "UTC")
    assert table.schema.field("level").type == pa.int32()
    assert table.schema.field("target").type == pa.string()
    times = table.column("time").to_pylist()
    assert times == sorted(times)
    assert pd.Timestamp(times[0]) >= pd.Timestamp(servers.demo_begin)
    assert pd.Timestamp(times[-1]) < pd.Timestamp(servers.demo_end)
    assert set(table.column("level").to_pylist()) <= LEVELS
    assert all(isinstance(t, str) and t for t in table.column("target").to_pylist())


def test_aggregate_values_add_up(conn, servers):
    table = fetch(conn, "SELECT level, count(*) AS n FROM log_entries GROUP BY level ORDER BY level")

    levels = table.column("level").to_pylist()
    assert set(levels) <= LEVELS and len(levels) >= 3
    assert sum(table.column("n").to_pylist()) == servers.rows


def test_range_as_database_call_headers(servers, window, expected_in_window):
    assert 0 < expected_in_window < servers.rows
    headers = range_headers(iso(window.begin), iso(window.end))

    with connect(servers.uri, **headers) as ranged:
        assert count(ranged, "SELECT count(*) AS n FROM log_entries") == expected_in_window
        table = fetch(ranged, "SELECT time, level FROM log_entries")

    assert table.num_rows == expected_in_window
    assert window.begin <= pd.Timestamp(pc.min(table.column("time")).as_py())
    assert pd.Timestamp(pc.max(table.column("time")).as_py()) < window.end


def test_range_as_statement_call_headers_stays_on_that_statement(conn, servers, window, expected_in_window):
    headers = range_headers(iso(window.begin), iso(window.end))

    assert count(conn, "SELECT count(*) AS n FROM log_entries", **headers) == expected_in_window
    assert count(conn, "SELECT count(*) AS n FROM log_entries") == servers.rows


def test_range_with_an_offset_and_nanoseconds(conn, servers, window):
    begin = window.begin + pd.Timedelta(nanoseconds=123)
    end = window.end + pd.Timedelta(nanoseconds=987)
    expected = count(conn, Window(begin, end).count_sql("measures"))
    headers = range_headers(iso(begin, "America/Los_Angeles"), iso(end, "Asia/Kolkata"))
    assert re.search(r"\.\d{9}-0[78]:00$", headers[HEADER + "query_range_begin"])
    assert re.search(r"\.\d{9}\+05:30$", headers[HEADER + "query_range_end"])

    assert 0 < expected < servers.rows
    assert count(conn, "SELECT count(*) AS n FROM measures", **headers) == expected


def test_limit_header_caps_the_rows(conn):
    table = fetch(conn, "SELECT time, level FROM log_entries", **{HEADER + "limit": "123"})

    assert table.num_rows == 123
    assert set(table.column("level").to_pylist()) <= LEVELS


def test_unknown_table_is_invalid_argument(conn):
    with pytest.raises(flightsql.Error) as err:
        fetch(conn, "SELECT * FROM no_such_table")

    assert err.value.status_code == AdbcStatusCode.INVALID_ARGUMENT
    assert "no_such_table" in str(err.value)


def test_bad_range_header_is_invalid_argument(conn):
    headers = range_headers("yesterday", "2024-06-01T00:00:00Z")

    with pytest.raises(flightsql.Error) as err:
        fetch(conn, "SELECT count(*) AS n FROM log_entries", **headers)

    assert err.value.status_code == AdbcStatusCode.INVALID_ARGUMENT


def test_table_schema_comes_from_get_tables(conn):
    schema = conn.adbc_get_table_schema("log_entries")

    assert schema.names[:6] == ["process_id", "stream_id", "block_id", "exe", "username", "computer"]
    assert {"target", "insert_time", "time", "level", "msg", "properties"} <= set(schema.names)
    assert schema.field("time").type == pa.timestamp("ns", tz="+00:00")
    assert schema.field("level").type == pa.int32()
    assert schema.field("msg").type == pa.string()
    # GetTables reports what queries return by default: dictionaries as their value type.
    assert schema.field("target").type == pa.string()


def test_get_objects_lists_catalog_schema_tables_and_columns(conn):
    # ADBC's GetObjects walks GetCatalogs -> GetDbSchemas -> GetTables, as generic tools do.
    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["datafusion"]
    schemas = objects[0]["catalog_db_schemas"]
    assert [s["db_schema_name"] for s in schemas] == ["public"]
    tables = {t["table_name"]: t for t in schemas[0]["db_schema_tables"]}
    assert {"log_entries", "measures", "processes"} <= set(tables)
    columns = [c["column_name"] for c in tables["log_entries"]["table_columns"]]
    assert columns[:3] == ["process_id", "stream_id", "block_id"]
    assert "time" in columns and "msg" in columns
    assert conn.adbc_get_table_types() == ["TABLE"]


def test_get_info_reads_the_server_sql_info(conn):
    info = conn.adbc_get_info()

    assert isinstance(info.get("vendor_name"), str) and info["vendor_name"]
    assert info["driver_name"].startswith("ADBC Flight SQL Driver")


def test_bearer_token_is_accepted(servers):
    with connect(servers.auth_uri, **{AUTHORIZATION: f"Bearer {servers.token}"}) as authed:
        assert count(authed, "SELECT count(*) AS n FROM log_entries") == servers.rows


def test_bearer_token_with_range_headers(servers, window, expected_in_window):
    headers = range_headers(iso(window.begin), iso(window.end))

    with connect(servers.auth_uri, **{AUTHORIZATION: f"Bearer {servers.token}"}, **headers) as authed:
        assert count(authed, "SELECT count(*) AS n FROM log_entries") == expected_in_window


def test_api_key_call_header_is_accepted(servers):
    with connect(servers.auth_uri, **{HEADER + "x-api-key": servers.token}) as keyed:
        assert count(keyed, "SELECT count(*) AS n FROM processes") == PROCESS_ROWS


@pytest.mark.parametrize(
    "db_kwargs",
    [
        pytest.param({}, id="missing"),
        pytest.param({AUTHORIZATION: "Bearer not-the-token"}, id="wrong-bearer"),
        pytest.param({HEADER + "x-api-key": "not-the-token"}, id="wrong-api-key"),
    ],
)
def test_token_refused(servers, db_kwargs):
    with pytest.raises(flightsql.Error) as err:
        with connect(servers.auth_uri, **db_kwargs) as refused:
            fetch(refused, "SELECT count(*) AS n FROM log_entries")

    assert err.value.status_code == AdbcStatusCode.UNAUTHENTICATED


def test_username_and_password_handshake(servers):
    # The driver sends Handshake with `authorization: Basic ...` (unpadded base64, as Go's
    # Flight client does) and then the bearer token the server answered with on every call.
    with connect(servers.auth_uri, username=servers.user, password=servers.password) as authed:
        assert count(authed, "SELECT count(*) AS n FROM log_entries") == servers.rows
        assert count(authed, "SELECT count(*) AS n FROM processes") == PROCESS_ROWS


def test_wrong_password_is_unauthenticated(servers):
    with pytest.raises(flightsql.Error) as err:
        with connect(servers.auth_uri, username=servers.user, password="not-the-password") as c:
            count(c, "SELECT count(*) AS n FROM log_entries")

    assert err.value.status_code == AdbcStatusCode.UNAUTHENTICATED


def test_request_id_set_by_adbc_reaches_the_audit_line_and_the_error(servers, audit_log):
    request_id = "adbc-interop-7f3a"
    with connect(servers.uri, **{HEADER + "x-request-id": request_id}) as tagged:
        ok = fetch(tagged, "SELECT level FROM log_entries WHERE level = 1")
        with pytest.raises(flightsql.Error) as refused:
            fetch(tagged, "SELECT * FROM no_such_table")

    assert request_id in str(refused.value), str(refused.value)
    lines = audit_log.lines(request_id, count=2)
    ok_lines = [line for line in lines if "status=ok" in line]
    assert ok_lines and f"rows={ok.num_rows} " in ok_lines[0], lines
    assert any("status=invalidargument" in line and "no_such_table" in line for line in lines), lines
    assert all("SELECT" not in line for line in lines), "the SQL text itself never reaches the log"
