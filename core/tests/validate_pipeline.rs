//! `ValidationPipeline`: order, policies, overrides and the refusal error, with test validators.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use flightline_core::validate::{
    Finding, Override, Policy, QueryValidator, Severity, ValidationContext, ValidationPipeline,
};
use flightline_core::{Error, TimeRange};

/// Reports fixed findings and counts its runs.
struct Fixed {
    name: &'static str,
    findings: Vec<Finding>,
    runs: Arc<AtomicUsize>,
}

impl Fixed {
    fn new(name: &'static str, findings: &[(Severity, &str)]) -> Self {
        Self {
            name,
            findings: findings
                .iter()
                .map(|(s, c)| Finding::new(*s, *c, format!("{c} happened"), format!("fix {c}")))
                .collect(),
            runs: Arc::new(AtomicUsize::new(0)),
        }
    }
}

#[async_trait]
impl QueryValidator for Fixed {
    fn name(&self) -> &str {
        self.name
    }

    async fn validate(&self, _ctx: &ValidationContext) -> Vec<Finding> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        self.findings.clone()
    }
}

fn codes(findings: &[Finding]) -> Vec<(Severity, &str)> {
    findings.iter().map(|f| (f.severity, f.code.as_str())).collect()
}

fn two_validators(policy: Policy) -> ValidationPipeline {
    ValidationPipeline::new()
        .with_policy(policy)
        .with_validator(Fixed::new("first", &[(Severity::Warn, "slow"), (Severity::Info, "fyi")]))
        .with_validator(Fixed::new("second", &[(Severity::Deny, "forbidden")]))
}

#[tokio::test]
async fn findings_come_in_validator_order() {
    let pipeline = two_validators(Policy::Warn);
    assert_eq!(pipeline.validator_names(), ["first", "second"]);
    let report = pipeline.run(&ValidationContext::new("SELECT 1")).await;
    assert_eq!(
        codes(&report.findings),
        [(Severity::Warn, "slow"), (Severity::Info, "fyi"), (Severity::Deny, "forbidden")]
    );
    assert_eq!(report.max_severity(), Some(Severity::Deny));
}

#[tokio::test]
async fn deny_policy_refuses_on_a_deny_finding_and_keeps_every_finding() {
    let pipeline = two_validators(Policy::Deny);
    let err = pipeline.check(&ValidationContext::new("SELECT 1")).await.unwrap_err();
    match err {
        Error::ValidationDenied { findings } => assert_eq!(findings.len(), 3),
        other => panic!("expected ValidationDenied, got {other:?}"),
    }
}

#[tokio::test]
async fn denied_error_message_names_the_codes() {
    let report = two_validators(Policy::Deny).run(&ValidationContext::new("SELECT 1")).await;
    assert!(report.is_denied());
    let message = report.into_result().unwrap_err().to_string();
    assert!(message.contains("[forbidden] forbidden happened"), "{message}");
    assert!(message.contains("[slow]"), "{message}");
}

#[tokio::test]
async fn warn_policy_reports_deny_findings_but_never_refuses() {
    let report =
        two_validators(Policy::Warn).check(&ValidationContext::new("SELECT 1")).await.unwrap();
    assert!(!report.is_denied());
    assert!(report.has_severity(Severity::Deny));
    assert_eq!(report.into_result().unwrap().len(), 3);
}

#[tokio::test]
async fn check_judges_exactly_as_into_result() {
    for policy in [Policy::Off, Policy::Warn, Policy::Deny] {
        let pipeline = two_validators(policy);
        let ctx = ValidationContext::new("SELECT 1");
        match (pipeline.check(&ctx).await, pipeline.run(&ctx).await.into_result()) {
            (Ok(report), Ok(findings)) => {
                assert_eq!(report.policy, policy);
                assert_eq!(report.findings, findings);
            }
            (
                Err(Error::ValidationDenied { findings: checked }),
                Err(Error::ValidationDenied { findings: judged }),
            ) => assert_eq!(checked, judged),
            other => panic!("{policy}: check and into_result disagree: {other:?}"),
        }
    }
}

#[tokio::test]
async fn off_policy_runs_nothing() {
    let validator = Fixed::new("counted", &[(Severity::Deny, "forbidden")]);
    let runs = validator.runs.clone();
    let pipeline = ValidationPipeline::new().with_policy(Policy::Off).with_validator(validator);
    let report = pipeline.check(&ValidationContext::new("DROP TABLE x")).await.unwrap();
    assert!(report.findings.is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    let pipeline = pipeline.with_policy(Policy::Deny);
    assert!(pipeline.check(&ValidationContext::new("SELECT 1")).await.is_err());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn overrides_raise_lower_and_mute_by_code() {
    let pipeline = two_validators(Policy::Deny)
        .deny("slow")
        .mute("fyi")
        .with_override("forbidden", Override::Severity(Severity::Warn));
    let report = pipeline.run(&ValidationContext::new("SELECT 1")).await;
    assert_eq!(codes(&report.findings), [(Severity::Deny, "slow"), (Severity::Warn, "forbidden")]);
    assert!(report.is_denied());

    let relaxed = pipeline.mute("slow");
    let report = relaxed.check(&ValidationContext::new("SELECT 1")).await.unwrap();
    assert_eq!(codes(&report.findings), [(Severity::Warn, "forbidden")]);
}

#[tokio::test]
async fn an_empty_pipeline_accepts_anything() {
    let report =
        ValidationPipeline::new().check(&ValidationContext::new("this is not sql")).await.unwrap();
    assert!(report.findings.is_empty());
    assert_eq!(report.policy, Policy::Deny);
}

#[test]
fn policies_and_overrides_parse_from_config_words() {
    assert_eq!("off".parse::<Policy>(), Ok(Policy::Off));
    assert_eq!(" Warn ".parse::<Policy>(), Ok(Policy::Warn));
    assert_eq!("deny".parse::<Policy>(), Ok(Policy::Deny));
    assert!("strict".parse::<Policy>().unwrap_err().contains("off, warn or deny"));
    assert_eq!(Policy::default(), Policy::Deny);

    assert_eq!("mute".parse::<Override>(), Ok(Override::Mute));
    assert_eq!("deny".parse::<Override>(), Ok(Override::Severity(Severity::Deny)));
    assert!("loud".parse::<Override>().unwrap_err().contains("mute, info, warn or deny"));

    let policy: Policy = serde_json::from_str("\"warn\"").unwrap();
    assert_eq!(policy, Policy::Warn);
    let action: Override = serde_json::from_str("\"mute\"").unwrap();
    assert_eq!(action, Override::Mute);
    assert!(serde_json::from_str::<Override>("\"loud\"").is_err());
    assert_eq!(serde_json::to_string(&Override::Severity(Severity::Info)).unwrap(), "\"info\"");
}

#[test]
fn findings_serialize_with_lowercase_severity() {
    let finding = Finding::new(Severity::Warn, "order_by_without_limit", "sorted", "add LIMIT");
    let json = serde_json::to_value(&finding).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "severity": "warn",
            "code": "order_by_without_limit",
            "message": "sorted",
            "recommendation": "add LIMIT"
        })
    );
    assert!(Severity::Info < Severity::Warn && Severity::Warn < Severity::Deny);
}

#[test]
fn context_keeps_sql_parse_result_and_time_range() {
    let range = TimeRange {
        begin: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        end: Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap(),
    };
    let ctx = ValidationContext::new("SELECT msg FROM log_entries").with_time_range(range);
    assert_eq!(ctx.sql(), "SELECT msg FROM log_entries");
    assert_eq!(ctx.time_range(), Some(&range));
    assert!(ctx.schema().is_none());
    assert_eq!(ctx.statements().unwrap().len(), 1);

    let bad = ValidationContext::new("SELECT * FROM t WHERE");
    assert!(bad.parse_error().is_some());
    assert!(bad.parse_error_position().is_some());
}

#[tokio::test]
async fn push_appends_a_validator_and_policy_reads_back() {
    for policy in [Policy::Off, Policy::Warn, Policy::Deny] {
        assert_eq!(ValidationPipeline::new().with_policy(policy).policy(), policy);
    }
    let mut pipeline = two_validators(Policy::Warn);
    let third = Fixed::new("third", &[(Severity::Info, "late")]);
    let runs = Arc::clone(&third.runs);
    pipeline.push(Arc::new(third));
    assert_eq!(pipeline.validator_names(), ["first", "second", "third"]);
    let report = pipeline.run(&ValidationContext::new("SELECT 1")).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(codes(&report.findings).last(), Some(&(Severity::Info, "late")));
}

#[tokio::test]
async fn with_validators_appends_shared_validators_after_the_others() {
    let third = Arc::new(Fixed::new("third", &[(Severity::Info, "late")]));
    let runs = Arc::clone(&third.runs);
    let shared: Vec<Arc<dyn QueryValidator>> = vec![third];
    let pipeline = two_validators(Policy::Warn).with_validators(shared);
    assert_eq!(pipeline.validator_names(), ["first", "second", "third"]);
    assert_eq!(pipeline.policy(), Policy::Warn);
    let report = pipeline.run(&ValidationContext::new("SELECT 1")).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(codes(&report.findings).last(), Some(&(Severity::Info, "late")));
}

#[test]
fn policies_print_as_the_words_they_parse_from() {
    for (policy, word) in [(Policy::Off, "off"), (Policy::Warn, "warn"), (Policy::Deny, "deny")] {
        assert_eq!(policy.to_string(), word);
        assert_eq!(word.parse::<Policy>(), Ok(policy));
    }
}

#[test]
fn debug_shows_validators_policy_and_overrides() {
    let pipeline = two_validators(Policy::Warn).mute("fyi");
    let shown = format!("{pipeline:?}");
    for part in ["ValidationPipeline", "\"first\"", "\"second\"", "Warn", "\"fyi\": Mute"] {
        assert!(shown.contains(part), "{part} missing from {shown}");
    }
}

mod with_a_server {
    use flightline_core::client::{ClientBuilder, FlightSqlClient};
    use flightline_core::schema::SizeOptions;
    use flightline_core::validate::{SERVER_REJECTED, SchemaSource, validate_query};
    use flightline_server::{RunningServer, ServerBuilder};

    use super::*;

    /// Denies statements that start with DROP; reports the column count when it has a schema.
    struct Rules;

    #[async_trait]
    impl QueryValidator for Rules {
        fn name(&self) -> &str {
            "rules"
        }

        async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
            if ctx.sql().starts_with("DROP") {
                return vec![Finding::new(Severity::Deny, "write", "a write", "do not")];
            }
            match ctx.schema() {
                Some(schema) => vec![Finding::new(
                    Severity::Info,
                    "columns",
                    format!("{} columns", schema.columns.len()),
                    "none",
                )],
                None => Vec::new(),
            }
        }
    }

    async fn server() -> RunningServer {
        ServerBuilder::new()
            .demo_rows(100)
            .seed(1)
            .spawn("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    fn unreachable() -> ClientBuilder {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        FlightSqlClient::builder(format!("grpc://127.0.0.1:{port}"))
    }

    async fn check(sql: &str, source: SchemaSource) -> flightline_core::Result<Vec<String>> {
        let pipeline = ValidationPipeline::new().with_validator(Rules);
        let report =
            validate_query(&pipeline, ValidationContext::new(sql), source, &SizeOptions::default())
                .await?;
        Ok(report.findings.iter().map(|f| format!("{} {}", f.code, f.message)).collect())
    }

    #[tokio::test]
    async fn the_schema_rules_see_the_server_schema() {
        let server = server().await;
        let client = FlightSqlClient::builder(server.uri()).connect().await.unwrap();
        let sql = "SELECT time, msg FROM log_entries";
        assert_eq!(check(sql, SchemaSource::Client(client)).await.unwrap(), ["columns 2 columns"]);
        let builder = FlightSqlClient::builder(server.uri());
        assert_eq!(
            check(sql, SchemaSource::Connect(builder)).await.unwrap(),
            ["columns 2 columns"]
        );
        assert!(check(sql, SchemaSource::Offline).await.unwrap().is_empty());
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_query_the_server_refuses_is_a_deny_finding() {
        let server = server().await;
        let pipeline = ValidationPipeline::new().with_validator(Rules);
        let source = SchemaSource::Connect(FlightSqlClient::builder(server.uri()));
        let ctx = ValidationContext::new("SELECT nope FROM log_entries");
        let report =
            validate_query(&pipeline, ctx, source.clone(), &SizeOptions::default()).await.unwrap();
        assert!(report.is_denied());
        assert_eq!(report.findings[0].code, SERVER_REJECTED);
        assert!(report.findings[0].message.contains("nope"), "{:?}", report.findings);
        // Overrides apply to it like to any finding.
        let muted = pipeline.mute(SERVER_REJECTED);
        let ctx = ValidationContext::new("SELECT nope FROM log_entries");
        let report = validate_query(&muted, ctx, source, &SizeOptions::default()).await.unwrap();
        assert!(report.findings.is_empty() && !report.is_denied());
        server.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_closed_unless_the_text_is_refused() {
        let source = SchemaSource::Connect(unreachable());
        match check("SELECT 1", source.clone()).await {
            Err(err @ Error::Transport { .. }) => assert!(err.is_retryable()),
            other => panic!("{other:?}"),
        }
        // A refused text needs no server.
        assert_eq!(check("DROP TABLE t", source).await.unwrap(), ["write a write"]);
    }
}
