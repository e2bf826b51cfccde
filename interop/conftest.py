"""Shared fixtures for the interop tests: where the servers are and what demo data they hold.

The servers are started by runner/tests/interop_python.rs (`cargo nextest run`), which passes:
  FLIGHTLINE_TEST_URI       grpc://127.0.0.1:PORT of a server without auth
  FLIGHTLINE_TEST_AUTH_URI  grpc://127.0.0.1:PORT of a server started with --token
  FLIGHTLINE_TEST_TOKEN     that token
  FLIGHTLINE_TEST_USER      a user the --token server also accepts by handshake (--user)
  FLIGHTLINE_TEST_PASSWORD  that user's password
  FLIGHTLINE_TEST_DEMO_END  the --demo-end both servers got (RFC 3339)
  FLIGHTLINE_TEST_ROWS      the --demo-rows both servers got
Both servers use the same seed, so they hold the same data.
"""

import dataclasses
import datetime
import os

import pandas as pd
import pytest

DEMO_WINDOW = datetime.timedelta(days=7)
PROCESS_ROWS = 8
LEVELS = set(range(1, 7))


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
    """A time range strictly inside the demo window, with the SQL that counts it without headers."""

    begin: pd.Timestamp
    end: pd.Timestamp

    def count_sql(self, table: str) -> str:
        """The reference: the same filter the server applies for the range headers, written in SQL."""
        return (
            f"SELECT count(*) AS n FROM {table} "
            f"WHERE time >= {sql_timestamp(self.begin)} AND time < {sql_timestamp(self.end)}"
        )

    def contains(self, ts) -> bool:
        return self.begin <= pd.Timestamp(ts) < self.end


def sql_timestamp(value) -> str:
    """A SQL timestamp literal in UTC, keeping nanoseconds."""
    ts = pd.Timestamp(value).tz_convert("UTC")
    return f"TIMESTAMP '{ts.isoformat()}'"


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise pytest.UsageError(
            f"{name} is not set: these tests need running servers; run them through "
            "`cargo nextest run -p flightline-runner --test interop_python`, which starts them"
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
    """About two days in the middle of the demo week, with odd sub-second bounds."""
    end = pd.Timestamp(servers.demo_end) - pd.Timedelta(days=1, microseconds=654321)
    begin = end - pd.Timedelta(days=2, hours=5, minutes=17, microseconds=250)
    return Window(begin=begin, end=end)
