//! `flightline demo`: the runner on the embedded default.
//!
//! Starts the demo Flight SQL server in-process on a free port, runs the jobs of
//! `examples/jobs/demo.toml` (built into the binary) concurrently with progress, prints the
//! summary and the processors' reports, then scrapes its own `/metrics` endpoint and shows a
//! few lines. Nothing to install or configure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use flightline_server::ServerBuilder;

use super::print_stdout;
use crate::RunnerError;
use crate::config::Config;
use crate::live::LiveStatus;
use crate::metrics::{MetricsEndpoint, Serving, scrape};
use crate::orchestrate::{self, RunOptions};
use crate::progress::{ProgressDisplay, ProgressMode, summary_table};
use crate::summary::RunSummary;

/// The demo's job file, as shipped.
pub const DEMO_JOBS: &str = include_str!("../../../examples/jobs/demo.toml");
const DEMO_JOBS_PATH: &str = "examples/jobs/demo.toml";

/// Arguments of `flightline demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Rows in each demo table (`log_entries`, `measures`).
    #[arg(long, default_value_t = 500_000)]
    pub demo_rows: u64,
    /// Progress bars: auto (on a terminal), always, never.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// Runs the demo; exit status 1 if any job failed.
pub async fn run(args: DemoArgs) -> Result<ExitCode, RunnerError> {
    let started = Instant::now();
    let mut config =
        Config::parse(Path::new(DEMO_JOBS_PATH), DEMO_JOBS, &|name| std::env::var(name).ok())?;
    let server =
        // Every job and its row estimate at once, all from this one address.
        ServerBuilder::new()
            .demo_rows(args.demo_rows)
            .max_queries_per_user(8)
            .spawn(([127, 0, 0, 1], 0).into())
            .await?;
    eprintln!(
        "flightline: demo server on {} with {} rows per table ({:.1}s)",
        server.uri(),
        args.demo_rows,
        started.elapsed().as_secs_f64()
    );
    for s in config.servers.values_mut() {
        s.settings.uri = server.uri().to_string();
    }
    // A fresh state directory each time, so the scheduled job shows its windows on every run.
    let state = PrivateDir::create()?;
    config.runner.state_dir = state.path().to_path_buf();
    let live = LiveStatus::of(&config);
    let serving = Serving { live: Some(Arc::clone(&live)), token: None };
    let metrics = MetricsEndpoint::serve(([127, 0, 0, 1], 0).into(), serving)?;
    eprintln!(
        "flightline: running the {} jobs of {DEMO_JOBS_PATH} concurrently; status page on http://{}/",
        config.jobs.len(),
        metrics.listen()
    );

    let options = RunOptions { once: true, live: Some(live), ..Default::default() };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let outcome =
        orchestrate::run(&config, options, ProgressDisplay::new(args.progress), shutdown).await;
    drop(state);
    let summary = outcome?;
    // One write: `flightline demo | head` then ends quietly (main treats a broken pipe as
    // success) instead of panicking inside `println!`.
    let mut out = reports(&summary);
    out.push_str(&format!("\n# summary ({:.1}s in all)\n", started.elapsed().as_secs_f64()));
    out.push_str(&summary_table(&summary));
    out.push_str(&scraped_metrics(&metrics).await);
    let printed = print_stdout(out.trim_end());
    server.shutdown().await?;
    printed?;
    Ok(if summary.failed_jobs().is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A new directory under the system's temporary directory, with an unpredictable name and
/// (on Unix) mode 0700, so nobody can plant a checkpoint, a lock or a symlink in it before
/// the demo runs. Removed with everything in it when dropped (the demo's state is throwaway).
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> Result<Self, RunnerError> {
        let parent = std::env::temp_dir();
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        let mut last = None;
        for _ in 0..16 {
            let path = parent.join(format!("flightline-demo-{:016x}", rand::rng().random::<u64>()));
            // `mkdir` fails on anything already there, a symlink included: never reused.
            match builder.create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => last = Some(err),
                Err(source) => {
                    return Err(RunnerError::Io { path: path.display().to_string(), source });
                }
            }
        }
        let source = last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into());
        Err(RunnerError::Io { path: parent.display().to_string(), source })
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // std's remove_dir_all does not follow symlinks inside the tree.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reports(summary: &RunSummary) -> String {
    let mut out = String::new();
    for job in &summary.jobs {
        let windows = match job.windows.len() {
            0 | 1 => String::new(),
            n => format!(", {n} windows"),
        };
        out.push_str(&format!("\n# {}{windows}\n", job.name));
        for (processor, report) in &job.reports {
            let text = report.to_string();
            if !text.trim().is_empty() {
                out.push_str(&format!("[{processor}]\n{}\n", text.trim_end()));
            }
        }
    }
    out
}

/// Scrapes the endpoint like Prometheus would and shows the lines a reader cares about.
async fn scraped_metrics(metrics: &MetricsEndpoint) -> String {
    let url = format!("http://{}/metrics", metrics.listen());
    let mut out = format!("\n# metrics served on {url} (a few of the scraped lines)\n");
    match scrape(metrics.listen()).await {
        Ok(page) => {
            let wanted = [
                "flightline_rows_total{",
                "flightline_job_runs_total{",
                "flightline_batch_duration_seconds_count{",
                "demo_log_entries{",
                "flightline_checkpoint_lag_seconds{",
            ];
            for prefix in wanted {
                for line in page.lines().filter(|l| l.starts_with(prefix)).take(3) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        Err(err) => out.push_str(&format!("(scraping {url} failed: {err})\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_directory_is_private_unpredictable_and_removed() {
        let (a, b) = (PrivateDir::create().unwrap(), PrivateDir::create().unwrap());
        assert_ne!(a.path(), b.path());
        let predictable =
            std::env::temp_dir().join(format!("flightline-demo-{}", std::process::id()));
        assert_ne!(a.path(), predictable);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let path = a.path().to_path_buf();
        std::fs::write(path.join("j.checkpoint.json"), "{}").unwrap();
        drop(a);
        assert!(!path.exists());
    }
}
