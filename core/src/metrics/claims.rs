//! Who owns which metric name: one name has one type in a Prometheus scrape.
//!
//! The exporter renders every metric the process records. A name recorded as a counter by one
//! emitter and as a gauge by another gets two `# TYPE` lines, and Prometheus then rejects every
//! sample of the scrape, not just the two. So every name that does not come from the host is
//! claimed here first, with its kind and its owner: a claim of a taken name with another kind is
//! refused with a message naming both owners, as are the host's `flightline_` prefix and names
//! Prometheus cannot parse (the exporter would silently rewrite them). A histogram `h` also
//! renders `h_bucket`, `h_sum` and `h_count`, so those collide too. Claims last for the process.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Result};

/// The prefix of every metric the host emits; refused for anyone else.
pub const HOST_PREFIX: &str = "flightline_";

/// What a metric is, as the exporter's `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A monotonic counter.
    Counter,
    /// A gauge.
    Gauge,
    /// A histogram (rendered as `_bucket`, `_sum` and `_count` series).
    Histogram,
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        })
    }
}

/// Every claimed name: its kind and who claimed it first.
static CLAIMS: Mutex<Option<HashMap<String, (MetricKind, String)>>> = Mutex::new(None);

/// The series names a histogram renders besides its own.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

/// Claims `name` as a metric of `kind` for `owner` (e.g. "plugin `probe`"). Claiming a name
/// again with the same kind succeeds, whoever asks: samples of one type from several emitters
/// are one metric with different labels.
///
/// Refused with [`Error::MetricName`] when `name` is not a Prometheus metric name, starts with
/// [`HOST_PREFIX`], or is taken with another kind (the message names both owners and kinds).
pub fn claim_metric_name(name: &str, kind: MetricKind, owner: &str) -> Result<()> {
    let refuse = |reason: String| Error::MetricName { name: name.to_string(), reason };
    if !is_valid_metric_name(name) {
        return Err(refuse("not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)".into()));
    }
    if name.starts_with(HOST_PREFIX) {
        return Err(refuse(format!(
            "the prefix `{HOST_PREFIX}` is the host's own; {owner} must use another prefix"
        )));
    }
    let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
    let claims = claims.get_or_insert_with(HashMap::new);
    if let Some((taken, by)) = clash(claims, name, kind) {
        return Err(refuse(format!(
            "{owner} wants a {kind}, but {by} already has it as a {taken}, and one name has one \
             type in a scrape; rename one of them"
        )));
    }
    claims.entry(name.to_string()).or_insert_with(|| (kind, owner.to_string()));
    Ok(())
}

/// The claim `name` as `kind` would collide with: the same name with another kind, or a
/// histogram's derived series.
fn clash(
    claims: &HashMap<String, (MetricKind, String)>,
    name: &str,
    kind: MetricKind,
) -> Option<(MetricKind, String)> {
    let found = |n: &str| claims.get(n).cloned();
    if let Some((taken, by)) = found(name)
        && taken != kind
    {
        return Some((taken, by));
    }
    if kind == MetricKind::Histogram
        && let Some(hit) = HISTOGRAM_SUFFIXES.iter().find_map(|s| found(&format!("{name}{s}")))
    {
        return Some(hit);
    }
    HISTOGRAM_SUFFIXES
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .filter_map(found)
        .find(|(taken, _)| *taken == MetricKind::Histogram)
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, Prometheus's metric name syntax.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// For names only known when a sample arrives (a plugin's): true when the sample may be
/// recorded. A refused sample is dropped and counted in
/// [`METRIC_SAMPLES_DROPPED_TOTAL`](super::METRIC_SAMPLES_DROPPED_TOTAL) (`plugin`, `metric`),
/// with one error log per name and owner, not one per sample.
pub fn admit_sample(name: &str, kind: MetricKind, plugin: &str) -> bool {
    static REPORTED: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);
    let owner = format!("plugin `{plugin}`");
    let Err(err) = claim_metric_name(name, kind, &owner) else { return true };
    let first = REPORTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert((name.to_string(), plugin.to_string()));
    if first {
        tracing::error!(plugin, "metric samples dropped: {err}");
    }
    metrics::counter!(
        super::METRIC_SAMPLES_DROPPED_TOTAL,
        crate::plugin::LABEL_PLUGIN => plugin.to_string(),
        super::LABEL_METRIC => name.to_string()
    )
    .increment(1);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str, kind: MetricKind, owner: &str) -> String {
        claim_metric_name(name, kind, owner).unwrap_err().to_string()
    }

    #[test]
    fn a_name_has_one_kind_and_the_refusal_names_both_owners() {
        claim_metric_name("claims_test_rows", MetricKind::Counter, "plugin `a`").unwrap();
        claim_metric_name("claims_test_rows", MetricKind::Counter, "plugin `b`").unwrap();
        let text = refused("claims_test_rows", MetricKind::Gauge, "prometheus_gauges");
        for part in ["claims_test_rows", "prometheus_gauges", "gauge", "plugin `a`", "counter"] {
            assert!(text.contains(part), "{part:?} missing: {text}");
        }
    }

    #[test]
    fn histogram_series_collide_with_their_derived_names() {
        claim_metric_name("claims_test_latency", MetricKind::Histogram, "plugin `h`").unwrap();
        let text = refused("claims_test_latency_count", MetricKind::Gauge, "plugin `g`");
        assert!(text.contains("plugin `h`") && text.contains("histogram"), "{text}");
        claim_metric_name("claims_test_size_sum", MetricKind::Counter, "plugin `c`").unwrap();
        let text = refused("claims_test_size", MetricKind::Histogram, "plugin `h`");
        assert!(text.contains("plugin `c`"), "{text}");
    }

    #[test]
    fn the_host_prefix_and_invalid_names_are_refused() {
        let text = refused("flightline_rows_total", MetricKind::Counter, "plugin `p`");
        assert!(text.contains("flightline_") && text.contains("host"), "{text}");
        assert!(refused("bad-name", MetricKind::Gauge, "plugin `p`").contains("bad-name"));
        assert!(refused("", MetricKind::Gauge, "plugin `p`").contains("not a Prometheus"));
    }
}
