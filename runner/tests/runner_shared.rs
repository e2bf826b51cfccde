//! Workers sharing one job file through a PostgreSQL state database: `flightline run` processes
//! killed and restarted at random, a worker paused past its lease, a database outage, and bad
//! input. Every source row must end in the sink table exactly once, every window committed,
//! and no window run by two workers at once (`flightline_runs` records owner and epoch of every
//! run).

mod common;

#[path = "../../interop/postgres.rs"]
mod postgres;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    DEMO_END, PATIENCE, RunnerProcess, Server, instant, job_file, password_file, postgres_sink,
};
use flightline_core::TimeRange;

/// A demo server, a PostgreSQL cluster, and a job file whose state and sink are both in it.
struct Team {
    server: Server,
    pg: postgres::Postgres,
    dir: tempfile::TempDir,
    jobs: PathBuf,
    begin: &'static str,
}

const TTL: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(200);

impl Team {
    /// The job `copy` from `begin` to the demo's end in windows of `window`, with `tail` added
    /// to its table.
    fn start(rows: u64, begin: &'static str, window: &str, tail: &str) -> Self {
        let server = Server::start(rows);
        let pg = postgres::Postgres::start();
        let dir = tempfile::tempdir().unwrap();
        let password = password_file(dir.path(), postgres::PASSWORD);
        let jobs = job_file(
            dir.path(),
            &format!(
                r#"
[server]
uri = "{uri}"
[metrics]
listen = "127.0.0.1:0"
[runner]
state = "{url}"
state_password_file = "{password}"
lease_ttl = "{ttl}s"
shutdown_grace = "1s"
[[job]]
name = "copy"
sql = "SELECT time, level, msg FROM log_entries"
begin = "{begin}"
end = "{DEMO_END}"
every = "{tick}ms"
window = "{window}"
{tail}
{sink}
"#,
                sink = postgres_sink(&pg.url("postgres"), "log_copy", &password),
                uri = server.uri(),
                url = pg.url("postgres"),
                password = password.display(),
                ttl = TTL.as_secs(),
                tick = TICK.as_millis(),
            ),
        );
        let team = Self { server, pg, dir, jobs, begin };
        // `status` creates the tables, so that the test can read them before any worker runs.
        let (code, text) = team.flightline(&["status"]);
        assert_eq!(code, Some(0), "{text}");
        team
    }

    /// `flightline ARGS JOBS`: exit code, stdout and stderr.
    fn flightline(&self, args: &[&str]) -> (Option<i32>, String) {
        outcome(Command::new(env!("CARGO_BIN_EXE_flightline")).args(args).arg(&self.jobs))
    }

    /// The password file the job file names.
    fn password(&self) -> PathBuf {
        self.dir.path().join("pgpass")
    }

    fn worker(&self) -> RunnerProcess {
        RunnerProcess::start(&self.jobs, &[])
    }

    /// The rows the job must copy.
    fn expected_rows(&self) -> u64 {
        let range = TimeRange::new(instant(self.begin), instant(DEMO_END)).unwrap();
        self.server.count("SELECT time FROM log_entries", range)
    }

    /// `rows distinct-times distinct-windows` of the sink table.
    fn copied(&self) -> String {
        self.pg.psql(
            "SELECT count(*) || ' ' || count(DISTINCT time) || ' ' || count(DISTINCT \
             flightline_begin) FROM log_copy",
        )
    }

    fn done(&self) -> bool {
        let checkpoint = self.pg.psql(
            "SELECT coalesce((SELECT checkpoint = timestamptz '2024-06-01T00:00:00Z' FROM \
             flightline_jobs), false)",
        );
        checkpoint == "t"
    }

    fn wait(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !check() {
            assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every run recorded: (window, epoch, owner, started, ended, outcome), by window and epoch.
    fn runs(&self) -> Vec<Run> {
        let text = self.pg.psql(
            "SELECT extract(epoch FROM window_begin) || '|' || epoch || '|' || owner || '|' || \
             extract(epoch FROM started_at) || '|' || coalesce(extract(epoch FROM \
             ended_at)::text, '') || '|' || coalesce(outcome, '') FROM flightline_runs ORDER BY \
             window_begin, epoch",
        );
        text.lines()
            .map(|line| {
                let f: Vec<&str> = line.split('|').collect();
                Run {
                    window: f[0].parse::<f64>().unwrap() as i64,
                    epoch: f[1].parse().unwrap(),
                    pid: f[2].split('/').nth(1).unwrap().parse().unwrap(),
                    started: f[3].parse().unwrap(),
                    ended: f[4].parse().ok(),
                    outcome: f[5].to_string(),
                }
            })
            .collect()
    }
}

#[derive(Debug)]
struct Run {
    window: i64,
    epoch: i64,
    pid: i32,
    started: f64,
    ended: Option<f64>,
    outcome: String,
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A small deterministic generator (seeded from the clock, printed) for the kill schedule.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Each run's successor on its window started only after it ended: it ended itself (released
/// or fenced before), or its worker was killed (`deaths`: pid to when it was reaped).
fn assert_never_two_at_once(runs: &[Run], deaths: &BTreeMap<i32, f64>) {
    for pair in runs.windows(2).filter(|p| p[0].window == p[1].window) {
        let (before, after) = (&pair[0], &pair[1]);
        assert_eq!(after.epoch, before.epoch + 1, "epochs go up one by one: {pair:?}");
        let gone = before.ended.or_else(|| deaths.get(&before.pid).copied());
        let gone = gone.unwrap_or_else(|| panic!("a run neither ended nor killed: {before:?}"));
        assert!(gone <= after.started, "two runs of one window at once: {pair:?}");
    }
}

#[test]
fn three_workers_killed_at_random_copy_every_row_exactly_once() {
    // 216 windows of 5 minutes.
    let team = Team::start(400_000, "2024-05-31T06:00:00Z", "5m", "");
    let expected = team.expected_rows();
    assert!(expected > 10_000, "{expected}");
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill schedule seed {seed}");
    let mut dice = Dice(seed);
    let mut workers: Vec<RunnerProcess> = (0..3).map(|_| team.worker()).collect();
    let mut deaths = BTreeMap::new();
    while deaths.len() < 25 && !team.done() {
        std::thread::sleep(Duration::from_millis(100 + dice.roll(300)));
        let victim = &mut workers[dice.roll(3) as usize];
        let pid = victim.pid();
        victim.child.kill().unwrap();
        victim.child.wait().unwrap();
        deaths.insert(pid, now_secs());
        *victim = team.worker();
    }
    let kills = deaths.len();
    assert!(kills >= 20, "only {kills} kills before the job was done: make it longer");
    for worker in workers {
        let (status, stdout, stderr) = worker.finish();
        assert!(status.success(), "{stdout}\n{stderr}");
    }

    assert_eq!(team.copied(), format!("{expected} {expected} 216"), "each row once");
    let windows = team.pg.psql(
        "SELECT count(*) || ' ' || count(*) FILTER (WHERE state = 'committed') FROM \
         flightline_windows",
    );
    assert_eq!(windows, "216 216");
    assert!(team.done(), "the checkpoint is at the end");
    let runs = team.runs();
    assert_never_two_at_once(&runs, &deaths);
    let committed = runs.iter().filter(|r| r.outcome == "committed").count();
    assert_eq!(committed, 216, "one committed run per window");
    let taken_over = runs.iter().filter(|r| r.epoch > 1).count();
    assert!(taken_over >= 1, "some kill hit a window mid-run: {kills} kills");
    let owners: std::collections::BTreeSet<i32> = runs.iter().map(|r| r.pid).collect();
    assert!(owners.len() >= 6, "work spread over the workers: {} owners", owners.len());
    eprintln!("{kills} kills, {} runs, {taken_over} takeovers", runs.len());
}

/// Waits until some worker holds a lease; returns its pid.
fn leased_by(team: &Team) -> i32 {
    let mut owner = String::new();
    team.wait("a lease", || {
        owner = team.pg.psql("SELECT coalesce(max(owner), '') FROM flightline_windows");
        !owner.is_empty()
    });
    owner.split('/').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_paused_worker_is_taken_over_within_the_ttl_and_its_commit_is_fenced() {
    // One window of 700,000 rows in small batches: slow enough to pause its worker in it.
    let team = Team::start(700_000, "2024-05-25T00:00:00Z", "7d", "target_batch_bytes = 2048");
    let expected = team.expected_rows();
    let first = team.worker();
    assert_eq!(leased_by(&team), first.pid());
    let second = team.worker();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(team.pg.psql("SELECT state FROM flightline_windows"), "leased", "still running");
    first.signal(19); // SIGSTOP
    let stopped = now_secs();

    team.wait("the takeover", || team.pg.psql("SELECT max(epoch) FROM flightline_windows") == "2");
    let runs = team.runs();
    let takeover = runs[1].started - stopped;
    eprintln!("takeover {takeover:.2} s after SIGSTOP (lease_ttl {TTL:?}, tick {TICK:?})");
    let bound = (TTL + TICK).as_secs_f64() + 0.5;
    assert!(takeover <= bound, "taken over after {takeover:.2} s (bound {bound} s)");
    assert_eq!(runs[1].pid, second.pid());

    team.wait("the successor's commit", || team.done());
    first.signal(18); // SIGCONT
    let (status, stdout, stderr) = first.finish();
    assert!(status.success(), "the resumed worker moves on\n{stdout}\n{stderr}");
    assert!(stderr.contains("lease lost to another worker"), "{stderr}");
    let (status, stdout, stderr) = second.finish();
    assert!(status.success(), "{stdout}\n{stderr}");

    let runs = team.runs();
    let outcomes: Vec<(i64, &str)> = runs.iter().map(|r| (r.epoch, r.outcome.as_str())).collect();
    assert_eq!(outcomes, [(1, "fenced"), (2, "committed")]);
    assert_eq!(team.copied(), format!("{expected} {expected} 1"), "the fenced rows rolled back");
}

#[test]
fn a_database_outage_stops_commits_until_it_is_back_and_loses_no_window() {
    let team = Team::start(100_000, "2024-05-31T12:00:00Z", "30m", "");
    let expected = team.expected_rows();
    let mut worker = team.worker();
    let metrics = worker.metrics_addr();
    team.wait("some progress", || {
        team.pg.psql("SELECT count(*) FROM flightline_windows WHERE state = 'committed'") != "0"
    });
    team.pg.stop();
    let down = common::eventually("the worker to notice", || {
        let page = common::scrape(metrics);
        (common::sample(&page, "flightline_state_db_up", &[]) == Some(0.0)).then_some(page)
    });
    assert!(common::sample(&down, "flightline_state_db_errors_total", &[]).unwrap_or(0.0) >= 1.0);
    std::thread::sleep(Duration::from_secs(1));
    team.pg.restart();
    let (status, stdout, stderr) = worker.finish();
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("the state database does not answer"), "{stderr}");
    assert!(stderr.contains("the state database answers again"), "{stderr}");
    assert_eq!(team.copied(), format!("{expected} {expected} 24"), "each row once");
    assert!(team.done());
}

fn run_once(jobs: &Path) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flightline"));
    outcome(command.args(["run", "--once", "--progress", "never"]).arg(jobs))
}

/// Runs `command`: its exit code, and its stdout then stderr.
fn outcome(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn a_wrong_password_or_no_database_is_a_clear_error_at_start() {
    let team = Team::start(1_000, "2024-05-31T22:00:00Z", "1h", "");
    let jobs = std::fs::read_to_string(&team.jobs).unwrap();
    let wrong = team.dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let password = team.password().display().to_string();
    let bad = job_file(team.dir.path(), &jobs.replacen(&password, &wrong.display().to_string(), 1));
    let (code, text) = run_once(&bad);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains(&format!("state database flightline@127.0.0.1:{}", team.pg.port())));
    assert!(text.contains("check the user and the password"), "{text}");
    assert!(!text.contains("not-the-password") && !text.contains(postgres::PASSWORD), "{text}");

    let url = team.pg.url("postgres");
    let nowhere =
        job_file(team.dir.path(), &jobs.replacen(&url, "postgres://etl@127.0.0.1:1/db", 1));
    let (code, text) = run_once(&nowhere);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("state database etl@127.0.0.1:1/db: cannot connect"), "{text}");
}

#[test]
fn a_sink_table_of_another_shape_fails_the_window_which_runs_once_it_is_fixed() {
    let team = Team::start(10_000, "2024-05-31T22:00:00Z", "1h", "");
    let expected = team.expected_rows();
    team.pg.psql(
        "CREATE TABLE log_copy (flightline_job text, flightline_begin timestamptz, flightline_end \
         timestamptz, time timestamptz, level text, msg text)",
    );
    let (code, text) = run_once(&team.jobs);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("table log_copy has column \"level\" as text"), "{text}");
    assert!(text.contains("change the column's type, or CAST the column"), "{text}");
    let windows =
        team.pg.psql("SELECT count(*) FILTER (WHERE state = 'committed') FROM flightline_windows");
    assert_eq!(windows, "0", "nothing committed");

    team.pg.psql("DROP TABLE log_copy");
    let (code, text) = run_once(&team.jobs);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(team.copied(), format!("{expected} {expected} 2"));
    let (code, shown) = team.flightline(&["status"]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains(&format!("state: PostgreSQL flightline@127.0.0.1:{}", team.pg.port())));
    let line = shown.lines().find(|l| l.starts_with("copy ")).unwrap_or_default();
    assert!(line.contains("2024-06-01T00:00:00+00:00") && line.ends_with("2       0"), "{shown}");
}

#[test]
fn a_one_shot_job_runs_once_among_workers_and_a_changed_one_waits_for_reset() {
    let team = Team::start(20_000, "2024-05-31T12:00:00Z", "1h", "");
    let original = std::fs::read_to_string(&team.jobs).unwrap();
    let one_shot = |filter: &str| {
        let sink = postgres_sink(&team.pg.url("postgres"), "once_copy", &team.password());
        let job = format!(
            "[[job]]\nname = \"once\"\nsql = \"SELECT time, level, msg FROM log_entries{filter}\"\n\
             begin = \"{}\"\nend = \"{DEMO_END}\"\n{sink}\n",
            team.begin,
        );
        let without_copy = original.split("[[job]]").next().unwrap().to_string();
        job_file(team.dir.path(), &format!("{without_copy}{job}"))
    };
    let jobs = one_shot("");
    let expected = team.expected_rows();
    let workers: Vec<RunnerProcess> =
        (0..3).map(|_| RunnerProcess::start(&jobs, &["--once"])).collect();
    for worker in workers {
        let (status, stdout, stderr) = worker.finish();
        assert!(status.success(), "{stdout}\n{stderr}");
    }
    let runs = || {
        team.pg.psql("SELECT count(*) || ' ' || count(*) FILTER (WHERE outcome = 'committed') FROM flightline_runs WHERE job = 'once'")
    };
    assert_eq!(runs(), "1 1", "one worker ran it, once");
    let copied = || team.pg.psql("SELECT count(*) || ' ' || count(DISTINCT time) FROM once_copy");
    assert_eq!(copied(), format!("{expected} {expected}"));

    let (code, text) = run_once(&jobs);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(runs(), "1 1", "not again under the same configuration");

    let changed = one_shot(" WHERE level <= 3");
    let (code, text) = run_once(&changed);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("was written for a different job configuration"), "{text}");
    assert!(text.contains("--reset-checkpoint once"), "{text}");
    assert_eq!(runs(), "1 1");

    let output = Command::new(env!("CARGO_BIN_EXE_flightline"))
        .args(["run", "--once", "--progress", "never", "--reset-checkpoint", "once"])
        .arg(&changed)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(runs(), "2 2", "run again after the reset");
    let range = TimeRange::new(instant(team.begin), instant(DEMO_END)).unwrap();
    let fewer = team.server.count("SELECT time FROM log_entries WHERE level <= 3", range);
    assert!(fewer < expected, "{fewer} {expected}");
    assert_eq!(copied(), format!("{fewer} {fewer}"), "the run's rows replaced the first run's");
}
