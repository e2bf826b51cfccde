//! The progress display in a real terminal: `flightline demo` under tmux (150×45), the pane
//! captured while it runs and at the end. Bars are redrawn in place (no job's bar appears
//! twice on a screen, and none is left in the scrollback), log lines and the `print`
//! processor's table go above them intact, and at the end the bars give way to the summary.
//! A run with an estimate shows a percentage and an ETA (a job of its own, slow enough for the
//! count to arrive while it runs: in the demo that depends on the machine's load).

mod common;

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

const WIDTH: &str = "150";
const HEIGHT: &str = "45";
const DONE: &str = "FLIGHTLINE-EXIT=";

/// A tmux server of its own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Self {
        // One server per test: two tests of this binary may run at once.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Self { socket: format!("flightline-test-{}-{n}", std::process::id()) };
        let status = tmux
            .cmd()
            .args(["new-session", "-d", "-s", "demo", "-x", WIDTH, "-y", HEIGHT, command])
            .status()
            .expect("tmux is installed (apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn cmd(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    /// The visible screen, or with `history` everything since the start.
    fn capture(&self, history: bool) -> String {
        let mut command = self.cmd();
        command.args(["capture-pane", "-p", "-t", "demo"]);
        if history {
            command.args(["-S", "-"]);
        }
        let output = command.output().expect("tmux capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// A bar's line starts with the spinner (a braille character), then the job's label.
fn bar_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| ('\u{2800}'..='\u{28FF}').contains(&c)))
        .collect()
}

fn label(bar: &str) -> String {
    bar.split_whitespace().nth(1).unwrap_or_default().to_string()
}

/// Captures the screen every 200 ms until the command ends; asserts on every screen that no
/// bar appears twice. The last screen, and the first screen where `wanted` held.
fn watch(tmux: &Tmux, wanted: impl Fn(&[&str]) -> bool) -> (String, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut screens, mut seen) = (0, None);
    loop {
        let screen = tmux.capture(false);
        if screen.contains(DONE) {
            assert!(screens > 5, "too few screens captured while it ran ({screens})");
            return (screen, seen);
        }
        assert!(Instant::now() < deadline, "the command did not end:\n{screen}");
        let bars = bar_lines(&screen);
        let mut labels: Vec<String> = bars.iter().map(|b| label(b)).collect();
        labels.sort();
        let before = labels.len();
        labels.dedup();
        assert_eq!(before, labels.len(), "a bar appears twice on one screen:\n{screen}");
        if seen.is_none() && wanted(&bars) {
            seen = Some(screen);
        }
        screens += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_demo_display_holds_in_a_real_terminal() {
    let binary = env!("CARGO_BIN_EXE_flightline");
    let script = format!(
        "cd {}; {binary} demo --demo-rows 3000000 --progress always; echo {DONE}$?; sleep 600",
        env!("CARGO_MANIFEST_DIR")
    );
    let tmux = Tmux::start(&script);
    let (screen, _) = watch(&tmux, |_| false);
    assert!(screen.contains(&format!("{DONE}0")), "the demo failed:\n{screen}");

    let history = tmux.capture(true);
    let left = bar_lines(&history);
    assert!(left.is_empty(), "bars left behind in the scrollback: {left:#?}\n{history}");
    assert_table_intact(&history);
    assert!(history.contains("# summary"), "{history}");
}

/// A job with `estimate = true` whose processor is slow enough that the count arrives while it
/// runs, whatever else the machine is doing: its bar shows a percentage and an ETA.
#[test]
fn a_run_with_an_estimate_shows_its_percentage_and_eta() {
    let server = common::Server::start(100_000);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nuri = \"{}\"\n[[job]]\nname = \"counted\"\nsql = \"SELECT * FROM log_entries\"\n\
         estimate = true\ntarget_batch_bytes = 65536\n\
         processors = [{{ plugin = \"{}\", options = {{ delay_ms = 60 }} }}]\n",
        server.uri(),
        support::probe().display()
    );
    let jobs = common::job_file(dir.path(), &text);
    let script = format!(
        "{} run {} --progress always; echo {DONE}$?; sleep 600",
        env!("CARGO_BIN_EXE_flightline"),
        jobs.display()
    );
    let tmux = Tmux::start(&script);
    let eta = |bars: &[&str]| bars.iter().any(|b| b.contains("counted") && b.contains("%, ETA "));
    let (screen, seen) = watch(&tmux, eta);
    assert!(screen.contains(&format!("{DONE}0")), "the run failed:\n{screen}");
    assert!(seen.is_some(), "the bar never showed a percentage and an ETA:\n{screen}");
    let left = bar_lines(&tmux.capture(true)).len();
    assert_eq!(left, 0, "bars left behind in the scrollback");
}

/// The `print` processor's table: a border, the header, a border, its 5 rows and a border,
/// on consecutive lines of one width.
fn assert_table_intact(history: &str) {
    let lines: Vec<&str> = history.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("| hour "))
        .unwrap_or_else(|| panic!("no table header in:\n{history}"))
        - 1;
    let table = &lines[start..start + 9];
    let width = table[0].len();
    for (i, line) in table.iter().enumerate() {
        let border = matches!(i, 0 | 2 | 8);
        let shape = if border { line.starts_with("+-") } else { line.starts_with("| ") };
        assert!(shape && line.len() == width, "table line {i} broken: {table:#?}");
    }
}
