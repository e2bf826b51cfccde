//! A job file's `[server]` authenticates like the command line does: `user` with its password
//! from `password_env` or `password_file`, checked by a real server started with that user.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flightline_runner::config::Config;
use flightline_runner::orchestrate::{self, RunOptions};
use flightline_runner::progress::{ProgressDisplay, ProgressMode};
use flightline_runner::summary::RunSummary;
use flightline_server::{RunningServer, ServerBuilder};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const PASSWORD_VAR: &str = "FLIGHTLINE_TEST_LOGIN_PASSWORD";

async fn server_with_user() -> RunningServer {
    ServerBuilder::new()
        .demo_rows(200)
        .user(USER, PASSWORD)
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

/// A one-shot job counting `log_entries` into `out/count.ndjson`, on a server whose
/// `[server]` table ends with `login` (the authentication keys).
fn jobs(uri: &str, login: &str, out: &Path) -> String {
    format!(
        "[server]\nuri = \"{uri}\"\n{login}\n\
         [[job]]\nname = \"counted\"\nsql = \"SELECT count(*) AS n FROM log_entries\"\n\
         processors = [{{ name = \"ndjson_sink\", options = {{ path = \"{}\", overwrite = true }} }}]\n",
        out.join("count.ndjson").display()
    )
}

/// `flightline SUBCOMMAND jobs.toml ARGS` with the password variable set to `password`.
async fn flightline(subcommand: &str, jobs: PathBuf, args: &[&str], password: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flightline"));
    command
        .arg(subcommand)
        .arg(jobs)
        .args(args)
        .env(PASSWORD_VAR, password)
        .env_remove("FLIGHTLINE_PASSWORD")
        .env_remove("FLIGHTLINE_TOKEN");
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

/// The runs, failures and rows of `job` in the summary table `flightline run` prints.
fn summary_counts(stdout: &str, job: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(job))
        .unwrap_or_else(|| panic!("no summary line for {job}: {stdout}"));
    let numbers: Vec<u64> =
        line.split_whitespace().skip(1).take(4).map(|n| n.parse().unwrap()).collect();
    (numbers[0], numbers[1], numbers[3])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_signs_in_with_the_password_from_the_variable_named_in_the_job_file() {
    let server = server_with_user().await;
    let dir = tempfile::tempdir().unwrap();
    let login = format!("user = \"{USER}\"\npassword_env = \"{PASSWORD_VAR}\"");
    let file = common::job_file(dir.path(), &jobs(&server.uri(), &login, dir.path()));

    let ok = flightline("run", file.clone(), &["--once", "--progress", "never"], PASSWORD).await;
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(summary_counts(&stdout, "counted"), (1, 0, 1), "{stdout}");
    let written = std::fs::read_to_string(dir.path().join("count.ndjson")).unwrap();
    assert!(written.starts_with("{\"n\":"), "{written}");

    let checked = flightline("check", file.clone(), &[], PASSWORD).await;
    let shown = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{shown}");
    assert!(shown.contains("ok      counted"), "{shown}");

    let refused = flightline("run", file, &["--once", "--progress", "never"], "wrong").await;
    let stdout = String::from_utf8_lossy(&refused.stdout);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(summary_counts(&stdout, "counted").1, 1, "{stdout}");
    let error = stdout.lines().find(|l| l.starts_with("counted: last error:")).unwrap_or_default();
    assert!(error.contains(&server.uri()), "the server is not named: {stdout}");
    assert!(error.contains("refused the credentials") && error.contains(USER), "{stdout}");
    assert!(!stdout.contains("wrong") && !stderr.contains("wrong"), "the password leaked");
}

async fn run(text: &str) -> RunSummary {
    let config = Config::parse(Path::new("login.toml"), text, &|_| None).unwrap();
    let display = ProgressDisplay::new(ProgressMode::Never);
    orchestrate::run(&config, RunOptions::default(), display, std::future::pending()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_file_signs_in_and_a_wrong_one_fails_naming_the_server() {
    let server = server_with_user().await;
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    let login = format!("user = \"{USER}\"\npassword_file = \"{}\"", password_file.display());
    let text = jobs(&server.uri(), &login, dir.path());

    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let summary = run(&text).await;
    let job = &summary.jobs[0];
    assert!(!job.failed(), "{:?}", job.last_error);
    assert_eq!((job.runs_ok, job.rows), (1, 1));

    std::fs::write(&password_file, "not the password\n").unwrap();
    let summary = run(&text).await;
    let job = &summary.jobs[0];
    let error = job.last_error.as_deref().unwrap_or_default();
    assert!(error.contains(&server.uri()), "the server is not named: {error}");
    assert!(error.contains("refused the credentials") && error.contains(USER), "{error}");
    assert!(!error.contains("not the password"), "the password leaked: {error}");

    let anonymous = run(&jobs(&server.uri(), "", dir.path())).await;
    assert!(anonymous.jobs[0].failed(), "the server let a job without a user in");
}
