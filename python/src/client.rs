//! `Client`: one connection to a Flight SQL server, with the Micromegas client's calls.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::Schema;
use arrow_pyarrow::{IntoPyArrow, ToPyArrow};
use flightline_core::client::{ClientBuilder, ClientSecret, OidcClientCredentials, TokenProvider};
use flightline_core::schema::{SchemaAnalysis, SizeOptions};
use flightline_core::validate::{Policy, SchemaSource, ValidationContext, validate_query};
use flightline_core::{Error, FlightSqlClient, QueryOptions};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{time_range, to_python};
use crate::errors::{ConfigError, QueryError, to_py};
use crate::runtime::wait;
use crate::stream::BatchStream;

/// A connected client. Made by `flightline.connect`; safe to share between threads.
#[pyclass(module = "flightline._native", frozen)]
pub struct Client {
    inner: FlightSqlClient,
    options: QueryOptions,
    /// The process that connected: a forked child must connect again (the connection's tasks
    /// stayed in the parent).
    pid: u32,
}

/// How to reach and authenticate to the server; see `flightline.connect`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct ConnectArgs {
    uri: String,
    headers: Option<Vec<(String, String)>>,
    token: Option<String>,
    auth_provider: Option<Py<PyAny>>,
    user: Option<String>,
    password: Option<String>,
    oidc_issuer: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<String>,
    oidc_audience: Option<String>,
    oidc_scope: Option<String>,
    oidc_from_env: bool,
    tls_ca_file: Option<String>,
    tls_domain: Option<String>,
    connect_timeout: Option<f64>,
    request_timeout: Option<f64>,
    preserve_dictionary: bool,
}

/// Connects with `args` (a dict of `ConnectArgs`' fields).
#[pyfunction]
pub fn connect(py: Python<'_>, args: ConnectArgs) -> PyResult<Client> {
    let options = QueryOptions::new().preserve_dictionary(args.preserve_dictionary);
    let builder = builder(args)?;
    let inner = wait(py, builder.connect())?.map_err(to_py)?;
    Ok(Client { inner, options, pid: std::process::id() })
}

fn builder(args: ConnectArgs) -> PyResult<ClientBuilder> {
    let oidc = oidc(&args)?;
    if oidc.is_some()
        && (args.token.is_some() || args.auth_provider.is_some() || args.user.is_some())
    {
        return Err(ConfigError::new_err(
            "OIDC and token, auth_provider or user all give credentials: pass one of them",
        ));
    }
    let mut builder = FlightSqlClient::builder(args.uri);
    if let Some(oidc) = oidc {
        builder = builder.token_provider(Arc::new(oidc));
    }
    for (name, value) in args.headers.unwrap_or_default() {
        builder = builder.header(name, value);
    }
    if let Some(token) = args.token {
        builder = builder.bearer_token(token);
    }
    if let Some(provider) = args.auth_provider {
        builder = builder.token_provider(Arc::new(PythonTokenProvider(Arc::new(provider))));
    }
    match (args.user, args.password) {
        (Some(user), Some(password)) => builder = builder.basic_auth(user, password),
        (None, None) => {}
        _ => return Err(ConfigError::new_err("pass user and password together, or neither")),
    }
    if let Some(file) = args.tls_ca_file {
        builder = builder.tls_ca_file(file);
    }
    if let Some(domain) = args.tls_domain {
        builder = builder.tls_domain(domain);
    }
    if let Some(seconds) = args.connect_timeout {
        builder = builder.connect_timeout(seconds_arg(seconds, "connect_timeout")?);
    }
    if let Some(seconds) = args.request_timeout {
        builder = builder.request_timeout(seconds_arg(seconds, "request_timeout")?);
    }
    Ok(builder)
}

/// The OIDC client-credentials provider the `oidc_*` arguments ask for, if any.
fn oidc(args: &ConnectArgs) -> PyResult<Option<OidcClientCredentials>> {
    let mut provider = match (&args.oidc_issuer, &args.oidc_client_id, &args.oidc_client_secret) {
        _ if args.oidc_from_env => OidcClientCredentials::from_env().map_err(to_py)?,
        (Some(issuer), Some(client_id), Some(secret)) => {
            let secret = ClientSecret::Value(secret.clone());
            OidcClientCredentials::new(issuer, client_id, secret).map_err(to_py)?
        }
        (None, None, None) if args.oidc_audience.is_none() && args.oidc_scope.is_none() => {
            return Ok(None);
        }
        _ => {
            return Err(ConfigError::new_err(
                "OIDC needs oidc_issuer, oidc_client_id and oidc_client_secret together (or \
                 oidc_from_env=True for the MICROMEGAS_OIDC_* variables)",
            ));
        }
    };
    if let Some(audience) = &args.oidc_audience {
        provider = provider.audience(audience);
    }
    if let Some(scope) = &args.oidc_scope {
        provider = provider.scope(scope);
    }
    Ok(Some(provider))
}

fn seconds_arg(seconds: f64, name: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| ConfigError::new_err(format!("{name} must be a positive number of seconds")))
}

/// An `auth_provider` object: its `get_token()` is called before every request, as the
/// Micromegas client does, on a blocking thread (it may do I/O).
struct PythonTokenProvider(Arc<Py<PyAny>>);

impl TokenProvider for PythonTokenProvider {
    fn token(&self) -> BoxFuture<'_, flightline_core::Result<String>> {
        let provider = self.0.clone();
        Box::pin(async move {
            let asked = tokio::task::spawn_blocking(move || {
                Python::attach(|py| provider.call_method0(py, "get_token")?.extract::<String>(py))
            })
            .await;
            match asked {
                Ok(Ok(token)) => Ok(token),
                Ok(Err(err)) => Err(Error::Unauthenticated {
                    message: format!("auth_provider.get_token() failed: {err}"),
                }),
                Err(err) => Err(Error::Unauthenticated {
                    message: format!("auth_provider.get_token() did not return: {err}"),
                }),
            }
        })
    }
}

#[pymethods]
impl Client {
    /// The server's URI as given.
    #[getter]
    fn uri(&self) -> &str {
        self.inner.uri()
    }

    /// Runs `sql` and returns every row as a `pyarrow.Table` (the schema kept when no row
    /// matches).
    #[pyo3(signature = (sql, begin=None, end=None))]
    fn query_arrow<'py>(
        &self,
        py: Python<'py>,
        sql: &str,
        begin: Option<&str>,
        end: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client()?;
        let range = time_range(begin, end)?;
        let (schema, batches) = wait(py, async {
            let stream = client.query_stream_with(sql, range, &self.options).await?;
            let schema = stream.schema().cloned();
            let batches: Vec<_> = stream.try_collect().await?;
            Ok::<_, Error>((schema, batches))
        })?
        .map_err(to_py)?;
        let schema = schema
            .or_else(|| batches.first().map(|b| b.schema()))
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        let table = arrow_pyarrow::Table::try_new(batches, schema)
            .map_err(|err| ConfigError::new_err(format!("the server's batches disagree: {err}")))?;
        table.into_pyarrow(py)
    }

    /// Starts `sql` and returns a `BatchStream` of its record batches, read as they arrive.
    #[pyo3(signature = (sql, begin=None, end=None))]
    fn query_stream(
        &self,
        py: Python<'_>,
        sql: &str,
        begin: Option<&str>,
        end: Option<&str>,
    ) -> PyResult<BatchStream> {
        let client = self.client()?;
        let range = time_range(begin, end)?;
        let stream =
            wait(py, client.query_stream_with(sql, range, &self.options))?.map_err(to_py)?;
        BatchStream::new(stream)
    }

    /// The result schema of `sql` as a `pyarrow.Schema`, asked of the server without running
    /// the query.
    fn prepare_schema<'py>(&self, py: Python<'py>, sql: &str) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client()?;
        let prepared = wait(py, client.prepare(sql))?.map_err(to_py)?;
        prepared.dataset_schema.as_ref().to_pyarrow(py)
    }

    /// Column types and estimated sizes of the result of `sql`, without running it.
    fn analyze_schema<'py>(&self, py: Python<'py>, sql: &str) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client()?;
        let prepared = wait(py, client.prepare(sql))?.map_err(to_py)?;
        let analysis = SchemaAnalysis::from_prepared(&prepared, &SizeOptions::default());
        let out = PyDict::new(py);
        out.set_item("column_count", analysis.column_count)?;
        out.set_item("estimated_row_bytes", analysis.estimated_row_bytes)?;
        let columns = analysis
            .columns
            .iter()
            .map(|c| {
                let column = PyDict::new(py);
                column.set_item("name", &c.name)?;
                column.set_item("type", c.data_type.to_string())?;
                column.set_item("nullable", c.nullable)?;
                column.set_item("estimated_bytes", c.estimated_bytes)?;
                column.set_item("temporal", c.is_temporal())?;
                Ok(column)
            })
            .collect::<PyResult<Vec<_>>>()?;
        out.set_item("columns", columns)?;
        Ok(out.into_any())
    }

    /// Runs the built-in validators over `sql` (and over the result schema the server
    /// reports, unless the text alone is refused) and returns the report.
    #[pyo3(signature = (sql, policy="warn", begin=None, end=None))]
    fn validate<'py>(
        &self,
        py: Python<'py>,
        sql: &str,
        policy: &str,
        begin: Option<&str>,
        end: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client()?;
        let policy: Policy = policy.parse().map_err(QueryError::new_err)?;
        let mut ctx = ValidationContext::new(sql);
        ctx.set_time_range(time_range(begin, end)?);
        let pipeline = flightline_plugins::builtin_pipeline(policy);
        let source = SchemaSource::Client(client.clone());
        let report = wait(py, validate_query(&pipeline, ctx, source, &SizeOptions::default()))?
            .map_err(to_py)?;
        let out = PyDict::new(py);
        out.set_item("policy", policy.to_string())?;
        out.set_item("denied", report.is_denied())?;
        out.set_item("findings", to_python(py, &report.findings)?)?;
        Ok(out.into_any())
    }

    /// Runs `sql` through the streaming executor into `processors`; see `flightline.Client.execute`.
    #[pyo3(signature = (sql, processors, begin=None, end=None, progress=None, estimate=false, target_batch_bytes=None))]
    #[allow(clippy::too_many_arguments)]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        sql: &str,
        processors: Vec<Bound<'py, PyAny>>,
        begin: Option<&str>,
        end: Option<&str>,
        progress: Option<Py<PyAny>>,
        estimate: bool,
        target_batch_bytes: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client()?.clone();
        let run = crate::execute::Run {
            sql,
            range: time_range(begin, end)?,
            processors: crate::processor::build_all(&processors)?,
            progress,
            estimate,
            target_batch_bytes,
            options: self.options.clone(),
        };
        crate::execute::execute(py, client, run)
    }
}

impl Client {
    /// The client, unless this is a forked child of the process that connected.
    fn client(&self) -> PyResult<&FlightSqlClient> {
        if self.pid != std::process::id() {
            return Err(ConfigError::new_err(
                "this client was connected before the process forked; call flightline.connect \
                 again in the child",
            ));
        }
        Ok(&self.inner)
    }
}
