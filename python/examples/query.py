"""The guide's first steps: connect, then query with a time range into a pandas DataFrame.

    FLIGHTLINE_URI=grpc://127.0.0.1:50051 python python/examples/query.py

With a token: FLIGHTLINE_TOKEN=... (sent as `authorization: Bearer ...`).
"""

import datetime
import os

import pandas as pd

import flightline


def main() -> None:
    client = flightline.connect(
        os.environ.get("FLIGHTLINE_URI", "grpc://127.0.0.1:50051"),
        token=os.environ.get("FLIGHTLINE_TOKEN"),
    )

    # The newest entry tells where the data ends (the demo's week may lie in the past).
    newest = client.query("SELECT max(time) AS newest FROM log_entries")["newest"].iloc[0]
    end = datetime.datetime.now(datetime.timezone.utc) if pd.isna(newest) else newest
    begin = end - datetime.timedelta(hours=1)

    # begin/end as aware datetimes (or pandas Timestamps): the server prunes to [begin, end)
    # before running the SQL.
    df = client.query(
        "SELECT time, level, target, msg FROM log_entries ORDER BY time DESC LIMIT 10", begin, end
    )
    print(f"the last 10 entries of the hour before {end:%Y-%m-%d %H:%M}:")
    print(df.to_string(index=False, max_colwidth=40))

    # begin/end also take RFC 3339 strings, and begin a span back from end ("15m", "2h", "7d").
    errors = client.query(
        "SELECT target, count(*) AS errors FROM log_entries WHERE level <= 2 GROUP BY target ORDER BY errors DESC",
        "7d",
        end.isoformat(),
    )
    print("\nerrors per target over the week:")
    print(errors.to_string(index=False))


if __name__ == "__main__":
    main()
