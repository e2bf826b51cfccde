//! A scheduled job writing into PostgreSQL with `postgres_sink`, its state in the state
//! directory: every window's rows arrive once, and rerunning windows (the checkpoint removed,
//! as after a lost state directory) replaces their rows instead of adding copies.

mod common;

#[path = "../../interop/postgres.rs"]
mod postgres;

use common::{
    DEMO_END, RunnerProcess, Server, checkpoint, instant, job_file, password_file, postgres_sink,
};
use flightline_core::TimeRange;

#[test]
fn a_rerun_of_every_window_replaces_its_rows_and_never_duplicates_them() {
    let server = Server::start(50_000);
    let pg = postgres::Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let password = password_file(dir.path(), postgres::PASSWORD);
    let jobs = job_file(
        dir.path(),
        &format!(
            r#"
[server]
uri = "{uri}"
[runner]
state_dir = "{state}"
[[job]]
name = "errors"
sql = "SELECT time, level, msg FROM log_entries"
begin = "2024-05-31T18:00:00Z"
end = "{DEMO_END}"
every = "100ms"
window = "1h"
{sink}
"#,
            uri = server.uri(),
            state = state.display(),
            sink = postgres_sink(&pg.url("postgres"), "log_copy", &password),
        ),
    );
    let range = TimeRange::new(instant("2024-05-31T18:00:00Z"), instant(DEMO_END)).unwrap();
    let expected = server.count("SELECT time FROM log_entries", range);
    assert!(expected > 1000, "{expected}");
    let in_postgres = || {
        pg.psql(
            "SELECT count(*) || ' ' || count(DISTINCT time) || ' ' || count(DISTINCT \
             flightline_begin) FROM log_copy",
        )
    };

    let (status, stdout, stderr) = RunnerProcess::start(&jobs, &["--once"]).finish();
    assert!(status.success(), "{stdout}\n{stderr}");
    assert_eq!(checkpoint(&state, "errors"), Some(instant(DEMO_END)));
    assert_eq!(in_postgres(), format!("{expected} {expected} 6"), "six windows, each row once");

    // The state directory is lost: every window runs again, and replaces its own rows.
    std::fs::remove_dir_all(&state).unwrap();
    let (status, stdout, stderr) = RunnerProcess::start(&jobs, &["--once"]).finish();
    assert!(status.success(), "{stdout}\n{stderr}");
    assert_eq!(in_postgres(), format!("{expected} {expected} 6"), "replaced, not added");
    let per_window = pg.psql(
        "SELECT string_agg(DISTINCT flightline_job, ',') || ' ' || min(flightline_end - \
         flightline_begin) || ' ' || max(flightline_end - flightline_begin) FROM log_copy",
    );
    assert_eq!(per_window, "errors 01:00:00 01:00:00");
}

#[test]
fn check_refuses_a_result_column_postgres_cannot_hold_naming_it_and_the_cast() {
    let server = Server::start(1_000);
    let dir = tempfile::tempdir().unwrap();
    let job = |sql: &str| {
        format!(
            r#"
[server]
uri = "{uri}"
[[job]]
name = "unsigned"
sql = "{sql}"
processors = [{{ name = "postgres_sink", options = {{ url = "postgres://etl@127.0.0.1:1/db", table = "t" }} }}]
"#,
            uri = server.uri(),
        )
    };
    let check = |text: String| {
        let jobs = job_file(dir.path(), &text);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_flightline"))
            .arg("check")
            .arg(&jobs)
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stdout).to_string())
    };
    let (code, stdout) = check(job("SELECT arrow_cast(level, 'UInt64') AS n FROM log_entries"));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAILED  unsigned: ") && stdout.contains("column \"n\""), "{stdout}");
    assert!(stdout.contains("CAST it to BIGINT"), "{stdout}");
    let (code, stdout) = check(job("SELECT level, time, target FROM log_entries"));
    assert_eq!(code, Some(0), "{stdout}");
}
