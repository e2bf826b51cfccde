"""An exception inside a Python processor fails the run with ProcessorError naming the
processor, the stage and the batch."""

import pytest

import flightline

SQL = "SELECT time, level, target FROM log_entries"


class FailsAt:
    def __init__(self, name, stage, batch=0):
        self.name = name
        self.stage = stage
        self.batch = batch
        self.seen = 0

    def open(self, schema):
        if self.stage == "open":
            raise KeyError("no such column: severity")

    def process(self, batch):
        if self.stage == "process" and self.seen == self.batch:
            raise ValueError(f"cannot parse batch {self.seen}")
        self.seen += 1

    def finish(self):
        if self.stage == "finish":
            raise RuntimeError("disk full")


def test_an_exception_in_process_names_processor_stage_and_batch(client):
    bad = FailsAt("error_counter", "process", batch=2)

    with pytest.raises(flightline.ProcessorError) as raised:
        # Small batches, so that the run has more than three of them.
        client.execute(SQL, ["count_by", bad, ("aggregate", {"group_by": ["level"]})], target_batch_bytes=16 * 1024)

    err = raised.value
    assert err.processor == "error_counter"
    assert err.stage == "process"
    assert err.batch == 2
    assert err.reason == "ValueError: cannot parse batch 2"
    assert err.retryable is False
    assert "error_counter" in str(err) and "cannot parse batch 2" in str(err)
    assert isinstance(err, flightline.FlightlineError)


def test_the_processor_is_named_by_its_class_without_a_name(client):
    class Exploding:
        def process(self, batch):
            raise ZeroDivisionError("boom")

    with pytest.raises(flightline.ProcessorError) as raised:
        client.execute(SQL, [Exploding()])
    assert raised.value.processor == "Exploding"
    assert raised.value.batch == 0
    assert raised.value.reason == "ZeroDivisionError: boom"


@pytest.mark.parametrize("stage, reason", [("open", "KeyError"), ("finish", "RuntimeError: disk full")])
def test_exceptions_in_open_and_finish(client, stage, reason):
    with pytest.raises(flightline.ProcessorError) as raised:
        client.execute(SQL, [FailsAt("sink", stage)])
    assert raised.value.processor == "sink"
    assert raised.value.stage == stage
    assert raised.value.batch is None
    assert raised.value.reason.startswith(reason)


def test_finish_returning_something_else_than_a_report_fails(client):
    class Lists:
        def process(self, batch):
            pass

        def finish(self):
            return [1, 2]

    with pytest.raises(flightline.ProcessorError, match="not a report") as raised:
        client.execute(SQL, [Lists()])
    assert raised.value.stage == "finish"


def test_a_builtin_with_a_missing_column_fails_in_open(client):
    with pytest.raises(flightline.ProcessorError, match="target") as raised:
        client.execute("SELECT time, level FROM log_entries", ["count_by"])
    assert raised.value.processor == "count_by"
    assert raised.value.stage == "open"
