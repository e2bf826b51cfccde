//! One module per subcommand.

pub mod check;
pub mod demo;
pub mod plugins;
pub mod query;
pub mod run;
pub mod schema;
pub mod serve;
pub mod status;
pub mod validate;

use std::io::Write;

use crate::RunnerError;

/// Writes `text` and a newline to stdout, turning a closed pipe into an error, not a panic
/// (`main` then exits quietly: `flightline ... | head` is not a failure). Commands print
/// through this, never `println!`, which panics on a closed pipe.
pub(crate) fn print_stdout(text: &str) -> Result<(), RunnerError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|source| RunnerError::Io { path: "stdout".into(), source })
}
