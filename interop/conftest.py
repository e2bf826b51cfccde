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


@pytest.fixture(scope="session")
def audit_log():
    """Reads the audit lines of the server without auth (its log file, FLIGHTLINE_TEST_AUDIT_LOG)."""
    import os

    path = os.environ.get("FLIGHTLINE_TEST_AUDIT_LOG", "")
    assert path, "FLIGHTLINE_TEST_AUDIT_LOG is not set: run the suite through interop_python.rs"
    return AuditLog(path)


class AuditLog:
    """The server's `flightline::audit` lines, waited for by request id."""

    def __init__(self, path: str):
        self.path = path

    def lines(self, request_id: str, count: int = 1, timeout: float = 10.0) -> list:
        """The audit lines naming `request_id`, once there are at least `count` of them."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            with open(self.path, encoding="utf-8", errors="replace") as log:
                found = [
                    line
                    for line in log
                    if "flightline::audit" in line and f"request_id={request_id} " in line
                ]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, f"{count} audit line(s) for {request_id} expected, got {found}"
                return found
            time.sleep(0.1)
