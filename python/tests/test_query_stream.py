"""query_stream(): record batches as they arrive, the same rows as the Micromegas client, with
buffers shared with Rust (no copy)."""

import pyarrow as pa
import pytest

import flightline
from conftest import GUIDE_SQL, QUERIES, assert_same_table


@pytest.mark.parametrize("sql", QUERIES)
def test_batches_hold_the_same_rows_as_micromegas(client, mm, sql):
    batches = list(client.query_stream(sql))

    assert batches and all(isinstance(b, pa.RecordBatch) for b in batches)
    assert_same_table(pa.Table.from_batches(batches), mm.query_arrow(sql))


def test_batches_arrive_one_by_one_as_the_server_sends_them(client, mm, servers):
    sql = "SELECT * FROM log_entries"
    sizes = [b.num_rows for b in client.query_stream(sql)]
    reference = [b.num_rows for b in mm.query_stream(sql)]

    assert sum(sizes) == servers.rows
    assert len(sizes) > 1, "the demo table comes in several batches"
    assert sorted(sizes) == sorted(reference)


def test_the_stream_knows_its_schema_before_the_first_batch(client):
    stream = client.query_stream(GUIDE_SQL)

    assert stream.schema.names == ["time", "level", "target", "msg"]
    assert stream.schema.field("level").type == pa.int32()
    first = next(stream)
    assert first.schema.equals(stream.schema, check_metadata=False)


def test_batches_share_their_buffers_with_rust(client):
    stream = client.query_stream("SELECT time, level, target, msg, properties FROM log_entries")
    checked = 0
    for batch in stream:
        rust = stream._buffer_addresses()
        assert len(rust) == batch.num_columns
        for column, addresses in zip(batch.columns, rust):
            # pyarrow lists the validity bitmap first (None when there are no nulls); Rust's
            # ArrayData keeps it apart: the data buffers are the ones after it.
            python = [buf.address for buf in column.buffers()[1:] if buf is not None]
            assert addresses, "every column has data buffers"
            assert python[: len(addresses)] == addresses
            checked += len(addresses)
    assert checked > 0


def test_a_copy_has_other_addresses(client):
    """The check above can fail: a batch copied on the way has buffers elsewhere."""
    stream = client.query_stream(GUIDE_SQL)
    batch = next(stream)
    rust = stream._buffer_addresses()
    copied = pa.RecordBatch.from_pylist(batch.to_pylist(), schema=batch.schema)

    assert copied.column(1).buffers()[1].address != rust[1][0]
    assert batch.column(1).buffers()[1].address == rust[1][0]


def test_a_finished_stream_stays_finished(client):
    stream = client.query_stream("SELECT * FROM processes")
    assert sum(b.num_rows for b in stream) == 8
    assert list(stream) == []


def test_close_stops_the_stream(client, servers):
    stream = client.query_stream("SELECT * FROM log_entries")
    first = next(stream)
    assert 0 < first.num_rows < servers.rows

    stream.close()

    assert list(stream) == []
    stream.close()


def test_a_with_block_closes_the_stream(client):
    with client.query_stream("SELECT * FROM log_entries") as stream:
        assert next(stream).num_rows > 0
    assert list(stream) == []


def test_a_failure_while_the_query_runs_is_a_query_error(client):
    # Found by the server while computing rows, not while planning.
    sql = "SELECT CAST(1 AS BIGINT) / CAST(level - level AS BIGINT) AS boom FROM log_entries"
    with pytest.raises(flightline.QueryError, match="(?i)divide by zero|division"):
        for _ in client.query_stream(sql):
            pass
