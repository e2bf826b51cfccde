//! The terminal, shared by the progress bars, the log lines and what processors print.
//!
//! While bars are shown, anything else written to the terminal goes through them: the bars
//! are cleared, the text written, the bars drawn again below it. Written straight to stderr
//! or stdout, a line would land between bars and leave stale copies of them behind, because
//! the bars' redraw moves the cursor up by the number of lines it drew last time.

use std::io::Write;
use std::sync::{Arc, Mutex};

use indicatif::MultiProgress;
use tracing_subscriber::fmt::MakeWriter;

static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// From now on, log lines and printed tables go above `bars`.
pub fn show_bars(bars: MultiProgress) {
    *lock() = Some(bars);
    flightline_core::console::set_hook(Some(Arc::new(|text: &str| {
        write_through(text.as_bytes(), || std::io::stdout().lock())
    })));
}

fn lock() -> std::sync::MutexGuard<'static, Option<MultiProgress>> {
    BARS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `bytes` whole to `out`, above the bars when they are shown.
fn write_through<W: Write>(bytes: &[u8], out: impl FnOnce() -> W) -> std::io::Result<()> {
    // Cloned out of the lock: `suspend` takes the bars' own lock, and a log line written
    // while drawing must not wait on ours.
    let bars = lock().clone();
    let write = || {
        let mut out = out();
        out.write_all(bytes)?;
        out.flush()
    };
    match bars {
        Some(bars) => bars.suspend(write),
        None => write(),
    }
}

/// The log subscriber's writer: each event is written whole, above the bars when shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> Self::Writer {
        LogLine(Vec::with_capacity(256))
    }
}

/// One log event, buffered until the subscriber is done with it.
#[derive(Debug)]
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            // A log line that cannot be written has nowhere else to go.
            let _ = write_through(&self.0, || std::io::stderr().lock());
        }
    }
}
