"""After os.fork() the child cannot use the parent's client or streams (their connection stayed
in the parent): it gets ConfigError telling it to connect again, and a new connect works."""

import os
import signal
import time

import pytest

import flightline
from conftest import count

COUNT_SQL = "SELECT count(*) AS n FROM log_entries"

# Exit statuses of the child, one per way it can go wrong.
OK, USED_PARENT_CLIENT, WRONG_ERROR, WRONG_MESSAGE, STREAM_USED, RECONNECT_FAILED = range(6)


def child(servers, parent_client, parent_stream) -> int:
    try:
        parent_client.query(COUNT_SQL)
        return USED_PARENT_CLIENT
    except flightline.ConfigError as err:
        if "connect again" not in str(err):
            return WRONG_MESSAGE
    except BaseException:
        return WRONG_ERROR
    try:
        next(parent_stream)
        return STREAM_USED
    except flightline.ConfigError:
        pass
    except BaseException:
        return WRONG_ERROR
    try:
        if count(flightline.connect(servers.uri), COUNT_SQL) != servers.rows:
            return RECONNECT_FAILED
    except BaseException:
        return RECONNECT_FAILED
    return OK


def exit_code(pid: int, timeout: float) -> int:
    """The child's exit code; a child still running after `timeout` (hung on a lock or a
    connection of the parent's) is killed and fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(wait_status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the forked child was still running after {timeout} s")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_connects_again(servers):
    parent_client = flightline.connect(servers.uri)
    assert count(parent_client, COUNT_SQL) == servers.rows
    parent_stream = parent_client.query_stream("SELECT * FROM log_entries")
    assert next(parent_stream).num_rows > 0

    pid = os.fork()
    if pid == 0:
        status = WRONG_ERROR
        try:
            status = child(servers, parent_client, parent_stream)
        finally:
            # Never return into pytest in the child.
            os._exit(status)

    assert exit_code(pid, timeout=20) == OK

    # The parent's client and stream are untouched by the child.
    assert count(parent_client, COUNT_SQL) == servers.rows
    assert sum(b.num_rows for b in parent_stream) > 0
