//! How big a built-in function's output can get, from its arguments: every function is either
//! bounded by its inputs or grows in one of the ways of [`Growth`].
//!
//! The estimates are upper bounds, cheap next to the call itself (at most one pass over the
//! short arguments), so that the check can run before the function allocates anything.

use arrow::datatypes::DataType;
use datafusion::logical_expr::ColumnarValue;

use super::args::Args;

/// How a function's output grows with its arguments (argument positions as in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Growth {
    /// `repeat(text, n)`: `len(text) × n`.
    Repeat,
    /// `lpad` / `rpad(text, n [, fill])`: the text plus `n` fill characters, four bytes each
    /// unless the fill is ASCII.
    Pad,
    /// `replace(text, from, to)`: every occurrence of `from` (between every character when
    /// empty) becomes `to`.
    Replace,
    /// `regexp_replace(text, pattern, replacement [, flags])`: with `g`, a match at every
    /// position, each the replacement, whose `$n` / `\n` each copy at most the whole text.
    RegexpReplace,
    /// `regexp_match(text, pattern [, flags])`: a copy of the text per capture group.
    Captures,
    /// `translate(text, from, to)`: every character may become one of `to` (four bytes).
    Translate,
    /// `concat(...)`: the sum of the arguments.
    Concat,
    /// `concat_ws(separator, ...)`: the arguments and a separator between each two.
    ConcatWs,
    /// `overlay(text, placing, from [, for])`: a negative length repeats part of the text.
    Overlay,
    /// `lower`, `upper`, `initcap`: one character maps to up to three (`ΐ` → `Ϊ́`).
    CaseMap,
    /// `encode(bytes, 'hex' | 'base64')`: two characters per byte.
    Encode,
    /// `to_char(value, format)`: each two-character specifier prints up to 32 characters.
    Format,
    /// `arrow_cast` and kin: the type asked for can be wider than the value (a
    /// `FixedSizeBinary` of two gigabytes, a number printed as text).
    Cast,
}

/// Functions whose every value is at most as large as their inputs' (or of a small fixed
/// size), so they need no cap. With [`classify`], every built-in function is in exactly one
/// of the two lists; a test checks that against the session's registry.
pub const BOUNDED: &[&str] = &[
    // core
    "arrow_field",
    "arrow_metadata",
    "arrow_typeof",
    "coalesce",
    "file_row_index",
    "get_field",
    "greatest",
    "input_file_name",
    "least",
    "named_struct",
    "nullif",
    "nvl",
    "nvl2",
    "struct",
    "union_extract",
    "union_tag",
    "version",
    "with_metadata",
    // datetime
    "current_date",
    "current_time",
    "date_bin",
    "date_part",
    "date_trunc",
    "from_unixtime",
    "make_date",
    "make_time",
    "now",
    "to_date",
    "to_local_time",
    "to_time",
    "to_timestamp",
    "to_timestamp_micros",
    "to_timestamp_millis",
    "to_timestamp_nanos",
    "to_timestamp_seconds",
    "to_unixtime",
    // encoding: decoding shrinks
    "decode",
    // math
    "abs",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "cbrt",
    "ceil",
    "cos",
    "cosh",
    "cot",
    "degrees",
    "exp",
    "factorial",
    "floor",
    "gcd",
    "isnan",
    "iszero",
    "lcm",
    "ln",
    "log",
    "log10",
    "log2",
    "nanvl",
    "pi",
    "power",
    "radians",
    "random",
    "round",
    "signum",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "trunc",
    // regex: counts, positions and booleans
    "regexp_count",
    "regexp_instr",
    "regexp_like",
    // string and unicode: fixed sizes, or parts of the input
    "ascii",
    "bit_length",
    "btrim",
    "character_length",
    "chr",
    "contains",
    "ends_with",
    "find_in_set",
    "left",
    "ltrim",
    "octet_length",
    "reverse",
    "right",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "substr_index",
    "to_hex",
    "uuid",
];

/// How the built-in function `name` grows, or `None` when it does not (see [`BOUNDED`]).
pub fn classify(name: &str) -> Option<Growth> {
    Some(match name {
        "repeat" => Growth::Repeat,
        "lpad" | "rpad" => Growth::Pad,
        "replace" => Growth::Replace,
        "regexp_replace" => Growth::RegexpReplace,
        "regexp_match" => Growth::Captures,
        "translate" => Growth::Translate,
        "concat" => Growth::Concat,
        "concat_ws" => Growth::ConcatWs,
        "overlay" => Growth::Overlay,
        "lower" | "upper" | "initcap" => Growth::CaseMap,
        "encode" => Growth::Encode,
        "to_char" => Growth::Format,
        "arrow_cast" | "arrow_try_cast" | "cast_to_type" | "try_cast_to_type" => Growth::Cast,
        _ => return None,
    })
}

/// The most a call may build: its largest value and all its values together, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Bytes of the largest value.
    pub largest: u128,
    /// Bytes of every value of the call.
    pub total: u128,
}

impl Growth {
    /// The most a call over `rows` rows of `args`, returning `output`, may build.
    pub fn estimate(self, args: &[ColumnarValue], rows: usize, output: &DataType) -> Estimate {
        let args = Args::new(args);
        let width = fixed_width(output);
        let value = |row| self.value_bound(&args, row).max(width);
        if args.all_scalar() {
            // One value, which the caller may repeat once per row.
            let largest = value(0);
            return Estimate { largest, total: largest.saturating_mul(rows.max(1) as u128) };
        }
        (0..rows).fold(Estimate { largest: 0, total: 0 }, |acc, row| {
            let v = value(row);
            Estimate { largest: acc.largest.max(v), total: acc.total.saturating_add(v) }
        })
    }

    /// The most bytes the value at `row` may hold.
    fn value_bound(self, a: &Args, row: usize) -> u128 {
        let bytes = |i| a.bytes(i, row);
        let count = |i| a.int(i, row).map_or(0, |n| n.max(0) as u128);
        let ascii = |i| a.text(i, row).is_some_and(str::is_ascii);
        match self {
            Growth::Repeat => bytes(0).saturating_mul(count(1)),
            Growth::Pad => {
                let fill_width = if a.count() < 3 || ascii(2) { 1 } else { 4 };
                bytes(0).saturating_add(count(1).saturating_mul(fill_width))
            }
            Growth::Replace => {
                let (text, from, to) = (bytes(0), bytes(1), bytes(2));
                // An empty `from` matches between every two characters and at both ends.
                let matches = text.checked_div(from).unwrap_or(text + 1);
                text.saturating_add(matches.saturating_mul(to))
            }
            Growth::RegexpReplace => {
                let (text, replacement) = (bytes(0), bytes(2));
                let global = a.text(3, row).is_some_and(|flags| flags.contains('g'));
                let matches = if global { text + 1 } else { 1 };
                let references = a.text(2, row).map_or(replacement, group_references);
                text.saturating_add(matches.saturating_mul(replacement))
                    .saturating_add(references.saturating_mul(text))
            }
            Growth::Captures => {
                let groups = a.text(1, row).map_or(bytes(1), |p| p.matches('(').count() as u128);
                bytes(0).saturating_mul(groups + 1)
            }
            Growth::Translate => bytes(0).saturating_mul(if ascii(2) { 1 } else { 4 }),
            Growth::Concat => (0..a.count()).map(bytes).fold(0, u128::saturating_add),
            Growth::ConcatWs => {
                let parts = (1..a.count()).map(bytes).fold(0, u128::saturating_add);
                parts.saturating_add(bytes(0).saturating_mul(a.count() as u128))
            }
            Growth::Overlay => bytes(0).saturating_mul(2).saturating_add(bytes(1)),
            Growth::CaseMap => bytes(0).saturating_mul(if ascii(0) { 1 } else { 3 }),
            Growth::Encode => bytes(0).saturating_mul(2).saturating_add(4),
            Growth::Format => bytes(1).saturating_mul(16).saturating_add(64),
            // Text keeps its length (or shrinks to a number); a number or a nested value printed
            // as text takes at most four characters per byte, and a fixed-size type is bounded
            // by the output's width.
            Growth::Cast if a.is_bytes(0) => bytes(0),
            Growth::Cast => bytes(0).saturating_mul(4).saturating_add(64),
        }
    }
}

/// `$1`, `${name}` and `\1` in a replacement: each may copy a whole match.
fn group_references(replacement: &str) -> u128 {
    replacement.bytes().filter(|b| matches!(b, b'$' | b'\\')).count() as u128
}

/// Bytes every value of `t` takes whatever it holds (a null included): what a cast to a
/// `FixedSizeBinary` or `FixedSizeList` allocates per row.
pub(crate) fn fixed_width(t: &DataType) -> u128 {
    match t {
        DataType::FixedSizeBinary(n) => (*n).max(0) as u128,
        DataType::FixedSizeList(field, n) => {
            fixed_width(field.data_type()).max(1).saturating_mul((*n).max(0) as u128)
        }
        DataType::Struct(fields) => {
            fields.iter().map(|f| fixed_width(f.data_type())).fold(0, u128::saturating_add)
        }
        other => other.primitive_width().unwrap_or(0) as u128,
    }
}
