"""execute(progress=...): a callback receives updates that end with done=True."""

import io
import sys
import time

import flightline

SQL = "SELECT time, level, target, msg FROM log_entries"


def test_the_callback_receives_updates_ending_with_done(client, servers):
    updates = []

    result = client.execute(SQL, ["count_by"], progress=updates.append, target_batch_bytes=32 * 1024)

    assert updates, "no progress update"
    assert updates[-1]["done"] is True
    assert all(u["done"] is False for u in updates[:-1])
    assert updates[-1]["rows"] == result["stats"]["rows"] == servers.rows
    assert updates[-1]["batches"] == result["stats"]["batches"]
    rows = [u["rows"] for u in updates]
    assert rows == sorted(rows)
    assert set(updates[0]) == {"rows", "batches", "bytes", "seconds", "estimated_rows", "done"}


class Slow:
    """Slows the run down (with many small batches, the stream waits for the processor) so that
    the row estimate, a COUNT(*) run beside the stream, arrives before the end."""

    def process(self, batch):
        time.sleep(0.01)


def test_an_estimate_gives_the_total_ahead(client, servers):
    updates = []

    client.execute(SQL, [Slow()], progress=updates.append, estimate=True, target_batch_bytes=16 * 1024)

    assert updates[-1]["done"] is True
    assert updates[-1]["estimated_rows"] == servers.rows


def test_a_callback_that_raises_does_not_fail_the_run(client, servers, capsys):
    calls = []

    def broken(update):
        calls.append(update)
        raise RuntimeError("progress bar broke")

    result = client.execute(SQL, ["count_by"], progress=broken)

    assert result["stats"]["rows"] == servers.rows
    assert len(calls) == 1, "a callback that raised was called again"


def test_progress_true_draws_a_tqdm_bar_that_ends_at_every_row(client, servers, capsys):
    assert client.execute(SQL, ["count_by"], progress=True)["stats"]["rows"] == servers.rows

    bar = capsys.readouterr().err
    assert "flightline" in bar, bar
    # tqdm scales the count: 20000 rows are drawn as "20.0k rows".
    assert f"{servers.rows / 1000:.1f}k rows" in bar, bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_tqdm_a_terminal_gets_one_line_ending_at_every_row(client, servers, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # `from tqdm.auto import ...` fails
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    client.execute(SQL, ["count_by"], progress=True)

    line = terminal.getvalue().split("\r")[-1]
    assert line.startswith(f"flightline: {servers.rows:,} rows"), terminal.getvalue()
    assert line.endswith(" s\n"), line


def test_without_tqdm_and_without_a_terminal_nothing_is_drawn(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)

    client.execute(SQL, ["count_by"], progress=True)

    assert pipe.getvalue() == ""


def test_progress_of_another_kind_is_refused(client):
    try:
        client.execute(SQL, ["count_by"], progress="yes")
    except flightline.ConfigError as err:
        assert "progress" in str(err)
    else:
        raise AssertionError("progress='yes' was accepted")
