//! Statistics of one run: totals, time to first batch, and per-processor batch times.

use std::time::Duration;

use serde::Serialize;

use crate::process::RowEstimate;

/// What one run of [`super::QueryExecutor::run`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExecStats {
    /// Batches delivered to the processors (after re-batching).
    pub batches: u64,
    /// Rows received.
    pub rows: u64,
    /// Arrow bytes received, as held in memory.
    pub bytes: u64,
    /// Time from the start of the run to the end of the last processor.
    pub total: Duration,
    /// Time from the start of the run to the first batch, if one arrived.
    pub time_to_first_batch: Option<Duration>,
    /// The row estimate, if it arrived.
    pub estimate: RowEstimate,
    /// True when the run was cancelled; the figures then cover what ran before.
    pub cancelled: bool,
    /// One entry per processor, in the order given.
    pub processors: Vec<ProcessorStats>,
}

impl ExecStats {
    /// Rows per second over the whole run (0 for an instant run).
    pub fn rows_per_second(&self) -> f64 {
        let seconds = self.total.as_secs_f64();
        if seconds > 0.0 { self.rows as f64 / seconds } else { 0.0 }
    }
}

impl std::fmt::Display for ExecStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} rows, {} batches, {:.1} MiB in {:.3} s ({:.0} rows/s){}",
            self.rows,
            self.batches,
            self.bytes as f64 / (1024.0 * 1024.0),
            self.total.as_secs_f64(),
            self.rows_per_second(),
            if self.cancelled { ", cancelled" } else { "" }
        )?;
        if let Some(first) = self.time_to_first_batch {
            writeln!(
                f,
                "first batch after {:.3} s; estimate: {}",
                first.as_secs_f64(),
                self.estimate
            )?;
        }
        for p in &self.processors {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Batch times of one processor.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ProcessorStats {
    /// The processor's name.
    pub name: String,
    /// Batches it processed.
    pub batches: u64,
    /// Mean time per batch.
    pub mean: Duration,
    /// Median time per batch.
    pub p50: Duration,
    /// 95th percentile time per batch.
    pub p95: Duration,
    /// Longest time for one batch.
    pub max: Duration,
}

impl ProcessorStats {
    /// Summarises the batch times of processor `name` (nearest-rank percentiles).
    pub fn from_times(name: &str, mut times: Vec<Duration>) -> Self {
        times.sort_unstable();
        let n = times.len();
        let total: Duration = times.iter().sum();
        let rank = |q: f64| -> Duration {
            if n == 0 {
                return Duration::ZERO;
            }
            let index = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            times[index]
        };
        Self {
            name: name.to_string(),
            batches: n as u64,
            mean: if n == 0 { Duration::ZERO } else { total / n as u32 },
            p50: rank(0.50),
            p95: rank(0.95),
            max: times.last().copied().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for ProcessorStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} batches, mean {:?}, p50 {:?}, p95 {:?}, max {:?}",
            self.name, self.batches, self.mean, self.p50, self.p95, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let times = (1..=100).rev().map(Duration::from_millis).collect();
        let stats = ProcessorStats::from_times("p", times);
        assert_eq!(stats.batches, 100);
        assert_eq!(stats.p50, Duration::from_millis(50));
        assert_eq!(stats.p95, Duration::from_millis(95));
        assert_eq!(stats.max, Duration::from_millis(100));
        assert_eq!(stats.mean, Duration::from_micros(50_500));
        assert_eq!(ProcessorStats::from_times("none", Vec::new()).max, Duration::ZERO);
    }

    #[test]
    fn rows_per_second_of_an_instant_run_is_zero() {
        let stats = ExecStats { rows: 10, ..ExecStats::default() };
        assert_eq!(stats.rows_per_second(), 0.0);
        let stats = ExecStats { rows: 10, total: Duration::from_secs(2), ..stats };
        assert_eq!(stats.rows_per_second(), 5.0);
    }
}
