"""Fixtures of the interop tests: the two servers runner/tests/interop_python.rs started
(`flightline serve` processes, one with --token and a --user) and their demo data; what the
harness passes is described in demo_servers.py."""

import pytest

from demo_servers import Servers, Window, middle_window, servers_from_env, sql_timestamp  # noqa: F401

PROCESS_ROWS = 8
LEVELS = set(range(1, 7))


@pytest.fixture(scope="session")
def servers() -> Servers:
    return servers_from_env("cargo nextest run --workspace -E 'binary(interop_python)'")


@pytest.fixture(scope="session")
def window(servers: Servers) -> Window:
    return middle_window(servers)
