"""`async for batch in client.query_stream_async(...)` yields the Micromegas client's rows, and
the event loop keeps running while a batch is awaited."""

import asyncio

import pyarrow as pa
import pytest

import flightline
from conftest import GUIDE_SQL, assert_same_table


async def collect(client, sql, begin=None, end=None):
    batches = []
    async for batch in client.query_stream_async(sql, begin, end):
        batches.append(batch)
    return batches


def test_async_iteration_yields_the_same_rows(client, mm, window):
    begin, end = window.begin.to_pydatetime(), window.end.to_pydatetime()

    batches = asyncio.run(collect(client, GUIDE_SQL, begin, end))

    assert batches and all(isinstance(b, pa.RecordBatch) for b in batches)
    assert_same_table(pa.Table.from_batches(batches), mm.query_arrow(GUIDE_SQL, begin, end))


def test_two_streams_run_concurrently_on_one_loop(client, mm, servers):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def main():
        tick = asyncio.create_task(ticker())
        both = await asyncio.gather(
            collect(client, "SELECT * FROM log_entries"), collect(client, "SELECT * FROM measures")
        )
        tick.cancel()
        return both

    logs, measures = asyncio.run(main())

    assert sum(b.num_rows for b in logs) == servers.rows
    assert sum(b.num_rows for b in measures) == servers.rows
    assert ticks > len(logs) + len(measures), "the loop was blocked while batches were awaited"


def test_an_async_with_block_closes_the_stream(client):
    async def main():
        async with client.query_stream_async("SELECT * FROM log_entries") as stream:
            first = await stream.__anext__()
        rest = [b async for b in stream]
        return first, rest

    first, rest = asyncio.run(main())
    assert first.num_rows > 0
    assert rest == []


def test_the_query_starts_on_a_worker_thread(client, mm):
    async def main():
        stream = client.query_stream_async(GUIDE_SQL)
        with pytest.raises(RuntimeError, match="not started"):
            stream.schema
        assert await stream.start() is stream
        return stream.schema

    schema = asyncio.run(main())
    assert schema.equals(mm.prepare_statement(GUIDE_SQL).dataset_schema, check_metadata=False)


def test_a_wrong_query_raises_at_the_first_batch(client):
    async def main():
        stream = client.query_stream_async("SELECT * FROM no_such_table")
        async for _ in stream:
            raise AssertionError("a batch of a table that does not exist")

    with pytest.raises(flightline.QueryError, match="no_such_table"):
        asyncio.run(main())
