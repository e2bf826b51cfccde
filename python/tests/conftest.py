"""Shared fixtures of the `flightline` package's tests: the servers python/tests/pytest.rs
started (what it passes is described in interop/demo_servers.py), the two clients compared
(flightline and the Micromegas client, the reference), and helpers to compare their results.
"""

import os
import socket
from typing import List

import pandas as pd
import pyarrow as pa
import pytest
from micromegas.flightsql.client import FlightSQLClient

import flightline
from demo_servers import Servers, Window, middle_window, servers_from_env, sql_timestamp  # noqa: F401

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


@pytest.fixture(scope="session")
def servers() -> Servers:
    return servers_from_env("cargo nextest run --workspace -E 'binary(pytest)'")


@pytest.fixture(scope="session")
def window(servers: Servers) -> Window:
    return middle_window(servers)


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
