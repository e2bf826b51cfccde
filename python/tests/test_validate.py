"""validate(): the built-in validators' findings, and the policy."""

import pytest

import flightline


def codes(report):
    return {f["code"] for f in report["findings"]}


def test_no_time_filter_and_order_by_without_limit_are_found(client):
    report = client.validate("SELECT time, msg FROM log_entries ORDER BY time")

    assert report["policy"] == "warn"
    assert report["denied"] is False
    assert codes(report) == {"no_time_filter", "order_by_without_limit"}
    for finding in report["findings"]:
        assert finding["severity"] == "warn"
        assert finding["message"] and finding["recommendation"]


def test_a_time_range_or_a_limit_removes_the_findings(client, window):
    sql = "SELECT time, msg FROM log_entries ORDER BY time"

    with_range = client.validate(sql, begin=window.begin.to_pydatetime(), end=window.end.to_pydatetime())
    with_span = client.validate(sql, begin="1h")
    with_limit = client.validate(sql + " LIMIT 10", begin="1h")

    assert codes(with_range) == {"order_by_without_limit"}
    assert codes(with_span) == {"order_by_without_limit"}
    assert codes(with_limit) == set()


def test_a_where_on_time_counts_as_a_time_filter(client):
    report = client.validate("SELECT time, msg FROM log_entries WHERE time >= now() - interval '1 day'")
    assert "no_time_filter" not in codes(report)


def test_deny_policy_refuses_only_deny_findings(client):
    write = "DELETE FROM log_entries"
    denied = client.validate(write, policy="deny")
    warned = client.validate(write, policy="warn")

    assert denied["denied"] is True
    assert "not_read_only" in codes(denied)
    assert warned["denied"] is False
    assert "not_read_only" in codes(warned)
    # Warnings alone never refuse a query.
    slow = client.validate("SELECT time, msg FROM log_entries ORDER BY time", policy="deny")
    assert slow["denied"] is False and codes(slow)
    assert client.validate("SELECT time, msg FROM log_entries ORDER BY time", policy="off")["findings"] == []


def test_wide_rows_and_joins_without_condition_are_found(client):
    report = client.validate("SELECT * FROM log_entries a JOIN measures b ON true LIMIT 5")
    assert {"select_star_wide", "join_without_condition", "no_time_filter"} <= codes(report)


def test_an_unknown_policy_is_refused(client):
    with pytest.raises(flightline.QueryError, match="policy|strict"):
        client.validate("SELECT 1", policy="strict")
