//! Interop with Flight SQL clients no one here wrote: the Micromegas Python client and the ADBC
//! Flight SQL driver (interop/*.py) query two real `flightline serve` processes, one open and one
//! with a bearer token and a user for the Flight handshake. The Python venv comes from interop/setup_venv.sh (PyPI).

#[path = "../../interop/venv.rs"]
mod venv;

use std::io::{BufRead, BufReader};

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const DEMO_ROWS: &str = "20000";
const DEMO_END: &str = "2024-06-01T00:00:00Z";
const SEED: &str = "7";
const TOKEN: &str = "interop-secret-token";
const USER: &str = "interop-user";
/// With a ':' inside, as a password may have: only the first ':' separates the user.
const PASSWORD: &str = "interop:pass word";
const LISTENING: &str = "flightline: listening on ";
/// Only guards against a server that never starts; a healthy one prints its line in well under this.
const STARTUP_LIMIT: Duration = Duration::from_secs(180);

/// A running `flightline serve`; killed when dropped, even when an assertion fails.
struct ServerProcess {
    child: Child,
    uri: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `flightline serve` with `extra` arguments, its log written to `log`.
fn start_server(extra: &[&str], users: Option<&str>, log: &std::path::Path) -> ServerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flightline"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--demo-rows", DEMO_ROWS, "--seed", SEED])
        .args(["--demo-end", DEMO_END])
        .args(extra)
        // Tokens come only from the arguments: an exported variable must not turn auth on.
        .env_remove("FLIGHTLINE_SERVE_TOKENS")
        .env_remove("FLIGHTLINE_SERVE_USERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("create the server's log file"));
    // Users come through the environment, as the help advises, to keep passwords out of `ps`.
    if let Some(users) = users {
        command.env("FLIGHTLINE_SERVE_USERS", users);
    }
    let mut child = command.spawn().expect("spawn flightline serve");
    let stdout = child.stdout.take().expect("piped stdout");
    // Owned by the guard from here on, so a failed start still kills the process.
    let mut server = ServerProcess { child, uri: String::new() };
    server.uri = read_listen_uri(stdout, extra);
    server
}

/// Waits for the `listening on` line, then keeps draining stdout so the server never blocks on it.
fn read_listen_uri(stdout: std::process::ChildStdout, extra: &[&str]) -> String {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut sender = Some(sender);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(uri) = line.strip_prefix(LISTENING)
                && let Some(sender) = sender.take()
            {
                let _ = sender.send(uri.trim().to_string());
            }
        }
    });
    let uri = receiver.recv_timeout(STARTUP_LIMIT).unwrap_or_else(|err| {
        panic!(
            "flightline serve {extra:?} never printed '{LISTENING}...' ({err}); see its log file"
        )
    });
    assert!(uri.starts_with("grpc://127.0.0.1:"), "unexpected listen address {uri:?}");
    uri
}

#[test]
fn python_flight_sql_clients_interoperate() {
    let dir = tempfile::tempdir().unwrap();
    let open_log = dir.path().join("open.log");
    let open = start_server(&[], None, &open_log);
    let users = format!("{USER}:{PASSWORD}");
    let authed = start_server(&["--token", TOKEN], Some(&users), &dir.path().join("authed.log"));

    let servers = venv::SuiteServers {
        uri: &open.uri,
        auth_uri: &authed.uri,
        token: TOKEN,
        user: USER,
        password: PASSWORD,
        demo_end: DEMO_END,
        rows: DEMO_ROWS,
        audit_log: Some(&open_log),
    };
    venv::run_pytest("interop", &servers, &[]);
    drop(open);
    drop(authed);
}
