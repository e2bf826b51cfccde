//! Three jobs at once against the embedded server; the scraped `/metrics` page agrees with
//! what each job saw: rows per job, histogram counts equal to batch counts, runs by status.
//! (One test in this file: the Prometheus recorder is global to the process.)

mod common;

use flightline_runner::metrics::scrape;
use flightline_server::ServerBuilder;

use common::{parse_metrics, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_jobs_match_their_scraped_metrics() {
    let server = ServerBuilder::new()
        .demo_rows(60_000)
        .demo_end("2024-06-01T00:00:00Z".parse().unwrap())
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display();
    let text = format!(
        r#"
[server]
uri = "{uri}"
[runner]
max_concurrent_queries = 3
[[job]]
name = "errors"
sql = "SELECT time, level, target FROM log_entries"
begin = "2024-05-25T00:00:00Z"
end = "2024-06-01T00:00:00Z"
target_batch_bytes = 65536
processors = [{{ name = "count_by", options = {{ column = "level", threshold = 2, group_by = ["level"] }} }}]
[[job]]
name = "latency"
sql = "SELECT name, value FROM measures"
begin = "2024-05-31T00:00:00Z"
end = "2024-06-01T00:00:00Z"
target_batch_bytes = 16384
processors = [
  {{ name = "aggregate", options = {{ group_by = ["name"], columns = ["value"] }} }},
  {{ name = "parquet_sink", options = {{ path = "{out}/latency.parquet" }} }},
]
[[job]]
name = "levels"
sql = "SELECT level, count(*) AS n FROM log_entries GROUP BY level"
begin = "2024-05-25T00:00:00Z"
end = "2024-06-01T00:00:00Z"
processors = [{{ name = "print" }}]
"#,
        uri = server.uri()
    );
    let (summary, endpoint) = common::run_in_process("three.toml", &text).await;
    assert!(summary.failed_jobs().is_empty(), "{summary:#?}");

    let page = scrape(endpoint.listen()).await.unwrap();
    let metrics = parse_metrics(&page);
    assert!(page.contains("# TYPE flightline_batch_duration_seconds histogram"), "{page}");
    assert!(page.contains("le=\"0.0005\""), "buckets start at 0.5 ms: {page}");
    for job in &summary.jobs {
        let by_job = [("job", job.name.as_str())];
        assert!(job.rows > 0 && job.batches > 0, "{job:?}");
        assert_eq!(
            sample(&metrics, "flightline_rows_total", &by_job),
            Some(job.rows as f64),
            "{}",
            job.name
        );
        assert_eq!(
            sample(&metrics, "flightline_bytes_total", &by_job),
            Some(job.bytes as f64),
            "{}",
            job.name
        );
        assert_eq!(
            sample(&metrics, "flightline_batches_total", &by_job),
            Some(job.batches as f64),
            "{}",
            job.name
        );
        let ok = [("job", job.name.as_str()), ("status", "ok")];
        assert_eq!(sample(&metrics, "flightline_job_runs_total", &ok), Some(1.0), "{}", job.name);
        assert_eq!(sample(&metrics, "flightline_query_duration_seconds_count", &by_job), Some(1.0));
        assert_eq!(sample(&metrics, "flightline_jobs_in_flight", &by_job), Some(0.0));
        for (processor, _) in &job.reports {
            let labels = [("job", job.name.as_str()), ("processor", processor.as_str())];
            assert_eq!(
                sample(&metrics, "flightline_batch_duration_seconds_count", &labels),
                Some(job.batches as f64),
                "{} / {processor}",
                job.name
            );
            // The +Inf bucket holds every sample: a real histogram, not a summary.
            let inf =
                [("job", job.name.as_str()), ("processor", processor.as_str()), ("le", "+Inf")];
            assert_eq!(
                sample(&metrics, "flightline_batch_duration_seconds_bucket", &inf),
                Some(job.batches as f64)
            );
        }
    }
    // Re-batching to small targets made several batches, so the counts above were not trivially 1.
    assert!(summary.jobs[0].batches > 1, "{:?}", summary.jobs[0]);
    server.shutdown().await.unwrap();
}
