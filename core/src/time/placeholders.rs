//! `{begin}` / `{end}` (and other `{name}` placeholders) in a text: found, checked and
//! substituted in one place for the job's SQL (timestamp literals) and the file sinks' paths
//! (file-safe instants).
//!
//! A text is read one of two ways:
//! - [`Template::parse`], for a text whose braces are all placeholders (a path template): every
//!   `{` opens a placeholder with a name from the allowed set, closed by the next `}`; anything
//!   else is a [`TemplateProblem`].
//! - [`Template::scan`], for a text whose braces can mean something else (SQL: JSON, regular
//!   expressions): only `{name}` with an allowed name is a placeholder, every other brace is
//!   text, never an error.
//!
//! [`Template::render`] then substitutes `{begin}` / `{end}` with the window's instants in the
//! caller's format, and the other placeholders with the caller's values.

use std::fmt;

use chrono::{DateTime, Utc};

use super::TimeRange;

/// The placeholder of the window's first instant.
pub const BEGIN: &str = "begin";
/// The placeholder of the window's first excluded instant.
pub const END: &str = "end";

/// A text cut into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Placeholder(String),
}

/// Why [`Template::parse`] refused a text; its `Display` is the reason in the user's terms, for
/// the caller to put after the text it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateProblem {
    /// A `{` without a `}` after it.
    Unclosed,
    /// A `}` that closes no `{`.
    Unopened,
    /// A placeholder whose name is not allowed.
    Unknown {
        /// The name between the braces.
        name: String,
        /// The allowed names, in the order given.
        allowed: Vec<String>,
    },
}

impl fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateProblem::Unclosed => f.write_str("a `{` is never closed"),
            TemplateProblem::Unopened => f.write_str("a `}` without its `{`"),
            TemplateProblem::Unknown { name, allowed } => {
                write!(f, "unknown placeholder {{{name}}}; use {}", one_of(allowed))
            }
        }
    }
}

/// `{a}`, `{b} or {c}`.
fn one_of(names: &[String]) -> String {
    let braced: Vec<String> = names.iter().map(|n| format!("{{{n}}}")).collect();
    match braced.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => braced.concat(),
    }
}

/// [`Template::render`] met `{begin}` or `{end}` without a window to take the instant from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoWindow {
    /// The placeholder, braces included: `{begin}` or `{end}`.
    pub placeholder: &'static str,
}

impl Template {
    /// Reads `text` whose every brace belongs to a placeholder named in `allowed`.
    pub fn parse(text: &str, allowed: &[&str]) -> Result<Self, TemplateProblem> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            let len = rest[start..].find('}').ok_or(TemplateProblem::Unclosed)?;
            let name = &rest[start + 1..start + len];
            if !allowed.contains(&name) {
                let allowed = allowed.iter().map(|n| n.to_string()).collect();
                return Err(TemplateProblem::Unknown { name: name.to_string(), allowed });
            }
            push_text(&mut pieces, &rest[..start]);
            pieces.push(Piece::Placeholder(name.to_string()));
            rest = &rest[start + len + 1..];
        }
        if rest.contains('}') {
            return Err(TemplateProblem::Unopened);
        }
        push_text(&mut pieces, rest);
        Ok(Self { pieces })
    }

    /// Reads `text` where only `{name}` with a name in `allowed` is a placeholder.
    pub fn scan(text: &str, allowed: &[&str]) -> Self {
        let mut pieces = Vec::new();
        let (mut rest, mut literal) = (text, 0);
        while let Some(start) = rest[literal..].find('{').map(|at| literal + at) {
            let after = &rest[start + 1..];
            let known = allowed
                .iter()
                .find(|name| after.strip_prefix(**name).is_some_and(|tail| tail.starts_with('}')));
            match known {
                Some(name) => {
                    push_text(&mut pieces, &rest[..start]);
                    pieces.push(Piece::Placeholder(name.to_string()));
                    rest = &after[name.len() + 1..];
                    literal = 0;
                }
                None => literal = start + 1,
            }
        }
        push_text(&mut pieces, rest);
        Self { pieces }
    }

    /// True when the text has placeholder `{name}`.
    pub fn uses(&self, name: &str) -> bool {
        self.pieces.iter().any(|piece| matches!(piece, Piece::Placeholder(p) if p == name))
    }

    /// The text with `{begin}` / `{end}` replaced by `format` of the window's instants and
    /// every other placeholder by `value` of its name (`None` keeps it as written). Fails when
    /// the text has `{begin}` or `{end}` (checked in that order) and there is no window.
    pub fn render(
        &self,
        window: Option<&TimeRange>,
        format: impl Fn(&DateTime<Utc>) -> String,
        value: impl Fn(&str) -> Option<String>,
    ) -> Result<String, NoWindow> {
        if window.is_none() {
            for (name, placeholder) in [(BEGIN, "{begin}"), (END, "{end}")] {
                if self.uses(name) {
                    return Err(NoWindow { placeholder });
                }
            }
        }
        let mut out = String::new();
        for piece in &self.pieces {
            match (piece, window) {
                (Piece::Text(text), _) => out.push_str(text),
                (Piece::Placeholder(name), Some(w)) if name == BEGIN => {
                    out.push_str(&format(&w.begin))
                }
                (Piece::Placeholder(name), Some(w)) if name == END => out.push_str(&format(&w.end)),
                (Piece::Placeholder(name), _) => match value(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&format!("{{{name}}}")),
                },
            }
        }
        Ok(out)
    }
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use chrono::SecondsFormat;

    use super::*;

    const PATH: &[&str] = &[BEGIN, END, "job"];

    fn window() -> TimeRange {
        TimeRange::parse("2024-01-01T12:00:00Z", "2024-01-01T12:00:01.5Z").unwrap()
    }

    fn sql_literal(instant: &DateTime<Utc>) -> String {
        format!("TIMESTAMP '{}'", instant.to_rfc3339_opts(SecondsFormat::Nanos, true))
    }

    fn file_safe(instant: &DateTime<Utc>) -> String {
        instant.format("%Y%m%dT%H%M%S%.fZ").to_string()
    }

    #[test]
    fn an_unknown_placeholder_is_named_with_the_allowed_ones() {
        let err = Template::parse("x_{start}.csv", PATH).unwrap_err();
        assert_eq!(err.to_string(), "unknown placeholder {start}; use {begin}, {end} or {job}");
        let err = Template::parse("x_{}.csv", &[BEGIN]).unwrap_err();
        assert_eq!(err.to_string(), "unknown placeholder {}; use {begin}");
        let err = Template::parse("{begin}{{end}}", PATH).unwrap_err();
        assert!(matches!(&err, TemplateProblem::Unknown { name, .. } if name == "{end"), "{err}");
    }

    #[test]
    fn unbalanced_braces_are_refused_by_parse_and_kept_by_scan() {
        assert_eq!(Template::parse("x_{begin.csv", PATH), Err(TemplateProblem::Unclosed));
        assert_eq!(Template::parse("x}.csv", PATH), Err(TemplateProblem::Unopened));
        assert_eq!(Template::parse("{begin}}", PATH), Err(TemplateProblem::Unopened));
        let sql = "SELECT '{\"a\": {1}' WHERE t >= {begin} AND x = '}{' AND t < {end} -- {beg";
        let template = Template::scan(sql, &[BEGIN, END]);
        let rendered = template.render(Some(&window()), |_| "T".into(), |_| None).unwrap();
        assert_eq!(rendered, "SELECT '{\"a\": {1}' WHERE t >= T AND x = '}{' AND t < T -- {beg");
    }

    #[test]
    fn instants_are_formatted_the_callers_way() {
        let sql = Template::scan("t >= {begin} AND t < {end} -- {end}", &[BEGIN, END]);
        assert_eq!(
            sql.render(Some(&window()), sql_literal, |_| None).unwrap(),
            "t >= TIMESTAMP '2024-01-01T12:00:00.000000000Z' AND \
             t < TIMESTAMP '2024-01-01T12:00:01.500000000Z' -- \
             TIMESTAMP '2024-01-01T12:00:01.500000000Z'"
        );
        let path = Template::parse("out/{job}/{begin}_{end}.csv", PATH).unwrap();
        let job = |name: &str| (name == "job").then(|| "daily".to_string());
        assert_eq!(
            path.render(Some(&window()), file_safe, job).unwrap(),
            "out/daily/20240101T120000Z_20240101T120001.500Z.csv"
        );
    }

    #[test]
    fn a_time_placeholder_without_a_window_is_named_begin_first() {
        let path = Template::parse("{end}/{begin}/{job}", PATH).unwrap();
        assert!(path.uses(BEGIN) && path.uses(END) && path.uses("job") && !path.uses("x"));
        let err = path.render(None, file_safe, |_| None).unwrap_err();
        assert_eq!(err.placeholder, "{begin}");
        let end_only = Template::parse("{end}/{job}", PATH).unwrap();
        assert_eq!(end_only.render(None, file_safe, |_| None).unwrap_err().placeholder, "{end}");
        let no_time = Template::parse("{job}.csv", PATH).unwrap();
        assert_eq!(no_time.render(None, file_safe, |_| Some("j".into())).unwrap(), "j.csv");
        assert_eq!(no_time.render(None, file_safe, |_| None).unwrap(), "{job}.csv");
    }

    #[test]
    fn scan_finds_only_allowed_names_and_parse_keeps_text_around_them() {
        let sql = Template::scan("{job} {begin}", &[BEGIN, END]);
        assert!(!sql.uses("job") && sql.uses(BEGIN) && !sql.uses(END));
        let plain = Template::parse("no placeholders.csv", PATH).unwrap();
        assert_eq!(plain.render(None, file_safe, |_| None).unwrap(), "no placeholders.csv");
    }
}
