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
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Union

if TYPE_CHECKING:
    import pandas
    import pyarrow

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
    "AuthProvider",
    "TimeArg",
]

BatchStream = _native.BatchStream

#: What `begin` and `end` accept: None, an RFC 3339 string, a span back from `end` (or from now)
#: like "7d" (begin only), or a timezone-aware `datetime` / pandas `Timestamp`.
TimeArg = Union[None, str, _dt.datetime]


class AuthProvider(Protocol):
    """What `connect(auth_provider=...)` takes: any object with `get_token()` (the Micromegas
    client's providers qualify). It is called before every request, on a worker thread."""

    def get_token(self) -> str: ...


#: One of `execute`'s processors: a built-in's name, a `(name, options)` pair, a dict
#: `{"name": ..., "options": {...}}`, or an object with `process(batch)`.
ProcessorSpec = Any


def processor_names() -> List[str]:
    """The names of the built-in processors `Client.execute` accepts."""
    return _native.processor_names()


def connect(
    uri: str = "grpc://127.0.0.1:50051",
    *,
    headers: Optional[Mapping[str, str]] = None,
    token: Optional[str] = None,
    auth_provider: Optional["AuthProvider"] = None,
    user: Optional[str] = None,
    password: Optional[str] = None,
    oidc_issuer: Optional[str] = None,
    oidc_client_id: Optional[str] = None,
    oidc_client_secret: Optional[str] = None,
    oidc_audience: Optional[str] = None,
    oidc_scope: Optional[str] = None,
    oidc_from_env: bool = False,
    tls_ca_file: Union[str, "os.PathLike[str]", None] = None,
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
    - `oidc_issuer`, `oidc_client_id`, `oidc_client_secret` (optional `oidc_audience`,
      `oidc_scope`): OIDC client credentials, tokens fetched from the issuer and refreshed
      before they expire; `oidc_from_env=True` reads the Micromegas variables instead
      (MICROMEGAS_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET, _AUDIENCE);
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
        "oidc_issuer": oidc_issuer,
        "oidc_client_id": oidc_client_id,
        "oidc_client_secret": oidc_client_secret,
        "oidc_audience": oidc_audience,
        "oidc_scope": oidc_scope,
        "oidc_from_env": oidc_from_env,
        "tls_ca_file": None if tls_ca_file is None else str(tls_ca_file),
        "tls_domain": tls_domain,
        "connect_timeout": connect_timeout,
        "request_timeout": request_timeout,
        "preserve_dictionary": preserve_dictionary,
    }
    return Client(_native.connect(args))


def _instant(value: TimeArg, name: str) -> Optional[str]:
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

    def __init__(self, query: str, dataset_schema: "pyarrow.Schema") -> None:
        self.query = query
        self.dataset_schema = dataset_schema

    def __repr__(self) -> str:
        return f"PreparedStatement(query={self.query!r}, dataset_schema={self.dataset_schema})"


class AsyncBatchStream:
    """`async for batch in client.query_stream_async(...)`: starting the query and each wait for
    a batch run on a worker thread with the GIL released, so the event loop keeps running
    meanwhile. The query starts at the first batch asked for, or at `await stream.start()`."""

    def __init__(self, start: Callable[[], "_native.BatchStream"]) -> None:
        self._start = start
        self._stream: Optional[_native.BatchStream] = None
        self._closed = False

    async def start(self) -> "AsyncBatchStream":
        """Starts the query, if not yet started: a wrong query raises here. Returns the stream."""
        if self._stream is None and not self._closed:
            self._stream = await asyncio.get_running_loop().run_in_executor(None, self._start)
        return self

    @property
    def schema(self) -> "pyarrow.Schema":
        """The schema of the batches, once the query started (see `start`)."""
        if self._stream is None:
            raise RuntimeError("the query has not started yet: `await stream.start()` first")
        return self._stream.schema

    def __aiter__(self) -> "AsyncBatchStream":
        return self

    async def __anext__(self) -> "pyarrow.RecordBatch":
        await self.start()
        stream = self._stream
        if stream is None:
            raise StopAsyncIteration
        waiting = asyncio.get_running_loop().run_in_executor(None, _next_or_none, stream)
        try:
            batch = await waiting
        except asyncio.CancelledError:
            # The worker thread is still waiting on the network: closing the stream ends that
            # wait, so that a cancelled task (Ctrl-C under asyncio.run) does not leave the
            # loop's executor blocked until the next batch arrives.
            stream.close()
            raise
        if batch is None:
            raise StopAsyncIteration
        return batch

    def close(self) -> None:
        """Stops the query (or keeps it from starting); see `BatchStream.close`."""
        self._closed = True
        if self._stream is not None:
            self._stream.close()

    async def __aenter__(self) -> "AsyncBatchStream":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()


def _next_or_none(stream: "_native.BatchStream") -> Optional["pyarrow.RecordBatch"]:
    return next(stream, None)


class Client:
    """A connection to a Flight SQL server; made by `connect`. Safe to share between threads;
    after `os.fork()` the child connects again."""

    def __init__(self, native: "_native.Client") -> None:
        self._native = native

    @property
    def uri(self) -> str:
        return self._native.uri

    def query(self, sql: str, begin: TimeArg = None, end: TimeArg = None) -> "pandas.DataFrame":
        """Runs `sql` over `[begin, end)` and returns a pandas DataFrame."""
        return self.query_arrow(sql, begin, end).to_pandas()

    def query_arrow(
        self, sql: str, begin: TimeArg = None, end: TimeArg = None
    ) -> "pyarrow.Table":
        """Runs `sql` over `[begin, end)` and returns a `pyarrow.Table`."""
        return self._native.query_arrow(sql, _instant(begin, "begin"), _instant(end, "end"))

    def query_stream(
        self, sql: str, begin: TimeArg = None, end: TimeArg = None
    ) -> "_native.BatchStream":
        """Runs `sql` over `[begin, end)`; returns an iterator of `pyarrow.RecordBatch` that
        also implements `__arrow_c_stream__` (so `pyarrow.table(stream)`,
        `polars.from_arrow(stream)` or DuckDB read it directly)."""
        return self._native.query_stream(sql, _instant(begin, "begin"), _instant(end, "end"))

    def query_stream_async(
        self, sql: str, begin: TimeArg = None, end: TimeArg = None
    ) -> AsyncBatchStream:
        """`query_stream` for asyncio code: `async for batch in ...`. Nothing blocks the event
        loop: the query starts on a worker thread at the first batch asked for (so a wrong
        query raises there, or at `await stream.start()`)."""
        begin_text, end_text = _instant(begin, "begin"), _instant(end, "end")
        return AsyncBatchStream(lambda: self._native.query_stream(sql, begin_text, end_text))

    def prepare_statement(self, sql: str) -> PreparedStatement:
        """The result schema of `sql`, asked of the server without running the query."""
        return PreparedStatement(sql, self._native.prepare_schema(sql))

    def analyze_schema(self, sql: str) -> Dict[str, Any]:
        """Column names, types, nullability and estimated sizes of the result of `sql`, and the
        estimated bytes per row, without running it."""
        return self._native.analyze_schema(sql)

    def validate(
        self, sql: str, policy: str = "warn", begin: TimeArg = None, end: TimeArg = None
    ) -> Dict[str, Any]:
        """Runs the built-in validators over `sql` (and over its result schema, which the
        server reports without running it). Returns `{"policy", "denied", "findings"}`; each
        finding has `severity`, `code`, `message` and `recommendation`. `policy` is "off",
        "warn" or "deny" (`denied` is true only under "deny")."""
        return self._native.validate(sql, policy, _instant(begin, "begin"), _instant(end, "end"))

    def execute(
        self,
        sql: str,
        processors: Sequence[ProcessorSpec],
        begin: TimeArg = None,
        end: TimeArg = None,
        *,
        progress: Union[bool, None, Callable[[Dict[str, Any]], Any]] = False,
        estimate: bool = False,
        target_batch_bytes: Optional[int] = None,
    ) -> Dict[str, Any]:
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


def _progress_callback(
    progress: Union[bool, None, Callable[[Dict[str, Any]], Any]],
) -> Optional[Callable[[Dict[str, Any]], Any]]:
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
        self._bar: Any = None
        self._rows = 0
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self._bar = tqdm(unit=" rows", unit_scale=True, desc="flightline")
        self._tty = self._bar is None and sys.stderr.isatty()

    def __call__(self, update: Dict[str, Any]) -> None:
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
