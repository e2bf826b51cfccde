//! [`WriteSink`]: a [`SinkFormat`] written to standard output, or to an [`AtomicFile`] the
//! caller created, for `flightline query`. The file sinks' formats, the same bytes.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use flightline_core::atomic_file::AtomicFile;
use flightline_core::exec::CancellationToken;
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};

use super::sink::{SinkFormat, SinkOutput, blocking, file_error};

/// A processor writing the whole result in format `F` to standard output or to a file.
///
/// A file is flushed and synced in `finish` and appears, complete, in `commit`
/// ([`AtomicFile::commit`]); `abort` and dropping the sink remove it. When the format is full
/// ([`SinkFormat::is_full`], a table at its row cap) the output is completed at once, later
/// batches are ignored, and the token given to [`stop_when_full`](Self::stop_when_full) is
/// cancelled so that the run stops reading the result. Writes run on tokio's blocking threads.
pub struct WriteSink<F: SinkFormat> {
    name: &'static str,
    format: F,
    file: Option<AtomicFile>,
    writer: Option<F::Writer>,
    /// Set when standard output's reader went away.
    closed: Arc<AtomicBool>,
    stop: Option<CancellationToken>,
    rows: u64,
    path: Option<PathBuf>,
    /// The output is complete: it was full.
    done: bool,
}

impl<F: SinkFormat> WriteSink<F> {
    /// Writes to standard output.
    pub fn stdout(name: &'static str, format: F) -> Self {
        Self::with(name, format, None)
    }

    /// Writes to `file` and publishes it in `finish`.
    pub fn file(name: &'static str, format: F, file: AtomicFile) -> Self {
        Self::with(name, format, Some(file))
    }

    fn with(name: &'static str, format: F, file: Option<AtomicFile>) -> Self {
        let closed = Arc::new(AtomicBool::new(false));
        let (writer, stop, rows, path, done) = (None, None, 0, None, false);
        Self { name, format, file, writer, closed, stop, rows, path, done }
    }

    /// Cancels `stop` once the format is full.
    pub fn stop_when_full(mut self, stop: CancellationToken) -> Self {
        self.stop = Some(stop);
        self
    }

    /// `err`, or a broken pipe when standard output's reader went away: some formats keep only
    /// the text of the I/O error they met, and a closed pipe is the reader's choice, not a
    /// failure.
    fn or_closed(&self, err: ProcessError) -> ProcessError {
        if self.closed.load(Ordering::Relaxed) {
            let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
            return ProcessError::with_source("standard output was closed", pipe);
        }
        err
    }

    /// Ends the format and flushes the output; a file is synced, still under its temporary
    /// name (the prepare half of the commit).
    async fn close(&mut self) -> Result<(), ProcessError> {
        let writer = self.writer.take().ok_or_else(|| ProcessError::new("not opened"))?;
        let file = self.file.take();
        let file = blocking(move || {
            let mut out = F::close(writer)?;
            out.flush()?;
            drop(out);
            if let Some(file) = &file {
                file.file().sync_all()?;
            }
            Ok(file)
        })
        .await
        .map_err(|err| self.or_closed(err))?;
        self.file = file;
        Ok(())
    }

    /// Publishes the file closed by [`close`](Self::close), if there is one.
    async fn publish(&mut self) -> Result<(), ProcessError> {
        let file = self.file.take();
        self.path =
            blocking(move || file.map(|file| file.commit().map_err(file_error)).transpose())
                .await?;
        Ok(())
    }
}

#[async_trait]
impl<F: SinkFormat> BatchProcessor for WriteSink<F> {
    fn name(&self) -> &str {
        self.name
    }

    async fn open(
        &mut self,
        schema: &SchemaRef,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let out: SinkOutput = match &self.file {
            Some(file) => Box::new(file.try_clone_file().map_err(file_error)?),
            None => Box::new(Watched { inner: io::stdout(), closed: self.closed.clone() }),
        };
        let (format, schema) = (self.format.clone(), schema.clone());
        let writer = blocking(move || format.open(out, &schema)).await?;
        self.writer = Some(writer);
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        if self.done {
            return Ok(());
        }
        let mut writer = self.writer.take().ok_or_else(|| ProcessError::new("not opened"))?;
        let (batch, rows) = (batch.clone(), batch.num_rows() as u64);
        let (writer, full) = blocking(move || {
            F::write(&mut writer, &batch)?;
            let full = F::is_full(&writer);
            Ok((writer, full))
        })
        .await
        .map_err(|err| self.or_closed(err))?;
        self.writer = Some(writer);
        self.rows += rows;
        if full {
            // Published at once: the run is about to be cancelled, and a cancelled run commits
            // nothing.
            self.close().await?;
            self.publish().await?;
            self.done = true;
            if let Some(stop) = &self.stop {
                stop.cancel();
            }
        }
        Ok(())
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        if !self.done {
            self.close().await?;
        }
        let mut report = Report::default();
        report.counts.insert("rows_written".into(), self.rows);
        let target = self.file.as_ref().map(|file| file.target().to_path_buf());
        report.files.extend(target.or_else(|| self.path.clone()));
        Ok(report)
    }

    async fn commit(&mut self) -> Result<(), ProcessError> {
        if !self.done {
            self.publish().await?;
        }
        Ok(())
    }

    async fn abort(&mut self) {
        // Dropping the writer closes its handle; dropping the file removes it. A complete
        // output stays.
        let (writer, file) = (self.writer.take(), self.file.take());
        let _ = tokio::task::spawn_blocking(move || drop((writer, file))).await;
    }
}

/// Standard output, remembering when its reader went away.
struct Watched {
    inner: io::Stdout,
    closed: Arc<AtomicBool>,
}

impl Watched {
    fn watch<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(err) = &result
            && err.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl Write for Watched {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf);
        self.watch(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        let flushed = self.inner.flush();
        self.watch(flushed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use flightline_core::atomic_file::Publish;

    use super::*;
    use crate::processors::{CsvFormat, TableFormat};

    fn batch(n: i32) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        let column = Arc::new(Int32Array::from((0..n).collect::<Vec<_>>()));
        RecordBatch::try_new(schema, vec![column]).unwrap()
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_full_table_is_published_at_once_and_stops_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.txt");
        let file = AtomicFile::create(&path, Publish::Replace).unwrap();
        let stop = CancellationToken::new();
        let format = TableFormat::capped(2, "cut");
        let mut sink = WriteSink::file("table", format, file).stop_when_full(stop.clone());
        let ctx = ProcessContext::new("q");
        sink.open(&batch(0).schema(), &ctx).await.unwrap();
        sink.process(&batch(1), &ctx).await.unwrap();
        assert!(!stop.is_cancelled() && !path.exists());
        sink.process(&batch(3), &ctx).await.unwrap();
        assert!(stop.is_cancelled());
        sink.process(&batch(5), &ctx).await.unwrap();
        // The run is cancelled, so the executor aborts: the complete table stays.
        sink.abort().await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("| 0 |\n+---+\ncut\n"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("| ")).count(), 3, "{text}");
        assert_eq!(names(dir.path()), ["table.txt"]);
    }

    #[tokio::test]
    async fn finish_completes_the_output_under_the_sinks_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.txt");
        let file = AtomicFile::create(&path, Publish::Replace).unwrap();
        // A table is rendered when the writer is closed: by `finish`, for one under its cap.
        let mut sink = WriteSink::file("table", TableFormat::capped(100, "cut"), file);
        assert_eq!(sink.name(), "table");
        let ctx = ProcessContext::new("q");
        sink.open(&batch(0).schema(), &ctx).await.unwrap();
        sink.process(&batch(3), &ctx).await.unwrap();
        sink.finish(&ctx).await.unwrap();
        sink.commit().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("| 2 |") && !text.contains("cut"), "{text}");
    }

    #[tokio::test]
    async fn an_aborted_file_leaves_nothing_and_a_committed_one_reports_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let ctx = ProcessContext::new("q");
        let file = AtomicFile::create(&path, Publish::Replace).unwrap();
        let mut sink = WriteSink::file("csv", CsvFormat::default(), file);
        sink.open(&batch(0).schema(), &ctx).await.unwrap();
        sink.process(&batch(3), &ctx).await.unwrap();
        sink.abort().await;
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));

        let file = AtomicFile::create(&path, Publish::Replace).unwrap();
        let mut sink = WriteSink::file("csv", CsvFormat::default(), file);
        sink.open(&batch(0).schema(), &ctx).await.unwrap();
        sink.process(&batch(2), &ctx).await.unwrap();
        let report = sink.finish(&ctx).await.unwrap();
        assert_eq!(report.counts["rows_written"], 2);
        assert_eq!(report.files, std::slice::from_ref(&path));
        assert!(!path.exists(), "finish only prepares; commit publishes");
        sink.commit().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "n\n0\n1\n");
    }
}
