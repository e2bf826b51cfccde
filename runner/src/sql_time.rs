//! `{begin}` / `{end}` in a job's SQL, for servers that ignore the Micromegas time headers.
//!
//! The literals are formatted here from the window's instants, never taken from user text, as
//! `TIMESTAMP '2024-01-01T00:00:00.000000000Z'`: standard SQL that DataFusion (the embedded
//! server, roapi, InfluxDB 3, Ballista) reads as that UTC instant, with nanoseconds kept. The
//! placeholders are found by [`flightline_core::time::placeholders`]: every other brace in the
//! SQL (a JSON literal, a regular expression) is left as written.

use chrono::{DateTime, SecondsFormat, Utc};
use flightline_core::TimeRange;
use flightline_core::time::placeholders::{BEGIN, END, Template};

/// The SQL literal for `instant`.
pub fn timestamp_literal(instant: &DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", instant.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

/// `sql` with every `{begin}` and `{end}` replaced by the window's literals.
pub fn render(sql: &str, range: &TimeRange) -> String {
    let template = Template::scan(sql, &[BEGIN, END]);
    match template.render(Some(range), timestamp_literal, |_| None) {
        Ok(sql) => sql,
        // Only a missing window fails, and the window is given.
        Err(_) => sql.to_string(),
    }
}

/// True when `sql` has `placeholder` (`{begin}` or `{end}`, braces included) where [`render`]
/// replaces it.
pub fn uses(sql: &str, placeholder: &str) -> bool {
    let name = placeholder.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
    name.is_some_and(|name| Template::scan(sql, &[BEGIN, END]).uses(name))
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

    #[test]
    fn other_braces_stay_and_only_the_two_placeholders_are_found() {
        let range = TimeRange::parse("2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z").unwrap();
        let sql = "SELECT '{\"a\":1}', '{job}' WHERE t < {end}";
        assert_eq!(
            render(sql, &range),
            "SELECT '{\"a\":1}', '{job}' WHERE t < TIMESTAMP '2024-01-01T00:00:01.000000000Z'"
        );
        assert!(uses(sql, "{end}") && !uses(sql, "{begin}") && !uses(sql, "{job}"));
    }
}
