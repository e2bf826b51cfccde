//! A plugin's log lines and metric samples reach the host's subscriber and recorder (the
//! recorder the runner serves on `/metrics`), from a Rust plugin and from the C plugin; samples
//! under the host's names or names taken with another type are dropped, so the scrape parses.
//!
//! One test in this binary: it installs a global subscriber and a global recorder, as the runner
//! does (plugin calls run on the blocking pool, so a thread-local recorder would not see them).

mod support;

use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::json;

/// A processor plugin whose every batch emits one good counter and three samples that would
/// break the scrape: a host name, a name `probe` records as a counter (as a gauge here), and a
/// name Prometheus cannot parse.
const COLLIDING: &str = r#"
#include <stdlib.h>
#include <string.h>
#include "flightline_plugin.h"

static const struct FlightlineHost* the_host;

static FlightlineStatus c_create(const char* options_json, const struct FlightlineHost* host,
                                 void** instance, struct FlightlineError* error) {
  (void)options_json; (void)error;
  the_host = host;
  *instance = (void*)&the_host;
  return FLIGHTLINE_STATUS_OK;
}
static FlightlineStatus c_open(void* instance, const struct ArrowSchema* schema,
                               const struct FlightlineContext* context,
                               struct FlightlineError* error) {
  (void)instance; (void)schema; (void)context; (void)error;
  return FLIGHTLINE_STATUS_OK;
}
static FlightlineStatus c_process(void* instance, struct ArrowArray* batch,
                                  const struct ArrowSchema* schema,
                                  const struct FlightlineContext* context,
                                  struct FlightlineError* error) {
  (void)instance; (void)batch; (void)schema; (void)context; (void)error;
  void* data = the_host->host_data;
  the_host->metric(data, FLIGHTLINE_METRIC_COUNTER, "colliding_good_total", NULL, 0, 1);
  the_host->metric(data, FLIGHTLINE_METRIC_COUNTER, "flightline_rows_total", NULL, 0, 1);
  the_host->metric(data, FLIGHTLINE_METRIC_GAUGE, "probe_rows_total", NULL, 0, 7);
  the_host->metric(data, FLIGHTLINE_METRIC_HISTOGRAM, "bad-name", NULL, 0, 1);
  return FLIGHTLINE_STATUS_OK;
}
static FlightlineStatus c_finish(void* instance, const struct FlightlineContext* context,
                                 char** report_json, struct FlightlineError* error) {
  (void)instance; (void)context; (void)error;
  *report_json = strdup("{}");
  return FLIGHTLINE_STATUS_OK;
}
static void c_release_string(char* string) { free(string); }
static void c_destroy(void* instance) { (void)instance; }

FlightlineStatus flightline_plugin_init(uint32_t version, void* table,
                                        struct FlightlineError* error) {
  (void)error;
  if (version != FLIGHTLINE_PLUGIN_ABI_1) return FLIGHTLINE_STATUS_NOT_IMPLEMENTED;
  struct FlightlinePluginTable* t = table;
  t->size = (uint32_t)FLIGHTLINE_PLUGIN_TABLE_SIZE_1;
  t->kind = FLIGHTLINE_KIND_PROCESSOR;
  t->name = "colliding";
  t->version = "1.0.0";
  t->create = c_create;
  t->open = c_open;
  t->process = c_process;
  t->finish = c_finish;
  t->release_string = c_release_string;
  t->destroy = c_destroy;
  return FLIGHTLINE_STATUS_OK;
}
"#;

/// Every `# TYPE` line of a scrape: name and type.
fn types(rendered: &str) -> Vec<(String, String)> {
    rendered
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect()
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
    let logs = support::Captured::default();
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

    let text = logs.text();
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

    // Names that would break the scrape are dropped, counted, and logged once each.
    let colliding =
        flightline_core::plugin::load(support::c_plugin(dir.path(), "colliding", COLLIDING), None)
            .unwrap();
    support::drive(&mut colliding.processor(&json!({})).unwrap(), "nightly", &batches)
        .await
        .unwrap();
    let rendered = metrics.render();
    let types = types(&rendered);
    let mut names: Vec<&String> = types.iter().map(|(n, _)| n).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a name with two # TYPE lines:\n{rendered}");
    assert!(line(&rendered, "colliding_good_total").ends_with(" 3"), "{rendered}");
    for never in ["flightline_rows_total", "bad"] {
        assert!(!rendered.lines().any(|l| l.starts_with(never)), "{never}:\n{rendered}");
    }
    assert!(types.contains(&("probe_rows_total".into(), "counter".into())), "{rendered}");
    assert!(line(&rendered, "probe_rows_total").ends_with(" 300"), "{rendered}");
    let dropped = |metric: &str| {
        rendered
            .lines()
            .find(|l| {
                l.starts_with("flightline_metric_samples_dropped_total{")
                    && l.contains(&format!("metric=\"{metric}\""))
            })
            .unwrap_or_else(|| panic!("no dropped count for {metric}:\n{rendered}"))
            .to_string()
    };
    for metric in ["flightline_rows_total", "probe_rows_total", "bad-name"] {
        let count = dropped(metric);
        assert!(count.contains("plugin=\"colliding\"") && count.ends_with(" 3"), "{count}");
    }
    let text = logs.text();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("metric samples dropped")).collect();
    assert_eq!(errors.len(), 3, "one error per name:\n{text}");
    let taken = errors.iter().find(|l| l.contains("probe_rows_total")).unwrap();
    assert!(taken.contains("plugin `colliding`") && taken.contains("plugin `probe`"), "{taken}");
}
