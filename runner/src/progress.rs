//! What a person (or a log collector) sees while jobs run: one progress bar per running job on
//! a terminal, plain log lines otherwise, and the summary table at the end.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use flightline_core::TimeRange;
use flightline_core::exec::{ProgressEvent, ProgressObserver};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::summary::{JobSummary, RunSummary};

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, log lines otherwise.
    #[default]
    Auto,
    /// Always draw bars.
    Always,
    /// Never draw bars: log lines only.
    Never,
}

/// What one runner draws on the terminal: progress bars, or nothing (log lines are always
/// written through tracing).
#[derive(Debug, Clone)]
pub struct ProgressDisplay {
    multi: Option<MultiProgress>,
}

impl ProgressDisplay {
    /// A display for `mode`.
    pub fn new(mode: ProgressMode) -> Self {
        let bars = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Always => true,
            ProgressMode::Never => false,
        };
        let multi = bars.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            crate::terminal::show_bars(multi.clone());
            multi
        });
        Self { multi }
    }

    /// True when bars are drawn.
    pub fn has_bars(&self) -> bool {
        self.multi.is_some()
    }

    /// The progress of one run of `job` over `window`, whose query carries `request_id`.
    pub fn run(&self, job: &str, window: Option<&TimeRange>, request_id: &str) -> RunProgress {
        let label = match window {
            Some(w) => {
                format!("{job} {}..{}", w.begin.format("%H:%M:%S"), w.end.format("%H:%M:%S"))
            }
            None => job.to_string(),
        };
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner().with_prefix(label.clone()));
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {prefix:<28} {wide_msg} [{elapsed}]")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        RunProgress { bar, label: Arc::from(label), request_id: Arc::from(request_id) }
    }

    /// Prints a line above the bars (or to stderr).
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

/// Renders the executor's events for one run.
#[derive(Debug)]
pub struct RunProgress {
    bar: Option<ProgressBar>,
    label: Arc<str>,
    request_id: Arc<str>,
}

impl RunProgress {
    /// Removes the bar (the summary says how it went).
    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        self.done();
    }
}

impl ProgressObserver for RunProgress {
    fn on_event(&self, event: &ProgressEvent<'_>) {
        match event {
            ProgressEvent::Batch { batches, rows, bytes, elapsed, .. } => {
                if let Some(bar) = &self.bar {
                    let percent = event.percent();
                    let done = match (percent, crate::live::eta_seconds(percent, *elapsed)) {
                        (Some(p), Some(eta)) => format!(" {p:.0}%, ETA {}", human_seconds(eta)),
                        (Some(p), None) => format!(" {p:.0}%"),
                        _ => String::new(),
                    };
                    let rate = event.rows_per_second().unwrap_or(0.0);
                    bar.set_message(format!(
                        "{rows} rows{done}, {batches} batches, {}, {} rows/s",
                        human_bytes(*bytes),
                        rate as u64
                    ));
                }
            }
            ProgressEvent::Estimate(estimate) => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("estimate: {estimate}"));
                }
            }
            ProgressEvent::Finished(stats) => {
                tracing::info!(
                    run = %self.label,
                    request_id = %self.request_id,
                    rows = stats.rows,
                    batches = stats.batches,
                    bytes = stats.bytes,
                    seconds = stats.total.as_secs_f64(),
                    cancelled = stats.cancelled,
                    "run finished"
                );
            }
            _ => {}
        }
    }
}

/// `42s`, `3m05s`.
fn human_seconds(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    if whole < 60 { format!("{whole}s") } else { format!("{}m{:02}s", whole / 60, whole % 60) }
}

/// `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// The summary table, one line per job, then a line per job that failed with its last error.
pub fn summary_table(summary: &RunSummary) -> String {
    let mut out = format!(
        "{:<22} {:>5} {:>6} {:>7} {:>11} {:>8} {:>10} {:>8} {:>11}\n",
        "job", "runs", "failed", "retries", "rows", "batches", "data", "seconds", "rows/s"
    );
    for job in &summary.jobs {
        out.push_str(&summary_line(job));
    }
    for job in summary.jobs.iter().filter(|j| j.last_error.is_some()) {
        if let Some(err) = &job.last_error {
            out.push_str(&format!("{}: last error: {err}\n", job.name));
        }
    }
    out
}

fn summary_line(job: &JobSummary) -> String {
    let seconds = job.busy.as_secs_f64();
    format!(
        "{:<22} {:>5} {:>6} {:>7} {:>11} {:>8} {:>10} {:>8.3} {:>11.0}\n",
        job.name,
        job.runs_ok,
        job.runs_failed,
        job.retries,
        job.rows,
        job.batches,
        human_bytes(job.bytes),
        seconds,
        job.rows as f64 / seconds.max(1e-9)
    )
}
