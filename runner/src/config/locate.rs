//! From a byte span in the file to what a person needs: the line, the key path and the text
//! that was written there.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// The parsed document, kept to translate spans into lines and key paths.
pub(crate) struct Source<'a> {
    text: &'a str,
    tree: Option<DeTable<'a>>,
}

impl<'a> Source<'a> {
    /// Indexes `text`; a document with syntax errors still yields the keys read before them.
    pub fn new(text: &'a str) -> Self {
        let (tree, _) = DeTable::parse_recoverable(text);
        Self { text, tree: Some(tree.into_inner()) }
    }

    /// 1-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
    }

    /// The text at `span`, on one line and cut short, for "got ..." in messages.
    pub fn snippet(&self, span: &Range<usize>) -> Option<String> {
        let text = self.text.get(span.clone())?.trim();
        if text.is_empty() {
            return None;
        }
        let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(match one_line.char_indices().nth(60) {
            Some((cut, _)) => format!("{}...", &one_line[..cut]),
            None => one_line,
        })
    }

    /// Dotted path of the key at byte `offset`, e.g. `job[1].retries.max`.
    pub fn key_path(&self, offset: usize) -> String {
        let mut path = Vec::new();
        if let Some(tree) = &self.tree {
            walk_table(tree, offset, &mut path);
        }
        let mut out = String::new();
        for part in path {
            if !part.starts_with('[') && !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
        out
    }
}

fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) {
    // The entry whose key or value holds the offset; failing that (tables opened by a header
    // have short spans), the last entry starting before it.
    let mut best = None;
    for (key, value) in table.iter() {
        if key.span().contains(&offset) {
            path.push(key.get_ref().to_string());
            return;
        }
        let span = value.span();
        if span.contains(&offset) {
            best = Some((key, value));
            break;
        }
        if span.start <= offset && best.is_none_or(|(_, v)| v.span().start < span.start) {
            best = Some((key, value));
        }
    }
    if let Some((key, value)) = best {
        path.push(key.get_ref().to_string());
        walk_value(value.get_ref(), offset, path);
    }
}

fn walk_value(value: &DeValue<'_>, offset: usize, path: &mut Vec<String>) {
    match value {
        DeValue::Table(table) => walk_table(table, offset, path),
        DeValue::Array(items) => {
            let found = items.iter().enumerate().rfind(|(_, v)| v.span().start <= offset);
            if let Some((index, item)) = found {
                path.push(format!("[{index}]"));
                walk_value(item.get_ref(), offset, path);
            }
        }
        _ => {}
    }
}
