//! Turning the raw TOML into a [`Config`]: every value checked, every problem collected with
//! its file, line and key.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::TimeRange;
use flightline_core::validate::Policy;
use flightline_plugins::postgres::PgConnection;
use serde::Serialize;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::bounds;
use super::locate::Source;
use super::model::{
    Config, DEFAULT_LEASE_TTL, DEFAULT_MAX_CONCURRENT_QUERIES, DEFAULT_MAX_WINDOWS_PER_TICK,
    DEFAULT_SHUTDOWN_GRACE, JobConfig, ProcessorKind, ProcessorSpec, RangeSpec, RetryPolicy,
    RunnerSettings, Schedule, ValidatorSpec,
};
use super::raw::{
    RawFile, RawJob, RawProcessor, RawRetries, RawRunner, RawValidator, TimeRangeMode,
};
use super::server::ServerConfig;
use crate::error::{ConfigIssue, RunnerError};

/// Checks `text` as if read from `path`, with `env` for `${NAME}`; every problem found is in
/// the error.
pub(super) fn check_text(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, RunnerError> {
    let mut checker = Checker {
        path,
        source: Source::new(text),
        issues: Vec::new(),
        servers_known: true,
        now: Utc::now(),
    };
    let config = checker.check(text, env);
    match (config, checker.issues.is_empty()) {
        (Some(config), true) => Ok(config),
        _ => Err(RunnerError::Config(checker.issues)),
    }
}

/// Collects issues while turning the raw file into a [`Config`].
pub(super) struct Checker<'a> {
    path: &'a Path,
    source: Source<'a>,
    issues: Vec<ConfigIssue>,
    /// False when the sections outside the jobs could not be read: then a job's server
    /// reference cannot be judged, and saying "no such server" would only add noise.
    servers_known: bool,
    /// The clock spans are checked against (`last = "7d"` must start after the era begins).
    now: DateTime<Utc>,
}

impl Checker<'_> {
    fn check(&mut self, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<Config> {
        let mut root = match DeTable::parse(text) {
            Ok(root) => root,
            Err(err) => {
                self.toml_error(&err, false);
                return None;
            }
        };
        let jobs = root.get_mut().remove("job");
        let (raw, sections_ok) =
            match serde::Deserialize::deserialize(toml::de::Deserializer::from(root)) {
                Ok(raw) => (raw, true),
                Err(err) => {
                    self.toml_error(&err, true);
                    (RawFile::default(), false)
                }
            };
        self.servers_known = sections_ok;
        let servers = self.servers(&raw, env);
        let http = self.http(&raw, env);
        let runner = self.runner(&raw);
        let jobs = self.jobs(jobs, &servers);
        Some(Config { path: self.path.to_path_buf(), servers, http, runner, jobs })
    }

    pub(super) fn issue(
        &mut self,
        span: Option<Range<usize>>,
        value: Option<String>,
        message: String,
    ) {
        let (line, key) = match &span {
            Some(span) => (self.source.line(span.start), self.source.key_path(span.start)),
            None => (0, String::new()),
        };
        self.issues.push(ConfigIssue { file: self.path.to_path_buf(), line, key, value, message });
    }

    /// An issue at `span`, showing what is written there unless it may be a secret.
    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let value =
            if self.secret_at(Some(span.clone())) { None } else { self.source.snippet(&span) };
        self.issue(Some(span), value, message.into());
    }

    fn toml_error(&mut self, err: &toml::de::Error, show_value: bool) {
        let message = err.message().trim().to_string();
        let value =
            if show_value { err.span().and_then(|s| self.source.snippet(&s)) } else { None };
        let value = value.filter(|_| !self.secret_at(err.span()));
        self.issue(err.span(), value, message);
    }

    /// Whether the value at `span` may hold a secret, and so is never echoed: headers, and
    /// URLs, where a password may have been written by mistake (the error says to move it).
    fn secret_at(&self, span: Option<Range<usize>>) -> bool {
        span.is_some_and(|s| {
            let key = self.source.key_path(s.start);
            key.contains("headers") || key.ends_with("state") || key.ends_with("url")
        })
    }

    /// Runs `parse` on a spanned string; on failure records the issue and returns `None`.
    pub(super) fn value<T>(
        &mut self,
        spanned: &Spanned<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(spanned.get_ref()) {
            Ok(value) => Some(value),
            Err(message) => {
                self.at(spanned.span(), message);
                None
            }
        }
    }

    pub(super) fn duration(&mut self, spanned: &Option<Spanned<String>>) -> Option<Duration> {
        spanned.as_ref().and_then(|s| self.value(s, parse_duration))
    }

    fn runner(&mut self, raw: &RawFile) -> RunnerSettings {
        let runner = raw.runner.as_ref();
        let max = runner
            .and_then(|r| r.max_concurrent_queries.as_ref())
            .and_then(|m| self.positive(m, "max_concurrent_queries must be at least 1"));
        let grace = runner.and_then(|r| self.duration(&r.shutdown_grace));
        let lease_ttl = runner.and_then(|r| r.lease_ttl.as_ref()).and_then(|ttl| {
            self.value(ttl, |text| {
                parse_duration(text).and_then(|d| {
                    if d >= Duration::from_secs(1) {
                        Ok(d)
                    } else {
                        Err("lease_ttl must be at least 1s: a lease is renewed every third of it"
                            .into())
                    }
                })
            })
        });
        RunnerSettings {
            max_concurrent_queries: max.map_or(DEFAULT_MAX_CONCURRENT_QUERIES, |m| m as usize),
            state_dir: runner
                .and_then(|r| r.state_dir.clone())
                .unwrap_or_else(|| PathBuf::from("flightline-state")),
            state_db: runner.and_then(|r| self.state_db(r)),
            worker: runner
                .and_then(|r| r.worker.as_ref())
                .and_then(|w| self.value(w, worker_name))
                .unwrap_or_else(default_worker),
            lease_ttl: lease_ttl.unwrap_or(DEFAULT_LEASE_TTL),
            shutdown_grace: grace.unwrap_or(DEFAULT_SHUTDOWN_GRACE),
        }
    }

    /// `state = "postgres://..."` with its password settings, checked like a sink's URL.
    fn state_db(&mut self, runner: &RawRunner) -> Option<PgConnection> {
        let Some(url) = runner.state.as_ref() else {
            self.without_state(runner);
            return None;
        };
        if runner.state_dir.is_some() {
            self.at(
                url.span(),
                "give either `state` (a PostgreSQL URL, shared by workers) or `state_dir` (a \
                 local directory), not both",
            );
            return None;
        }
        let connection = PgConnection {
            url: url.get_ref().clone(),
            password_env: runner.state_password_env.clone(),
            password_file: runner.state_password_file.clone(),
            connect_timeout_secs: None,
        };
        // The sink's wording names its own keys; here they are the [runner] ones.
        let in_runner_terms = |message: String| {
            message
                .replace("`url`", "`state`")
                .replace("`password_env`", "`state_password_env`")
                .replace("`password_file`", "`state_password_file`")
        };
        self.value(url, |_| connection.config().map(|_| ()).map_err(in_runner_terms))?;
        Some(connection)
    }

    /// Settings of the shared state given without `state`: refused, since nothing would use
    /// them (a worker that meant to share its jobs would run alone).
    fn without_state(&mut self, runner: &RawRunner) {
        let message = |key: &str| {
            format!(
                "`{key}` applies only to a shared state: add `state = \"postgres://...\"`, or remove it"
            )
        };
        for (key, spanned) in [("worker", &runner.worker), ("lease_ttl", &runner.lease_ttl)] {
            if let Some(value) = spanned {
                self.at(value.span(), message(key));
            }
        }
        let unspanned = [
            ("state_password_env", runner.state_password_env.is_some()),
            ("state_password_file", runner.state_password_file.is_some()),
        ];
        for (key, given) in unspanned {
            if given {
                self.issue(None, None, format!("[runner].{}", message(key)));
            }
        }
    }

    fn positive(&mut self, value: &Spanned<i64>, message: &str) -> Option<u64> {
        match u64::try_from(*value.get_ref()) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                self.at(value.span(), message);
                None
            }
        }
    }

    fn jobs(
        &mut self,
        jobs: Option<Spanned<DeValue<'_>>>,
        servers: &BTreeMap<String, ServerConfig>,
    ) -> Vec<JobConfig> {
        let items = match jobs.map(|j| (j.span(), j.into_inner())) {
            Some((_, DeValue::Array(items))) => items,
            Some((span, _)) => {
                self.at(span, "`job` must be an array of tables: write each job as [[job]]");
                return Vec::new();
            }
            None => {
                self.issue(None, None, "no [[job]] in the file; add at least one".into());
                return Vec::new();
            }
        };
        let mut out: Vec<JobConfig> = Vec::new();
        let mut names = BTreeSet::new();
        for item in items {
            let raw: RawJob =
                match serde::Deserialize::deserialize(toml::de::ValueDeserializer::from(item)) {
                    Ok(raw) => raw,
                    Err(err) => {
                        self.toml_error(&err, true);
                        continue;
                    }
                };
            if !names.insert(raw.name.get_ref().clone()) {
                self.at(raw.name.span(), "another job has this name; job names must be unique");
            }
            if let Some(job) = self.job(raw, servers) {
                out.push(job);
            }
        }
        out
    }

    fn job(&mut self, raw: RawJob, servers: &BTreeMap<String, ServerConfig>) -> Option<JobConfig> {
        let issues_before = self.issues.len();
        let name = self.value(&raw.name, check_job_name);
        let server = self.job_server(&raw, servers);
        let range = self.range(&raw);
        let schedule = self.schedule(&raw);
        let mode = raw
            .time_range
            .or_else(|| server.as_ref().and_then(|s| servers.get(s)).map(|s| s.time_range))
            .unwrap_or_default();
        self.placeholders(
            &raw.sql,
            mode,
            range.is_some_and(|r| r != RangeSpec::None) || schedule.is_some(),
        );
        let retries = self.retries(raw.retries.as_ref());
        let target = raw.target_batch_bytes.as_ref().and_then(|t| {
            self.positive(t, "target_batch_bytes must be a positive number of bytes")
        });
        let processors = self.processors(&raw.processors);
        let validators = raw.validators.as_ref().map(|v| self.validators(raw.name.get_ref(), v));
        if schedule.is_some() {
            self.sinks_per_window(&raw.processors);
        }
        if let (Some(RangeSpec::Absolute { end: None, .. }), None) = (range, schedule) {
            let span = raw.begin.as_ref().map(Spanned::span);
            self.issue(span, None, "a job without `every` needs `end` beside `begin`".into());
        }
        if self.issues.len() > issues_before {
            return None;
        }
        let mut job = JobConfig {
            name: name?,
            line: self.source.line(raw.name.span().start),
            server: server?,
            sql: raw.sql.into_inner(),
            range: range?,
            schedule,
            time_range: mode,
            validation: raw.validation.unwrap_or(Policy::Warn),
            estimate: raw.estimate,
            target_batch_bytes: target.map(|t| t as usize),
            retries: retries?,
            processors,
            validators,
            config_hash: String::new(),
        };
        job.config_hash = config_hash(&job);
        Some(job)
    }

    fn job_server(
        &mut self,
        raw: &RawJob,
        servers: &BTreeMap<String, ServerConfig>,
    ) -> Option<String> {
        if !self.servers_known {
            return Some(raw.server.as_ref().map_or_else(String::new, |s| s.get_ref().clone()));
        }
        match &raw.server {
            Some(name) if servers.contains_key(name.get_ref()) => Some(name.get_ref().clone()),
            Some(name) => {
                let known: Vec<&str> = servers.keys().map(String::as_str).collect();
                self.at(name.span(), format!("no such server; defined: {}", list_or_none(&known)));
                None
            }
            None if servers.len() == 1 => servers.keys().next().cloned(),
            None if servers.is_empty() => {
                self.at(raw.name.span(), "no server to query: add [server] with a uri");
                None
            }
            None => {
                self.at(
                    raw.name.span(),
                    "several servers are defined: say which with `server = \"NAME\"`",
                );
                None
            }
        }
    }

    fn range(&mut self, raw: &RawJob) -> Option<RangeSpec> {
        let instant = |s: &str| {
            flightline_core::time::parse_instant(s)
                .map_err(|e| e.to_string())
                .and_then(bounds::check_instant)
        };
        let now = self.now;
        match (&raw.last, &raw.begin, &raw.end) {
            (None, None, None) => Some(RangeSpec::None),
            (Some(last), None, None) => self
                .value(last, |s| {
                    flightline_core::time::parse_span(s)
                        .map_err(|e| e.to_string())
                        .and_then(|span| bounds::check_span(span, now))
                })
                .map(RangeSpec::Last),
            (None, Some(begin), end) => {
                let b = self.value(begin, instant);
                let e = end.as_ref().map(|e| self.value(e, instant));
                let (b, e) = (b?, e.map_or(Some(None), |e| e.map(Some))?);
                if let Some(end_at) = e
                    && TimeRange::new(b, end_at).is_err()
                {
                    let span = end.as_ref().map(Spanned::span);
                    self.issue(span, None, "`end` must be after `begin`".into());
                    return None;
                }
                Some(RangeSpec::Absolute { begin: b, end: e })
            }
            (None, None, Some(end)) => {
                self.at(end.span(), "`end` needs `begin`");
                None
            }
            (Some(last), _, _) => {
                self.at(last.span(), "give either `last` or `begin`/`end`, not both");
                None
            }
        }
    }

    fn schedule(&mut self, raw: &RawJob) -> Option<Schedule> {
        let Some(every) = &raw.every else {
            for key in [&raw.window, &raw.lag].into_iter().flatten() {
                self.at(key.span(), "only a scheduled job has windows: add `every = \"1m\"`");
            }
            if let Some(cap) = &raw.max_windows_per_tick {
                self.at(cap.span(), "only a scheduled job has windows: add `every = \"1m\"`");
            }
            return None;
        };
        let now = self.now;
        // Each span is added to or subtracted from instants: it must keep them in the era.
        let bounded = move |duration: Duration| {
            let chrono = chrono::Duration::from_std(duration).map_err(|e| e.to_string())?;
            bounds::check_span(chrono, now).map(|_| duration)
        };
        let every_d = self.value(every, |s| parse_duration(s).and_then(bounded))?;
        let window = match &raw.window {
            Some(w) => self.value(w, |s| parse_duration(s).and_then(bounded))?,
            None => every_d,
        };
        let lag = match &raw.lag {
            Some(l) => self.value(l, |s| {
                let lag = if s.trim() == "0" { Ok(Duration::ZERO) } else { parse_duration(s) };
                lag.and_then(bounded)
            })?,
            None => Duration::ZERO,
        };
        let cap = match &raw.max_windows_per_tick {
            Some(c) => self.positive(c, "max_windows_per_tick must be at least 1")? as u32,
            None => DEFAULT_MAX_WINDOWS_PER_TICK,
        };
        let chrono_of = |d: Duration| chrono::Duration::from_std(d).ok();
        let (Some(window), Some(lag)) = (chrono_of(window), chrono_of(lag)) else {
            self.at(every.span(), "the window or lag is too long");
            return None;
        };
        Some(Schedule { every: every_d, window, lag, max_windows_per_tick: cap })
    }

    fn placeholders(&mut self, sql: &Spanned<String>, mode: TimeRangeMode, has_range: bool) {
        let text = sql.get_ref();
        let has = |p: &str| crate::sql_time::uses(text, p);
        if mode.uses_sql() {
            if !has("{begin}") || !has("{end}") {
                self.at(
                    sql.span(),
                    "time_range = \"sql\"/\"both\" needs {begin} and {end} in the SQL, e.g. \
                     WHERE time >= {begin} AND time < {end}",
                );
            } else if !has_range {
                self.at(sql.span(), "the SQL has {begin}/{end} but the job has no time range: add `last`, `begin`/`end` or `every`");
            }
        } else if has("{begin}") || has("{end}") {
            self.at(
                sql.span(),
                "{begin}/{end} are only replaced with time_range = \"sql\" or \"both\" (on the job \
                 or its server)",
            );
        }
    }

    fn retries(&mut self, raw: Option<&RawRetries>) -> Option<RetryPolicy> {
        let mut policy = RetryPolicy::default();
        let Some(raw) = raw else { return Some(policy) };
        if let Some(max) = &raw.max {
            match u32::try_from(*max.get_ref()) {
                Ok(m) => policy.max = m,
                Err(_) => {
                    self.at(max.span(), "retries.max must be 0 or more");
                    return None;
                }
            }
        }
        if raw.initial_backoff.is_some() {
            policy.initial_backoff = self.duration(&raw.initial_backoff)?;
        }
        if raw.max_backoff.is_some() {
            policy.max_backoff = self.duration(&raw.max_backoff)?;
        }
        Some(policy)
    }

    /// A scheduled job writes one file per window: a sink path without `{begin}` or `{end}`
    /// would replace the previous window's file every window (or, without `overwrite`, fail
    /// every window after the first).
    fn sinks_per_window(&mut self, raw: &[Spanned<RawProcessor>]) {
        for entry in raw {
            let (Some(name), Some(options)) = (&entry.get_ref().name, &entry.get_ref().options)
            else {
                continue;
            };
            if flightline_plugins::processors::sink_path(name, options)
                .is_some_and(|path| !path.is_per_window())
            {
                self.at(
                    entry.span(),
                    format!(
                        "`{name}` in a scheduled job: `options.path` has no {{begin}} or {{end}}, \
                         so every window would replace the previous window's file (or fail \
                         without `overwrite`); name the file after its window, e.g. \
                         path = \"out/{{begin}}.parquet\""
                    ),
                );
            }
        }
    }

    fn processors(&mut self, raw: &[Spanned<RawProcessor>]) -> Vec<ProcessorSpec> {
        let mut out = Vec::new();
        for entry in raw {
            let span = entry.span();
            let p = entry.get_ref();
            let options = p.options.clone().unwrap_or_else(|| serde_json::json!({}));
            if !options.is_object() {
                self.at(
                    span.clone(),
                    "`options` must be a table, e.g. options = { by = \"level\" }",
                );
                continue;
            }
            let what = "processor";
            let Some(kind) = self.kind(span, what, &p.name, &p.plugin, &p.sha256) else {
                continue;
            };
            out.push(ProcessorSpec { kind, options, line: self.source.line(entry.span().start) });
        }
        out
    }
}

impl Checker<'_> {
    /// `name` (built in) or `plugin` with an optional `sha256` pin: how processors and
    /// validators (`what`) are written alike.
    fn kind(
        &mut self,
        span: Range<usize>,
        what: &str,
        name: &Option<String>,
        plugin: &Option<PathBuf>,
        sha256: &Option<Spanned<String>>,
    ) -> Option<ProcessorKind> {
        match (name, plugin) {
            (Some(name), None) => {
                if sha256.is_some() {
                    self.at(
                        span,
                        format!("`sha256` pins a plugin file; a built-in {what} has none"),
                    );
                    return None;
                }
                Some(ProcessorKind::Builtin(name.clone()))
            }
            (None, Some(path)) => {
                let sha256 = match sha256 {
                    Some(h) => Some(self.value(h, check_sha256)?),
                    None => None,
                };
                Some(ProcessorKind::Plugin { path: path.clone(), sha256 })
            }
            _ => {
                self.at(
                    span,
                    format!(
                        "a {what} needs exactly one of `name` (built in) or `plugin` (a library \
                         path)"
                    ),
                );
                None
            }
        }
    }

    /// The `validators` of job `job`: built-in rules are built here, so that an unknown name
    /// or a bad option is reported with the file's other mistakes; plugins are loaded later,
    /// once, before any job runs.
    fn validators(&mut self, job: &str, raw: &[Spanned<RawValidator>]) -> Vec<ValidatorSpec> {
        let mut out = Vec::new();
        for entry in raw {
            let span = entry.span();
            let (kind, options, severity) = match entry.get_ref() {
                RawValidator::Rule(name) => {
                    (ProcessorKind::Builtin(name.clone()), serde_json::json!({}), None)
                }
                RawValidator::Entry(e) => {
                    let options = e.options.clone().unwrap_or_else(|| serde_json::json!({}));
                    if !options.is_object() {
                        let example = "options = { time_columns = [\"ts\"] }";
                        self.at(span, format!("`options` must be a table, e.g. {example}"));
                        continue;
                    }
                    let kind = self.kind(span.clone(), "validator", &e.name, &e.plugin, &e.sha256);
                    let Some(kind) = kind else { continue };
                    (kind, options, e.severity)
                }
            };
            if let ProcessorKind::Builtin(rule) = &kind
                && let Err(err) =
                    flightline_plugins::validators::build_validator(rule, options.clone())
            {
                self.at(span, format!("job {job:?}: {err}"));
                continue;
            }
            out.push(ValidatorSpec { kind, options, severity, line: self.source.line(span.start) });
        }
        out
    }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() { "none".to_string() } else { items.join(", ") }
}

pub(super) fn check_uri(uri: &str) -> Result<String, String> {
    const SCHEMES: [&str; 4] = ["grpc://", "grpc+tls://", "http://", "https://"];
    if SCHEMES.iter().any(|s| uri.starts_with(s) && uri.len() > s.len()) {
        Ok(uri.to_string())
    } else {
        Err("not a server URI; write grpc://HOST:PORT (or grpc+tls://, http://, https://)".into())
    }
}

fn check_job_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(name.to_string())
    } else {
        Err("a job name is 1 to 64 letters, digits, `_`, `-` or `.` (it names the checkpoint \
             file and the metric label), not starting with `.`"
            .into())
    }
}

fn check_sha256(hash: &str) -> Result<String, String> {
    if hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hash.to_ascii_lowercase())
    } else {
        Err("not a SHA-256: expected 64 hex digits (`sha256sum FILE`)".into())
    }
}

/// `250ms`, `30s`, `15m`, `2h`, `7d`, `1w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Some(ms) = trimmed.strip_suffix("ms") {
        return match ms.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
            _ => Err("not a duration; write it like 250ms, 30s, 15m, 2h or 7d".into()),
        };
    }
    let span = flightline_core::time::parse_span(trimmed)
        .map_err(|_| "not a duration; write it like 250ms, 30s, 15m, 2h or 7d".to_string())?;
    span.to_std().map_err(|_| "not a duration; write it like 250ms, 30s, 15m, 2h or 7d".into())
}

/// What decides a job's output: a checkpoint is only valid for the same values. The schedule's
/// `every`, `lag`, retries and display settings are left out: changing them does not change
/// which rows land in which window.
fn config_hash(job: &JobConfig) -> String {
    #[derive(Serialize)]
    struct Identity<'a> {
        sql: &'a str,
        server: &'a str,
        window_seconds: Option<i64>,
        begin: Option<String>,
        time_range: TimeRangeMode,
        processors: &'a [ProcessorSpec],
    }
    let begin = match job.range {
        RangeSpec::Absolute { begin, .. } => Some(begin.to_rfc3339()),
        _ => None,
    };
    let identity = Identity {
        sql: &job.sql,
        server: &job.server,
        window_seconds: job.schedule.map(|s| s.window.num_seconds()),
        begin,
        time_range: job.time_range,
        processors: &job.processors,
    };
    let bytes = serde_json::to_vec(&identity).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// A worker's name: what leases, logs and the `worker` label show.
fn worker_name(name: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err("a worker name is 1 to 64 letters, digits, `_`, `-` or `.`".into())
    }
}

/// The host name, the default worker name (`worker` where the host has none usable).
fn default_worker() -> String {
    whoami::hostname()
        .ok()
        .and_then(|host| worker_name(&host).ok())
        .unwrap_or_else(|| "worker".to_string())
}
