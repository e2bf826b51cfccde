//! From a job's validator entries to the checks run before each of its queries: built-in rules
//! through the plugins crate's registry, validator plugins through the same pinned loader as
//! processor plugins. A job without a `validators` key gets every built-in rule.
//!
//! A job's validators are built once, before any job runs (plugins loaded once per file), and
//! then checked before every run: the one-shot run, and each window of a scheduled job, on the
//! SQL as it will be sent (placeholders rendered) and with the window as the time range.

use std::sync::Arc;

use flightline_core::TimeRange;
use flightline_core::validate::{
    Finding, Override, Policy, QueryValidator, Severity, ValidationContext,
};
use flightline_plugins::validators::{build_validator, validator_names};

use crate::RunnerError;
use crate::config::{Config, JobConfig, ProcessorKind, RangeSpec, ValidatorSpec};
use crate::error::ConfigIssue;
use crate::sql_time;

/// A job's validators and its `validation` policy. Cheap to clone: validators are shared.
#[derive(Clone)]
pub struct JobValidators {
    policy: Policy,
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    label: String,
    validator: Arc<dyn QueryValidator>,
    severity: Option<Override>,
}

impl std::fmt::Debug for JobValidators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.entries.iter().map(|e| e.label.as_str()).collect();
        f.debug_struct("JobValidators")
            .field("policy", &self.policy)
            .field("validators", &labels)
            .finish()
    }
}

/// A finding and the validator that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledFinding {
    /// The rule name, or the plugin's name and path.
    pub validator: String,
    /// What it found, after the entry's `severity`.
    pub finding: Finding,
}

impl std::fmt::Display for LabelledFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "validator {}: {}", self.validator, self.finding)
    }
}

/// Builds every job's validators (in job order), loading each plugin: what cannot be built is
/// reported for every job at once, with the file, line and key of its entry.
pub fn build_all(config: &Config) -> Result<Vec<JobValidators>, RunnerError> {
    let mut issues = Vec::new();
    let mut out = Vec::new();
    for (index, job) in config.jobs.iter().enumerate() {
        let mut entries = Vec::new();
        for (v, spec) in job.validators.iter().flatten().enumerate() {
            match build(job, spec) {
                Ok(entry) => entries.push(entry),
                Err(err) => issues.push(ConfigIssue {
                    file: config.path.clone(),
                    line: spec.line,
                    key: format!("job[{index}].validators[{v}]"),
                    value: None,
                    message: err.to_string(),
                }),
            }
        }
        if job.validators.is_none() {
            entries = builtin(job)?;
        }
        out.push(JobValidators { policy: job.validation, entries });
    }
    if issues.is_empty() { Ok(out) } else { Err(RunnerError::Config(issues)) }
}

fn build(job: &JobConfig, spec: &ValidatorSpec) -> Result<Entry, RunnerError> {
    let fail = |message: String| RunnerError::Validator {
        job: job.name.clone(),
        validator: spec.kind.label(),
        message,
    };
    let (label, validator) = match &spec.kind {
        ProcessorKind::Builtin(rule) => {
            let validator =
                build_validator(rule, spec.options.clone()).map_err(|e| fail(e.to_string()))?;
            (rule.clone(), validator)
        }
        // The processors' loader: the pin is checked before loading, each file loaded once.
        ProcessorKind::Plugin { path, sha256 } => {
            let validator = flightline_core::plugin::load(path, sha256.as_deref())
                .and_then(|plugin| plugin.validator(&spec.options))
                .map_err(|e| fail(e.to_string()))?;
            let label = format!("{} ({})", validator.name(), path.display());
            (label, Arc::new(validator) as Arc<dyn QueryValidator>)
        }
    };
    Ok(Entry { label, validator, severity: spec.severity })
}

/// Every built-in rule with its default options: a job without `validators`.
fn builtin(job: &JobConfig) -> Result<Vec<Entry>, RunnerError> {
    validator_names()
        .iter()
        .map(|rule| {
            let spec = ValidatorSpec {
                kind: ProcessorKind::Builtin(rule.to_string()),
                options: serde_json::json!({}),
                severity: None,
                line: job.line,
            };
            build(job, &spec)
        })
        .collect()
}

impl JobValidators {
    /// The job's `validation` policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Every validator's findings on `sql` (as it will be sent) with `range` as its time range,
    /// each entry's `severity` applied; none under `validation = "off"`, where nothing runs.
    pub async fn run(&self, sql: &str, range: Option<TimeRange>) -> Vec<LabelledFinding> {
        if self.policy == Policy::Off {
            return Vec::new();
        }
        let mut ctx = ValidationContext::new(sql);
        ctx.set_time_range(range);
        let mut out = Vec::new();
        for entry in &self.entries {
            for mut finding in entry.validator.validate(&ctx).await {
                match entry.severity {
                    Some(Override::Mute) => continue,
                    Some(Override::Severity(severity)) => finding.severity = severity,
                    None => {}
                }
                out.push(LabelledFinding { validator: entry.label.clone(), finding });
            }
        }
        out
    }

    /// Refuses the run when the policy is `deny` and a finding is `deny`: the error names the
    /// job, and each denying validator with its finding.
    pub fn judge(&self, job: &str, findings: &[LabelledFinding]) -> Result<(), RunnerError> {
        if self.policy != Policy::Deny {
            return Ok(());
        }
        let denied: Vec<String> = findings
            .iter()
            .filter(|f| f.finding.severity == Severity::Deny)
            .map(LabelledFinding::to_string)
            .collect();
        if denied.is_empty() {
            Ok(())
        } else {
            Err(RunnerError::ValidationDenied { job: job.to_string(), denied })
        }
    }

    /// Runs the validators before a run of `job` over `window`, on `sql`: logs the findings
    /// worth a look, and refuses as [`judge`](Self::judge) does.
    pub async fn screen(
        &self,
        job: &JobConfig,
        sql: &str,
        window: Option<TimeRange>,
    ) -> Result<(), RunnerError> {
        let findings = self.run(sql, window).await;
        for f in findings.iter().filter(|f| f.finding.severity >= Severity::Warn) {
            let finding = &f.finding;
            tracing::warn!(job = %job.name, validator = %f.validator, code = %finding.code, severity = %finding.severity, "{}", finding.message);
        }
        self.judge(&job.name, &findings)
    }
}

/// The SQL and time range `flightline check` validates a job with: a run over the last hour
/// for a job with a range or a schedule, the SQL alone otherwise.
pub fn sample(job: &JobConfig) -> (String, Option<TimeRange>) {
    let ranged = job.range != RangeSpec::None || job.schedule.is_some();
    let sample = TimeRange::last(chrono::Duration::hours(1)).ok().filter(|_| ranged);
    let sql = match (&sample, job.time_range.uses_sql()) {
        (Some(range), true) => sql_time::render(&job.sql, range),
        _ => job.sql.clone(),
    };
    (sql, sample)
}
