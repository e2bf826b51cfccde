//! `flightline validate`: the built-in validators on a query, with the result schema from the
//! server, without running the query. Exit status 0 when the query may run, 1 when a finding
//! is `deny`, 2 for a usage or credentials error, 3 when the server could not be asked.

use std::io::IsTerminal;
use std::process::ExitCode;

use flightline_core::Error;
use flightline_core::validate::{
    Finding, Override, Policy, SchemaSource, Severity, ValidationContext, ValidationPipeline,
    validate_query,
};
use flightline_plugins::{ValidatorLimits, builtin_pipeline_with};

use super::print_stdout;
use super::schema::SizeArgs;
use crate::RunnerError;
use crate::connect::{ConnectArgs, RangeArgs};

/// Arguments of `flightline validate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 the query may run; 1 a finding is deny; 2 a usage or \
                        credentials error; 3 the server could not be asked (unreachable, TLS, \
                        internal error) so the query was not fully checked: retry, or use \
                        --offline for the SQL text rules only.")]
pub struct ValidateArgs {
    /// The query to check; it is parsed locally and prepared on the server, never executed.
    pub sql: String,
    /// Server connection (used to learn the result schema).
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The time range the query will run with (a range satisfies the time-filter rule).
    #[command(flatten)]
    pub range: RangeArgs,
    /// Size assumptions for the row-size estimate.
    #[command(flatten)]
    pub size: SizeArgs,
    /// Print the findings as a JSON list of {severity, code, message, recommendation}.
    #[arg(long)]
    pub json: bool,
    /// Do not contact the server: check the SQL text only (the schema rules stay silent).
    /// Without it, a server that cannot be asked ends the command with exit status 3.
    #[arg(long)]
    pub offline: bool,
    /// Change a rule by code: CODE=mute|info|warn|deny (repeatable), e.g.
    /// `--override no_time_filter=deny`.
    #[arg(long = "override", value_name = "CODE=ACTION")]
    pub overrides: Vec<String>,
    /// Warn above this many result columns.
    #[arg(long, value_name = "N", default_value_t = ValidatorLimits::default().max_columns)]
    pub max_columns: usize,
    /// Warn above this estimated row size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ValidatorLimits::default().max_row_bytes)]
    pub max_row_bytes: f64,
    /// Flag `SELECT *` returning more than this many columns.
    #[arg(long, value_name = "N", default_value_t = ValidatorLimits::default().wide_select_star_columns)]
    pub wide_columns: usize,
}

/// Runs the command: prints the findings; exit status 1 on any `deny` finding, 0 otherwise.
///
/// Fails closed: when the server cannot be asked for the result schema (unreachable, TLS,
/// an internal error), the query was not fully checked, and the command exits with status 3
/// (see [`RunnerError::ServerCheck`]) instead of passing it; `--offline` runs only the rules
/// that read the SQL text. Credentials or options the server refuses exit with status 2.
pub async fn run(args: ValidateArgs) -> Result<ExitCode, RunnerError> {
    let pipeline = pipeline(&args)?;
    let mut ctx = ValidationContext::new(args.sql.as_str());
    ctx.set_time_range(args.range.time_range()?);
    let source = if args.offline {
        SchemaSource::Offline
    } else {
        SchemaSource::Connect(args.connect.builder()?)
    };
    let mut report = validate_query(&pipeline, ctx, source, &args.size.options())
        .await
        .map_err(|err| server_failure(&args.connect.uri, err))?;
    report.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    print_findings(&report.findings, args.json)?;
    Ok(if report.is_denied() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Credentials the server refuses and options that cannot work are the caller's to fix (exit
/// status 2, as for every command); anything else means the server could not be asked.
fn server_failure(uri: &str, err: Error) -> RunnerError {
    match err {
        Error::Unauthenticated { .. }
        | Error::PermissionDenied { .. }
        | Error::Config(_)
        | Error::TimeRange { .. } => RunnerError::Core(err),
        source => RunnerError::ServerCheck { uri: uri.to_string(), source },
    }
}

fn pipeline(args: &ValidateArgs) -> Result<ValidationPipeline, RunnerError> {
    let limits = ValidatorLimits {
        max_columns: args.max_columns,
        max_row_bytes: args.max_row_bytes,
        wide_select_star_columns: args.wide_columns,
    };
    let mut pipeline = builtin_pipeline_with(&limits, Policy::Deny);
    for spec in &args.overrides {
        let (code, action) = parse_override(spec)?;
        pipeline = pipeline.with_override(code, action);
    }
    Ok(pipeline)
}

fn parse_override(spec: &str) -> Result<(&str, Override), RunnerError> {
    let bad = |reason: String| {
        RunnerError::Core(Error::Config(format!(
            "--override {spec:?}: {reason}; write CODE=ACTION, e.g. --override no_time_filter=deny"
        )))
    };
    let (code, action) = spec.split_once('=').ok_or_else(|| bad("no '='".to_string()))?;
    let code = code.trim();
    if code.is_empty() {
        return Err(bad("empty code".to_string()));
    }
    Ok((code, action.parse::<Override>().map_err(bad)?))
}

fn print_findings(findings: &[Finding], json: bool) -> Result<(), RunnerError> {
    let text = if json {
        serde_json::to_string_pretty(findings).map_err(|e| RunnerError::Io {
            path: "stdout".into(),
            source: std::io::Error::other(e),
        })?
    } else {
        render(findings, std::io::stdout().is_terminal())
    };
    print_stdout(&text)
}

/// Findings as text: with icons for a terminal, plain words for pipes and files.
pub fn render(findings: &[Finding], terminal: bool) -> String {
    let mut lines = Vec::new();
    for finding in findings {
        let head = format!("{} {}: {}", finding.severity, finding.code, finding.message);
        if terminal {
            lines.push(format!("{} {head}", finding.severity.icon()));
            lines.push(format!("  → {}", finding.recommendation));
        } else {
            lines.push(head);
            lines.push(format!("  recommendation: {}", finding.recommendation));
        }
    }
    lines.push(summary(findings, terminal));
    lines.join("\n")
}

fn summary(findings: &[Finding], terminal: bool) -> String {
    if findings.is_empty() {
        let ok = "no findings: the query passes every rule";
        return if terminal { format!("✔ {ok}") } else { ok.to_string() };
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let verdict = if count(Severity::Deny) > 0 { "refused" } else { "allowed" };
    format!(
        "{} finding(s): {} deny, {} warn, {} info; {verdict}",
        findings.len(),
        count(Severity::Deny),
        count(Severity::Warn),
        count(Severity::Info)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity, code: &str) -> Finding {
        Finding::new(severity, code, format!("{code} message"), format!("fix {code}"))
    }

    #[test]
    fn plain_text_has_no_icons_and_names_each_recommendation() {
        let text = render(&[finding(Severity::Warn, "order_by_without_limit")], false);
        assert_eq!(
            text,
            "warn order_by_without_limit: order_by_without_limit message\n  \
             recommendation: fix order_by_without_limit\n\
             1 finding(s): 0 deny, 1 warn, 0 info; allowed"
        );
    }

    #[test]
    fn terminal_text_has_icons() {
        let text = render(&[finding(Severity::Deny, "not_read_only")], true);
        assert!(text.starts_with("✖ deny not_read_only:"), "{text}");
        assert!(text.contains("  → fix not_read_only"), "{text}");
        assert!(text.ends_with("refused"), "{text}");
        assert_eq!(render(&[], true), "✔ no findings: the query passes every rule");
    }

    #[test]
    fn overrides_parse_or_explain() {
        let (code, action) = parse_override("no_time_filter=deny").unwrap();
        assert_eq!((code, action), ("no_time_filter", Override::Severity(Severity::Deny)));
        assert_eq!(parse_override("x=mute").unwrap().1, Override::Mute);
        for bad in ["no_time_filter", "=deny", "x=loud"] {
            let err = parse_override(bad).unwrap_err().to_string();
            assert!(err.contains("CODE=ACTION"), "{err}");
        }
    }
}
