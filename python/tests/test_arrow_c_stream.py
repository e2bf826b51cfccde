"""pyarrow reads query_stream() through the Arrow C stream interface (`__arrow_c_stream__`): the
same rows as the Micromegas client, handed out once."""

import pyarrow as pa
import pytest

from conftest import GUIDE_SQL, assert_same_table


def test_pyarrow_table_reads_the_stream(client, mm):
    stream = client.query_stream(GUIDE_SQL)

    table = pa.table(stream)

    assert_same_table(table, mm.query_arrow(GUIDE_SQL))


def test_a_record_batch_reader_reads_the_stream(client, mm, servers):
    sql = "SELECT * FROM log_entries"
    reader = pa.RecordBatchReader.from_stream(client.query_stream(sql))

    assert reader.schema.names == mm.prepare_statement(sql).dataset_schema.names
    batches = list(reader)
    assert len(batches) > 1
    table = pa.Table.from_batches(batches, schema=reader.schema)
    assert table.num_rows == servers.rows
    assert_same_table(table, mm.query_arrow(sql))


def test_the_rest_of_a_started_stream_is_handed_out(client, mm):
    sql = "SELECT * FROM log_entries"
    stream = client.query_stream(sql)
    first = next(stream)

    rest = pa.table(stream)

    assert_same_table(pa.concat_tables([pa.Table.from_batches([first]), rest]), mm.query_arrow(sql))


def test_a_second_hand_out_raises(client):
    stream = client.query_stream(GUIDE_SQL)
    assert pa.table(stream).num_rows > 0

    with pytest.raises(RuntimeError, match="already read to its end or handed out"):
        pa.table(stream)
    with pytest.raises(RuntimeError):
        stream.__arrow_c_stream__()
    assert list(stream) == []
