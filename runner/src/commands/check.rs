//! `flightline check jobs.toml`: everything short of running the jobs.

use std::path::PathBuf;
use std::process::ExitCode;

use flightline_core::TimeRange;
use flightline_core::error::Chain;

use super::print_stdout;
use crate::RunnerError;
use crate::config::{Config, JobConfig, ProcessorKind};
use crate::orchestrate::check_processors;
use crate::sql_time;
use crate::validators;

/// Arguments of `flightline check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The job file (TOML).
    pub jobs: PathBuf,
}

/// Parses the file, builds every processor and validator, runs each job's validators on its
/// SQL (as a run over the last hour would send it) and prints their findings, and asks each
/// job's server to prepare its SQL (which checks tables and columns without running the
/// query). Exit status 0 when all is well, 1 when a job's SQL is refused (by a denying
/// validator under `validation = "deny"`, or by the server); a bad file is an error (status 2).
pub async fn run(args: CheckArgs) -> Result<ExitCode, RunnerError> {
    let config = Config::load(&args.jobs)?;
    check_processors(&config)?;
    let validators = validators::build_all(&config)?;
    let mut bad = 0;
    for (job, validators) in config.jobs.iter().zip(&validators) {
        let (sql, range) = validators::sample(job);
        let findings = validators.run(&sql, range).await;
        let checked = match validators.judge(&job.name, &findings) {
            Ok(()) => check_job(&config, job).await,
            Err(err) => Err(err),
        };
        match checked {
            Ok(columns) => {
                print_stdout(&format!("ok      {} ({columns} result columns)", job.name))?
            }
            Err(err) => {
                bad += 1;
                print_stdout(&format!("FAILED  {}: {}", job.name, Chain(&err)))?;
            }
        }
        for finding in &findings {
            print_stdout(&format!("        {finding}"))?;
        }
    }
    print_stdout(&format!("{} jobs checked, {bad} failed", config.jobs.len()))?;
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn check_job(config: &Config, job: &JobConfig) -> Result<usize, RunnerError> {
    let server = config.servers.get(&job.server).ok_or_else(|| {
        flightline_core::Error::Config(format!("no server named {:?}", job.server))
    })?;
    let client = server.settings.connect().await?;
    let sql = match (job.time_range.uses_sql(), TimeRange::last(chrono::Duration::hours(1))) {
        (true, Ok(sample)) => sql_time::render(&job.sql, &sample),
        _ => job.sql.clone(),
    };
    let prepared = client.prepare(&sql).await?;
    check_sink_columns(job, &prepared.dataset_schema)?;
    Ok(prepared.dataset_schema.fields().len())
}

/// A `postgres_sink` needs a PostgreSQL type for every result column: refused here, with the
/// CAST to write, rather than at the first run's `open`.
fn check_sink_columns(
    job: &JobConfig,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<(), RunnerError> {
    let writes_postgres = job
        .processors
        .iter()
        .any(|p| matches!(&p.kind, ProcessorKind::Builtin(name) if name == "postgres_sink"));
    if writes_postgres {
        flightline_plugins::processors::column_types(schema).map_err(|problem| {
            flightline_core::Error::Config(format!(
                "postgres_sink cannot write the result: {problem}"
            ))
        })?;
    }
    Ok(())
}
