//! Table-driven check of the built-in validators: each SQL text against the exact list of
//! `severity:code` findings the pipeline must report.
//!
//! Each case also records whether the guide's string heuristics get it wrong. The heuristics,
//! as the Micromegas advanced guide writes them:
//!
//! - ORDER BY: `'ORDER BY' in sql.upper() and 'LIMIT' not in sql.upper()`
//! - time filter: `'WHERE' not in sql.upper() or 'time' not in sql.lower()`
//! - SELECT *: `'SELECT *' in sql.upper()`
//!
//! The test computes the heuristics' verdict and asserts that it differs from ours (on those
//! three rules) exactly for the cases marked `GUIDE_WRONG`, so the list in the note below is
//! checked, not just claimed.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use flightline_core::TimeRange;
use flightline_core::schema::{SchemaAnalysis, SizeOptions};
use flightline_core::validate::{Policy, ValidationContext};
use flightline_plugins::{builtin_pipeline, codes};

fn range() -> TimeRange {
    TimeRange::parse_relative("1h").unwrap()
}

#[derive(Clone, Copy)]
enum Extra {
    /// Only the SQL.
    Plain,
    /// A time range is sent with the query.
    Range,
    /// The result schema is the 12 columns of `log_entries`.
    LogEntries,
    /// The result schema has two narrow columns.
    Narrow,
    /// The result schema has 60 Int64 columns.
    Wide,
    /// Two strings, with a 1000-byte average string.
    BigRows,
}

const GUIDE_WRONG: bool = true;
const GUIDE_RIGHT: bool = false;

struct Case {
    name: &'static str,
    sql: &'static str,
    extra: Extra,
    expected: &'static [&'static str],
    guide_wrong: bool,
}

const fn case(
    name: &'static str,
    sql: &'static str,
    extra: Extra,
    expected: &'static [&'static str],
    guide_wrong: bool,
) -> Case {
    Case { name, sql, extra, expected, guide_wrong }
}

use Extra::*;

const ORDER: &str = "warn:order_by_without_limit";
const TIME: &str = "warn:no_time_filter";
const STAR_INFO: &str = "info:select_star_wide";
const STAR_WARN: &str = "warn:select_star_wide";
const JOIN: &str = "warn:join_without_condition";
const WRITE: &str = "deny:not_read_only";

const CASES: &[Case] = &[
    // --- parsing and statements -------------------------------------------------------------
    case(
        "typo in SELECT",
        "SELEC time FROM log_entries",
        Plain,
        &["deny:parse_error"],
        GUIDE_WRONG,
    ),
    case(
        "dangling WHERE",
        "SELECT time FROM log_entries WHERE",
        Plain,
        &["deny:parse_error"],
        GUIDE_RIGHT,
    ),
    case(
        "unterminated string",
        "SELECT msg FROM log_entries WHERE msg = 'oops",
        Plain,
        &["deny:parse_error"],
        GUIDE_WRONG,
    ),
    case("empty", "", Plain, &["deny:empty_query"], GUIDE_WRONG),
    case(
        "only a comment",
        "-- SELECT * FROM log_entries",
        Plain,
        &["deny:empty_query"],
        GUIDE_WRONG,
    ),
    case("two statements", "SELECT 1; SELECT 2", Plain, &["deny:multiple_statements"], GUIDE_WRONG),
    // --- read-only ----------------------------------------------------------------------------
    case("insert", "INSERT INTO log_entries (msg) VALUES ('x')", Plain, &[WRITE], GUIDE_WRONG),
    case(
        "delete with time",
        "DELETE FROM log_entries WHERE time < now() - interval '30 days'",
        Plain,
        &[WRITE],
        GUIDE_RIGHT,
    ),
    case(
        "update",
        "UPDATE log_entries SET msg = 'x' WHERE time > now()",
        Plain,
        &[WRITE],
        GUIDE_RIGHT,
    ),
    case("drop", "DROP TABLE log_entries", Plain, &[WRITE], GUIDE_WRONG),
    case(
        "create table as select",
        "CREATE TABLE copy AS SELECT msg FROM log_entries",
        Plain,
        &[WRITE],
        GUIDE_WRONG,
    ),
    case("copy", "COPY log_entries TO '/tmp/out.csv'", Plain, &[WRITE], GUIDE_WRONG),
    case("set", "SET datafusion.execution.batch_size = 1", Plain, &[WRITE], GUIDE_WRONG),
    case("truncate", "TRUNCATE TABLE log_entries", Plain, &[WRITE], GUIDE_WRONG),
    case(
        "query then drop",
        "SELECT 1; DROP TABLE log_entries",
        Plain,
        &["deny:multiple_statements", WRITE],
        GUIDE_WRONG,
    ),
    case(
        "explain analyze delete",
        "EXPLAIN ANALYZE DELETE FROM log_entries",
        Plain,
        &[WRITE],
        GUIDE_WRONG,
    ),
    case(
        "select into",
        "SELECT msg INTO backup FROM log_entries WHERE time > now() - interval '1 hour'",
        Plain,
        &[WRITE],
        GUIDE_RIGHT,
    ),
    case("explain select is read-only", "EXPLAIN SELECT 1", Plain, &[], GUIDE_WRONG),
    case("show tables is read-only", "SHOW TABLES", Plain, &[], GUIDE_WRONG),
    // --- ORDER BY without LIMIT ---------------------------------------------------------------
    case(
        "issue example",
        "SELECT time, msg FROM log_entries ORDER BY time DESC",
        Plain,
        &[ORDER, TIME],
        GUIDE_RIGHT,
    ),
    case(
        "sorted and limited",
        "SELECT time, msg FROM log_entries WHERE time > now() - interval '1 hour' ORDER BY time DESC LIMIT 100",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "ORDER BY inside a string literal",
        "SELECT time, msg FROM log_entries WHERE msg = 'ORDER BY' AND time > now() - interval '1 day'",
        Plain,
        &[],
        GUIDE_WRONG,
    ),
    case(
        "ORDER BY inside a comment",
        "SELECT time, msg -- ORDER BY time\nFROM log_entries WHERE time > now() - interval '1 day'",
        Plain,
        &[],
        GUIDE_WRONG,
    ),
    case(
        "ORDER BY inside a block comment",
        "SELECT time, msg /* ORDER BY time */ FROM log_entries WHERE time > now() - interval '1 day'",
        Plain,
        &[],
        GUIDE_WRONG,
    ),
    case(
        "ORDER BY of a window function",
        "SELECT time, row_number() OVER (ORDER BY time) AS n FROM log_entries WHERE time > now() - interval '1 day'",
        Plain,
        &[],
        GUIDE_WRONG,
    ),
    case(
        "sorted subquery under an outer LIMIT",
        "SELECT msg FROM (SELECT time, msg FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time) AS t LIMIT 10",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "sorted CTE, unsorted result",
        "WITH recent AS (SELECT time, msg FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time) SELECT count(*) FROM recent",
        Plain,
        &[],
        GUIDE_WRONG,
    ),
    case(
        "FETCH FIRST bounds the sort",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time FETCH FIRST 10 ROWS ONLY",
        Plain,
        &[],
        GUIDE_WRONG,
    ),
    case(
        "LIMIT ALL does not",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time LIMIT ALL",
        Plain,
        &[ORDER],
        GUIDE_WRONG,
    ),
    case(
        "OFFSET alone does not",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time OFFSET 10",
        Plain,
        &[ORDER],
        GUIDE_RIGHT,
    ),
    case(
        "LIMIT only in a column alias",
        "SELECT msg AS limit_reached FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time",
        Plain,
        &[ORDER],
        GUIDE_WRONG,
    ),
    case(
        "LIMIT only in a subquery",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 day' AND process_id IN (SELECT process_id FROM processes LIMIT 5) ORDER BY time",
        Plain,
        // The subquery scans all of `processes`: it answers for its own table.
        &[ORDER, TIME],
        GUIDE_WRONG,
    ),
    case(
        "parenthesised sorted query",
        "(SELECT msg, time FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time)",
        Plain,
        &[ORDER],
        GUIDE_RIGHT,
    ),
    case(
        "parenthesised sorted query, limited outside",
        "(SELECT msg, time FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time) LIMIT 5",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "sorted union",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 day' UNION ALL SELECT name FROM measures WHERE time > now() - interval '1 day' ORDER BY 1",
        Plain,
        &[ORDER],
        GUIDE_RIGHT,
    ),
    // --- time restriction ----------------------------------------------------------------------
    case("count without range", "SELECT count(*) FROM log_entries", Plain, &[TIME], GUIDE_RIGHT),
    case("count with a time range", "SELECT count(*) FROM log_entries", Range, &[], GUIDE_WRONG),
    case(
        "BETWEEN",
        "SELECT msg FROM log_entries WHERE time BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-02T00:00:00Z'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "now() minus an interval",
        "SELECT msg FROM log_entries WHERE time >= now() - interval '1 day'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "'time' only inside another word",
        "SELECT msg FROM log_entries WHERE level <= 2 AND msg LIKE '%timeout%'",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "time selected, not filtered",
        "SELECT time, msg FROM log_entries WHERE level <= 2",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "time only in a string literal",
        "SELECT msg FROM log_entries WHERE msg = 'time > now()'",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "time filter commented out",
        "SELECT msg FROM log_entries WHERE level = 1 /* AND time > now() - interval '1 day' */",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "OR with an unrestricted side",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 day' OR level = 1",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "OR with both sides restricted",
        "SELECT msg FROM log_entries WHERE (time > now() - interval '1 hour' AND level = 1) OR time > now() - interval '5 minutes'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "negated time filter",
        "SELECT msg FROM log_entries WHERE NOT (time > now() - interval '1 day')",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "time compared to another column",
        "SELECT l.msg FROM log_entries l JOIN processes p ON l.process_id = p.process_id WHERE l.time > p.start_time",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "function of the time column",
        "SELECT msg FROM log_entries WHERE date_trunc('day', time) = '2024-01-01'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "time filter inside a CTE",
        "WITH recent AS (SELECT time, level FROM log_entries WHERE time > now() - interval '1 hour') SELECT level, count(*) AS n FROM recent GROUP BY level",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "time filter inside a derived table",
        "SELECT level, count(*) FROM (SELECT level FROM log_entries WHERE insert_time >= now() - interval '2 hours') AS l GROUP BY level",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "time filter through a qualified name and a cast",
        "SELECT l.msg FROM log_entries AS l WHERE CAST(l.time AS DATE) = DATE '2024-01-01'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "restricted subquery, unrestricted outer table",
        "SELECT * FROM log_entries WHERE level IN (SELECT level FROM measures WHERE time > now() - interval '1 hour')",
        Plain,
        &[STAR_INFO, TIME],
        GUIDE_WRONG,
    ),
    case(
        "restricted outer table, unrestricted subquery",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 hour' AND process_id IN (SELECT process_id FROM processes)",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "every SELECT restricted, subquery included",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 hour' AND level IN (SELECT level FROM measures WHERE time > now() - interval '1 hour')",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "one UNION branch unrestricted",
        "SELECT msg FROM log_entries WHERE time > now() - interval '1 day' UNION ALL SELECT name FROM measures",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "restricted CTE joined to an unrestricted table",
        "WITH recent AS (SELECT process_id FROM log_entries WHERE time > now() - interval '1 hour') SELECT p.exe FROM recent r JOIN processes p ON r.process_id = p.process_id",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "filter outside the CTE that reads the table",
        "WITH all_logs AS (SELECT time, msg FROM log_entries) SELECT msg FROM all_logs WHERE time > now() - interval '1 hour'",
        Plain,
        &[TIME],
        GUIDE_WRONG,
    ),
    case(
        "a table named like a CTE of another subquery is still a table",
        "SELECT n FROM (WITH recent AS (SELECT 1 AS n) SELECT n FROM recent) AS a UNION ALL SELECT count(*) FROM recent",
        Plain,
        &[TIME],
        GUIDE_RIGHT,
    ),
    case("no table at all", "SELECT 1", Plain, &[], GUIDE_WRONG),
    case("only functions", "SELECT now(), 1 + 1 AS two", Plain, &[], GUIDE_WRONG),
    case(
        "a CTE of constants is not a table",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        Plain,
        &[],
        GUIDE_WRONG,
    ),
    // --- SELECT * ----------------------------------------------------------------------------
    case(
        "SELECT * with unknown width",
        "SELECT * FROM log_entries WHERE time > now() - interval '1 hour' LIMIT 10",
        Plain,
        &[STAR_INFO],
        GUIDE_RIGHT,
    ),
    case(
        "SELECT * over the 12 columns of log_entries",
        "SELECT * FROM log_entries WHERE time > now() - interval '1 hour' LIMIT 10",
        LogEntries,
        &[STAR_WARN],
        GUIDE_RIGHT,
    ),
    case(
        "SELECT * over a narrow result",
        "SELECT * FROM pairs WHERE time > now() - interval '1 hour'",
        Narrow,
        &[],
        GUIDE_WRONG,
    ),
    case(
        "SELECT * only in a subquery",
        "SELECT time, msg FROM (SELECT * FROM log_entries WHERE time > now() - interval '1 hour') AS t",
        Plain,
        &[],
        GUIDE_WRONG,
    ),
    case(
        "qualified star",
        "SELECT l.* FROM log_entries l WHERE l.time > now() - interval '1 hour'",
        Plain,
        &[STAR_INFO],
        GUIDE_WRONG,
    ),
    case(
        "COUNT(*) is not a star projection",
        "SELECT COUNT(*) FROM log_entries WHERE time > now() - interval '1 hour'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    // --- joins -------------------------------------------------------------------------------
    case(
        "comma join without a link",
        "SELECT l.msg, p.exe FROM log_entries l, processes p WHERE l.time > now() - interval '1 hour'",
        Plain,
        &[JOIN],
        GUIDE_RIGHT,
    ),
    case(
        "comma join linked in WHERE",
        "SELECT l.msg, p.exe FROM log_entries l, processes p WHERE l.process_id = p.process_id AND l.time > now() - interval '1 hour'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "CROSS JOIN",
        "SELECT l.msg FROM log_entries l CROSS JOIN processes p WHERE l.time > now() - interval '1 hour'",
        Plain,
        &[JOIN],
        GUIDE_RIGHT,
    ),
    case(
        "JOIN ON true",
        "SELECT l.msg FROM log_entries l JOIN processes p ON true WHERE l.time > now() - interval '1 hour'",
        Plain,
        &[JOIN],
        GUIDE_RIGHT,
    ),
    case(
        "JOIN USING",
        "SELECT l.msg FROM log_entries l JOIN processes p USING (process_id) WHERE l.time > now() - interval '1 hour'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "three tables, one link",
        "SELECT 1 FROM log_entries a, processes b, measures c WHERE a.process_id = b.process_id AND a.time > now() - interval '1 hour'",
        Plain,
        &[JOIN],
        GUIDE_RIGHT,
    ),
    case(
        "three tables, two links between the same pair",
        "SELECT 1 FROM log_entries a, processes b, measures c WHERE a.process_id = b.process_id AND a.exe = b.exe AND a.time > now() - interval '1 hour'",
        Plain,
        &[JOIN],
        GUIDE_RIGHT,
    ),
    case(
        "three tables linked in a chain",
        "SELECT 1 FROM log_entries a, processes b, measures c WHERE a.process_id = b.process_id AND b.process_id = c.process_id AND a.time > now() - interval '1 hour'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    case(
        "a JOIN ON links its relation, a comma join still needs a link",
        "SELECT 1 FROM log_entries a JOIN processes b ON a.process_id = b.process_id, measures c WHERE a.exe = b.exe AND a.time > now() - interval '1 hour'",
        Plain,
        &[JOIN],
        GUIDE_RIGHT,
    ),
    case(
        "cross join inside a CTE",
        "WITH pairs AS (SELECT a.msg FROM log_entries a CROSS JOIN log_entries b WHERE a.time > now() - interval '1 minute') SELECT count(*) FROM pairs",
        Plain,
        &[JOIN],
        GUIDE_RIGHT,
    ),
    case(
        "CROSS JOIN UNNEST is correlated",
        "SELECT l.msg, u.x FROM log_entries l CROSS JOIN UNNEST(l.tags) AS u(x) WHERE l.time > now() - interval '1 hour'",
        Plain,
        &[],
        GUIDE_RIGHT,
    ),
    // --- schema-based rules ----------------------------------------------------------------------
    case(
        "too many columns",
        "SELECT * FROM wide WHERE time > now() - interval '1 hour'",
        Wide,
        &[STAR_WARN, "warn:too_many_columns"],
        GUIDE_RIGHT,
    ),
    case(
        "row too large",
        "SELECT a, b FROM docs WHERE time > now() - interval '1 hour'",
        BigRows,
        &["warn:row_size_too_large"],
        GUIDE_RIGHT,
    ),
];

fn log_entries_schema() -> Schema {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
    let ts = || DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()));
    Schema::new(vec![
        utf8("process_id"),
        utf8("stream_id"),
        utf8("block_id"),
        utf8("exe"),
        utf8("username"),
        utf8("computer"),
        utf8("target"),
        Field::new("insert_time", ts(), true),
        Field::new("time", ts(), true),
        Field::new("level", DataType::Int32, true),
        utf8("msg"),
        Field::new(
            "properties",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
    ])
}

fn context(case: &Case) -> ValidationContext {
    let ctx = ValidationContext::new(case.sql);
    let analyse =
        |schema: Schema, options: SizeOptions| SchemaAnalysis::from_schema(&schema, &options);
    match case.extra {
        Plain => ctx,
        Range => ctx.with_time_range(range()),
        LogEntries => ctx.with_schema(analyse(log_entries_schema(), SizeOptions::default())),
        Narrow => ctx.with_schema(analyse(
            Schema::new(vec![
                Field::new("a", DataType::Int64, false),
                Field::new("b", DataType::Utf8, true),
            ]),
            SizeOptions::default(),
        )),
        Wide => ctx.with_schema(analyse(
            Schema::new(
                (0..60)
                    .map(|i| Field::new(format!("c{i}"), DataType::Int64, true))
                    .collect::<Vec<_>>(),
            ),
            SizeOptions::default(),
        )),
        BigRows => ctx.with_schema(analyse(
            Schema::new(vec![
                Field::new("a", DataType::Utf8, true),
                Field::new("b", DataType::Utf8, true),
            ]),
            SizeOptions { string_bytes: 1000, ..SizeOptions::default() },
        )),
    }
}

/// The guide's string heuristics, reduced to the codes they correspond to.
fn guide_verdict(sql: &str) -> Vec<&'static str> {
    let upper = sql.to_uppercase();
    let lower = sql.to_lowercase();
    let mut codes = Vec::new();
    if upper.contains("ORDER BY") && !upper.contains("LIMIT") {
        codes.push(codes::ORDER_BY_WITHOUT_LIMIT);
    }
    if !upper.contains("WHERE") || !lower.contains("time") {
        codes.push(codes::NO_TIME_FILTER);
    }
    if upper.contains("SELECT *") {
        codes.push(codes::SELECT_STAR_WIDE);
    }
    codes
}

fn heuristic_codes<'a>(found: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut codes: Vec<&str> = found
        .filter(|c| {
            [codes::ORDER_BY_WITHOUT_LIMIT, codes::NO_TIME_FILTER, codes::SELECT_STAR_WIDE]
                .contains(c)
        })
        .collect();
    codes.sort_unstable();
    codes
}

#[tokio::test]
async fn every_case_reports_exactly_the_expected_findings() {
    assert!(CASES.len() >= 40, "only {} cases", CASES.len());
    let pipeline = builtin_pipeline(Policy::Warn);
    let mut failures = Vec::new();
    for case in CASES {
        let report = pipeline.run(&context(case)).await;
        let mut got: Vec<String> =
            report.findings.iter().map(|f| format!("{}:{}", f.severity, f.code)).collect();
        got.sort();
        let mut expected: Vec<String> = case.expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        if got != expected {
            failures.push(format!(
                "{}: {:?}\n    expected {expected:?}\n    got      {got:?}",
                case.name, case.sql
            ));
        }
        for finding in &report.findings {
            assert!(!finding.message.is_empty() && !finding.recommendation.is_empty());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_guide_heuristics_fail_exactly_on_the_marked_cases() {
    let pipeline = builtin_pipeline(Policy::Warn);
    let mut mismatches = Vec::new();
    for case in CASES {
        let report = pipeline.run(&context(case)).await;
        let ours = heuristic_codes(report.findings.iter().map(|f| f.code.as_str()));
        let guide = heuristic_codes(guide_verdict(case.sql).into_iter());
        if (ours != guide) != case.guide_wrong {
            mismatches.push(format!(
                "{} (marked guide_wrong = {}): ours {ours:?}, guide {guide:?}",
                case.name, case.guide_wrong
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    let wrong = CASES.iter().filter(|c| c.guide_wrong).count();
    assert!(wrong >= 15, "only {wrong} cases where the heuristics are wrong");
}

#[tokio::test]
async fn parse_errors_carry_the_parser_message_and_position() {
    let pipeline = builtin_pipeline(Policy::Deny);
    let report =
        pipeline.run(&ValidationContext::new("SELECT msg\nFROM log_entries\nWHERE time >")).await;
    assert!(report.is_denied());
    let finding = &report.findings[0];
    assert_eq!(finding.code, codes::PARSE_ERROR);
    assert!(finding.message.starts_with("sql parser error:"), "{}", finding.message);
    let position = finding.position.expect("a position");
    assert_eq!(position.line, 3);
    assert!(finding.recommendation.contains("line 3"), "{}", finding.recommendation);
    // Nothing else is said about SQL that does not parse.
    assert_eq!(report.findings.len(), 1);
}

#[tokio::test]
async fn deny_policy_refuses_writes_and_passes_warnings() {
    let pipeline = builtin_pipeline(Policy::Deny);
    let refused = pipeline.check(&ValidationContext::new("DROP TABLE log_entries")).await;
    assert!(matches!(
        refused,
        Err(flightline_core::Error::ValidationDenied { ref findings }) if findings[0].code == codes::NOT_READ_ONLY
    ));
    let passed = pipeline
        .check(&ValidationContext::new("SELECT time, msg FROM log_entries ORDER BY time DESC"))
        .await
        .unwrap();
    assert_eq!(passed.findings.len(), 2);
    // A team that wants every query bounded in time raises the rule to deny.
    let strict = pipeline.deny(codes::NO_TIME_FILTER);
    assert!(
        strict
            .check(&ValidationContext::new("SELECT time, msg FROM log_entries ORDER BY time DESC"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_time_filter_uses_timestamp_columns_of_the_schema() {
    // `seen` is not a time-like name, but the result schema says it is a timestamp.
    let schema = Schema::new(vec![Field::new(
        "seen",
        DataType::Timestamp(TimeUnit::Millisecond, None),
        false,
    )]);
    let sql = "SELECT seen FROM visits WHERE seen > now() - interval '1 day'";
    let pipeline = builtin_pipeline(Policy::Warn);
    let without = pipeline.run(&ValidationContext::new(sql)).await;
    assert_eq!(
        heuristic_codes(without.findings.iter().map(|f| f.code.as_str())),
        [codes::NO_TIME_FILTER]
    );
    let with = pipeline
        .run(
            &ValidationContext::new(sql)
                .with_schema(SchemaAnalysis::from_schema(&schema, &SizeOptions::default())),
        )
        .await;
    assert!(with.findings.is_empty(), "{:?}", with.findings);
}
