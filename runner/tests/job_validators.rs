//! Validators in job files: built-in rules by name (with options and a `severity`), validator
//! plugins pinned as processor plugins are, checked before every run under the job's
//! `validation` policy by `flightline run` and reported by `flightline check`; and the mistakes
//! refused when the file is read.

mod common;

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use common::{RunnerProcess, job_file};
use flightline_core::validate::{Override, Severity};
use flightline_runner::config::{Config, ProcessorKind};
use flightline_runner::{ConfigIssue, RunnerError};
use flightline_server::{RunningServer, ServerBuilder};

const SERVER: &str = "[server]\nuri = \"grpc://127.0.0.1:50051\"\n";

/// An embedded demo server on its own runtime, so the test thread can wait on processes.
struct Server {
    runtime: tokio::runtime::Runtime,
    running: Option<RunningServer>,
}

impl Server {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let running = runtime.block_on(async {
            ServerBuilder::new()
                .demo_rows(2_000)
                .demo_end("2024-06-01T00:00:00Z".parse().unwrap())
                .spawn(([127, 0, 0, 1], 0).into())
                .await
                .unwrap()
        });
        Self { runtime, running: Some(running) }
    }

    fn uri(&self) -> String {
        self.running.as_ref().map(|r| r.uri()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = self.runtime.block_on(running.shutdown());
        }
    }
}

fn check(jobs: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flightline")).arg("check").arg(jobs).output().unwrap()
}

fn run_once(jobs: &Path) -> (Option<i32>, String, String) {
    let (status, stdout, stderr) = RunnerProcess::start(jobs, &["--once"]).finish();
    (status.code(), stdout, stderr)
}

/// The `NAME: last error: ...` line of the run summary.
fn last_error<'a>(stdout: &'a str, job: &str) -> Option<&'a str> {
    stdout.lines().find_map(|l| l.strip_prefix(&format!("{job}: last error: ")))
}

fn csv_rows(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap_or_default().lines().count()
}

#[test]
fn a_denying_plugin_validator_fails_its_job_before_any_output_and_warn_lets_it_run() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let probe = support::probe();
    let sha256 = flightline_core::plugin::sha256_file(&probe).unwrap();
    let validator = format!(
        "validators = [{{ plugin = \"{}\", sha256 = \"{sha256}\", options = {{ deny_table = \
         \"log_entries\" }} }}]",
        probe.display()
    );
    let csv = |name: &str| {
        format!(
            "processors = [{{ name = \"csv_sink\", options = {{ path = \"{}\" }} }}]",
            out.join(name).display()
        )
    };
    let text = format!(
        "[server]\nuri = \"{uri}\"\n[runner]\nstate_dir = \"{state}\"\n\
         [[job]]\nname = \"denied\"\nsql = \"SELECT level, target FROM log_entries\"\n\
         begin = \"2024-05-31T00:00:00Z\"\nend = \"2024-06-01T00:00:00Z\"\nvalidation = \"deny\"\n\
         {validator}\n{denied}\n\
         [[job]]\nname = \"warned\"\nsql = \"SELECT level, target FROM log_entries\"\n\
         begin = \"2024-05-31T00:00:00Z\"\nend = \"2024-06-01T00:00:00Z\"\nvalidation = \"warn\"\n\
         {validator}\n{warned}\n\
         [[job]]\nname = \"windows\"\ntime_range = \"sql\"\n\
         sql = \"SELECT level FROM log_entries WHERE time >= {{begin}} AND time < {{end}}\"\n\
         every = \"6h\"\nbegin = \"2024-05-31T00:00:00Z\"\nend = \"2024-06-01T00:00:00Z\"\n\
         validation = \"deny\"\n{validator}\n{windows}\n\
         [[job]]\nname = \"other_table\"\nsql = \"SELECT name FROM measures\"\n\
         begin = \"2024-05-31T00:00:00Z\"\nend = \"2024-06-01T00:00:00Z\"\nvalidation = \"deny\"\n\
         {validator}\n{other}\n",
        uri = server.uri(),
        state = out.join("state").display(),
        denied = csv("denied.csv"),
        warned = csv("warned.csv"),
        windows = csv("windows-{begin}.csv"),
        other = csv("other.csv"),
    );
    let jobs = job_file(out, &text);

    let checked = check(&jobs);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(
        checked.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for job in ["denied", "windows"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("FAILED  {job}: ")))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains("refused by validation: validator probe ("), "{line}");
        assert!(line.contains("[table_denied] the query reads the table log_entries"), "{line}");
    }
    assert!(stdout.contains("ok      warned"), "{stdout}");
    assert!(stdout.contains("ok      other_table"), "{stdout}");
    assert!(stdout.contains("4 jobs checked, 2 failed"), "{stdout}");

    let (code, stdout, stderr) = run_once(&jobs);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    for job in ["denied", "windows"] {
        let error = last_error(&stdout, job).unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            error.contains(&format!("job \"{job}\": refused by validation: validator probe (")),
            "{error}"
        );
        assert!(
            error.contains("deny [table_denied] the query reads the table log_entries"),
            "{error}"
        );
    }
    assert!(last_error(&stdout, "warned").is_none(), "{stdout}");
    assert!(last_error(&stdout, "other_table").is_none(), "{stdout}");
    // Nothing ran for the refused jobs: no file, no window, no checkpoint.
    assert!(!out.join("denied.csv").exists());
    let windows: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("windows-"))
        .collect();
    assert!(windows.is_empty(), "{windows:?}");
    assert!(!out.join("state/windows.checkpoint.json").exists());
    // `warn` logs the finding and runs; a query the plugin does not object to runs under `deny`.
    assert!(csv_rows(&out.join("warned.csv")) > 1, "{stdout}\n{stderr}");
    assert!(csv_rows(&out.join("other.csv")) > 1, "{stdout}\n{stderr}");
    let warning = stderr.lines().find(|l| l.contains("warned") && l.contains("table_denied"));
    assert!(
        warning.is_some_and(|l| l.contains("the query reads the table log_entries")),
        "{stderr}"
    );
}

#[test]
fn a_builtin_rule_denies_with_a_severity_and_its_options_change_the_outcome() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let job = |name: &str, validators: &str| {
        format!(
            "[[job]]\nname = \"{name}\"\nsql = \"SELECT level FROM log_entries WHERE level <= 2\"\n\
             validation = \"deny\"\n{validators}\n\
             processors = [{{ name = \"csv_sink\", options = {{ path = \"{}\" }} }}]\n",
            out.join(format!("{name}.csv")).display()
        )
    };
    let text = format!(
        "[server]\nuri = \"{}\"\n{}{}{}",
        server.uri(),
        // No `validators`: every built-in rule; `no_time_filter` only warns.
        job("defaults", ""),
        job("strict", "validators = [\"parse\", { name = \"time_filter\", severity = \"deny\" }]"),
        job(
            "level_is_time",
            "validators = [{ name = \"time_filter\", severity = \"deny\", options = { time_columns = [\"level\"] } }]"
        ),
    );
    let jobs = job_file(out, &text);

    let checked = check(&jobs);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{stdout}");
    let strict = stdout
        .lines()
        .find(|l| l.starts_with("FAILED  strict: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(strict.contains("validator time_filter: deny [no_time_filter]"), "{strict}");
    assert!(stdout.contains("ok      defaults"), "{stdout}");
    assert!(stdout.contains("validator time_filter: warn [no_time_filter]"), "{stdout}");
    assert!(stdout.contains("ok      level_is_time"), "{stdout}");

    let (code, stdout, stderr) = run_once(&jobs);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let error = last_error(&stdout, "strict").unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        error.contains(
            "validator time_filter: deny [no_time_filter] no time restriction on log_entries"
        ),
        "{error}"
    );
    assert!(!out.join("strict.csv").exists());
    assert!(csv_rows(&out.join("defaults.csv")) > 1, "{stdout}\n{stderr}");
    assert!(csv_rows(&out.join("level_is_time.csv")) > 1, "{stdout}\n{stderr}");
}

fn parse(text: &str) -> Result<Config, RunnerError> {
    Config::parse(Path::new("jobs.toml"), text, &|_| None)
}

fn job(body: &str) -> String {
    format!("{SERVER}\n[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n{body}")
}

/// The single issue of `text`, which must be on line 7 under `key` and mention `words`.
fn one_issue(text: &str, key: &str, words: &[&str]) -> ConfigIssue {
    let issues = match parse(text) {
        Err(RunnerError::Config(issues)) => issues,
        other => panic!("expected config issues, got {other:?}"),
    };
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let issue = issues.into_iter().next().unwrap();
    let shown = issue.to_string();
    assert_eq!((issue.line, issue.key.as_str()), (7, key), "{shown}");
    for word in words {
        assert!(shown.contains(word), "{word:?} missing from {shown}");
    }
    issue
}

#[test]
fn validators_are_read_as_rules_tables_and_plugins() {
    let text = job(&format!(
        "validators = [\"parse\", {{ name = \"time_filter\", options = {{ time_columns = [\"ts\"] }}, \
         severity = \"deny\" }}, {{ plugin = \"lib.so\", sha256 = \"{}\", severity = \"mute\" }}, \
         {{ plugin = \"unpinned.so\" }}]\n",
        "AB".repeat(32)
    ));
    let config = parse(&text).unwrap();
    let specs = config.jobs[0].validators.clone().unwrap();
    assert_eq!(specs.len(), 4);
    assert!(matches!(&specs[0].kind, ProcessorKind::Builtin(name) if name == "parse"));
    assert_eq!(specs[1].options, serde_json::json!({ "time_columns": ["ts"] }));
    assert_eq!(specs[1].severity, Some(Override::Severity(Severity::Deny)));
    // Pinned under the processors' rule: lowercased when given, optional.
    let pinned = "ab".repeat(32);
    assert!(
        matches!(&specs[2].kind, ProcessorKind::Plugin { sha256: Some(h), .. } if *h == pinned)
    );
    assert_eq!(specs[2].severity, Some(Override::Mute));
    assert!(matches!(&specs[3].kind, ProcessorKind::Plugin { sha256: None, .. }));
    // No key: the built-in rules; an empty list: none.
    assert!(parse(&job("")).unwrap().jobs[0].validators.is_none());
    let empty = parse(&job("validators = []\n")).unwrap();
    assert_eq!(empty.jobs[0].validators.as_ref().map(Vec::len), Some(0));
}

#[test]
fn an_unknown_rule_is_refused_naming_the_job_the_entry_and_the_rules() {
    one_issue(
        &job("validators = [\"parse\", \"read_onyl\"]\n"),
        "job[0].validators[1]",
        &[
            "jobs.toml:7",
            "\"read_onyl\"",
            "job \"j\"",
            "unknown validation rule `read_onyl`",
            "read_only, order_by_limit",
            "{ plugin = ",
        ],
    );
    one_issue(
        &job("validators = [{ name = \"time_filtre\" }]\n"),
        "job[0].validators[0]",
        &["unknown validation rule `time_filtre`", "time_filter"],
    );
}

#[test]
fn bad_rule_options_unknown_keys_and_severities_are_refused() {
    one_issue(
        &job("validators = [{ name = \"select_star\", options = { wide = 3 } }]\n"),
        "job[0].validators[0]",
        &["job \"j\"", "validation rule `select_star`", "unknown field `wide`", "wide_columns"],
    );
    one_issue(
        &job("validators = [{ name = \"parse\", options = { strict = true } }]\n"),
        "job[0].validators[0]",
        &["validation rule `parse`", "unknown field `strict`"],
    );
    one_issue(
        &job("validators = [{ name = \"parse\", options = 3 }]\n"),
        "job[0].validators[0]",
        &["`options` must be a table"],
    );
    one_issue(
        &job("validators = [{ rule = \"parse\" }]\n"),
        "job[0].validators[0].rule",
        &["unknown field `rule`", "name"],
    );
    one_issue(
        &job("validators = [{ name = \"parse\", severity = \"fatal\" }]\n"),
        "job[0].validators[0].severity",
        &["mute, info, warn or deny"],
    );
    one_issue(
        &job("validators = [3]\n"),
        "job[0].validators[0]",
        &["a rule name like \"read_only\""],
    );
}

#[test]
fn a_validator_plugin_is_pinned_under_the_processors_rule() {
    // A malformed pin, a pin on a built-in rule, and both `name` and `plugin`: refused as for
    // processors.
    one_issue(
        &job("validators = [{ plugin = \"x.so\", sha256 = \"abc\" }]\n"),
        "job[0].validators[0].sha256",
        &["64 hex digits", "sha256sum"],
    );
    one_issue(
        &job(&format!("validators = [{{ name = \"parse\", sha256 = \"{}\" }}]\n", "ab".repeat(32))),
        "job[0].validators[0]",
        &["a built-in validator has none"],
    );
    one_issue(
        &job("validators = [{ name = \"parse\", plugin = \"x.so\" }]\n"),
        "job[0].validators[0]",
        &["a validator needs exactly one of `name`"],
    );
    // A plugin that cannot be loaded is refused before any job runs, at its entry.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("libmissing.so");
    let text = job(&format!(
        "validators = [{{ plugin = \"{}\", sha256 = \"{}\" }}]\n",
        missing.display(),
        "ab".repeat(32)
    ));
    let config = parse(&text).unwrap();
    let issues = match flightline_runner::validators::build_all(&config) {
        Err(RunnerError::Config(issues)) => issues,
        other => panic!("expected config issues, got {other:?}"),
    };
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let shown = issues[0].to_string();
    assert_eq!((issues[0].line, issues[0].key.as_str()), (7, "job[0].validators[0]"), "{shown}");
    assert!(shown.contains("job \"j\": validator ") && shown.contains("libmissing.so"), "{shown}");
}
