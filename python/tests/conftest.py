"""Shared fixtures of the `flightline` package's tests: the servers, the two clients compared
(flightline and the Micromegas client, the reference), and helpers to compare their results.

The servers are started by python/tests/pytest.rs (`cargo nextest run --workspace -E
'binary(pytest)'`), which passes:
  FLIGHTLINE_TEST_URI       grpc://127.0.0.1:PORT of a server without auth
  FLIGHTLINE_TEST_AUTH_URI  grpc://127.0.0.1:PORT of a server that wants a token or a user
  FLIGHTLINE_TEST_TOKEN     that token
  FLIGHTLINE_TEST_USER      a user it accepts by handshake
  FLIGHTLINE_TEST_PASSWORD  that user's password
  FLIGHTLINE_TEST_DEMO_END  the end of both servers' demo window (RFC 3339)
  FLIGHTLINE_TEST_ROWS      rows in log_entries and measures
Both servers hold the same demo data (same seed).
"""

import dataclasses
import datetime
import os
import socket
from typing import List

import pandas as pd
import pyarrow as pa
import pytest
from micromegas.flightsql.client import FlightSQLClient

import flightline

DEMO_WINDOW = datetime.timedelta(days=7)

#: The guide's queries, and the other shapes a user runs: wide rows with nested lists, another
#: table, an aggregate, a table without a time column.
GUIDE_SQL = "SELECT time, level, target, msg FROM log_entries WHERE level <= 3"
QUERIES = [
    GUIDE_SQL,
    "SELECT * FROM log_entries",
    "SELECT time, name, unit, value FROM measures",
    "SELECT target, level, count(*) AS n FROM log_entries GROUP BY target, level",
    # (no avg or sum of floats: their last digits depend on the order the server adds them in)
    "SELECT name, count(*) AS n, min(value) AS low, max(value) AS high FROM measures GROUP BY name",
    "SELECT * FROM processes",
]


@dataclasses.dataclass(frozen=True)
class Servers:
    """The two running servers and the demo data they were started with."""

    uri: str
    auth_uri: str
    token: str
    user: str
    password: str
    demo_end: datetime.datetime
    rows: int

    @property
    def demo_begin(self) -> datetime.datetime:
        return self.demo_end - DEMO_WINDOW


@dataclasses.dataclass(frozen=True)
class Window:
    """A time range strictly inside the demo window, with odd sub-second bounds."""

    begin: pd.Timestamp
    end: pd.Timestamp

    def count_sql(self, table: str) -> str:
        """The reference: the filter a time range means, written in SQL, sent without a range."""
        return (
            f"SELECT count(*) AS n FROM {table} "
            f"WHERE time >= {sql_timestamp(self.begin)} AND time < {sql_timestamp(self.end)}"
        )


def sql_timestamp(value) -> str:
    """A SQL timestamp literal in UTC, keeping nanoseconds."""
    ts = pd.Timestamp(value).tz_convert("UTC")
    return f"TIMESTAMP '{ts.isoformat()}'"


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise pytest.UsageError(
            f"{name} is not set: these tests need running servers; run them through "
            "`cargo nextest run --workspace -E 'binary(pytest)'`, which starts them"
        )
    return value


@pytest.fixture(scope="session")
def servers() -> Servers:
    demo_end = datetime.datetime.fromisoformat(_env("FLIGHTLINE_TEST_DEMO_END").replace("Z", "+00:00"))
    assert demo_end.tzinfo is not None, "FLIGHTLINE_TEST_DEMO_END must carry an offset"
    return Servers(
        uri=_env("FLIGHTLINE_TEST_URI"),
        auth_uri=_env("FLIGHTLINE_TEST_AUTH_URI"),
        token=_env("FLIGHTLINE_TEST_TOKEN"),
        user=_env("FLIGHTLINE_TEST_USER"),
        password=_env("FLIGHTLINE_TEST_PASSWORD"),
        demo_end=demo_end,
        rows=int(_env("FLIGHTLINE_TEST_ROWS")),
    )


@pytest.fixture(scope="session")
def window(servers: Servers) -> Window:
    """About two days in the middle of the demo week."""
    end = pd.Timestamp(servers.demo_end) - pd.Timedelta(days=1, microseconds=654321)
    begin = end - pd.Timedelta(days=2, hours=5, minutes=17, microseconds=250)
    return Window(begin=begin, end=end)


@pytest.fixture(scope="session")
def client(servers: Servers) -> flightline.Client:
    return flightline.connect(servers.uri)


@pytest.fixture(scope="session")
def mm(servers: Servers) -> FlightSQLClient:
    """The Micromegas client: the reference every result is compared with."""
    return FlightSQLClient(servers.uri)


def count(client, sql: str, begin=None, end=None) -> int:
    """`sql`'s single `n` value, through either client's query()."""
    df = client.query(sql, begin, end)
    assert list(df.columns) == ["n"], f"{sql!r} returned columns {list(df.columns)}"
    assert len(df) == 1
    return int(df["n"].iloc[0])


def sort_keys(schema: pa.Schema) -> List[str]:
    """Every column that can be sorted on (not lists or structs)."""
    return [
        f.name
        for f in schema
        if not (pa.types.is_list(f.type) or pa.types.is_struct(f.type) or pa.types.is_large_list(f.type))
    ]


def canonical(table: pa.Table) -> pa.Table:
    """`table` in a deterministic row order (servers answer unordered queries in any order),
    in one chunk, so that equal contents compare equal."""
    keys = [(name, "ascending") for name in sort_keys(table.schema)]
    return table.sort_by(keys).combine_chunks()


def assert_same_table(actual: pa.Table, expected: pa.Table) -> None:
    """The same schema (metadata aside) and the same rows, in any order."""
    assert actual.schema.equals(expected.schema, check_metadata=False), (
        f"schemas differ:\n{actual.schema}\n!=\n{expected.schema}"
    )
    assert actual.num_rows == expected.num_rows
    a, e = canonical(actual), canonical(expected)
    if not a.equals(e):
        for name in a.schema.names:
            assert a.column(name).equals(e.column(name)), f"column {name!r} differs"
        raise AssertionError("tables differ")


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env() -> dict:
    """The environment a child Python needs to import this very build of flightline."""
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(flightline.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in [package_parent, env.get("PYTHONPATH")] if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
