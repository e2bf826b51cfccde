//! `{begin}` / `{end}` in a job's SQL, for servers that ignore the Micromegas time headers.
//!
//! The literals are formatted here from the window's instants, never taken from user text, as
//! `TIMESTAMP '2024-01-01T00:00:00.000000000Z'`: standard SQL that DataFusion (the embedded
//! server, roapi, InfluxDB 3, Ballista) reads as that UTC instant, with nanoseconds kept.

use chrono::{DateTime, SecondsFormat, Utc};
use flightline_core::TimeRange;

/// The SQL literal for `instant`.
pub fn timestamp_literal(instant: &DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", instant.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

/// `sql` with every `{begin}` and `{end}` replaced by the window's literals.
pub fn render(sql: &str, range: &TimeRange) -> String {
    sql.replace("{begin}", &timestamp_literal(&range.begin))
        .replace("{end}", &timestamp_literal(&range.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_utc_literals() {
        let range =
            TimeRange::parse("2024-01-01T00:00:00Z", "2024-01-01T01:00:00.5+01:00").unwrap();
        let sql = render("SELECT * FROM t WHERE time >= {begin} AND time < {end} -- {end}", &range);
        assert_eq!(
            sql,
            "SELECT * FROM t WHERE time >= TIMESTAMP '2024-01-01T00:00:00.000000000Z' AND time < \
             TIMESTAMP '2024-01-01T00:00:00.500000000Z' -- TIMESTAMP '2024-01-01T00:00:00.500000000Z'"
        );
    }
}
