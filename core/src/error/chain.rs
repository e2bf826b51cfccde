//! Printing an error with its causes.
//!
//! Every error type of the workspace says its cause either in its message or through
//! [`std::error::Error::source`], never both, so printing the whole chain says each cause once.

use std::error::Error as StdError;
use std::fmt;

/// Displays an error followed by each of its causes.
///
/// `{}` writes one line, `what failed: why: why`, for log fields and summaries; `{:#}` writes
/// one cause per line (`what failed` then `  caused by: why`), for a person at a terminal.
///
/// ```
/// use flightline_core::error::Chain;
///
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let err = flightline_core::process::ProcessError::with_source("cannot open the sink", io);
/// assert_eq!(Chain(&err).to_string(), "cannot open the sink: no such file");
/// assert_eq!(format!("{:#}", Chain(&err)), "cannot open the sink\n  caused by: no such file");
/// ```
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let separator = if f.alternate() { "\n  caused by: " } else { ": " };
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, "{separator}{err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
