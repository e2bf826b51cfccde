"""query_stream in asyncio code: `async for batch in client.query_stream_async(...)`; the event
loop keeps serving other tasks while each batch is awaited.

    FLIGHTLINE_URI=grpc://127.0.0.1:50051 python python/examples/asyncio_stream.py
"""

import asyncio
import os

import flightline


async def count_rows(client: flightline.Client, table: str) -> int:
    rows = 0
    async for batch in client.query_stream_async(f"SELECT * FROM {table}"):
        rows += batch.num_rows
    return rows


async def main() -> None:
    # connect() waits on the network: in a running loop, do it on a worker thread.
    client = await asyncio.to_thread(
        flightline.connect,
        os.environ.get("FLIGHTLINE_URI", "grpc://127.0.0.1:50051"),
        token=os.environ.get("FLIGHTLINE_TOKEN"),
    )
    tables = ["log_entries", "measures", "processes"]
    counts = await asyncio.gather(*(count_rows(client, t) for t in tables))
    for table, rows in zip(tables, counts):
        print(f"{table:<12} {rows:>10,} rows")


if __name__ == "__main__":
    asyncio.run(main())
