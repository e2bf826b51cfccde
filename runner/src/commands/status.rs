//! `flightline status jobs.toml`: where each scheduled job stands, from its state backend.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::print_stdout;
use crate::RunnerError;
use crate::checkpoint;
use crate::config::Config;
use crate::shared_state::status::{self, JobState};
use crate::shared_state::{LeaseError, migrate};

/// Arguments of `flightline status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The job file (TOML).
    pub jobs: PathBuf,
}

/// Prints each scheduled job's checkpoint and lag, and with a shared state database the
/// windows committed and the leases held now (who, under which epoch, until when). It takes
/// no lock and leases nothing, so it runs beside the workers; on a fresh database it creates
/// the tables first (the migrations every worker runs).
pub async fn run(args: StatusArgs) -> Result<ExitCode, RunnerError> {
    let config = Config::load(&args.jobs)?;
    let jobs: Vec<String> =
        config.jobs.iter().filter(|j| j.schedule.is_some()).map(|j| j.name.clone()).collect();
    let states = match &config.runner.state_db {
        Some(connection) => {
            let store = connection.describe();
            let refused = |message: String| RunnerError::StateDb { store: store.clone(), message };
            let mut client = connection.connect().await.map_err(&refused)?;
            // A fresh database gets its tables, so that every job reads as not started.
            migrate(&mut client).await.map_err(|e| refused(e.to_string()))?;
            print_stdout(&format!("state: PostgreSQL {store}"))?;
            status::read(&client, &jobs).await.map_err(|e: LeaseError| refused(e.to_string()))?
        }
        None => {
            let dir = &config.runner.state_dir;
            print_stdout(&format!("state: directory {}", dir.display()))?;
            let mut states = Vec::with_capacity(jobs.len());
            for job in &jobs {
                let checkpoint = checkpoint::peek(dir, job)?.map(|c| c.end);
                states.push(JobState {
                    job: job.clone(),
                    checkpoint,
                    committed: 0,
                    leases: vec![],
                });
            }
            states
        }
    };
    print_stdout(&table(&states, config.runner.state_db.is_some(), Utc::now()))?;
    Ok(ExitCode::SUCCESS)
}

/// One line per job, and one under it per lease held.
fn table(states: &[JobState], shared: bool, now: DateTime<Utc>) -> String {
    let width = states.iter().map(|s| s.job.len()).max().unwrap_or(3).max(3);
    let mut out = format!("{:width$}  {:25}  {:>12}", "JOB", "CHECKPOINT", "LAG");
    if shared {
        out.push_str("  COMMITTED  LEASED");
    }
    for state in states {
        let (at, lag) = match state.checkpoint {
            Some(at) => (at.to_rfc3339(), lag(now.signed_duration_since(at).num_seconds())),
            None => ("not started".to_string(), "-".to_string()),
        };
        out.push_str(&format!("\n{:width$}  {at:25}  {lag:>12}", state.job));
        if shared {
            let live = state.leases.iter().filter(|l| l.expires_in_secs >= 0.0).count();
            out.push_str(&format!("  {:>9}  {live:>6}", state.committed));
        }
        for lease in &state.leases {
            let expiry = if lease.expires_in_secs >= 0.0 {
                format!("expires in {:.0}s", lease.expires_in_secs)
            } else {
                format!("expired {:.0}s ago: free to take over", -lease.expires_in_secs)
            };
            out.push_str(&format!(
                "\n  {} held by {} (epoch {}, {expiry})",
                lease.window, lease.owner, lease.epoch
            ));
        }
    }
    out
}

/// `3d 4h`, `2h 5m`, `42s`: the two largest units.
fn lag(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_state::status::HeldLease;
    use flightline_core::TimeRange;

    #[test]
    fn lag_names_its_two_largest_units() {
        assert_eq!(lag(-5), "0s");
        assert_eq!(lag(42), "42s");
        assert_eq!(lag(125), "2m 5s");
        assert_eq!(lag(2 * 3600 + 5 * 60 + 9), "2h 5m");
        assert_eq!(lag(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }

    #[test]
    fn the_table_shows_checkpoints_lag_and_every_lease() {
        let now: DateTime<Utc> = "2024-06-01T12:00:00Z".parse().unwrap();
        let begin: DateTime<Utc> = "2024-06-01T10:00:00Z".parse().unwrap();
        let window = TimeRange::new(begin, begin + chrono::Duration::hours(1)).unwrap();
        let lease = HeldLease { window, owner: "w1/42/ab".into(), epoch: 3, expires_in_secs: -4.2 };
        let states = vec![
            JobState {
                job: "errors".into(),
                checkpoint: Some(begin),
                committed: 7,
                leases: vec![lease],
            },
            JobState { job: "new".into(), checkpoint: None, committed: 0, leases: vec![] },
        ];
        let text = table(&states, true, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("JOB") && lines[0].ends_with("COMMITTED  LEASED"), "{text}");
        assert!(lines[1].starts_with("errors  2024-06-01T10:00:00+00:00"), "{text}");
        // The one lease listed has expired: it is shown, not counted as held.
        assert!(lines[1].contains("2h 0m") && lines[1].ends_with("        7       0"), "{text}");
        assert!(lines[2].contains("held by w1/42/ab (epoch 3, expired 4s ago"), "{text}");
        assert!(lines[3].starts_with("new ") && lines[3].contains("not started"), "{text}");
        assert!(!table(&states[1..], false, now).contains("COMMITTED"));
    }
}
