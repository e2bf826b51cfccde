//! The interop venv, for the Rust tests that run Python peers (pytest suites, the roapi
//! binary): included by path (`#[path = "../../interop/venv.rs"] mod venv;`) from the test
//! crates that need it, each one directory below the repository's root.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root: the parent of the including crate's directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate has a parent directory")
        .to_path_buf()
}

/// A finished process's status and output, for an assertion message.
pub fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Creates (or checks) `.venv` with interop/setup_venv.sh and returns its root.
pub fn setup_venv() -> PathBuf {
    let root = repo_root();
    let output = Command::new("bash")
        .arg(root.join("interop/setup_venv.sh"))
        .current_dir(&root)
        .output()
        .expect("run bash interop/setup_venv.sh");
    assert!(output.status.success(), "interop/setup_venv.sh failed\n{}", show(&output));
    let venv = root.join(".venv");
    assert!(venv.join("bin/python").exists(), "setup_venv.sh did not create {}", venv.display());
    venv
}

/// The servers a pytest suite runs against, as its fixtures read them (interop/demo_servers.py).
pub struct SuiteServers<'a> {
    /// A server without auth.
    pub uri: &'a str,
    /// A server that wants `token`, or `user` and `password` by handshake.
    pub auth_uri: &'a str,
    /// Its bearer token.
    pub token: &'a str,
    /// A user it accepts.
    pub user: &'a str,
    /// That user's password.
    pub password: &'a str,
    /// The end of both servers' demo window (RFC 3339).
    pub demo_end: &'a str,
    /// Rows in the demo tables.
    pub rows: &'a str,
    /// The file the server without auth writes its log (audit lines) to, when the suite
    /// checks them.
    pub audit_log: Option<&'a Path>,
}

/// Runs the pytest suite in `suite` (a directory of the repository) with the venv's Python
/// against `servers`, `pythonpath` prepended to interop/ (where the shared fixtures live);
/// asserts that it passed and returns pytest's summary line.
pub fn run_pytest(suite: &str, servers: &SuiteServers<'_>, pythonpath: &[&Path]) -> String {
    let root = repo_root();
    let mut paths: Vec<PathBuf> = pythonpath.iter().map(|p| p.to_path_buf()).collect();
    paths.push(root.join("interop"));
    let output = Command::new(setup_venv().join("bin/python"))
        .args(["-m", "pytest", suite, "-q", "-p", "no:cacheprovider"])
        .current_dir(&root)
        .env("PYTHONPATH", std::env::join_paths(paths).expect("paths without ':'"))
        .env("FLIGHTLINE_TEST_URI", servers.uri)
        .env("FLIGHTLINE_TEST_AUTH_URI", servers.auth_uri)
        .env("FLIGHTLINE_TEST_TOKEN", servers.token)
        .env("FLIGHTLINE_TEST_USER", servers.user)
        .env("FLIGHTLINE_TEST_PASSWORD", servers.password)
        .env("FLIGHTLINE_TEST_DEMO_END", servers.demo_end)
        .env("FLIGHTLINE_TEST_ROWS", servers.rows)
        .env("FLIGHTLINE_TEST_AUDIT_LOG", servers.audit_log.unwrap_or(Path::new("")))
        // Nothing written into the repo, and gRPC never sent through a proxy for 127.0.0.1.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pytest in the interop venv");
    assert!(output.status.success(), "pytest {suite} failed\n{}", show(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains(" passed"), "pytest reported no passed test\n{}", show(&output));
    summary.lines().last().unwrap_or_default().to_string()
}
