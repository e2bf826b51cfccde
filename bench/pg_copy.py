"""The baseline of runner/benches/postgres_sink.rs: the same rows into PostgreSQL with a plain
psycopg COPY, as a Python loop around a Flight SQL client would write them.

    pg_copy.py ROWS.parquet CONNINFO TABLE LIKE_TABLE   (password from PGPASSWORD)

Creates TABLE like LIKE_TABLE, then times converting the Arrow columns to Python rows and
COPYing them (psycopg 3, `write_row`), commit included. Each row carries the job and window
columns that postgres_sink adds, so both sides write the same table. Prints the seconds.
"""

import datetime
import sys
import time

import psycopg
import pyarrow.parquet as pq


def main() -> None:
    path, conninfo, table, like = sys.argv[1:5]
    data = pq.read_table(path)
    columns = data.column_names
    with psycopg.connect(conninfo) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (LIKE {like})")
        conn.commit()
        start = time.perf_counter()
        begin = datetime.datetime(2024, 5, 25, tzinfo=datetime.timezone.utc)
        key = ("bench", begin, begin + datetime.timedelta(days=7))
        rows = zip(*(data.column(name).to_pylist() for name in columns))
        names = ["flightline_job", "flightline_begin", "flightline_end", *columns]
        statement = f"COPY {table} ({', '.join(names)}) FROM STDIN"
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(key + row)
        conn.commit()
        print(f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
