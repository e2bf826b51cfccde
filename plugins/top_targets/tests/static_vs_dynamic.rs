//! The example plugin loaded dynamically gives exactly the report of the same processor linked
//! statically, on the same batches: both run side by side in one `QueryExecutor` run against the
//! embedded server.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::exec::{QueryExecutor, RunRequest};
use flightline_core::process::BatchProcessor;
use flightline_core::{FlightSqlClient, TimeRange};
use flightline_server::ServerBuilder;
use serde_json::json;
use top_targets::{Options, TopTargets};

/// Builds this crate's cdylib (a no-op when fresh) into this test's own target directory.
/// With the libraries of the whole workspace, so that cargo picks the features of the test
/// command's own build: `--lib` of this crate alone chose others and rebuilt arrow and its
/// dependencies inside the test run (107 s, measured).
fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let status = Command::new(cargo)
        .args(["build", "--offline", "--workspace", "--lib", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", profile.parent().unwrap())
        .args(profile.file_name().is_some_and(|n| n == "release").then_some("--release"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build of the plugin failed");
    let path = profile.join(format!(
        "{}top_targets{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(path.is_file(), "{}", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamic_plugin_reports_exactly_what_the_static_processor_reports() {
    let end: DateTime<Utc> = "2024-01-08T00:00:00Z".parse().unwrap();
    let server = ServerBuilder::new()
        .demo_rows(30_000)
        .seed(11)
        .demo_end(end)
        .demo_window(chrono::Duration::days(7))
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = FlightSqlClient::builder(server.uri()).connect().await.unwrap();
    let plugin = flightline_core::plugin::load(plugin_path(), None).unwrap();
    let options = json!({"top": 4, "max_level": 3});
    let window = TimeRange::new(end - chrono::Duration::days(5), end).unwrap();

    let static_processor =
        TopTargets::new(serde_json::from_value::<Options>(options.clone()).unwrap());
    let dynamic_processor = plugin.processor(&options).unwrap();
    let processors: Vec<Box<dyn BatchProcessor>> =
        vec![Box::new(static_processor), Box::new(dynamic_processor)];
    let executor =
        QueryExecutor::new(client).job("top-targets").target_batch_bytes(Some(64 * 1024));
    let run = executor.run(
        RunRequest::new("SELECT time, target, level, msg FROM log_entries")
            .range(Some(window))
            .processors(processors),
    );
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await.unwrap().unwrap();

    assert_eq!(outcome.reports.len(), 2);
    let (static_report, dynamic_report) = (&outcome.reports[0].1, &outcome.reports[1].1);
    assert_eq!(outcome.reports[1].0, "top_targets");
    assert!(outcome.stats.batches > 1, "several batches must cross: {:?}", outcome.stats);
    assert_eq!(static_report.counts["rows"], outcome.stats.rows);
    assert!(static_report.counts["error_rows"] > 0, "{static_report:?}");
    assert_eq!(static_report.tables[0].rows.len(), 4, "{static_report:?}");
    assert_eq!(static_report.notes, vec![format!("window {window}")]);
    assert_eq!(static_report, dynamic_report);
}
