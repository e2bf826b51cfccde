//! Dynamic plugins in runner jobs: the C example plugin runs a job end to end, its host metric
//! reaches the runner's `/metrics`, and a plugin that panics fails only its own job while the
//! others complete. (One test in this file: the Prometheus recorder is global to the process.)

mod common;

#[path = "../../core/tests/support/mod.rs"]
mod support;

use flightline_runner::metrics::scrape;
use flightline_server::ServerBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_plugin_job_completes_beside_a_panicking_plugin_job() {
    let server = ServerBuilder::new()
        .demo_rows(20_000)
        .demo_end("2024-06-01T00:00:00Z".parse().unwrap())
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c_plugin = support::top_levels(dir.path());
    let probe = support::probe();
    let text = format!(
        r#"
[server]
uri = "{uri}"
[[job]]
name = "c_levels"
sql = "SELECT level FROM log_entries"
begin = "2024-05-25T00:00:00Z"
end = "2024-06-01T00:00:00Z"
processors = [{{ plugin = "{c}" }}]
[[job]]
name = "panics"
sql = "SELECT level, target FROM log_entries"
begin = "2024-05-25T00:00:00Z"
end = "2024-06-01T00:00:00Z"
processors = [{{ plugin = "{probe}", options = {{ panic_in = "process" }} }}]
[[job]]
name = "builtin"
sql = "SELECT level, target FROM log_entries"
begin = "2024-05-25T00:00:00Z"
end = "2024-06-01T00:00:00Z"
processors = [{{ name = "count_by", options = {{ column = "level", threshold = 2, group_by = ["level"] }} }}]
"#,
        uri = server.uri(),
        c = c_plugin.display(),
        probe = probe.display(),
    );
    let (summary, endpoint) = common::run_in_process("plugins.toml", &text).await;

    assert_eq!(summary.failed_jobs(), vec!["panics".to_string()], "{summary:#?}");
    let job = |name: &str| summary.jobs.iter().find(|j| j.name == name).unwrap();
    let error = job("panics").last_error.clone().unwrap();
    assert!(error.contains("panicked"), "{error}");
    let c_job = job("c_levels");
    assert!(c_job.rows > 0, "{c_job:?}");
    assert_eq!(c_job.reports.len(), 1, "{c_job:?}");
    assert!(job("builtin").rows > 0);

    let page = scrape(endpoint.listen()).await.unwrap();
    let plugin_rows: f64 = page
        .lines()
        .filter(|l| l.starts_with("top_levels_rows_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(plugin_rows, c_job.rows as f64, "{page}");
    server.shutdown().await.unwrap();
}
