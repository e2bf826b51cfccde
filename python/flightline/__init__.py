"""Flightline for Python: the Micromegas client's calls, running on Flightline's Rust SDK.

Switching from Micromegas is an import change::

    import flightline

    client = flightline.connect("grpc://127.0.0.1:50051")
    df = client.query("SELECT time, level, msg FROM log_entries", begin="1h")
    for batch in client.query_stream("SELECT * FROM log_entries", begin="7d"):
        ...  # a pyarrow.RecordBatch whose buffers Rust received: nothing is copied

Everything that waits on the network runs in Rust with the GIL released; Ctrl-C interrupts it.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import sys
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from . import _native
from ._native import (
    AuthError,
    ConfigError,
    FlightlineError,
    ProcessorError,
    QueryError,
    TransportError,
    ValidationError,
)

__all__ = [
    "connect",
    "Client",
    "PreparedStatement",
    "BatchStream",
    "AsyncBatchStream",
    "FlightlineError",
    "QueryError",
    "TransportError",
    "AuthError",
    "ProcessorError",
    "ValidationError",
    "ConfigError",
    "processor_names",
]

BatchStream = _native.BatchStream


def processor_names() -> list:
    """The names of the built-in processors `Client.execute` accepts."""
    return _native.processor_names()


def connect(
    uri: str = "grpc://127.0.0.1:50051",
    *,
    headers: Optional[Mapping[str, str]] = None,
    token: Optional[str] = None,
    auth_provider: Any = None,
    user: Optional[str] = None,
    password: Optional[str] = None,
    tls_ca_file: Optional[str] = None,
    tls_domain: Optional[str] = None,
    connect_timeout: Optional[float] = None,
    request_timeout: Optional[float] = None,
    preserve_dictionary: bool = False,
) -> "Client":
    """Connects to a Flight SQL server.

    `uri` is `grpc://host:port`, or `grpc+tls://host:port` for TLS (`http://` and `https://`
    are accepted as Micromegas does). Credentials, at most one kind:

    - `token`: sent as `authorization: Bearer <token>`;
    - `auth_provider`: any object with `get_token()`, called before every request (as the
      Micromegas client does), so a token can be refreshed while the client lives;
    - `user` and `password`: the Flight handshake (Basic), whose session token is then sent;
    - `headers`: sent with every call as given (e.g. `{"x-api-key": ...}`).

    `tls_ca_file` trusts a CA in PEM besides the system roots; `tls_domain` overrides the name
    the server's certificate must carry. `preserve_dictionary` asks the server to keep
    dictionary-encoded columns encoded.
    """
    args = {
        "uri": uri,
        "headers": list(headers.items()) if headers is not None else None,
        "token": token,
        "auth_provider": auth_provider,
        "user": user,
        "password": password,
        "tls_ca_file": None if tls_ca_file is None else str(tls_ca_file),
        "tls_domain": tls_domain,
        "connect_timeout": connect_timeout,
        "request_timeout": request_timeout,
        "preserve_dictionary": preserve_dictionary,
    }
    return Client(_native.connect(args))


def _instant(value: Any, name: str) -> Optional[str]:
    """`begin` / `end` as text: `None`, an RFC 3339 string, a span like `"7d"` (begin only), a
    timezone-aware `datetime` or a pandas `Timestamp`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise QueryError(
                f"{name}={value!r} has no time zone: pass an aware datetime "
                "(e.g. datetime.now(timezone.utc)) or an RFC 3339 string"
            )
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        raise QueryError(f"{name} takes an instant; for a span back from now write e.g. \"7d\"")
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None and getattr(value, "tzinfo", None) is not None:
        return isoformat()
    raise QueryError(
        f"{name}={value!r}: expected None, an RFC 3339 string, a span like \"7d\" or an aware "
        "datetime"
    )


class PreparedStatement:
    """A query's result schema, learnt without running it (Micromegas's `PreparedStatement`)."""

    def __init__(self, query: str, dataset_schema: Any) -> None:
        self.query = query
        self.dataset_schema = dataset_schema

    def __repr__(self) -> str:
        return f"PreparedStatement(query={self.query!r}, dataset_schema={self.dataset_schema})"


class AsyncBatchStream:
    """`async for batch in client.query_stream_async(...)`: each wait for a batch runs on a
    worker thread with the GIL released, so the event loop keeps running meanwhile."""

    def __init__(self, stream: "BatchStream") -> None:
        self._stream = stream

    @property
    def schema(self) -> Any:
        return self._stream.schema

    def __aiter__(self) -> "AsyncBatchStream":
        return self

    async def __anext__(self) -> Any:
        batch = await asyncio.get_running_loop().run_in_executor(None, _next_or_none, self._stream)
        if batch is None:
            raise StopAsyncIteration
        return batch


def _next_or_none(stream: Iterator[Any]) -> Any:
    return next(stream, None)


class Client:
    """A connection to a Flight SQL server; made by `connect`. Safe to share between threads;
    after `os.fork()` the child connects again."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def uri(self) -> str:
        return self._native.uri

    def query(self, sql: str, begin: Any = None, end: Any = None) -> Any:
        """Runs `sql` over `[begin, end)` and returns a pandas DataFrame."""
        return self.query_arrow(sql, begin, end).to_pandas()

    def query_arrow(self, sql: str, begin: Any = None, end: Any = None) -> Any:
        """Runs `sql` over `[begin, end)` and returns a `pyarrow.Table`."""
        return self._native.query_arrow(sql, _instant(begin, "begin"), _instant(end, "end"))

    def query_stream(self, sql: str, begin: Any = None, end: Any = None) -> "BatchStream":
        """Runs `sql` over `[begin, end)`; returns an iterator of `pyarrow.RecordBatch` that
        also implements `__arrow_c_stream__` (so `pyarrow.table(stream)`,
        `polars.from_arrow(stream)` or DuckDB read it directly)."""
        return self._native.query_stream(sql, _instant(begin, "begin"), _instant(end, "end"))

    def query_stream_async(self, sql: str, begin: Any = None, end: Any = None) -> AsyncBatchStream:
        """`query_stream` for asyncio code: `async for batch in ...`.

        Starting the query waits on the network too, so call it through
        `await asyncio.to_thread(...)` in code where even that wait matters."""
        return AsyncBatchStream(self.query_stream(sql, begin, end))

    def prepare_statement(self, sql: str) -> PreparedStatement:
        """The result schema of `sql`, asked of the server without running the query."""
        return PreparedStatement(sql, self._native.prepare_schema(sql))

    def analyze_schema(self, sql: str) -> dict:
        """Column names, types, nullability and estimated sizes of the result of `sql`, and the
        estimated bytes per row, without running it."""
        return self._native.analyze_schema(sql)

    def validate(self, sql: str, policy: str = "warn", begin: Any = None, end: Any = None) -> dict:
        """Runs the built-in validators over `sql` (and over its result schema, which the
        server reports without running it). Returns `{"policy", "denied", "findings"}`; each
        finding has `severity`, `code`, `message` and `recommendation`. `policy` is "off",
        "warn" or "deny" (`denied` is true only under "deny")."""
        return self._native.validate(sql, policy, _instant(begin, "begin"), _instant(end, "end"))

    def execute(
        self,
        sql: str,
        processors: Sequence[Any],
        begin: Any = None,
        end: Any = None,
        *,
        progress: Any = False,
        estimate: bool = False,
        target_batch_bytes: Optional[int] = None,
    ) -> dict:
        """Streams the result of `sql` into `processors`, batch by batch, and returns
        `{"stats": {...}, "reports": [...]}`.

        A processor is a built-in's name (`"count_by"`), a `(name, options)` pair, a dict
        `{"name": ..., "options": {...}}` (built-ins run in Rust, without the GIL), or a Python
        object with `process(batch)` and optionally `open(schema)`, `finish()` and `name`.
        `finish()` may return None, a dict of counts, or a dict with `counts`, `tables`,
        `files` and `notes`.

        `progress`: True shows a bar (tqdm when installed, else a line on a terminal's
        stderr), or a callable receiving `{"rows", "batches", "bytes", "seconds",
        "estimated_rows", "done"}`. `estimate` counts the rows first, for a percentage.
        Ctrl-C cancels the run: every processor is aborted and nothing is committed.
        """
        callback = _progress_callback(progress)
        try:
            return self._native.execute(
                sql,
                list(processors),
                _instant(begin, "begin"),
                _instant(end, "end"),
                callback,
                estimate,
                target_batch_bytes,
            )
        finally:
            close = getattr(callback, "close", None)
            if close is not None:
                close()


def _progress_callback(progress: Any) -> Any:
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    if progress is True:
        return _ProgressBar()
    raise ConfigError(f"progress={progress!r}: pass True, False or a callable")


class _ProgressBar:
    """The bar of `progress=True`: tqdm's (notebook-aware) when tqdm is installed, else one
    rewritten line on stderr when it is a terminal, else nothing."""

    def __init__(self) -> None:
        self._bar = None
        self._rows = 0
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self._bar = tqdm(unit=" rows", unit_scale=True, desc="flightline")
        self._tty = self._bar is None and sys.stderr.isatty()

    def __call__(self, update: dict) -> None:
        if self._bar is not None:
            if update.get("estimated_rows") and self._bar.total is None:
                self._bar.total = update["estimated_rows"]
            self._bar.update(update["rows"] - self._rows)
            self._rows = update["rows"]
        elif self._tty:
            end = "\n" if update["done"] else ""
            sys.stderr.write(
                f"\rflightline: {update['rows']:,} rows, {update['batches']} batches, "
                f"{update['seconds']:.1f} s{end}"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
