//! Lines 3 to 5 and 8: the guide's job (errors counted by target) run by the `QueryExecutor`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use flightline_core::FlightSqlClient;
use flightline_core::exec::{CancellationToken, ExecOutcome, QueryExecutor, RunRequest};
use flightline_core::process::BatchProcessor;
use futures::future::try_join_all;
use serde_json::json;

use crate::{BenchError, Measurement, Target};

/// The processor the job feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Processor {
    /// The built-in `count_by`: rows with `level <= 2`, counted by `target`.
    CountBy,
    /// `top_targets` linked statically: the same count, kept as the ten largest.
    TopTargets,
    /// `top_targets` loaded from `--plugin` through the C ABI.
    Plugin,
}

/// The guide's job: the query streamed through one processor, `copies` runs at once.
#[derive(Debug, Clone, Args)]
pub struct Job {
    #[command(flatten)]
    target: Target,
    /// The processor.
    #[arg(long, value_enum, default_value_t = Processor::CountBy)]
    processor: Processor,
    /// The `top_targets` shared library, for `--processor plugin`.
    #[arg(long, required_if_eq("processor", "plugin"))]
    plugin: Option<PathBuf>,
    /// Runs of the job at once, each on its own connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    copies: u16,
}

impl Job {
    /// Runs `copies` jobs at once; the measurement sums their rows and bytes, and fails
    /// unless every copy read as many rows as the first.
    pub(crate) async fn run(&self) -> Result<Measurement, BenchError> {
        let outcomes =
            try_join_all((0..self.copies).map(|copy| self.run_one(format!("bench-{copy}"))))
                .await?;
        let mut measured = Measurement::default();
        let first = outcomes.first().map_or(0, |o| o.stats.rows);
        for outcome in &outcomes {
            if outcome.stats.rows != first {
                return Err(BenchError::RowsLost {
                    line: "job".into(),
                    got: outcome.stats.rows,
                    expected: first,
                });
            }
            measured.rows += outcome.stats.rows;
            measured.bytes += outcome.stats.bytes;
            measured.batches += outcome.stats.batches;
        }
        if let Some(outcome) = outcomes.first() {
            measured.reports = outcome
                .reports
                .iter()
                .map(|(name, report)| json!({ "processor": name, "report": report }))
                .collect();
        }
        Ok(measured)
    }

    /// Loads the plugin, if the job has one, once per process and before any query, as the
    /// runner does when it starts: its hash and `dlopen` are the process's cost (in CPU-s), not
    /// the stream's (rows/s). The loads of the runs then find it loaded.
    pub(crate) fn load_plugin(&self) -> Result<(), BenchError> {
        if let (Processor::Plugin, Some(path)) = (self.processor, &self.plugin) {
            flightline_core::plugin::load(path, None)?;
        }
        Ok(())
    }

    async fn run_one(&self, name: String) -> Result<ExecOutcome, BenchError> {
        let client = FlightSqlClient::builder(&self.target.uri).connect().await?;
        let executor = QueryExecutor::new(client).job(name);
        let processors = vec![self.processor()?];
        let cancel = CancellationToken::new();
        Ok(executor
            .run(RunRequest::new(self.target.sql.clone()).processors(processors).cancel(cancel))
            .await?)
    }

    fn processor(&self) -> Result<Box<dyn BatchProcessor>, BenchError> {
        let failed =
            |name: &str, message: String| BenchError::Processor { name: name.into(), message };
        let top = json!({ "top": 10, "max_level": 2 });
        Ok(match (self.processor, &self.plugin) {
            (Processor::CountBy, _) => {
                let options = json!({ "column": "level", "threshold": 2, "group_by": ["target"] });
                flightline_plugins::build_processor("count_by", options)
                    .map_err(|e| failed("count_by", e.to_string()))?
            }
            (Processor::TopTargets, _) => {
                let options = serde_json::from_value(top)
                    .map_err(|e| failed("top_targets", e.to_string()))?;
                Box::new(top_targets::TopTargets::new(options))
            }
            (Processor::Plugin, Some(path)) => {
                let plugin = flightline_core::plugin::load(path, None)?;
                Box::new(plugin.processor(&top)?)
            }
            (Processor::Plugin, None) => {
                return Err(failed("plugin", "give the shared library with --plugin".into()));
            }
        })
    }
}
