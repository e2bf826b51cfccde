//! Plugin instances at work: the C plugin as a processor and a validator, a Rust validator, and a
//! panicking plugin that fails its run while the host and other instances go on.

mod support;

use std::collections::BTreeMap;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use flightline_core::Error;
use flightline_core::plugin;
use flightline_core::process::BatchProcessor;
use flightline_core::validate::{Severity, ValidationContext, ValidationPipeline};
use serde_json::json;

/// What `top_levels` should report, computed here in Rust.
fn expected_level_counts(batches: &[RecordBatch]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for batch in batches {
        *counts.entry("rows".to_string()).or_default() += batch.num_rows() as u64;
        for level in batch.column(1).as_primitive::<Int32Type>().values() {
            *counts.entry(format!("level_{level}")).or_default() += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_plugin_counts_levels_over_zero_copy_batches() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin::load(support::top_levels(dir.path()), None).unwrap();
    let mut batches = support::log_batches(4, 1000);
    // A sliced batch has non-zero offsets: the plugin must honour them.
    batches.push(support::log_batches(1, 500)[0].slice(123, 200));
    let mut processor = plugin.processor(&json!({})).unwrap();
    assert_eq!(processor.name(), "top_levels");
    let report = support::drive(&mut processor, "levels", &batches).await.unwrap();
    assert_eq!(report.counts, expected_level_counts(&batches));
    assert_eq!(report.counts["rows"], 4200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batch_crosses_with_its_own_schema() {
    // The host exports a result's type once and reuses it for the batches that share it; a
    // batch with other columns must cross with its own, or the plugin reads the wrong columns.
    let plugin = plugin::load(support::top_targets(), None).unwrap();
    let original = support::log_batches(3, 200);
    let reversed: Vec<usize> = (0..original[0].num_columns()).rev().collect();
    let twice: Vec<RecordBatch> = original.iter().chain(&original).cloned().collect();
    let mixed: Vec<RecordBatch> = original
        .iter()
        .cloned()
        .chain(original.iter().map(|b| b.project(&reversed).unwrap()))
        .collect();
    let options = json!({ "top": 50, "max_level": 3 });
    let mut same = plugin.processor(&options).unwrap();
    let mut reordered = plugin.processor(&options).unwrap();
    let expected = support::drive(&mut same, "j", &twice).await.unwrap();
    let got = support::drive(&mut reordered, "j", &mixed).await.unwrap();
    assert_eq!(got.counts["rows"], 1200);
    assert!(got.counts["error_rows"] > 0, "{got:?}");
    assert_eq!(got, expected);
}

#[tokio::test]
async fn the_c_plugin_refuses_a_result_without_its_column_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin::load(support::top_levels(dir.path()), None).unwrap();
    let mut processor = plugin.processor(&json!({})).unwrap();
    let schema =
        std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "msg",
            arrow::datatypes::DataType::Utf8,
            false,
        )]));
    let err = processor
        .open(&schema, &flightline_core::process::ProcessContext::new("j"))
        .await
        .unwrap_err();
    assert!(err.message().contains("no column `level`"), "{err}");
    assert!(err.message().contains("top_levels"), "{err}");
}

#[tokio::test]
async fn a_dynamic_c_validator_blocks_a_query_with_a_deny_finding() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin::load(support::top_levels(dir.path()), None).unwrap();
    let validator = plugin.validator(&json!({"deny_table": "secrets"})).unwrap();
    let pipeline = ValidationPipeline::new().with_validator(validator);
    let denied = pipeline.run(&ValidationContext::new("SELECT * FROM Secrets WHERE x = 1")).await;
    assert!(denied.is_denied(), "{denied:?}");
    assert_eq!(denied.findings[0].code, "table_denied");
    let err = pipeline.check(&ValidationContext::new("SELECT * FROM secrets")).await.unwrap_err();
    assert!(matches!(err, Error::ValidationDenied { .. }), "{err:?}");
    let allowed = pipeline.run(&ValidationContext::new("SELECT * FROM secrets_archive")).await;
    assert!(allowed.findings.is_empty(), "{allowed:?}");
}

#[tokio::test]
async fn a_dynamic_rust_validator_blocks_a_query_with_a_deny_finding() {
    let plugin = plugin::load(support::probe(), None).unwrap();
    let pipeline = ValidationPipeline::new()
        .with_validator(plugin.validator(&json!({"deny_table": "payroll"})).unwrap());
    let report = pipeline.run(&ValidationContext::new("SELECT name FROM payroll")).await;
    assert!(report.is_denied(), "{report:?}");
    assert_eq!(report.findings[0].severity, Severity::Deny);
    assert!(!pipeline.run(&ValidationContext::new("SELECT 1")).await.is_denied());
}

#[tokio::test]
async fn a_panicking_validator_gives_a_warning_not_a_crash() {
    let plugin = plugin::load(support::probe(), None).unwrap();
    let validator = plugin.validator(&json!({"panic_in": "validate"})).unwrap();
    let report = ValidationPipeline::new()
        .with_validator(validator)
        .run(&ValidationContext::new("SELECT 1"))
        .await;
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].code, "plugin_error");
    assert!(report.findings[0].message.contains("panicked"), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_panics_fails_its_run_and_everything_else_goes_on() {
    let probe = plugin::load(support::probe(), None).unwrap();
    let batches = support::log_batches(3, 100);

    let mut panicking = probe.processor(&json!({"panic_in": "process"})).unwrap();
    let err = support::drive(&mut panicking, "bad", &batches).await.unwrap_err();
    assert!(err.message().contains("panicked in process"), "{err}");
    assert!(err.message().contains("probe panics in process"), "{err}");
    // The poisoned instance refuses further calls instead of running on broken state.
    let again =
        panicking.finish(&flightline_core::process::ProcessContext::new("bad")).await.unwrap_err();
    assert!(again.message().contains("refuses further calls"), "{again}");

    // Another instance of the same library, and another plugin, still work.
    let mut healthy = probe.processor(&json!({})).unwrap();
    let report = support::drive(&mut healthy, "good", &batches).await.unwrap();
    assert_eq!((report.counts["rows"], report.counts["batches"]), (300, 3));
    let dir = tempfile::tempdir().unwrap();
    let c = plugin::load(support::top_levels(dir.path()), None).unwrap();
    let report =
        support::drive(&mut c.processor(&json!({})).unwrap(), "good", &batches).await.unwrap();
    assert_eq!(report.counts["rows"], 300);
}

#[tokio::test]
async fn a_failing_plugin_call_carries_the_plugins_message() {
    let probe = plugin::load(support::probe(), None).unwrap();
    let mut failing = probe.processor(&json!({"fail_in": "finish"})).unwrap();
    let err = support::drive(&mut failing, "j", &support::log_batches(1, 10)).await.unwrap_err();
    assert!(err.message().contains("probe fails in finish, as configured"), "{err}");
    assert!(err.message().contains("INTERNAL"), "{err}");
}

#[test]
fn plugin_calls_also_run_without_a_tokio_runtime() {
    let probe = plugin::load(support::probe(), None).unwrap();
    let mut processor = probe.processor(&json!({})).unwrap();
    let report = futures::executor::block_on(support::drive(
        &mut processor,
        "j",
        &support::log_batches(2, 5),
    ))
    .unwrap();
    assert_eq!(report.counts["rows"], 10);
}

mod through_the_executor {
    use std::time::Duration;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::Int32Type;
    use flightline_core::exec::{
        ABORT_DEADLINE, CancellationToken, ExecOutcome, ProgressEvent, ProgressObserver,
        QueryExecutor, RunRequest,
    };
    use flightline_core::process::{BatchProcessor, ProcessStage};
    use flightline_core::{Error, FlightSqlClient};
    use flightline_server::RunningServer;
    use serde_json::json;

    use super::support;

    async fn start() -> (RunningServer, FlightSqlClient) {
        support::demo_server(20_000, 5).await
    }

    async fn run(
        client: &FlightSqlClient,
        job: &str,
        processors: Vec<Box<dyn BatchProcessor>>,
    ) -> flightline_core::Result<flightline_core::exec::ExecOutcome> {
        let executor =
            QueryExecutor::new(client.clone()).job(job).target_batch_bytes(Some(32 * 1024));
        let run = executor.run(
            RunRequest::new("SELECT time, target, level FROM log_entries").processors(processors),
        );
        tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("the run did not end in time")
    }

    /// In a run, an instance's calls are made inline on the thread the executor gives it, not
    /// through the blocking pool, and its log lines still reach the caller's subscriber (here a
    /// thread-local one, on a current-thread runtime).
    #[tokio::test]
    async fn in_a_run_a_plugin_is_called_on_its_own_thread_and_logs_to_the_callers_subscriber() {
        let logs = support::Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_thread_names(true)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let (_server, client) = start().await;
        let probe = flightline_core::plugin::load(support::probe(), None).unwrap();
        let processor = probe.processor(&json!({})).unwrap();
        run(&client, "threads", vec![Box::new(processor)]).await.unwrap();
        let text = logs.text();
        let opened = text.lines().find(|l| l.contains("probe opened for job threads"));
        let opened = opened.unwrap_or_else(|| panic!("no probe line in:\n{text}"));
        assert!(opened.contains("processor probe"), "{opened}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rust_plugins_commit_crosses_the_abi_and_its_failure_fails_the_run() {
        let (_server, client) = start().await;
        let probe = flightline_core::plugin::load(support::probe(), None).unwrap();
        assert_eq!(probe.abi_version(), flightline_core::plugin::abi::ABI_2);
        let failing = probe.processor(&json!({"fail_in": "commit"})).unwrap();
        let err = run(&client, "commits", vec![Box::new(failing)]).await.unwrap_err();
        match &err {
            Error::Processor { processor, stage: ProcessStage::Commit, source, .. } => {
                assert_eq!(processor, "probe");
                assert!(source.message().contains("probe fails in commit"), "{err}");
            }
            other => panic!("{other:?}"),
        }
        let healthy = probe.processor(&json!({})).unwrap();
        assert!(run(&client, "commits", vec![Box::new(healthy)]).await.is_ok());
    }

    /// `top_levels` speaks version 1 only: no `commit` in its table, its `finish` publishes, and
    /// it runs beside version 2 processors unchanged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_1_plugin_without_commit_runs_beside_two_phase_processors() {
        let (_server, client) = start().await;
        let dir = tempfile::tempdir().unwrap();
        let old = flightline_core::plugin::load(support::top_levels(dir.path()), None).unwrap();
        assert_eq!(old.abi_version(), flightline_core::plugin::abi::ABI_1);
        let probe = flightline_core::plugin::load(support::probe(), None).unwrap();
        let processors: Vec<Box<dyn BatchProcessor>> = vec![
            Box::new(old.processor(&json!({})).unwrap()),
            Box::new(probe.processor(&json!({})).unwrap()),
        ];
        let outcome = run(&client, "mixed", processors).await.unwrap();
        let names: Vec<&str> = outcome.reports.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["top_levels", "probe"]);
        assert_eq!(outcome.reports[1].1.counts["rows"], outcome.stats.rows);
        // And when the other processor fails after both finished, the old plugin is not sent
        // the `abort` its header rules out after `finish`: the run just fails cleanly.
        let processors: Vec<Box<dyn BatchProcessor>> = vec![
            Box::new(old.processor(&json!({})).unwrap()),
            Box::new(probe.processor(&json!({"fail_in": "commit"})).unwrap()),
        ];
        let err = run(&client, "mixed", processors).await.unwrap_err();
        assert!(matches!(err, Error::Processor { stage: ProcessStage::Commit, .. }), "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_c_plugin_works_end_to_end_and_matches_the_servers_counts() {
        let (_server, client) = start().await;
        let dir = tempfile::tempdir().unwrap();
        let plugin = flightline_core::plugin::load(support::top_levels(dir.path()), None).unwrap();
        let outcome = run(&client, "levels", vec![Box::new(plugin.processor(&json!({})).unwrap())])
            .await
            .unwrap();
        let report = &outcome.reports[0].1;
        assert_eq!(outcome.reports[0].0, "top_levels");
        assert!(outcome.stats.batches > 1, "{:?}", outcome.stats);
        let expected = client
            .query("SELECT level, COUNT(*) AS n FROM log_entries GROUP BY level", None)
            .await
            .unwrap();
        let mut total = 0;
        for batch in &expected {
            let levels = batch.column(0).as_primitive::<Int32Type>();
            let counts = batch.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            for (level, n) in levels.values().iter().zip(counts.values()) {
                assert_eq!(
                    report.counts.get(&format!("level_{level}")),
                    Some(&(*n as u64)),
                    "{report:?}"
                );
                total += *n as u64;
            }
        }
        assert_eq!(report.counts["rows"], total);
        assert_eq!(outcome.stats.rows, total);
    }

    /// Cancels its token at the first batch handed to the processors.
    struct CancelAtFirstBatch(CancellationToken);

    impl ProgressObserver for CancelAtFirstBatch {
        fn on_event(&self, event: &ProgressEvent<'_>) {
            if let ProgressEvent::Batch { .. } = event {
                let cancel = self.0.clone();
                // Soon after, not at once: by then the plugin sits in `process`.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    cancel.cancel();
                });
            }
        }
    }

    #[test]
    fn a_cancelled_run_does_not_wait_for_a_plugin_blocked_in_process() {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
        let runtime = runtime.unwrap();
        let outcome = runtime.block_on(cancel_a_blocked_plugin());
        // The blocked call never returns: a runtime dropped the usual way (also while a failed
        // assertion unwinds) would wait for it, so the runtime goes before any assertion.
        runtime.shutdown_timeout(Duration::from_secs(1));
        let outcome = outcome.expect("the cancelled run waited for the blocked plugin").unwrap();
        assert!(outcome.stats.cancelled, "{:?}", outcome.stats);
        assert!(outcome.reports.is_empty());
    }

    async fn cancel_a_blocked_plugin()
    -> Result<flightline_core::Result<ExecOutcome>, tokio::time::error::Elapsed> {
        let (_server, client) = start().await;
        let probe = flightline_core::plugin::load(support::probe(), None).unwrap();
        let blocked: Vec<Box<dyn BatchProcessor>> =
            vec![Box::new(probe.processor(&json!({"block_in": "process"})).unwrap())];
        let cancel = CancellationToken::new();
        let executor = QueryExecutor::new(client.clone()).job("blocked");
        let observer = CancelAtFirstBatch(cancel.clone());
        let run = executor.run(
            RunRequest::new("SELECT time, target, level FROM log_entries")
                .processors(blocked)
                .progress(&observer)
                .cancel(cancel),
        );
        // Without a bound on the abort, the run waits for the blocked call for ever.
        tokio::time::timeout(ABORT_DEADLINE + Duration::from_secs(20), run).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_plugin_fails_its_run_with_a_clear_error_and_the_next_run_completes() {
        let (_server, client) = start().await;
        let probe = flightline_core::plugin::load(support::probe(), None).unwrap();
        let bad: Vec<Box<dyn BatchProcessor>> =
            vec![Box::new(probe.processor(&json!({"panic_in": "process"})).unwrap())];
        let err = run(&client, "bad", bad).await.unwrap_err();
        match &err {
            Error::Processor { processor, stage, batch, source } => {
                assert_eq!(processor, "probe");
                assert_eq!(*stage, ProcessStage::Process);
                assert_eq!(*batch, Some(0));
                assert!(source.message().contains("panicked in process"), "{source}");
            }
            other => panic!("{other:?}"),
        }
        let good: Vec<Box<dyn BatchProcessor>> =
            vec![Box::new(probe.processor(&json!({})).unwrap())];
        let outcome = run(&client, "good", good).await.unwrap();
        assert_eq!(outcome.reports[0].1.counts["rows"], outcome.stats.rows);
        assert!(outcome.stats.rows > 0);
    }
}
