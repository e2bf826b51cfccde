"""Typed errors: a query the user must fix, a transport failure worth retrying."""

import subprocess
import sys
import time

import pytest

import flightline
from conftest import count, free_port, subprocess_env


@pytest.mark.parametrize(
    "sql, pattern",
    [
        ("SELEC 1", "SELEC"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT no_such_column FROM log_entries", "no_such_column"),
    ],
)
def test_wrong_sql_is_a_query_error_not_retryable(client, sql, pattern):
    for call in (client.query, client.query_arrow, client.query_stream):
        with pytest.raises(flightline.QueryError, match=pattern) as raised:
            call(sql)
        assert raised.value.retryable is False
        assert isinstance(raised.value, flightline.FlightlineError)
        assert not isinstance(raised.value, flightline.TransportError)


def test_an_unreachable_server_is_a_transport_error_worth_retrying():
    uri = f"grpc://127.0.0.1:{free_port()}"
    with pytest.raises(flightline.TransportError, match=uri) as raised:
        flightline.connect(uri).query("SELECT 1")
    assert raised.value.retryable is True
    assert isinstance(raised.value, flightline.FlightlineError)


def test_a_stopped_server_is_a_transport_error(servers):
    """A server that answered a query, then stopped: the next query raises TransportError."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=subprocess_env(),
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "listening", "the stand-in server did not start"
        client = flightline.connect(f"grpc://127.0.0.1:{port}")
        assert count(client, "SELECT 42 AS n") == 42
    finally:
        server.kill()
        server.wait(timeout=10)

    started = time.monotonic()
    with pytest.raises(flightline.TransportError) as raised:
        client.query("SELECT 42 AS n")
    assert raised.value.retryable is True
    assert time.monotonic() - started < 10


# A Flight SQL server in a child process, so that the test can kill it: pyarrow's Flight server
# answering the Micromegas client's (and flightline's) ticket with a one-row table.
SERVER = r'''
import sys
import pyarrow as pa
import pyarrow.flight as flight

class Server(flight.FlightServerBase):
    def get_flight_info(self, context, descriptor):
        table = pa.table({"n": pa.array([42], pa.int64())})
        return flight.FlightInfo(table.schema, descriptor, [flight.FlightEndpoint(descriptor.command, [])], 1, -1)

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(pa.table({"n": pa.array([42], pa.int64())}))

server = Server(f"grpc://127.0.0.1:{sys.argv[1]}")
print("listening", flush=True)
server.serve()
'''


def test_malformed_connection_arguments_are_config_errors(servers, tmp_path):
    host_port = servers.uri.split("://", 1)[1]
    with pytest.raises(flightline.ConfigError, match="ftp"):
        flightline.connect(f"ftp://{host_port}")
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(flightline.ConfigError, match="missing-ca.pem"):
        flightline.connect(servers.uri, tls_ca_file=missing)
    with pytest.raises(flightline.ConfigError, match="connect_timeout"):
        flightline.connect(servers.uri, connect_timeout=-1)
    # http:// is accepted for grpc://, as the Micromegas client does.
    assert count(flightline.connect(f"http://{host_port}"), "SELECT 7 AS n") == 7
