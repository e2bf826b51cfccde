//! Every kind of bad job file gives a message naming the file, line, key and value.

use std::path::Path;

use flightline_runner::config::{Config, ProcessorKind, RangeSpec, TimeRangeMode};
use flightline_runner::{ConfigIssue, RunnerError};

const SERVER: &str = "[server]\nuri = \"grpc://127.0.0.1:50051\"\n";

fn env(name: &str) -> Option<String> {
    (name == "FLIGHTLINE_TEST_TOKEN").then(|| "t0ken-value".to_string())
}

fn issues(text: &str) -> Vec<ConfigIssue> {
    match Config::parse(Path::new("jobs.toml"), text, &env) {
        Err(RunnerError::Config(issues)) => issues,
        Err(other) => panic!("expected config issues, got {other}"),
        Ok(config) => panic!("expected config issues, got {config:?}"),
    }
}

/// The single issue of `text`, which must be on `line` under `key` and mention `words`.
fn one_issue(text: &str, line: usize, key: &str, words: &[&str]) -> ConfigIssue {
    let found = issues(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    let issue = found.into_iter().next().unwrap();
    let shown = issue.to_string();
    assert!(shown.starts_with("jobs.toml:"), "{shown}");
    assert_eq!(issue.line, line, "{shown}");
    assert_eq!(issue.key, key, "{shown}");
    for word in words {
        assert!(shown.contains(word), "{word:?} missing from {shown}");
    }
    issue
}

fn job(body: &str) -> String {
    format!("{SERVER}\n[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n{body}")
}

#[test]
fn a_good_file_loads() {
    let text = format!(
        "{SERVER}headers = {{ authorization = \"Bearer ${{FLIGHTLINE_TEST_TOKEN}}\" }}\n\
         [metrics]\nlisten = \"127.0.0.1:9464\"\n[runner]\nmax_concurrent_queries = 2\n\
         [[job]]\nname = \"errors\"\nsql = \"SELECT 1\"\nlast = \"7d\"\n\
         processors = [{{ name = \"count_by\", options = {{ by = \"level\" }} }}]\n\
         [[job]]\nname = \"windows\"\nsql = \"SELECT * FROM t WHERE time >= {{begin}} AND time < {{end}}\"\n\
         time_range = \"sql\"\nevery = \"1m\"\nlag = \"30s\"\nretries = {{ max = 5, initial_backoff = \"100ms\" }}\n\
         processors = [{{ plugin = \"lib.so\", sha256 = \"{}\" }}]\n",
        "ab".repeat(32)
    );
    let config = Config::parse(Path::new("jobs.toml"), &text, &env).unwrap();
    assert_eq!(config.jobs.len(), 2);
    assert_eq!(config.servers["default"].settings.headers[0].1, "Bearer t0ken-value");
    assert!(!format!("{config:?}").contains("t0ken-value"), "Debug leaks the header");
    assert_eq!(config.runner.max_concurrent_queries, 2);
    assert!(matches!(config.jobs[0].range, RangeSpec::Last(_)));
    assert_eq!(config.jobs[1].time_range, TimeRangeMode::Sql);
    assert_eq!(config.jobs[1].retries.max, 5);
    let schedule = config.jobs[1].schedule.unwrap();
    assert_eq!(schedule.window, chrono::Duration::minutes(1));
    assert!(matches!(config.jobs[1].processors[0].kind, ProcessorKind::Plugin { .. }));
    assert_ne!(config.jobs[0].config_hash, config.jobs[1].config_hash);
}

#[test]
fn toml_syntax_error() {
    one_issue(&job("every = \"1m\n"), 7, "job[0].every", &["jobs.toml:7", "string"]);
}

#[test]
fn unknown_top_level_section() {
    one_issue(
        &format!("{SERVER}[metric]\nlisten = \"x\"\n[[job]]\nname=\"j\"\nsql=\"SELECT 1\"\n"),
        3,
        "metric",
        &["unknown field `metric`"],
    );
}

#[test]
fn unknown_job_key() {
    one_issue(&job("evry = \"1m\"\n"), 7, "job[0].evry", &["unknown field `evry`", "every"]);
}

#[test]
fn wrong_type() {
    one_issue(&job("estimate = \"yes\"\n"), 7, "job[0].estimate", &["invalid type", "\"yes\""]);
}

#[test]
fn missing_sql() {
    let text = format!("{SERVER}[[job]]\nname = \"j\"\n");
    let found = issues(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].to_string().contains("missing field `sql`"), "{}", found[0]);
    assert_eq!(found[0].line, 3, "the [[job]] header");
}

#[test]
fn bad_duration() {
    one_issue(&job("every = \"1x\"\n"), 7, "job[0].every", &["= \"1x\"", "not a duration", "30s"]);
}

#[test]
fn bad_instant_and_reversed_range() {
    one_issue(
        &job("begin = \"yesterday\"\nend = \"2024-01-01T00:00:00Z\"\n"),
        7,
        "job[0].begin",
        &["yesterday", "RFC 3339"],
    );
    one_issue(
        &job("begin = \"2024-01-02T00:00:00Z\"\nend = \"2024-01-01T00:00:00Z\"\n"),
        8,
        "job[0].end",
        &["after `begin`"],
    );
}

#[test]
fn spans_and_instants_beyond_the_nanosecond_era_are_refused_not_a_panic_or_no_range() {
    // One-shot and scheduled: the span once panicked a schedule and widened a one-shot query.
    for schedule in ["", "every = \"1m\"\n"] {
        let text = job(&format!("{schedule}last = \"999999999d\"\n"));
        let line = if schedule.is_empty() { 7 } else { 8 };
        one_issue(&text, line, "job[0].last", &["= \"999999999d\"", "too long", "1677-09-21"]);
    }
    one_issue(&job("last = \"20000w\"\n"), 7, "job[0].last", &["too long"]);
    for key in ["window", "lag"] {
        let text = job(&format!("every = \"1m\"\n{key} = \"999999999d\"\n"));
        one_issue(&text, 8, &format!("job[0].{key}"), &["too long", "days"]);
    }
    one_issue(&job("every = \"99999999w\"\n"), 7, "job[0].every", &["too long"]);
    let early = "begin = \"1600-01-01T00:00:00Z\"\nend = \"2024-01-01T00:00:00Z\"\n";
    one_issue(&job(early), 7, "job[0].begin", &["1677-09-21 to 2262-04-11"]);
    let late = "begin = \"2024-01-01T00:00:00Z\"\nend = \"9999-01-01T00:00:00Z\"\n";
    one_issue(&job(late), 8, "job[0].end", &["1677-09-21 to 2262-04-11"]);
    // Long but representable spans stay accepted.
    let fine = job("every = \"1d\"\nwindow = \"52w\"\nlag = \"1w\"\nlast = \"100w\"\n");
    assert!(Config::parse(Path::new("jobs.toml"), &fine, &env).is_ok());
}

#[test]
fn last_and_begin_together() {
    one_issue(
        &job("last = \"1d\"\nbegin = \"2024-01-01T00:00:00Z\"\n"),
        7,
        "job[0].last",
        &["not both"],
    );
}

#[test]
fn unknown_server() {
    one_issue(&job("server = \"prod\"\n"), 7, "job[0].server", &["no such server", "default"]);
}

#[test]
fn several_servers_and_no_choice() {
    let text = "[servers.a]\nuri = \"grpc://a:1\"\n[servers.b]\nuri = \"grpc://b:1\"\n\
                [[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n";
    one_issue(text, 6, "job[0].name", &["several servers", "server = "]);
}

#[test]
fn bad_uri() {
    let text = "[server]\nuri = \"localhost:50051\"\n[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n";
    one_issue(text, 2, "server.uri", &["localhost:50051", "grpc://HOST:PORT"]);
}

#[test]
fn undefined_environment_variable_without_leaking_values() {
    let text = format!(
        "{SERVER}headers = {{ authorization = \"Bearer ${{NOT_SET_ANYWHERE}}\" }}\n\
         [[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n"
    );
    let issue =
        one_issue(&text, 3, "server.headers.authorization", &["NOT_SET_ANYWHERE is not set"]);
    assert_eq!(issue.value, None);
}

#[test]
fn bad_time_range_mode() {
    one_issue(
        &job("time_range = \"query\"\n"),
        7,
        "job[0].time_range",
        &["unknown variant `query`", "sql"],
    );
}

#[test]
fn sql_mode_without_placeholders() {
    one_issue(
        &job("time_range = \"sql\"\nlast = \"1h\"\n"),
        6,
        "job[0].sql",
        &["{begin} and {end}"],
    );
}

#[test]
fn placeholders_without_sql_mode() {
    let text = format!(
        "{SERVER}[[job]]\nname = \"j\"\nsql = \"SELECT * FROM t WHERE time >= {{begin}}\"\n"
    );
    one_issue(&text, 5, "job[0].sql", &["only replaced with time_range"]);
}

#[test]
fn window_without_every() {
    one_issue(&job("window = \"1m\"\n"), 7, "job[0].window", &["add `every"]);
}

#[test]
fn processor_with_both_name_and_plugin() {
    one_issue(
        &job("processors = [{ name = \"print\", plugin = \"x.so\" }]\n"),
        7,
        "job[0].processors[0]",
        &["exactly one of `name`"],
    );
}

#[test]
fn processor_unknown_key_and_bad_hash() {
    one_issue(
        &job("processors = [{ name = \"print\", option = {} }]\n"),
        7,
        "job[0].processors[0].option",
        &["unknown field `option`"],
    );
    one_issue(
        &job("processors = [{ plugin = \"x.so\", sha256 = \"abc\" }]\n"),
        7,
        "job[0].processors[0].sha256",
        &["64 hex digits"],
    );
}

#[test]
fn bad_job_name_and_duplicates() {
    one_issue(
        &format!("{SERVER}[[job]]\nname = \"../etc\"\nsql = \"SELECT 1\"\n"),
        4,
        "job[0].name",
        &["../etc", "letters, digits"],
    );
    let text = format!(
        "{SERVER}[[job]]\nname = \"a\"\nsql = \"SELECT 1\"\n[[job]]\nname = \"a\"\nsql = \"SELECT 2\"\n"
    );
    one_issue(&text, 7, "job[1].name", &["unique"]);
}

#[test]
fn bad_limits_and_listen_address() {
    one_issue(
        &format!(
            "{SERVER}[runner]\nmax_concurrent_queries = 0\n[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n"
        ),
        4,
        "runner.max_concurrent_queries",
        &["at least 1"],
    );
    one_issue(
        &format!(
            "{SERVER}[metrics]\nlisten = \"everywhere\"\n[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n"
        ),
        4,
        "metrics.listen",
        &["everywhere", "127.0.0.1:9464"],
    );
}

#[test]
fn no_jobs() {
    let found = issues(SERVER);
    assert_eq!(found.len(), 1);
    assert!(found[0].to_string().contains("no [[job]]"), "{}", found[0]);
}

#[test]
fn every_bad_job_is_reported_not_only_the_first() {
    let text = format!(
        "{SERVER}[[job]]\nname = \"a\"\nsql = \"SELECT 1\"\nevery = \"soon\"\n\
         [[job]]\nname = \"b\"\nsql = \"SELECT 1\"\nbogus = 1\n\
         [[job]]\nname = \"c\"\nsql = \"SELECT 1\"\n\
         [[job]]\nname = \"d\"\nsql = \"SELECT 1\"\nlast = \"7 days\"\n"
    );
    let found = issues(&text);
    let lines: Vec<usize> = found.iter().map(|i| i.line).collect();
    assert_eq!(lines, vec![6, 10, 17], "{found:#?}");
    let all = RunnerError::Config(found).to_string();
    assert!(all.starts_with("3 problems in the job file:"), "{all}");
}

#[test]
fn a_scheduled_sink_without_a_window_placeholder() {
    let sink = |path: &str| {
        job(&format!(
            "every = \"1m\"\nprocessors = [\n  {{ name = \"print\" }},\n  \
             {{ name = \"csv_sink\", options = {{ path = \"{path}\", overwrite = true }} }},\n]\n"
        ))
    };
    one_issue(
        &sink("out/all.csv"),
        10,
        "job[0].processors[1]",
        &["csv_sink", "{begin}", "replace the previous window's file"],
    );
    for per_window in ["out/{begin}.csv", "out/{job}-{end}.csv"] {
        let config = Config::parse(Path::new("jobs.toml"), &sink(per_window), &env).unwrap();
        assert_eq!(config.jobs[0].processors.len(), 2);
    }
    // A one-shot job writes one file: no window to tell apart.
    let once =
        job("processors = [{ name = \"csv_sink\", options = { path = \"out/all.csv\" } }]\n");
    Config::parse(Path::new("jobs.toml"), &once, &env).unwrap();
}

#[test]
fn a_shared_state_is_checked_and_a_password_in_its_url_never_shown() {
    let runner = |body: &str| {
        format!("{SERVER}[runner]\n{body}\n[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n")
    };
    let config = Config::parse(
        Path::new("jobs.toml"),
        &runner("state = \"postgres://etl@db:5432/x?sslmode=verify-full\"\nworker = \"w-1\"\nlease_ttl = \"5s\""),
        &env,
    )
    .unwrap();
    let state = config.runner.state_db.as_ref().unwrap();
    assert_eq!(state.describe(), "etl@db:5432/x");
    assert_eq!((config.runner.worker.as_str(), config.runner.lease_ttl.as_secs()), ("w-1", 5));

    let issue = one_issue(
        &runner("state = \"postgres://etl:hunter2@db/x\""),
        4,
        "runner.state",
        &["`state` holds a password", "state_password_env"],
    );
    assert!(!issue.to_string().contains("hunter2"), "{issue}");
    one_issue(
        &runner("state = \"postgres://etl@db/x\"\nstate_dir = \"s\""),
        4,
        "runner.state",
        &["not both"],
    );
    one_issue(
        &runner("state = \"postgres://etl@db/x\"\nlease_ttl = \"500ms\""),
        5,
        "runner.lease_ttl",
        &["at least 1s"],
    );
    one_issue(
        &runner("state = \"postgres://etl@db/x\"\nworker = \"a b\""),
        5,
        "runner.worker",
        &["worker name"],
    );
    one_issue(
        &runner("state = \"postgres://etl@db/x?sslmode=maybe\""),
        4,
        "runner.state",
        &["sslmode", "verify-full"],
    );
    one_issue(
        &runner("lease_ttl = \"5s\""),
        4,
        "runner.lease_ttl",
        &["applies only to a shared state"],
    );
    let found = issues(&runner("state_password_env = \"X\""));
    assert!(found.iter().any(|i| i.message.contains("state_password_env")), "{found:#?}");
}

/// `[http]` with `lines` after its `listen`, before a job.
fn http(lines: &str) -> String {
    format!(
        "{SERVER}[http]\nlisten = \"127.0.0.1:0\"\n{lines}[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n"
    )
}

#[test]
fn the_http_section_takes_its_token_from_the_environment_or_a_file_never_the_file_itself() {
    let config = Config::parse(
        Path::new("jobs.toml"),
        &http("token_env = \"FLIGHTLINE_TEST_TOKEN\"\n"),
        &env,
    )
    .unwrap();
    let settings = config.http.expect("[http] read");
    assert!(settings.token.is_some());
    assert!(!format!("{settings:?}").contains("t0ken-value"), "Debug leaks the token");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "from-a-file\n").unwrap();
    let text = http(&format!("token_file = \"{}\"\n", file.display()));
    assert!(
        Config::parse(Path::new("jobs.toml"), &text, &env).unwrap().http.unwrap().token.is_some()
    );

    one_issue(&http("token = \"s3cret\"\n"), 5, "http.token", &["never written", "token_env"]);
    let unset =
        one_issue(&http("token_env = \"NOT_SET_HERE\"\n"), 5, "http.token_env", &["not set"]);
    assert!(!unset.to_string().contains("s3cret"));
    std::fs::write(&file, "  \n").unwrap();
    one_issue(&text, 5, "http.token_file", &["empty"]);
    one_issue(&http("token_env = \"A\"\ntoken_file = \"f\"\n"), 5, "http.token_env", &["not both"]);
}

#[test]
fn the_http_section_and_its_old_name_together_are_refused() {
    let text = format!(
        "{SERVER}[http]\nlisten = \"127.0.0.1:1\"\n[metrics]\nlisten = \"127.0.0.1:2\"\n[[job]]\nname = \"j\"\nsql = \"SELECT 1\"\n"
    );
    one_issue(&text, 5, "metrics", &["old name of [http]"]);
    one_issue(&http("").replace("127.0.0.1:0", "nowhere"), 4, "http.listen", &["listen address"]);
}
