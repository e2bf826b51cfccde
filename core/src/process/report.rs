//! The summary a processor returns from `finish`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Serde-serializable summary of one processor's run. The runner prints and exports it;
/// dynamic plugins return it as JSON, so a static and a dynamic run of the same processor
/// compare equal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Named counts, e.g. `{"rows_matched": 42}`.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Small result tables, e.g. a count per group.
    #[serde(default)]
    pub tables: Vec<ReportTable>,
    /// Files written and committed.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Free-form remarks.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A titled table of JSON values, one inner vector per row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportTable {
    /// What the table shows.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.counts {
            writeln!(f, "{name}: {value}")?;
        }
        for table in &self.tables {
            write!(f, "{table}")?;
        }
        for file in &self.files {
            writeln!(f, "wrote {}", file.display())?;
        }
        for note in &self.notes {
            writeln!(f, "{note}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ReportTable {
    /// Renders an aligned text table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<Vec<String>> =
            self.rows.iter().map(|row| row.iter().map(cell_text).collect()).collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (i, cell) in row.iter().enumerate() {
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(cell.chars().count()),
                    None => widths.push(cell.chars().count()),
                }
            }
        }
        if !self.title.is_empty() {
            writeln!(f, "{}", self.title)?;
        }
        write_row(f, &self.columns, &widths)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        write_row(f, &rule, &widths)?;
        for row in &cells {
            write_row(f, row, &widths)?;
        }
        Ok(())
    }
}

fn cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn write_row(f: &mut fmt::Formatter<'_>, cells: &[String], widths: &[usize]) -> fmt::Result {
    let line: Vec<String> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
        .collect();
    writeln!(f, "{}", line.join("  ").trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_through_json_with_defaults() {
        let mut report = Report::default();
        report.counts.insert("rows_matched".into(), 42);
        report.tables.push(ReportTable {
            title: "per level".into(),
            columns: vec!["level".into(), "rows".into()],
            rows: vec![vec![2.into(), 40.into()], vec![1.into(), 2.into()]],
        });
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
        let sparse: Report = serde_json::from_str(r#"{"counts":{"a":1}}"#).unwrap();
        assert_eq!(sparse.counts["a"], 1);
        assert!(sparse.tables.is_empty());
    }

    #[test]
    fn table_renders_aligned() {
        let table = ReportTable {
            title: String::new(),
            columns: vec!["target".into(), "n".into()],
            rows: vec![vec!["a::long".into(), 7.into()]],
        };
        let text = table.to_string();
        assert_eq!(text, "target   n\n-------  -\na::long  7\n");
    }
}
