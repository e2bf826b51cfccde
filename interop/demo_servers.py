"""What the Python test suites (interop/ and python/tests/) know of the servers their Rust
harness started: addresses, credentials and the demo data, read from the environment.

The harness (runner/tests/interop_python.rs, python/tests/pytest.rs) passes:
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

import pandas as pd
import pytest

DEMO_WINDOW = datetime.timedelta(days=7)


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
        """The reference: the filter a time range means, written in SQL, sent without a range."""
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


def servers_from_env(how_to_run: str) -> Servers:
    """The servers the harness started; `how_to_run` names the command that starts them."""

    def env(name: str) -> str:
        value = os.environ.get(name)
        if not value:
            raise pytest.UsageError(
                f"{name} is not set: these tests need running servers; run them through "
                f"`{how_to_run}`, which starts them"
            )
        return value

    demo_end = datetime.datetime.fromisoformat(env("FLIGHTLINE_TEST_DEMO_END").replace("Z", "+00:00"))
    assert demo_end.tzinfo is not None, "FLIGHTLINE_TEST_DEMO_END must carry an offset"
    return Servers(
        uri=env("FLIGHTLINE_TEST_URI"),
        auth_uri=env("FLIGHTLINE_TEST_AUTH_URI"),
        token=env("FLIGHTLINE_TEST_TOKEN"),
        user=env("FLIGHTLINE_TEST_USER"),
        password=env("FLIGHTLINE_TEST_PASSWORD"),
        demo_end=demo_end,
        rows=int(env("FLIGHTLINE_TEST_ROWS")),
    )


def middle_window(servers: Servers) -> Window:
    """About two days in the middle of the demo week, with odd sub-second bounds."""
    end = pd.Timestamp(servers.demo_end) - pd.Timedelta(days=1, microseconds=654321)
    begin = end - pd.Timedelta(days=2, hours=5, minutes=17, microseconds=250)
    return Window(begin=begin, end=end)
