//! Running validators under a policy.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::context::ValidationContext;
use super::finding::{Finding, Severity};
use crate::error::{Error, Result};

/// A rule (or a set of rules) checked before a query runs.
///
/// Object safe and `Send + Sync`, so pipelines hold `Arc<dyn QueryValidator>` and run from any
/// task. `validate` is async so that a validator may consult a service (a quota, a catalog); the
/// built-in ones do not await anything.
#[async_trait]
pub trait QueryValidator: Send + Sync {
    /// A short name for logs and listings (codes, not names, identify findings).
    fn name(&self) -> &str;

    /// Every finding this validator has about the query; empty when it has nothing to say.
    /// Must not panic, whatever the SQL: a validator that cannot judge returns nothing.
    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding>;
}

/// What a pipeline does with findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Run no validator; never refuse.
    Off,
    /// Run every validator and report every finding, but never refuse.
    Warn,
    /// Run every validator; refuse the query when any finding (after overrides) is `Deny`.
    #[default]
    Deny,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Off => "off",
            Policy::Warn => "warn",
            Policy::Deny => "deny",
        })
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Policy::Off),
            "warn" => Ok(Policy::Warn),
            "deny" => Ok(Policy::Deny),
            other => {
                Err(format!("unknown validation policy {other:?}: expected off, warn or deny"))
            }
        }
    }
}

/// A per-code change applied to findings before the policy judges them.
///
/// Written in config files as `"mute"`, `"info"`, `"warn"` or `"deny"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Override {
    /// Drop findings with this code.
    Mute,
    /// Report findings with this code at this severity instead (raise a `Warn` to `Deny`, or
    /// lower a `Deny` a dialect difference makes spurious).
    Severity(Severity),
}

impl FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("mute") {
            return Ok(Override::Mute);
        }
        s.parse::<Severity>()
            .map(Override::Severity)
            .map_err(|_| format!("unknown override {s:?}: expected mute, info, warn or deny"))
    }
}

impl TryFrom<String> for Override {
    type Error = String;

    fn try_from(value: String) -> std::result::Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Override> for String {
    fn from(value: Override) -> Self {
        match value {
            Override::Mute => "mute".to_string(),
            Override::Severity(severity) => severity.as_str().to_string(),
        }
    }
}

/// The outcome of a pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationReport {
    /// The policy the run was judged under.
    pub policy: Policy,
    /// Every finding, in validator order, after overrides.
    pub findings: Vec<Finding>,
}

impl ValidationReport {
    /// Whether the query must not run: the policy is `Deny` and some finding is `Deny`.
    pub fn is_denied(&self) -> bool {
        self.policy == Policy::Deny && self.has_severity(Severity::Deny)
    }

    /// Whether any finding has exactly this severity.
    pub fn has_severity(&self, severity: Severity) -> bool {
        self.findings.iter().any(|f| f.severity == severity)
    }

    /// The most serious severity among the findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// The findings when the query may run, [`Error::ValidationDenied`] (carrying every finding)
    /// when it must not.
    pub fn into_result(self) -> Result<Vec<Finding>> {
        if self.is_denied() {
            Err(Error::ValidationDenied { findings: self.findings })
        } else {
            Ok(self.findings)
        }
    }
}

/// Validators run in order under a [`Policy`] and per-code [`Override`]s. Cheap to clone.
#[derive(Clone, Default)]
pub struct ValidationPipeline {
    validators: Vec<Arc<dyn QueryValidator>>,
    policy: Policy,
    overrides: BTreeMap<String, Override>,
}

impl fmt::Debug for ValidationPipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationPipeline")
            .field("validators", &self.validator_names())
            .field("policy", &self.policy)
            .field("overrides", &self.overrides)
            .finish()
    }
}

impl ValidationPipeline {
    /// An empty pipeline under [`Policy::Deny`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a validator.
    pub fn with_validator(mut self, validator: impl QueryValidator + 'static) -> Self {
        self.validators.push(Arc::new(validator));
        self
    }

    /// Appends validators that are already shared.
    pub fn with_validators(
        mut self,
        validators: impl IntoIterator<Item = Arc<dyn QueryValidator>>,
    ) -> Self {
        self.validators.extend(validators);
        self
    }

    /// Appends a validator in place.
    pub fn push(&mut self, validator: Arc<dyn QueryValidator>) {
        self.validators.push(validator);
    }

    /// Sets the policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the override for findings with `code` (the last one set for a code wins).
    pub fn with_override(mut self, code: impl Into<String>, action: Override) -> Self {
        self.overrides.insert(code.into(), action);
        self
    }

    /// Drops findings with `code`.
    pub fn mute(self, code: impl Into<String>) -> Self {
        self.with_override(code, Override::Mute)
    }

    /// Reports findings with `code` as `Deny`.
    pub fn deny(self, code: impl Into<String>) -> Self {
        self.with_override(code, Override::Severity(Severity::Deny))
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Names of the validators, in run order.
    pub fn validator_names(&self) -> Vec<&str> {
        self.validators.iter().map(|v| v.name()).collect()
    }

    /// Runs every validator in order (none under [`Policy::Off`]) and applies the overrides.
    pub async fn run(&self, ctx: &ValidationContext) -> ValidationReport {
        let mut findings = Vec::new();
        if self.policy != Policy::Off {
            for validator in &self.validators {
                let found = validator.validate(ctx).await;
                findings.extend(found.into_iter().filter_map(|f| self.adjust(f)));
            }
        }
        ValidationReport { policy: self.policy, findings }
    }

    /// Runs the pipeline and refuses: [`Error::ValidationDenied`] when the report is denied,
    /// the report otherwise.
    pub async fn check(&self, ctx: &ValidationContext) -> Result<ValidationReport> {
        let report = self.run(ctx).await;
        let policy = report.policy;
        report.into_result().map(|findings| ValidationReport { policy, findings })
    }

    /// Applies the override for `finding`'s code: `None` when muted. For findings made outside
    /// the validators (e.g. the server refusing to prepare the query), so they obey the same
    /// overrides.
    pub fn adjust(&self, mut finding: Finding) -> Option<Finding> {
        match self.overrides.get(&finding.code) {
            None => Some(finding),
            Some(Override::Mute) => None,
            Some(Override::Severity(severity)) => {
                finding.severity = *severity;
                Some(finding)
            }
        }
    }
}
