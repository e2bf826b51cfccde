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
