//! Functions whose time, not their output, outgrows their input: one call runs inside one poll of
//! the engine, which no cancellation can interrupt, so its work is bounded before it starts.
//!
//! `levenshtein` compares every character of one string with every character of the other:
//! two strings of 10,000 characters cost 10^8 steps (measured: 5 s in the README's build
//! profile), two of a megabyte 10^12 (hours at that rate), and the query would outlive its
//! client and `--query-timeout`.

use datafusion::logical_expr::ColumnarValue;

use super::args::Args;

/// The most steps one call may take over one batch: about 3 s in the README's build profile at
/// the rate measured above; 8,192 rows of 90-character strings compared pairwise fit.
pub const MAX_CALL_STEPS: u128 = 1 << 26;

/// How a function's work grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Work {
    /// `levenshtein(a, b)`: `len(a) × len(b)` (bytes, at least the characters compared).
    Pairs,
}

/// How the built-in function `name`'s work grows, or `None` when it is linear in its input.
pub fn classify(name: &str) -> Option<Work> {
    match name {
        "levenshtein" => Some(Work::Pairs),
        _ => None,
    }
}

impl Work {
    /// The most steps a call over `rows` rows of `args` may take.
    pub fn steps(self, args: &[ColumnarValue], rows: usize) -> u128 {
        let args = Args::new(args);
        let row_steps = |row| match self {
            Work::Pairs => args.bytes(0, row).saturating_mul(args.bytes(1, row)),
        };
        if args.all_scalar() {
            return row_steps(0);
        }
        (0..rows).map(row_steps).fold(0, u128::saturating_add)
    }

    /// What the user can change.
    pub fn advice(self) -> &'static str {
        match self {
            Work::Pairs => "compare shorter strings (a prefix, say), or fewer rows at a time",
        }
    }
}
