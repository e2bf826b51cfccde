//! `flightline run jobs.toml`: the worker.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::RunnerError;
use crate::config::Config;
use crate::live::LiveStatus;
use crate::metrics::{MetricsEndpoint, Serving};
use crate::orchestrate::{self, RunOptions};
use crate::progress::{ProgressDisplay, ProgressMode, summary_table};
use crate::shutdown::{EXIT_CUT, Signals};

/// Arguments of `flightline run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Stopping: on Ctrl-C or SIGTERM no new run starts and runs in flight get \
[runner].shutdown_grace, then they are cancelled without advancing their checkpoints; the process \
exits at most 10 s after the grace whatever they do. A second signal exits at once.\n\n\
Exit status: 0 every job succeeded, or a signal stopped the run with nothing cut; 1 a job \
failed; 2 an error (job file, state directory, ...); 4 a signal cut runs in flight (they run \
again next time).")]
pub struct RunArgs {
    /// The job file (TOML).
    pub jobs: PathBuf,
    /// Process what is due now (every one-shot job, every due window) and exit.
    #[arg(long)]
    pub once: bool,
    /// Progress bars: auto (on a terminal), always, never (log lines only).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Forget JOB's checkpoint when its configuration changed and start over (`all`: every
    /// job). Repeatable.
    #[arg(long = "reset-checkpoint", value_name = "JOB")]
    pub reset_checkpoint: Vec<String>,
    /// Keep JOB's checkpoint position although its configuration changed (`all`: every job).
    /// Repeatable.
    #[arg(long = "continue-checkpoint", value_name = "JOB")]
    pub continue_checkpoint: Vec<String>,
}

/// Runs the jobs until they are done or a signal stops them. Exit status 0 when every job
/// succeeded or a signal stopped the run with nothing cut, 1 when a job failed,
/// [`EXIT_CUT`] when a signal cut runs in flight (see [`crate::shutdown`]).
pub async fn run(args: RunArgs) -> Result<ExitCode, RunnerError> {
    let config = Config::load(&args.jobs)?;
    let signals = Signals::watch(config.runner.shutdown_grace)?;
    let live = LiveStatus::of(&config);
    if let Some(http) = &config.http {
        let serving = Serving { live: Some(Arc::clone(&live)), token: http.token.clone() };
        let endpoint = MetricsEndpoint::serve(http.listen, serving)?;
        // Scripts and tests read these lines to learn where to look.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "flightline: metrics on http://{}/metrics", endpoint.listen());
        let _ = writeln!(out, "flightline: status page on http://{}/", endpoint.listen());
        let _ = out.flush();
    }
    let options = RunOptions {
        once: args.once,
        reset_checkpoint: args.reset_checkpoint,
        continue_checkpoint: args.continue_checkpoint,
        live: Some(live),
    };
    let summary =
        orchestrate::run(&config, options, ProgressDisplay::new(args.progress), signals.first())
            .await?;
    super::print_stdout(summary_table(&summary).trim_end())?;
    if summary.cut {
        eprintln!(
            "flightline: stopped by a signal; runs still in flight after the grace were cut \
             and will run again next time (exit status {EXIT_CUT})"
        );
        return Ok(ExitCode::from(EXIT_CUT));
    }
    if summary.interrupted {
        eprintln!("flightline: stopped by a signal; unfinished windows will run again next time");
    }
    let failed = summary.failed_jobs();
    Ok(if failed.is_empty() || summary.interrupted { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
