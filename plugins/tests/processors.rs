//! The built-in processors through the executor, against the real embedded server.

#[path = "../../core/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::array_value_to_string;
use chrono::{DateTime, Utc};
use flightline_core::error::Chain;
use flightline_core::exec::{CancellationToken, ExecOutcome, QueryExecutor, RunRequest};
use flightline_core::process::{
    BatchProcessor, ProcessContext, ProcessError, ProcessStage, Report, async_trait,
};
use flightline_core::{Error, FlightSqlClient, TimeRange};
use flightline_plugins::build_processor;
use flightline_server::RunningServer;
use serde_json::{Value, json};

const ROWS: u64 = 20_000;

fn demo_end() -> DateTime<Utc> {
    support::demo_end()
}

fn window() -> TimeRange {
    TimeRange::new(demo_end() - chrono::Duration::days(3), demo_end()).unwrap()
}

async fn start() -> (RunningServer, FlightSqlClient) {
    support::demo_server(ROWS, 11).await
}

async fn run(
    client: &FlightSqlClient,
    sql: &str,
    range: Option<TimeRange>,
    processors: Vec<Box<dyn BatchProcessor>>,
    batch_bytes: Option<usize>,
    cancel: CancellationToken,
) -> flightline_core::Result<ExecOutcome> {
    let executor =
        QueryExecutor::new(client.clone()).job("test/job").target_batch_bytes(batch_bytes);
    tokio::time::timeout(
        Duration::from_secs(60),
        executor.run(RunRequest::new(sql).range(range).processors(processors).cancel(cancel)),
    )
    .await
    .expect("the run did not end in time")
}

fn processor(name: &str, options: Value) -> Box<dyn BatchProcessor> {
    build_processor(name, options).unwrap()
}

/// The server's answer as rows of display strings (numbers as the server formats them).
async fn server_rows(
    client: &FlightSqlClient,
    sql: &str,
    range: Option<TimeRange>,
) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for batch in client.query(sql, range).await.unwrap() {
        for row in 0..batch.num_rows() {
            rows.push(
                batch.columns().iter().map(|c| array_value_to_string(c, row).unwrap()).collect(),
            );
        }
    }
    rows
}

fn report_of<'a>(outcome: &'a ExecOutcome, name: &str) -> &'a Report {
    &outcome.reports.iter().find(|(n, _)| n == name).unwrap().1
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{value} is not a number"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test]
async fn count_by_equals_the_same_count_computed_by_the_server() {
    let (_server, client) = start().await;
    let outcome = run(
        &client,
        "SELECT time, level, target FROM log_entries",
        Some(window()),
        vec![processor(
            "count_by",
            json!({ "column": "level", "threshold": 2, "group_by": ["level", "target"] }),
        )],
        Some(4096),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let report = report_of(&outcome, "count_by");
    let table = &report.tables[0];
    assert_eq!(table.columns, ["level", "target", "rows"]);
    let ours: BTreeMap<(i64, String), u64> = table
        .rows
        .iter()
        .map(|r| {
            ((r[0].as_i64().unwrap(), r[1].as_str().unwrap().to_string()), r[2].as_u64().unwrap())
        })
        .collect();
    let theirs: BTreeMap<(i64, String), u64> = server_rows(
        &client,
        "SELECT level, target, COUNT(*) FROM log_entries WHERE level <= 2 GROUP BY level, target",
        Some(window()),
    )
    .await
    .into_iter()
    .map(|r| ((r[0].parse().unwrap(), r[1].clone()), r[2].parse().unwrap()))
    .collect();
    assert!(theirs.len() >= 3, "{theirs:?}");
    assert_eq!(ours, theirs);
    assert_eq!(report.counts["rows_matched"], theirs.values().sum::<u64>());
    assert_eq!(report.counts["rows_seen"], outcome.stats.rows);
}

#[tokio::test]
async fn aggregates_equal_the_same_aggregates_computed_by_the_server() {
    let (_server, client) = start().await;
    // A float column grouped by a string, and an integer column grouped by a dictionary.
    let cases = [
        ("SELECT name, value FROM measures", "name", "value", "measures"),
        ("SELECT target, level FROM log_entries", "target", "level", "log_entries"),
    ];
    for (sql, key, column, table) in cases {
        let outcome = run(
            &client,
            sql,
            Some(window()),
            vec![processor("aggregate", json!({ "group_by": [key], "columns": [column] }))],
            Some(10_000),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let ours = &report_of(&outcome, "aggregate").tables[0];
        assert_eq!(
            ours.columns,
            [
                key,
                "rows",
                &format!("count({column})"),
                &format!("sum({column})"),
                &format!("min({column})"),
                &format!("max({column})"),
                &format!("mean({column})")
            ]
        );
        let expected = server_rows(
            &client,
            &format!(
                "SELECT {key}, COUNT(*), COUNT({column}), SUM({column}), MIN({column}), MAX({column}), \
                 AVG({column}) FROM {table} GROUP BY {key} ORDER BY {key}"
            ),
            Some(window()),
        )
        .await;
        assert!(expected.len() >= 2, "{expected:?}");
        assert_eq!(ours.rows.len(), expected.len());
        for (mine, theirs) in ours.rows.iter().zip(&expected) {
            assert_eq!(mine[0].as_str().unwrap(), theirs[0]);
            for i in 1..7 {
                let want: f64 = theirs[i].parse().unwrap();
                assert!(
                    close(number(&mine[i]), want),
                    "{key} {}: column {i}: {} vs {want}",
                    theirs[0],
                    mine[i]
                );
            }
        }
    }
}

/// A processor that fails or cancels the run at a given batch.
struct Trip {
    at: u64,
    cancel: Option<CancellationToken>,
}

#[async_trait]
impl BatchProcessor for Trip {
    fn name(&self) -> &str {
        "trip"
    }
    async fn open(
        &mut self,
        _schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        Ok(())
    }
    async fn process(
        &mut self,
        _batch: &RecordBatch,
        ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        if ctx.batch_index == self.at {
            match &self.cancel {
                Some(token) => token.cancel(),
                None => return Err(ProcessError::new("tripped")),
            }
        }
        // Slow enough that the sinks have written several batches by then.
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(())
    }
    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        Ok(Report::default())
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn sinks_write_the_whole_result_to_the_window_s_file_atomically() {
    let (_server, client) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let template = |ext: &str| {
        dir.path().join(format!("{{job}}_{{begin}}_{{end}}.{ext}")).to_string_lossy().into_owned()
    };
    let sql = "SELECT time, level, target, msg FROM log_entries";
    let outcome = run(
        &client,
        sql,
        Some(window()),
        vec![
            processor("parquet_sink", json!({ "path": template("parquet") })),
            processor("csv_sink", json!({ "path": template("csv") })),
            processor("ndjson_sink", json!({ "path": template("ndjson") })),
        ],
        Some(64 * 1024),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let rows = outcome.stats.rows;
    assert!(rows > 1000 && outcome.stats.batches > 3, "{}", outcome.stats);
    let stem = "test_job_20240105T000000Z_20240108T000000Z";
    assert_eq!(
        entries(dir.path()),
        [format!("{stem}.csv"), format!("{stem}.ndjson"), format!("{stem}.parquet")]
    );

    let parquet = std::fs::File::open(dir.path().join(format!("{stem}.parquet"))).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(parquet)
        .unwrap()
        .build()
        .unwrap();
    let read: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(read as u64, rows);
    // Messages hold no newline, so lines are rows (plus the CSV header).
    let lines = |ext: &str| {
        std::fs::read_to_string(dir.path().join(format!("{stem}.{ext}"))).unwrap().lines().count()
            as u64
    };
    assert_eq!(lines("csv"), rows + 1);
    assert_eq!(lines("ndjson"), rows);
    assert_eq!(report_of(&outcome, "parquet_sink").counts["rows_written"], rows);
    assert_eq!(report_of(&outcome, "csv_sink").files, [dir.path().join(format!("{stem}.csv"))]);

    // Rerunning the window: refused without `overwrite`, leaving the file as it was...
    let before = std::fs::read(dir.path().join(format!("{stem}.csv"))).unwrap();
    let err = run(
        &client,
        sql,
        Some(window()),
        vec![processor("csv_sink", json!({ "path": template("csv") }))],
        None,
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(&err, Error::Processor { stage: ProcessStage::Open, .. }), "{err:?}");
    assert!(Chain(&err).to_string().contains("overwrite"), "{err}");
    assert_eq!(std::fs::read(dir.path().join(format!("{stem}.csv"))).unwrap(), before);
    // ...and rewritten in place with it, never adding a second file.
    run(
        &client,
        "SELECT level FROM log_entries",
        Some(window()),
        vec![processor("csv_sink", json!({ "path": template("csv"), "overwrite": true }))],
        None,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(entries(dir.path()).len(), 3);
    assert_eq!(lines("csv"), rows + 1);
    assert!(
        std::fs::read_to_string(dir.path().join(format!("{stem}.csv")))
            .unwrap()
            .starts_with("level\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_interrupted_mid_run_leaves_no_file() {
    let (_server, client) = start().await;
    for cancelled in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = |ext: &str| dir.path().join(format!("out.{ext}")).to_string_lossy().into_owned();
        let cancel = CancellationToken::new();
        let trip = Trip { at: 5, cancel: cancelled.then(|| cancel.clone()) };
        let result = run(
            &client,
            "SELECT time, level, msg FROM log_entries",
            None,
            vec![
                processor("parquet_sink", json!({ "path": path("parquet") })),
                processor("csv_sink", json!({ "path": path("csv") })),
                processor("ndjson_sink", json!({ "path": path("ndjson") })),
                Box::new(trip),
            ],
            Some(8 * 1024),
            cancel,
        )
        .await;
        match result {
            Ok(outcome) => {
                assert!(cancelled && outcome.stats.cancelled && outcome.stats.batches >= 5)
            }
            Err(Error::Processor { processor, batch, .. }) => {
                assert!(!cancelled);
                assert_eq!((processor.as_str(), batch), ("trip", Some(5)));
            }
            Err(other) => panic!("{other:?}"),
        }
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "cancelled: {cancelled}");
    }
}

#[tokio::test]
async fn gauges_appear_in_a_prometheus_render_with_the_right_labels_and_values() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    // The test runtime is current-thread: the processor's task runs here, under this recorder.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (_server, client) = start().await;
    let sql = "SELECT level, COUNT(*) AS n, CASE WHEN level = 1 THEN NULL ELSE COUNT(*) * 2 END AS doubled \
               FROM log_entries GROUP BY level";
    let outcome = run(
        &client,
        sql,
        None,
        vec![processor(
            "prometheus_gauges",
            json!({
                "metric": "demo_log_rows",
                "key_labels": ["level"],
                "values": ["n", "doubled"],
                "value_label": "column",
                "static_labels": { "env": "test" },
                "help": "rows per level",
            }),
        )],
        None,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let text = handle.render();
    let expected = server_rows(&client, sql, None).await;
    assert!(expected.iter().any(|r| r[0] == "1"), "the demo should have level-1 rows");
    for row in &expected {
        let level = &row[0];
        let line =
            format!("demo_log_rows{{env=\"test\",level=\"{level}\",column=\"n\"}} {}\n", row[1]);
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
        let doubled = format!("demo_log_rows{{env=\"test\",level=\"{level}\",column=\"doubled\"}}");
        if level == "1" {
            assert!(!text.contains(&doubled), "a NULL became a sample:\n{text}");
        } else {
            assert!(text.contains(&format!("{doubled} {}\n", row[2])), "{text}");
        }
    }
    assert!(text.contains("# HELP demo_log_rows rows per level"), "{text}");
    let report = report_of(&outcome, "prometheus_gauges");
    assert_eq!(report.counts["nulls_skipped"], 1);
    assert_eq!(report.counts["samples"], expected.len() as u64 * 2 - 1);
}

#[tokio::test]
async fn print_keeps_only_the_first_rows() {
    let (_server, client) = start().await;
    let outcome = run(
        &client,
        "SELECT level FROM log_entries",
        None,
        vec![processor("print", json!({ "rows": 7 }))],
        Some(40),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let report = report_of(&outcome, "print");
    assert_eq!(report.counts["rows_printed"], 7);
    assert_eq!(report.counts["rows_seen"], ROWS);
}

#[test]
fn options_errors_name_the_processor_and_the_problem() {
    let cases = [
        ("count_by", json!({ "threshold": "high" }), "threshold"),
        ("aggregate", json!({ "columns": ["v"], "functions": ["median"] }), "median"),
        ("csv_sink", json!({ "path": "out_{start}.csv" }), "{start}"),
        ("csv_sink", json!({}), "path"),
        ("parquet_sink", json!({ "path": "x.parquet", "compression": "brotli" }), "brotli"),
        ("prometheus_gauges", json!({ "metric": "m", "values": ["a", "b"] }), "value_label"),
        ("prometheus_gauges", json!({ "metric": "bad-name", "values": ["a"] }), "bad-name"),
        (
            "prometheus_gauges",
            json!({ "metric": "m", "values": ["a"], "key_labels": ["x"], "static_labels": { "x": "1" } }),
            "twice",
        ),
    ];
    for (name, options, needle) in cases {
        let err = build_processor(name, options).err().unwrap_or_else(|| panic!("{name} accepted"));
        let text = err.to_string();
        assert!(text.contains(name) && text.contains(needle), "{name}: {text}");
    }
}

#[tokio::test]
async fn count_by_never_counts_a_null_value_of_its_column() {
    let (_server, client) = start().await;
    let sql = "SELECT CASE WHEN length(msg) % 3 = 0 THEN NULL ELSE level END AS level, target \
               FROM log_entries";
    let options = json!({ "column": "level", "threshold": 2, "group_by": ["target"] });
    let processors = vec![processor("count_by", options)];
    let cancel = CancellationToken::new();
    let outcome = run(&client, sql, Some(window()), processors, None, cancel).await.unwrap();
    let report = report_of(&outcome, "count_by");
    let ours: BTreeMap<String, u64> = report.tables[0]
        .rows
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap()))
        .collect();
    let counted = |filter: &str| {
        format!("SELECT target, COUNT(*) FROM ({sql}) AS q WHERE {filter} GROUP BY target")
    };
    let parse = |rows: Vec<Vec<String>>| -> BTreeMap<String, u64> {
        rows.into_iter().map(|r| (r[0].clone(), r[1].parse().unwrap())).collect()
    };
    let theirs = parse(server_rows(&client, &counted("level <= 2"), Some(window())).await);
    let nulls = parse(server_rows(&client, &counted("level IS NULL"), Some(window())).await);
    assert!(nulls.values().sum::<u64>() > 0, "the query made no NULL levels");
    assert_eq!(ours, theirs);
    assert_eq!(report.counts["rows_matched"], theirs.values().sum::<u64>());
}

#[tokio::test]
async fn count_by_refuses_a_missing_or_non_numeric_column_at_open() {
    let (_server, client) = start().await;
    for (options, needle) in [
        (json!({ "column": "lvl" }), "lvl"),
        (json!({ "column": "msg", "group_by": [] }), "not a number"),
    ] {
        let err = run(
            &client,
            "SELECT level, target, msg FROM log_entries",
            None,
            vec![processor("count_by", options)],
            None,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(&err, Error::Processor { stage: ProcessStage::Open, .. }), "{err:?}");
        // What the processor said is the error's source.
        assert!(Chain(&err).to_string().contains(needle), "{err}");
    }
}

/// One batch of `values` in an Int64 column `v` and a UInt64 column `u` (the same values when
/// they are not negative), summed by `aggregate` with no group.
async fn sum_in_one_batch(values: Vec<i64>) -> Result<Report, ProcessError> {
    use arrow::array::{Int64Array, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    let unsigned: UInt64Array = values.iter().map(|v| u64::try_from(*v).ok()).collect();
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new("u", DataType::UInt64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![std::sync::Arc::new(Int64Array::from(values)), std::sync::Arc::new(unsigned)],
    )
    .unwrap();
    let mut aggregate =
        processor("aggregate", json!({ "columns": ["v", "u"], "functions": ["count", "sum"] }));
    support::drive(aggregate.as_mut(), "sums", &[batch]).await
}

#[tokio::test]
async fn an_integer_sum_past_i64_inside_one_batch_is_exact_or_an_error_naming_the_column() {
    // Arrow's `sum` kernel wraps: i64::MAX + i64::MAX in one slice used to report -2.
    let report = sum_in_one_batch(vec![i64::MAX, i64::MAX]).await.unwrap();
    let row = &report.tables[0].rows[0];
    let exact = 2 * i64::MAX as u64;
    assert_eq!(row[..], [json!(2), json!(2), json!(exact), json!(2), json!(exact)]);
    // Unsigned values above i64::MAX are counted and summed, not cast to NULL.
    let report = sum_in_one_batch(vec![i64::MAX, 1]).await.unwrap();
    assert_eq!(report.tables[0].rows[0][4], json!(i64::MAX as u64 + 1));
    // Beyond every 64-bit integer: an error that names the column, never a rounded number.
    let err = sum_in_one_batch(vec![i64::MAX; 3]).await.unwrap_err();
    assert!(err.message().contains("sum(v)") && err.message().contains("`v`"), "{err}");
    let err = sum_in_one_batch(vec![i64::MIN, i64::MIN]).await.unwrap_err();
    assert!(err.message().contains("`v`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sinks_racing_for_one_path_without_overwrite_one_wins_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let options = json!({ "path": path.to_string_lossy() });
    for _round in 0..10 {
        let (mut a, mut b) =
            (processor("csv_sink", options.clone()), processor("csv_sink", options.clone()));
        let (batches_a, batches_b) = (support::log_batches(2, 300), support::log_batches(3, 50));
        let (ra, rb) = tokio::join!(
            support::drive(a.as_mut(), "a", &batches_a),
            support::drive(b.as_mut(), "b", &batches_b)
        );
        let (winner_rows, loser) = match (ra, rb) {
            (Ok(_), Err(loser)) => (600, loser),
            (Err(loser), Ok(_)) => (150, loser),
            other => panic!("exactly one must win: {other:?}"),
        };
        let typed = std::error::Error::source(&loser)
            .and_then(|s| s.downcast_ref::<Error>())
            .unwrap_or_else(|| panic!("no typed source: {loser:?}"));
        assert!(matches!(typed, Error::FileExists { path: p } if p == &path), "{typed:?}");
        assert!(loser.message().contains("overwrite"), "{loser}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), winner_rows + 1, "the winner's whole file");
        assert_eq!(entries(dir.path()), ["out.csv"], "a temporary file was left");
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn a_gauge_name_of_the_host_or_taken_with_another_type_is_refused_when_built() {
    let gauges = |metric: &str| {
        build_processor("prometheus_gauges", json!({ "metric": metric, "values": ["v"] }))
            .err()
            .map(|err| err.to_string())
    };
    let text = gauges("flightline_rows_total").expect("the host's name was accepted");
    assert!(text.contains("flightline_") && text.contains("host"), "{text}");
    flightline_core::metrics::claim_metric_name(
        "gauges_test_requests",
        flightline_core::metrics::MetricKind::Counter,
        "plugin `web`",
    )
    .unwrap();
    let text = gauges("gauges_test_requests").expect("a counter's name was accepted");
    for part in ["gauges_test_requests", "prometheus_gauges", "plugin `web`", "counter"] {
        assert!(text.contains(part), "{part:?} missing: {text}");
    }
    // The same type twice is one metric: two jobs may export the same gauge.
    assert_eq!(gauges("gauges_test_level"), None);
    assert_eq!(gauges("gauges_test_level"), None);
}

/// A processor whose `finish` fails: the run must then publish nobody's output.
struct FailsToFinish;

#[async_trait]
impl BatchProcessor for FailsToFinish {
    fn name(&self) -> &str {
        "fails_to_finish"
    }
    async fn process(&mut self, _: &RecordBatch, _: &ProcessContext) -> Result<(), ProcessError> {
        Ok(())
    }
    async fn finish(&mut self, _: &ProcessContext) -> Result<Report, ProcessError> {
        // Late, so that the sink has long finished (prepared) its file by then.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Err(ProcessError::new("finish refused on purpose"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_beside_a_failing_finish_leaves_no_file_and_the_rerun_writes_it() {
    let (_server, client) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("{begin}.parquet");
    let sink = || processor("parquet_sink", json!({ "path": template.to_string_lossy() }));
    let sql = "SELECT time, level, target FROM log_entries";
    let processors = vec![sink(), Box::new(FailsToFinish) as Box<dyn BatchProcessor>];
    let err = run(&client, sql, Some(window()), processors, None, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Processor { processor, stage: ProcessStage::Finish, .. }
            if processor == "fails_to_finish"),
        "{err:?}"
    );
    assert_eq!(entries(dir.path()), Vec::<String>::new(), "the failed window left a file");

    // The retry of the same window, with `overwrite = false` (the default), is not refused by
    // a file of the failed attempt.
    let outcome = run(&client, sql, Some(window()), vec![sink()], None, CancellationToken::new())
        .await
        .unwrap();
    let written = &outcome.reports[0].1.files;
    assert_eq!(written.len(), 1);
    assert_eq!(entries(dir.path()).len(), 1);
    let file = std::fs::File::open(&written[0]).unwrap();
    let rows: usize = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows as u64, outcome.stats.rows);
    assert!(rows > 0);
}
