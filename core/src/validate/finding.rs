//! What a validator reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How serious a finding is. Ordered: `Info < Warn < Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never blocks.
    Info,
    /// Likely slow, wasteful or wrong; reported, executed anyway.
    Warn,
    /// Must not run: under [`Policy::Deny`](super::Policy::Deny) the query is refused.
    Deny,
}

impl Severity {
    /// The lowercase name used in JSON, config files and plain-text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Deny => "deny",
        }
    }

    /// A symbol for terminals: `ℹ`, `⚠`, `✖`.
    pub fn icon(self) -> &'static str {
        match self {
            Severity::Info => "ℹ",
            Severity::Warn => "⚠",
            Severity::Deny => "✖",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warn" | "warning" => Ok(Severity::Warn),
            "deny" => Ok(Severity::Deny),
            other => Err(format!("unknown severity {other:?}: expected info, warn or deny")),
        }
    }
}

/// A place in the SQL text, 1-based as sqlparser counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Line, starting at 1.
    pub line: u64,
    /// Column, starting at 1.
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// One thing a validator has to say about a query.
///
/// `code` is stable across releases: policies and config files refer to it (to mute it or raise
/// it to `Deny`). Codes are short `snake_case` words naming the problem, e.g. `order_by_without_limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// Stable identifier of the rule that fired.
    pub code: String,
    /// What is wrong with this query, in its terms.
    pub message: String,
    /// What to do about it.
    pub recommendation: String,
    /// Where in the SQL text, when the rule knows (parse errors do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

impl Finding {
    /// A finding without a position.
    pub fn new(
        severity: Severity,
        code: impl Into<String>,
        message: impl Into<String>,
        recommendation: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            code: code.into(),
            message: message.into(),
            recommendation: recommendation.into(),
            position: None,
        }
    }

    /// The same finding, located at `position`.
    pub fn at(mut self, position: Option<Position>) -> Self {
        self.position = position;
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}] {}", self.severity, self.code, self.message)?;
        if !self.recommendation.is_empty() {
            write!(f, " (recommendation: {})", self.recommendation)?;
        }
        Ok(())
    }
}
