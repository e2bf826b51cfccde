//! What the file sinks share: the path template, and the commit protocol that leaves either
//! the whole file or none ([`flightline_core::atomic_file`]: an exclusive temporary file in the
//! same directory, fsync, rename or no-replace link, directory fsync).

use std::io::Write;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Timelike, Utc};
use flightline_core::atomic_file::{AtomicFile, FileStep, Publish};
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};
use flightline_core::time::placeholders::{BEGIN, END, NoWindow, Template};

use crate::error::PluginsError;

/// The placeholder of the job's name.
const JOB: &str = "job";

/// A file path with placeholders, rendered in `open` from the run's context: `{begin}` and
/// `{end}` (the window's instants, e.g. `20240101T120000Z`), `{job}` (the job name with
/// anything but letters, digits, `-`, `_` and `.` replaced by `_`). A rerun of the same window
/// renders the same path, so it rewrites its file instead of adding a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    template: String,
    parsed: Template,
}

impl PathTemplate {
    /// Checks `template`: only the known placeholders, balanced braces.
    pub fn parse(processor: &str, template: &str) -> Result<Self, PluginsError> {
        let refuse =
            |why: String| super::options_error(processor, format!("`path` {template:?}: {why}"));
        if template.trim().is_empty() {
            return Err(refuse("empty; give a file path".into()));
        }
        let parsed = Template::parse(template, &[BEGIN, END, JOB])
            .map_err(|problem| refuse(problem.to_string()))?;
        Ok(Self { template: template.to_string(), parsed })
    }

    /// True when the path names a file per time window (it has `{begin}` or `{end}`), so that a
    /// scheduled job's windows each get their own file.
    pub fn is_per_window(&self) -> bool {
        self.parsed.uses(BEGIN) || self.parsed.uses(END)
    }

    /// The path for this run.
    pub fn render(&self, ctx: &ProcessContext) -> Result<PathBuf, ProcessError> {
        let job = |name: &str| (name == JOB).then(|| safe_name(&ctx.job));
        let path = self.parsed.render(ctx.window.as_ref(), safe_instant, job).map_err(
            |NoWindow { placeholder }| {
                ProcessError::new(format!(
                    "the path {:?} uses {placeholder} but the run has no time range; give the \
                     query a time range or remove the placeholder",
                    self.template
                ))
            },
        )?;
        Ok(PathBuf::from(path))
    }
}

/// The `path` template of a built-in file sink, from its name and options; `None` for any other
/// processor (or options without a valid `path`, which building the sink reports).
pub fn sink_path(processor: &str, options: &serde_json::Value) -> Option<PathTemplate> {
    if !matches!(processor, "parquet_sink" | "csv_sink" | "ndjson_sink") {
        return None;
    }
    PathTemplate::parse(processor, options.get("path")?.as_str()?).ok()
}

/// An instant as a file-name part: `20240101T120000Z`, with `.123456789` before the `Z` when
/// it has a fraction. No `:`, which some file systems refuse.
pub(crate) fn safe_instant(instant: &DateTime<Utc>) -> String {
    let whole = instant.format("%Y%m%dT%H%M%S").to_string();
    match instant.nanosecond() {
        0 => format!("{whole}Z"),
        nanos => format!("{whole}.{:09}Z", nanos % 1_000_000_000),
    }
}

fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect()
}

/// A processor that writes the whole result to one file, atomically: `finish` writes and syncs
/// it under a temporary name, the file appears, complete, in `commit`, and a failed or
/// cancelled run (this processor's or another's failure) leaves none.
///
/// The file is an [`AtomicFile`]: stale temporary files of the same path left by a killed run
/// are removed in `open`; with `overwrite = false` the name is taken by a no-replace publish, so
/// of two runs racing for one path exactly one writes it and the other fails with
/// [`flightline_core::Error::FileExists`] as the error's source. Opening, encoding, writing and
/// publishing run on tokio's blocking threads, never on the async workers. Cancel safety: a
/// `process` dropped mid-await loses its writer; the temporary file is removed by `abort` or
/// when the sink drops.
pub struct FileSink<F: SinkFormat> {
    name: &'static str,
    path: PathTemplate,
    overwrite: bool,
    format: F,
    file: Option<AtomicFile>,
    writer: Option<F::Writer>,
    rows: u64,
}

/// Where a [`SinkFormat`] writes: a file, or standard output ([`super::WriteSink`]).
pub type SinkOutput = Box<dyn Write + Send>;

/// A file format a [`FileSink`] (or a [`super::WriteSink`]) writes. Every method runs on a
/// blocking thread.
pub trait SinkFormat: Clone + Send + 'static {
    /// The open writer.
    type Writer: Send + 'static;
    /// Starts writing `schema`'d batches into `out`.
    fn open(&self, out: SinkOutput, schema: &SchemaRef) -> Result<Self::Writer, ProcessError>;
    /// Writes one batch.
    fn write(writer: &mut Self::Writer, batch: &RecordBatch) -> Result<(), ProcessError>;
    /// Ends the output (footer, buffers), flushing everything into it.
    fn close(writer: Self::Writer) -> Result<SinkOutput, ProcessError>;
    /// True when the writer wants no more batches (a table at its row cap).
    fn is_full(writer: &Self::Writer) -> bool {
        let _ = writer;
        false
    }
}

impl<F: SinkFormat> FileSink<F> {
    pub(crate) fn with_format(
        name: &'static str,
        path: &str,
        overwrite: bool,
        format: F,
    ) -> Result<Self, PluginsError> {
        Ok(Self {
            name,
            path: PathTemplate::parse(name, path)?,
            overwrite,
            format,
            file: None,
            writer: None,
            rows: 0,
        })
    }

    fn publish(&self) -> Publish {
        if self.overwrite { Publish::Replace } else { Publish::NoReplace }
    }
}

/// Runs `work` on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProcessError> + Send + 'static,
) -> Result<T, ProcessError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ProcessError::new(format!("the file task failed: {err}")))?
}

/// The sink's error for a failure of the atomic file, keeping the typed error as its source
/// (which names the file, so the message does not).
pub(super) fn file_error(err: flightline_core::Error) -> ProcessError {
    let message = match &err {
        flightline_core::Error::FileExists { .. } => {
            "the output file exists; set `overwrite = true` to replace it"
        }
        _ => "cannot write the output file",
    };
    ProcessError::with_source(message, err)
}

/// Creates the temporary file and starts the format's writer in it.
fn start<F: SinkFormat>(
    format: &F,
    target: PathBuf,
    publish: Publish,
    schema: &SchemaRef,
) -> Result<(AtomicFile, F::Writer), ProcessError> {
    // Checked here too so that a rerun fails before any work; the publish decides for sure.
    if publish == Publish::NoReplace && std::fs::symlink_metadata(&target).is_ok() {
        return Err(file_error(flightline_core::Error::FileExists { path: target }));
    }
    let file = AtomicFile::create(target, publish).map_err(file_error)?;
    let writer = format.open(Box::new(file.try_clone_file().map_err(file_error)?), schema)?;
    Ok((file, writer))
}

#[async_trait]
impl<F: SinkFormat> BatchProcessor for FileSink<F> {
    fn name(&self) -> &str {
        self.name
    }

    async fn open(&mut self, schema: &SchemaRef, ctx: &ProcessContext) -> Result<(), ProcessError> {
        let target = self.path.render(ctx)?;
        let (format, publish, schema) = (self.format.clone(), self.publish(), schema.clone());
        let (file, writer) = blocking(move || start(&format, target, publish, &schema)).await?;
        self.file = Some(file);
        self.writer = Some(writer);
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let mut writer = self.writer.take().ok_or_else(|| ProcessError::new("not opened"))?;
        let (batch, rows) = (batch.clone(), batch.num_rows() as u64);
        let writer = blocking(move || F::write(&mut writer, &batch).map(|()| writer)).await?;
        self.writer = Some(writer);
        self.rows += rows;
        Ok(())
    }

    /// Ends the file and syncs it to disk under its temporary name: after this only the
    /// rename is left, for [`commit`](Self::commit).
    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let (writer, file) = self
            .writer
            .take()
            .zip(self.file.take())
            .ok_or_else(|| ProcessError::new("not opened"))?;
        let file = blocking(move || {
            drop(F::close(writer)?);
            file.file().sync_all().map_err(|cause| {
                file_error(flightline_core::Error::File {
                    path: file.target().to_path_buf(),
                    step: FileStep::SyncFile,
                    cause,
                })
            })?;
            Ok(file)
        })
        .await?;
        let mut report = Report::default();
        report.counts.insert("rows_written".into(), self.rows);
        report.files.push(file.target().to_path_buf());
        self.file = Some(file);
        Ok(report)
    }

    /// Publishes the file: the rename (or no-replace link) and the directory sync.
    async fn commit(&mut self) -> Result<(), ProcessError> {
        let file = self.file.take().ok_or_else(|| ProcessError::new("not finished"))?;
        blocking(move || file.commit().map(drop).map_err(file_error)).await
    }

    async fn abort(&mut self) {
        // Dropping the writer closes its handle; dropping the file removes it.
        let (writer, file) = (self.writer.take(), self.file.take());
        let _ = tokio::task::spawn_blocking(move || drop((writer, file))).await;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use flightline_core::TimeRange;

    use super::*;

    #[test]
    fn a_path_is_per_window_with_either_placeholder_and_only_file_sinks_have_one() {
        let per_window = |t: &str| PathTemplate::parse("csv_sink", t).unwrap().is_per_window();
        assert!(per_window("out/{begin}.csv") && per_window("out/{end}.csv"));
        assert!(per_window("out/{begin}-{end}.csv"));
        assert!(!per_window("out/{job}.csv") && !per_window("out/all.csv"));
        let options = serde_json::json!({ "path": "out/{begin}.parquet" });
        let path = sink_path("parquet_sink", &options).expect("a file sink's path");
        assert!(path.is_per_window());
        assert!(sink_path("count_by", &options).is_none(), "not a file sink");
        assert!(sink_path("csv_sink", &serde_json::json!({})).is_none(), "no path");
    }

    #[test]
    fn template_renders_window_and_job_safely() {
        let t = PathTemplate::parse("csv_sink", "out/{job}/{begin}_{end}.csv").unwrap();
        let begin = Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap();
        let end = begin + chrono::Duration::milliseconds(1500);
        let ctx =
            ProcessContext::new("a/b c").with_window(Some(TimeRange::new(begin, end).unwrap()));
        assert_eq!(
            t.render(&ctx).unwrap(),
            PathBuf::from("out/a_b_c/20240101T120000Z_20240101T120001.500000000Z.csv")
        );
        let err = t.render(&ProcessContext::new("j")).unwrap_err();
        assert!(err.message().contains("{begin}"), "{err}");
    }

    #[test]
    fn template_refuses_unknown_placeholders() {
        let err = PathTemplate::parse("csv_sink", "x_{start}.csv").unwrap_err();
        assert!(err.to_string().contains("{start}"), "{err}");
        assert!(PathTemplate::parse("csv_sink", "x_{begin.csv").is_err());
        assert!(PathTemplate::parse("csv_sink", "x}.csv").is_err());
    }
}
