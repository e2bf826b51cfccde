//! The file as serde sees it: every section and key, spans kept where a later check needs a
//! line number. Nothing here is validated beyond types and unknown keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use flightline_core::validate::{Override, Policy};
use serde::Deserialize;
use toml::Spanned;

/// Everything but the `[[job]]` array, which is read job by job so that every bad job is
/// reported, not only the first.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub server: Option<Spanned<RawServer>>,
    #[serde(default)]
    pub servers: BTreeMap<String, Spanned<RawServer>>,
    pub http: Option<Spanned<RawHttp>>,
    /// The old name of `[http]`, still read.
    pub metrics: Option<Spanned<RawHttp>>,
    pub runner: Option<RawRunner>,
}

/// `[server]` or `[servers.NAME]`: the keys mirror the command line's connection flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub uri: Spanned<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    pub time_range: Option<TimeRangeMode>,
    /// Refused: a token is named by where it is, never written in the file.
    pub token: Option<Spanned<toml::Value>>,
    pub token_env: Option<Spanned<String>>,
    pub token_file: Option<Spanned<PathBuf>>,
    pub user: Option<Spanned<String>>,
    /// Refused, like `token`.
    pub password: Option<Spanned<toml::Value>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    /// `"env"`: OIDC client credentials from the MICROMEGAS_OIDC_* variables.
    pub oidc: Option<Spanned<String>>,
    pub oidc_issuer: Option<Spanned<String>>,
    pub oidc_client_id: Option<Spanned<String>>,
    /// Refused, like `token`.
    pub oidc_client_secret: Option<Spanned<toml::Value>>,
    pub oidc_client_secret_env: Option<Spanned<String>>,
    pub oidc_client_secret_file: Option<Spanned<PathBuf>>,
    pub oidc_audience: Option<Spanned<String>>,
    pub oidc_scope: Option<Spanned<String>>,
    #[serde(default)]
    pub cookies: bool,
    pub tls_ca: Option<PathBuf>,
    pub tls_domain: Option<String>,
    #[serde(default)]
    pub allow_insecure_locations: bool,
    #[serde(default)]
    pub credential_hosts: Vec<String>,
    pub connect_timeout: Option<Spanned<String>>,
    pub request_timeout: Option<Spanned<String>>,
}

/// `[http]` (or `[metrics]`, its old name).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub listen: Spanned<String>,
    /// Refused: a token is named by where it is, never written in the file.
    pub token: Option<Spanned<toml::Value>>,
    pub token_env: Option<Spanned<String>>,
    pub token_file: Option<Spanned<PathBuf>>,
}

/// `[runner]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRunner {
    pub max_concurrent_queries: Option<Spanned<i64>>,
    pub state_dir: Option<PathBuf>,
    pub state: Option<Spanned<String>>,
    pub state_password_env: Option<String>,
    pub state_password_file: Option<PathBuf>,
    pub worker: Option<Spanned<String>>,
    pub lease_ttl: Option<Spanned<String>>,
    pub shutdown_grace: Option<Spanned<String>>,
}

/// One `[[job]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJob {
    pub name: Spanned<String>,
    pub server: Option<Spanned<String>>,
    pub sql: Spanned<String>,
    pub last: Option<Spanned<String>>,
    pub begin: Option<Spanned<String>>,
    pub end: Option<Spanned<String>>,
    pub every: Option<Spanned<String>>,
    pub window: Option<Spanned<String>>,
    pub lag: Option<Spanned<String>>,
    pub max_windows_per_tick: Option<Spanned<i64>>,
    pub time_range: Option<TimeRangeMode>,
    pub validation: Option<Policy>,
    #[serde(default)]
    pub estimate: bool,
    pub target_batch_bytes: Option<Spanned<i64>>,
    pub retries: Option<RawRetries>,
    #[serde(default)]
    pub processors: Vec<Spanned<RawProcessor>>,
    pub validators: Option<Vec<Spanned<RawValidator>>>,
}

/// `retries = { max = 3, initial_backoff = "200ms", max_backoff = "10s" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetries {
    pub max: Option<Spanned<i64>>,
    pub initial_backoff: Option<Spanned<String>>,
    pub max_backoff: Option<Spanned<String>>,
}

/// `{ name = "count_by", options = {...} }` or `{ plugin = "lib.so", sha256 = "...", options = {...} }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcessor {
    pub name: Option<String>,
    pub plugin: Option<PathBuf>,
    pub sha256: Option<Spanned<String>>,
    #[serde(default)]
    pub options: Option<serde_json::Value>,
}

/// A `validators` entry: `"read_only"`, `{ name = "time_filter", options = {...}, severity =
/// "deny" }` or `{ plugin = "lib.so", sha256 = "...", options = {...} }`.
#[derive(Debug)]
pub(crate) enum RawValidator {
    /// A built-in rule by name, default options.
    Rule(String),
    /// A table, as a processor entry is written.
    Entry(RawValidatorEntry),
}

/// The table form of a `validators` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawValidatorEntry {
    pub name: Option<String>,
    pub plugin: Option<PathBuf>,
    pub sha256: Option<Spanned<String>>,
    #[serde(default)]
    pub options: Option<serde_json::Value>,
    pub severity: Option<Override>,
}

impl<'de> Deserialize<'de> for RawValidator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawValidatorVisitor)
    }
}

/// A string or a table; the table goes through `RawValidatorEntry`'s derived impl, so unknown
/// keys are named as they are for processors.
struct RawValidatorVisitor;

impl<'de> serde::de::Visitor<'de> for RawValidatorVisitor {
    type Value = RawValidator;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "a rule name like \"read_only\", or a table like { name = \"time_filter\", options = \
             { ... } } or { plugin = \"path/lib.so\", sha256 = \"...\" }",
        )
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<RawValidator, E> {
        Ok(RawValidator::Rule(name.to_string()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawValidator, A::Error> {
        let entry =
            RawValidatorEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(RawValidator::Entry(entry))
    }
}

/// How a job's time range reaches the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeRangeMode {
    /// The Micromegas headers `query_range_begin` / `query_range_end` (servers that read them).
    #[default]
    Headers,
    /// `{begin}` / `{end}` in the SQL, replaced by timestamp literals (any Flight SQL server).
    Sql,
    /// Both: the headers and the placeholders.
    Both,
}

impl TimeRangeMode {
    /// True when the SQL's placeholders are replaced.
    pub fn uses_sql(self) -> bool {
        matches!(self, TimeRangeMode::Sql | TimeRangeMode::Both)
    }

    /// True when the headers are sent.
    pub fn uses_headers(self) -> bool {
        matches!(self, TimeRangeMode::Headers | TimeRangeMode::Both)
    }
}
