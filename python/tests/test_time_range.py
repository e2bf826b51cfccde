"""begin / end as datetime, RFC 3339 strings and relative spans ("7d") select the same rows as the
Micromegas client with the equivalent absolute range."""

import datetime

import pandas as pd
import pyarrow as pa
import pytest

import flightline
from conftest import GUIDE_SQL, assert_same_table, count

COUNT_SQL = "SELECT count(*) AS n FROM log_entries"


def rfc3339(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_aware_datetimes_match_micromegas(client, mm, servers, window):
    begin, end = window.begin.to_pydatetime(), window.end.to_pydatetime()
    expected_n = count(mm, window.count_sql("log_entries"))
    assert 0 < expected_n < servers.rows

    actual = client.query_arrow(GUIDE_SQL, begin, end)

    assert_same_table(actual, mm.query_arrow(GUIDE_SQL, begin, end))
    assert count(client, COUNT_SQL, begin, end) == expected_n
    assert len(client.query("SELECT time FROM log_entries", begin, end)) == expected_n


def test_rfc3339_strings_match_datetimes(client, mm, window):
    begin, end = rfc3339(window.begin), rfc3339(window.end)
    expected = mm.query_arrow(GUIDE_SQL, window.begin.to_pydatetime(), window.end.to_pydatetime())

    assert_same_table(client.query_arrow(GUIDE_SQL, begin, end), expected)
    assert count(client, COUNT_SQL, begin, end) == count(mm, window.count_sql("log_entries"))


def test_a_non_utc_offset_and_pandas_timestamps_mean_the_same_instants(client, mm, window):
    india = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    begin = window.begin.to_pydatetime().astimezone(india)
    end = window.end.to_pydatetime().astimezone(india)
    expected = count(mm, window.count_sql("log_entries"))

    assert count(client, COUNT_SQL, begin, end) == expected
    assert count(client, COUNT_SQL, window.begin, window.end) == expected


def test_bounds_are_inclusive_begin_exclusive_end_to_the_nanosecond(client, mm):
    first = client.query("SELECT time FROM log_entries ORDER BY time LIMIT 1 OFFSET 5000")["time"].iloc[0]
    last = client.query("SELECT time FROM log_entries ORDER BY time LIMIT 1 OFFSET 9000")["time"].iloc[0]

    df = client.query("SELECT time FROM log_entries", first, last)

    assert len(df) == len(mm.query("SELECT time FROM log_entries", first, last))
    assert df["time"].min() == first
    assert df["time"].max() < last


def test_a_span_with_an_end_matches_the_absolute_range(client, mm, servers):
    end = servers.demo_end - datetime.timedelta(hours=13)
    for span, length in [("2d", datetime.timedelta(days=2)), ("90m", datetime.timedelta(minutes=90))]:
        expected = mm.query_arrow(GUIDE_SQL, end - length, end)
        assert expected.num_rows > 0

        actual = client.query_arrow(GUIDE_SQL, span, end)

        assert_same_table(actual, expected)


def test_a_span_alone_reaches_back_from_now(client, mm, servers):
    """The demo data ends in the past, so a span alone is chosen to start inside the demo window;
    the instant it starts at is known only to within the call's duration, hence the bracket."""
    middle = servers.demo_end - datetime.timedelta(days=3, hours=12)
    days = (datetime.datetime.now(datetime.timezone.utc) - middle).days
    span = f"{days}d"

    before = datetime.datetime.now(datetime.timezone.utc)
    actual = count(client, COUNT_SQL, span)
    after = datetime.datetime.now(datetime.timezone.utc)

    most = count(mm, COUNT_SQL, before - datetime.timedelta(days=days), before)
    least = count(mm, COUNT_SQL, after - datetime.timedelta(days=days), after)
    assert 0 < least <= actual <= most < servers.rows
    # A week back from now holds none of the demo week, which ended long ago.
    assert servers.demo_end < before - datetime.timedelta(days=7)
    assert count(client, COUNT_SQL, "7d") == 0
    assert count(client, COUNT_SQL, "1w") == 0


@pytest.mark.parametrize(
    "begin, end",
    [
        ("yesterday", None),
        ("7x", None),
        (None, "2024-06-01T00:00:00Z"),
        ("2024-06-01T00:00:00Z", "2024-05-01T00:00:00Z"),
        (datetime.datetime(2024, 5, 30), None),
    ],
)
def test_a_malformed_range_is_a_query_error(client, begin, end):
    with pytest.raises(flightline.QueryError) as raised:
        client.query(COUNT_SQL, begin, end)
    assert raised.value.retryable is False


def range_forms(servers, window):
    """The same range written each way a caller may write it."""
    end = pd.Timestamp(servers.demo_end) - pd.Timedelta(hours=7)
    return {
        "datetime": (window.begin.to_pydatetime(), window.end.to_pydatetime(), window.begin, window.end),
        "rfc3339": (rfc3339(window.begin), rfc3339(window.end), window.begin, window.end),
        "span": ("36h", end.isoformat(), end - pd.Timedelta(hours=36), end),
    }


@pytest.mark.parametrize("form", ["datetime", "rfc3339", "span"])
def test_every_call_selects_the_rows_micromegas_selects(client, mm, servers, window, form):
    begin, end, mm_begin, mm_end = range_forms(servers, window)[form]
    expected = mm.query_arrow(GUIDE_SQL, mm_begin.to_pydatetime(), mm_end.to_pydatetime())
    assert 0 < expected.num_rows < count(mm, "SELECT count(*) AS n FROM log_entries WHERE level <= 3")

    assert_same_table(client.query_arrow(GUIDE_SQL, begin, end), expected)
    assert_same_table(pa.Table.from_batches(list(client.query_stream(GUIDE_SQL, begin, end))), expected)
    df = client.query(GUIDE_SQL, begin, end)
    assert len(df) == expected.num_rows
    assert df["time"].min() >= mm_begin and df["time"].max() < mm_end
    result = client.execute(GUIDE_SQL, ["count_by"], begin, end)
    assert result["stats"]["rows"] == expected.num_rows
