//! `flightline demo | head`: a reader that goes away early is not an error, and never a panic.

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Kills the child if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "flightline demo did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `flightline args` with its stdout closed before it prints anything: it must exit 0
/// without a panic or an error message.
fn into_a_closed_pipe(args: &[&str]) {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_flightline"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    drop(child.0.stdout.take());
    let status = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn demo_into_a_closed_pipe_exits_quietly() {
    // Closed before the demo server is up, so the very first line meets a broken pipe.
    into_a_closed_pipe(&["demo", "--demo-rows", "2000"]);
}

#[test]
fn plugins_inspect_into_a_closed_pipe_exits_quietly() {
    let plugin = support::rust_plugin("flightline-top-targets", "top_targets");
    into_a_closed_pipe(&["plugins", "inspect", plugin.to_str().unwrap()]);
}
