//! A plugin's log lines and metric samples reach the host's subscriber and recorder (the
//! recorder the runner serves on `/metrics`), from a Rust plugin and from the C plugin.
//!
//! One test in this binary: it installs a global subscriber and a global recorder, as the runner
//! does (plugin calls run on the blocking pool, so a thread-local recorder would not see them).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_log_lines_and_metrics_reach_the_host() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let batches = support::log_batches(3, 100);
    let probe = flightline_core::plugin::load(support::probe(), None).unwrap();
    support::drive(&mut probe.processor(&json!({})).unwrap(), "nightly", &batches).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = flightline_core::plugin::load(support::top_levels(dir.path()), None).unwrap();
    support::drive(&mut c.processor(&json!({})).unwrap(), "nightly", &batches).await.unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let opened = text.lines().find(|l| l.contains("probe opened for job nightly with 3 columns"));
    let opened = opened.unwrap_or_else(|| panic!("no probe line in:\n{text}"));
    assert!(opened.contains("WARN") && opened.contains("flightline::plugin"), "{opened}");
    assert!(opened.contains("probe"), "{opened}");
    let counted = text.lines().find(|l| l.contains("top_levels: 300 rows counted"));
    let counted = counted.unwrap_or_else(|| panic!("no top_levels line in:\n{text}"));
    assert!(counted.contains("INFO") && counted.contains("job=\"nightly\""), "{counted}");

    let rendered = metrics.render();
    let rows = line(&rendered, "probe_rows_total");
    for part in ["side=\"plugin\"", "plugin=\"probe\"", "job=\"nightly\""] {
        assert!(rows.contains(part), "{part} missing: {rows}");
    }
    assert!(rows.ends_with(" 300"), "{rows}");
    assert!(line(&rendered, "probe_last_rows").ends_with(" 300"), "{rendered}");
    assert!(rendered.contains("probe_batch_rows"), "{rendered}");
    let c_rows = line(&rendered, "top_levels_rows_total");
    assert!(
        c_rows.contains("language=\"c\"") && c_rows.contains("plugin=\"top_levels\""),
        "{c_rows}"
    );
    assert!(c_rows.ends_with(" 300"), "{c_rows}");
}
