//! No validator panics, whatever the SQL: arbitrary strings, SQL-ish token soup, and valid
//! queries with random edits. Beyond not panicking, SQL that does not parse must get exactly
//! one finding, `parse_error`, and every finding must say something.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use flightline_core::TimeRange;
use flightline_core::schema::{SchemaAnalysis, SizeOptions};
use flightline_core::validate::{Policy, ValidationContext};
use flightline_plugins::{builtin_pipeline, codes};
use proptest::prelude::*;

const VALID: &[&str] = &[
    "SELECT time, msg FROM log_entries WHERE time > now() - interval '1 day' ORDER BY time DESC LIMIT 10",
    "WITH recent AS (SELECT * FROM log_entries WHERE time BETWEEN '2024-01-01' AND '2024-01-02') SELECT level, count(*) FROM recent GROUP BY level ORDER BY 2",
    "SELECT l.msg, p.exe FROM log_entries l JOIN processes p ON l.process_id = p.process_id, measures m WHERE m.value > 1",
    "SELECT row_number() OVER (PARTITION BY target ORDER BY time) AS n, msg FROM log_entries",
    "(SELECT name FROM measures UNION SELECT target FROM log_entries) ORDER BY 1 FETCH FIRST 3 ROWS ONLY",
    "SELECT * FROM (SELECT msg FROM log_entries WHERE NOT (level = 1 OR time < now())) AS t CROSS JOIN UNNEST(t.tags)",
    "INSERT INTO t SELECT * FROM log_entries; DROP TABLE t",
    "EXPLAIN ANALYZE SELECT CAST(time AS DATE), date_trunc('hour', time) FROM log_entries WHERE time IN ('2024-01-01', '2024-01-02')",
];

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "ORDER",
    "BY",
    "LIMIT",
    "JOIN",
    "ON",
    "CROSS",
    "UNION",
    "WITH",
    "AS",
    "(",
    ")",
    ",",
    ";",
    "*",
    "time",
    "log_entries",
    "'x'",
    "--",
    "/*",
    "*/",
    "1",
    ">",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "OVER",
    "INTERVAL",
    "now()",
    "DROP",
    "INSERT",
    "INTO",
    "VALUES",
    "\n",
    "\"q\"",
    "::",
    "LATERAL",
    "UNNEST",
    "FETCH",
    "FIRST",
    "ROWS",
    "ONLY",
    "ALL",
    "EXPLAIN",
];

fn contexts(sql: &str) -> Vec<ValidationContext> {
    let schema = Schema::new(vec![
        Field::new("time", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
    ]);
    let analysis = SchemaAnalysis::from_schema(&schema, &SizeOptions::default());
    let range = TimeRange::parse_relative("1h").unwrap();
    vec![
        ValidationContext::new(sql),
        ValidationContext::new(sql).with_schema(analysis).with_time_range(range),
    ]
}

fn check(sql: &str) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let pipeline = builtin_pipeline(Policy::Deny);
    for ctx in contexts(sql) {
        let report = runtime.block_on(pipeline.run(&ctx));
        for finding in &report.findings {
            prop_assert!(!finding.code.is_empty());
            prop_assert!(!finding.message.is_empty());
        }
        if ctx.parse_error().is_some() {
            prop_assert_eq!(report.findings.len(), 1);
            prop_assert_eq!(report.findings[0].code.as_str(), codes::PARSE_ERROR);
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..8usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Insert { at, token }),
        (any::<usize>(), 1..30usize).prop_map(|(at, len)| Edit::Duplicate { at, len }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ]
}

/// Applies an edit on char boundaries, so the result stays a `String`.
fn apply(sql: &str, edit: &Edit) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let n = chars.len();
    let clamp = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
    let text = |range: &[char]| range.iter().collect::<String>();
    match *edit {
        Edit::Delete { at, len } => {
            let at = clamp(at);
            let end = (at + len).min(n);
            text(&chars[..at]) + &text(&chars[end..])
        }
        Edit::Insert { at, token } => {
            let at = clamp(at);
            format!("{} {} {}", text(&chars[..at]), TOKENS[token], text(&chars[at..]))
        }
        Edit::Duplicate { at, len } => {
            let at = clamp(at);
            let end = (at + len).min(n);
            text(&chars[..end]) + &text(&chars[at..])
        }
        Edit::Truncate { at } => text(&chars[..clamp(at)]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_strings_do_not_panic(sql in any::<String>()) {
        check(&sql)?;
    }

    #[test]
    fn token_soup_does_not_panic(tokens in prop::collection::vec(0..TOKENS.len(), 0..40)) {
        let sql = tokens.iter().map(|&t| TOKENS[t]).collect::<Vec<_>>().join(" ");
        check(&sql)?;
    }

    #[test]
    fn mutated_valid_sql_does_not_panic(
        base in 0..VALID.len(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut sql = VALID[base].to_string();
        for edit in &edits {
            sql = apply(&sql, edit);
        }
        check(&sql)?;
    }
}

#[test]
fn the_valid_seeds_parse() {
    for sql in VALID {
        assert!(ValidationContext::new(*sql).parse_error().is_none(), "{sql}");
    }
}

/// Generated SQL chains thousands of terms into left-deep trees; validating and dropping them
/// must not overflow a 2 MiB thread stack (the size of a test or tokio worker thread).
#[test]
fn huge_generated_queries_do_not_overflow_the_stack() {
    let ids = (0..100_000).map(|i| format!("process_id = 'p{i}'")).collect::<Vec<_>>();
    let branches = vec!["SELECT msg FROM log_entries"; 20_000];
    let cases = vec![
        (
            format!("SELECT msg FROM log_entries WHERE time > now() AND ({})", ids.join(" OR ")),
            Vec::<&str>::new(),
        ),
        (
            format!("SELECT msg FROM log_entries WHERE {}", ids.join(" OR ")),
            vec![codes::NO_TIME_FILTER],
        ),
        (branches.join(" UNION ALL "), vec![codes::NO_TIME_FILTER]),
    ];
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let pipeline = builtin_pipeline(Policy::Deny);
            let mut outcomes = Vec::new();
            for (sql, expected) in cases {
                let ctx = ValidationContext::new(sql);
                assert!(ctx.parse_error().is_none());
                let report = runtime.block_on(pipeline.run(&ctx));
                let codes: Vec<String> = report.findings.into_iter().map(|f| f.code).collect();
                outcomes.push((codes, expected));
                drop(ctx);
            }
            outcomes
        })
        .unwrap();
    for (got, expected) in worker.join().expect("the validation thread overflowed or panicked") {
        assert_eq!(got, expected);
    }
}
