"""Type stubs of `flightline._native`, the Rust extension module (python/src/). Use the
`flightline` package's API (python/flightline/__init__.py), which wraps these."""

from typing import Any, Dict, List, Mapping, Optional, Sequence

import pyarrow

class FlightlineError(Exception):
    """Base class of every error flightline raises."""

    #: Whether trying again may succeed (True for transport errors).
    retryable: bool

class QueryError(FlightlineError):
    """The query or a request option is wrong (bad SQL, unknown table, bad time range)."""

class TransportError(FlightlineError):
    """The server could not be reached, went away, timed out or said it is busy."""

class AuthError(FlightlineError):
    """The server wants credentials, refused them, or does not allow this caller."""

class ProcessorError(FlightlineError):
    """A processor of `execute` failed."""

    #: The processor's name (a built-in's, a Python processor's `name` or class name).
    processor: Optional[str]
    #: "open", "process" or "finish".
    stage: Optional[str]
    #: The index of the batch being processed (0 is the first), for stage "process".
    batch: Optional[int]
    #: What the processor said (for a Python processor, "ExceptionType: message").
    reason: Optional[str]

class ValidationError(FlightlineError):
    """Validation refused the query."""

    #: The findings, each a dict with severity, code, message and recommendation.
    findings: Sequence[Dict[str, Any]]

class ConfigError(FlightlineError):
    """An argument is malformed, or the server answered something this client cannot use;
    also raised when a client or stream is used in a forked child."""

class BatchStream:
    """The record batches of one query, in arrival order; also an Arrow C stream."""

    @property
    def schema(self) -> pyarrow.Schema: ...
    def __iter__(self) -> "BatchStream": ...
    def __next__(self) -> pyarrow.RecordBatch: ...
    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object:
        """Hands the rest of the stream to an Arrow consumer (pyarrow, polars, DuckDB), once."""
    def close(self) -> None:
        """Stops the query; a read waiting on another thread ends. Closing twice is harmless."""
    def __enter__(self) -> "BatchStream": ...
    def __exit__(self, *args: object) -> bool: ...
    def _buffer_addresses(self) -> List[List[int]]:
        """The data buffers' addresses of the last batch `__next__` returned, per column."""

class Client:
    """A connected client; made by `connect`."""

    @property
    def uri(self) -> str: ...
    def query_arrow(
        self, sql: str, begin: Optional[str] = None, end: Optional[str] = None
    ) -> pyarrow.Table: ...
    def query_stream(
        self, sql: str, begin: Optional[str] = None, end: Optional[str] = None
    ) -> BatchStream: ...
    def prepare_schema(self, sql: str) -> pyarrow.Schema: ...
    def analyze_schema(self, sql: str) -> Dict[str, Any]: ...
    def validate(
        self,
        sql: str,
        policy: str = "warn",
        begin: Optional[str] = None,
        end: Optional[str] = None,
    ) -> Dict[str, Any]: ...
    def execute(
        self,
        sql: str,
        processors: List[Any],
        begin: Optional[str] = None,
        end: Optional[str] = None,
        progress: Optional[Any] = None,
        estimate: bool = False,
        target_batch_bytes: Optional[int] = None,
    ) -> Dict[str, Any]: ...

def connect(args: Mapping[str, Any]) -> Client:
    """Connects with `args`: uri, headers (list of (name, value)), token, auth_provider, user,
    password, oidc_issuer, oidc_client_id, oidc_client_secret, oidc_audience, oidc_scope,
    oidc_from_env, tls_ca_file, tls_domain, connect_timeout, request_timeout, preserve_dictionary."""

def processor_names() -> List[str]:
    """The names of the built-in processors `execute` accepts."""
