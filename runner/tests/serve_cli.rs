//! `flightline serve` as a user runs it: prints its address, answers, stops cleanly on a signal.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    // Bounded so a hung server fails the test instead of hanging CI.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("flightline serve did not stop after the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_prints_its_port_answers_and_stops_on_sigint_and_sigterm() {
    for signal in ["-INT", "-TERM"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flightline"))
            .args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", "1000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let uri = line.trim().strip_prefix("flightline: listening on ").unwrap().to_string();
        assert!(uri.starts_with("grpc://127.0.0.1:") && !uri.ends_with(":0"), "{line}");

        let out = Command::new(env!("CARGO_BIN_EXE_flightline"))
            .args([
                "query",
                "SELECT count(*) AS n FROM log_entries",
                "--uri",
                &uri,
                "--format",
                "csv",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "n\n1000");

        let kill = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let status = wait_exit(&mut child);
        assert!(status.success(), "{signal}: {status:?}");
    }
}

/// Runs `flightline ARGS`, asserts it fails, and returns what it printed on stderr.
fn refused(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_flightline")).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn serve_refuses_a_busy_port_and_a_bad_table_with_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = listener.local_addr().unwrap().to_string();
    let err = refused(&["serve", "--listen", &busy, "--demo-rows", "10"]);
    assert!(err.contains("cannot listen on") && err.contains(&busy), "{err}");

    let err = refused(&["serve", "--listen", "127.0.0.1:0", "--table", "t=/nonexistent/x.parquet"]);
    assert!(err.contains("\"t\"") && err.contains("no such file"), "{err}");

    let err = refused(&["serve", "--token", ""]);
    assert!(err.contains("must not be empty"), "{err}");

    let err = refused(&["serve", "--table", "no-equals-sign"]);
    assert!(err.contains("name=path"), "{err}");
}

/// A `flightline serve` child killed on drop, even when an assertion fails.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_users_and_query_with_user_and_password_from_the_environment() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flightline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", "500", "--session-ttl", "60"])
        .env("FLIGHTLINE_SERVE_USERS", "alice:open sesame,bob:other")
        .env_remove("FLIGHTLINE_SERVE_TOKENS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Serving(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let uri = line.trim().strip_prefix("flightline: listening on ").unwrap().to_string();

    let query = |user: &str, password: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flightline"));
        command
            .args(["query", "SELECT count(*) AS n FROM log_entries", "--format", "csv"])
            .args(["--uri", &uri, "--user", user])
            .env_remove("FLIGHTLINE_TOKEN")
            .env_remove("FLIGHTLINE_PASSWORD");
        if let Some(password) = password {
            command.env("FLIGHTLINE_PASSWORD", password);
        }
        command.output().unwrap()
    };
    let out = query("alice", Some("open sesame"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "n\n500");

    let out = query("alice", Some("wrong"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("refused the credentials") && err.contains("alice"), "{err}");
    assert!(err.contains("hint: check --user"), "{err}");
    assert!(!err.contains("wrong"), "the password leaked: {err}");

    let out = query("alice", None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("FLIGHTLINE_PASSWORD"), "{err}");
    drop(server);
}

#[test]
fn a_malformed_user_is_refused_without_echoing_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_flightline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", "10"])
        .env("FLIGHTLINE_SERVE_USERS", "alice:pw,:leaked-secret")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("NAME:PASSWORD") && !err.contains("leaked-secret"), "{err}");
}
