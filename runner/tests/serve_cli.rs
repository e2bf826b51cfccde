//! `flightline serve` as a user runs it: prints its address, answers, stops cleanly on a signal,
//! stops within its shutdown grace even with a never-ending query in flight (saying so in its
//! exit status), and at once on a second signal.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flightline_runner::shutdown::EXIT_CUT;

/// A query that never ends on its own: an unbounded recursive CTE, counted.
const NEVER_ENDING: &str =
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    fn spawn(args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_flightline"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// Its exit status, waiting at most `bound`.
    fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: &str) {
        let kill = Command::new("kill").args([signal, &self.0.id().to_string()]).status().unwrap();
        assert!(kill.success());
    }

    /// CPU time (user + system) the process has used so far, from /proc/PID/stat.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }
}

/// Starts `flightline serve ARGS` on an ephemeral port; returns it and the URI it printed.
fn serve(args: &[&str]) -> (Killed, String) {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut server = Killed::spawn(&all);
    let stdout = server.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // Bounded, so a server that never starts fails the test instead of hanging it.
    let line = rx.recv_timeout(Duration::from_secs(60)).expect("serve printed no address");
    let uri = line.trim().strip_prefix("flightline: listening on ").unwrap_or_default().to_string();
    assert!(uri.starts_with("grpc://127.0.0.1:") && !uri.ends_with(":0"), "{line}");
    (server, uri)
}

#[test]
fn serve_prints_its_port_answers_and_stops_on_sigint_and_sigterm() {
    for signal in ["-INT", "-TERM"] {
        let (mut server, uri) = serve(&["--demo-rows", "1000"]);
        let mut query = Killed::spawn(&[
            "query",
            "SELECT count(*) AS n FROM log_entries",
            "--uri",
            &uri,
            "--format",
            "csv",
        ]);
        let status = query.wait_exit(Duration::from_secs(60)).expect("the query never ended");
        let out = query.0.wait_with_output_clone();
        assert!(status.success(), "{}", out.1);
        assert_eq!(out.0.trim(), "n\n1000");

        server.signal(signal);
        let status = server.wait_exit(Duration::from_secs(60)).expect("serve did not stop");
        assert!(status.success(), "{signal}: {status:?}");
    }
}

#[test]
fn sigterm_with_a_never_ending_query_in_flight_exits_within_the_grace() {
    let grace = Duration::from_secs(2);
    let (mut server, uri) = serve(&["--demo-rows", "1000", "--shutdown-grace", "2"]);
    let mut query = Killed::spawn(&["query", NEVER_ENDING, "--uri", &uri]);

    wait_until_busy(&server);

    let signalled = Instant::now();
    server.signal("-TERM");
    let status = server.wait_exit(grace + Duration::from_secs(20)).expect("serve hung on SIGTERM");
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(EXIT_CUT.into()), "the query was cut: {status:?}");
    assert!(took >= grace, "the in-flight query got no grace: stopped after {took:?}");
    eprintln!("serve stopped {took:?} after SIGTERM with a query in flight (grace {grace:?})");

    // The client is told, and does not report a result.
    let status = query.wait_exit(Duration::from_secs(30)).expect("the client hung");
    let (stdout, stderr) = query.0.wait_with_output_clone();
    assert!(!status.success(), "the cancelled query reported success: {stdout}");
    assert!(!stderr.is_empty(), "the client said nothing about the failure");
}

#[test]
fn a_second_sigterm_stops_serve_at_once_whatever_the_grace() {
    let (mut server, uri) = serve(&["--demo-rows", "1000", "--shutdown-grace", "3600"]);
    let _query = Killed::spawn(&["query", NEVER_ENDING, "--uri", &uri]);
    wait_until_busy(&server);
    server.signal("-TERM");
    // Two signals sent back to back may arrive as one: let the first be seen.
    std::thread::sleep(Duration::from_secs(1));
    assert!(server.wait_exit(Duration::ZERO).is_none(), "serve did not wait for its query");
    server.signal("-TERM");
    let status = server.wait_exit(Duration::from_secs(30)).expect("the second signal was ignored");
    assert_eq!(status.code(), Some(EXIT_CUT.into()), "{status:?}");
}

/// Waits until a query burns CPU in the server: it is in flight.
fn wait_until_busy(server: &Killed) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let before = server.cpu_time();
        std::thread::sleep(Duration::from_millis(500));
        if server.cpu_time().saturating_sub(before) >= Duration::from_millis(200) {
            return;
        }
        assert!(Instant::now() < deadline, "the query never started running");
    }
}

/// Everything a finished child printed.
trait Output {
    fn wait_with_output_clone(&mut self) -> (String, String);
}

impl Output for Child {
    fn wait_with_output_clone(&mut self) -> (String, String) {
        use std::io::Read;
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = self.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        if let Some(mut s) = self.stderr.take() {
            let _ = s.read_to_string(&mut err);
        }
        (out, err)
    }
}

/// Runs `flightline ARGS`, asserts it fails, and returns what it printed on stderr.
fn refused(args: &[&str]) -> String {
    let mut child = Killed::spawn(args);
    let status = child.wait_exit(Duration::from_secs(60)).expect("flightline hung");
    assert!(!status.success(), "{args:?} should fail");
    child.0.wait_with_output_clone().1
}

#[test]
fn serve_refuses_a_busy_port_bad_tables_and_bad_limits_with_a_clear_error() {
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

    let err = refused(&["serve", "--max-concurrent-queries", "0"]);
    assert!(err.contains("--max-concurrent-queries"), "{err}");
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
fn serve_users_and_tokens_from_the_environment_one_per_line_commas_included() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flightline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", "500", "--session-ttl", "60"])
        .env("FLIGHTLINE_SERVE_USERS", "alice:open, sesame\nbob:other\n")
        .env("FLIGHTLINE_SERVE_TOKENS", "abc,def\nghi")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Serving(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let uri = line.trim().strip_prefix("flightline: listening on ").unwrap().to_string();

    let command = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flightline"));
        command
            .args(["query", "SELECT count(*) AS n FROM log_entries", "--format", "csv"])
            .args(["--uri", &uri])
            .env_remove("FLIGHTLINE_TOKEN")
            .env_remove("FLIGHTLINE_PASSWORD");
        command
    };
    let query = |user: &str, password: Option<&str>| {
        let mut command = command();
        command.args(["--user", user]);
        if let Some(password) = password {
            command.env("FLIGHTLINE_PASSWORD", password);
        }
        command.output().unwrap()
    };
    let out = query("alice", Some("open, sesame"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "n\n500");
    assert!(query("bob", Some("other")).status.success());
    // "abc,def" is one token: neither of its halves is one.
    for (token, accepted) in [("abc,def", true), ("ghi", true), ("abc", false), ("def", false)] {
        let out = command().env("FLIGHTLINE_TOKEN", token).output().unwrap();
        assert_eq!(
            out.status.success(),
            accepted,
            "{token}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

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
fn a_malformed_user_is_refused_without_echoing_any_part_of_it() {
    for (how, value) in [
        ("env", "alice:pw\n:leaked-secret"),
        ("env", "alice:pw\nleaked,secret"),
        ("flag", "leaked,secret"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flightline"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", "10"]);
        match how {
            "env" => command.env("FLIGHTLINE_SERVE_USERS", value),
            _ => command.args(["--user", value]).env_remove("FLIGHTLINE_SERVE_USERS"),
        };
        let out = command.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{value:?}");
        assert!(err.contains("NAME:PASSWORD"), "{err}");
        assert!(!err.contains("leaked") && !err.contains("secret"), "{value:?}: {err}");
    }
}
