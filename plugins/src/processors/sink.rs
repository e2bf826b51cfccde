//! What the file sinks share: the path template, and the commit protocol that leaves either
//! the whole file or none (write a temporary file in the same directory, fsync, rename).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Timelike, Utc};
use flightline_core::process::{BatchProcessor, ProcessContext, ProcessError, Report, async_trait};

use crate::error::PluginsError;

/// A file path with placeholders, rendered in `open` from the run's context: `{begin}` and
/// `{end}` (the window's instants, e.g. `20240101T120000Z`), `{job}` (the job name with
/// anything but letters, digits, `-`, `_` and `.` replaced by `_`). A rerun of the same window
/// renders the same path, so it rewrites its file instead of adding a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    template: String,
}

impl PathTemplate {
    /// Checks `template`: only the known placeholders, balanced braces.
    pub fn parse(processor: &str, template: &str) -> Result<Self, PluginsError> {
        let refuse =
            |why: String| super::options_error(processor, format!("`path` {template:?}: {why}"));
        if template.trim().is_empty() {
            return Err(refuse("empty; give a file path".into()));
        }
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let end =
                rest[start..].find('}').ok_or_else(|| refuse("a `{` is never closed".into()))?;
            let name = &rest[start + 1..start + end];
            if !matches!(name, "begin" | "end" | "job") {
                return Err(refuse(format!(
                    "unknown placeholder {{{name}}}; use {{begin}}, {{end}} or {{job}}"
                )));
            }
            rest = &rest[start + end + 1..];
        }
        if rest.contains('}') {
            return Err(refuse("a `}` without its `{`".into()));
        }
        Ok(Self { template: template.to_string() })
    }

    /// The path for this run.
    pub fn render(&self, ctx: &ProcessContext) -> Result<PathBuf, ProcessError> {
        let mut path = self.template.replace("{job}", &safe_name(&ctx.job));
        for (placeholder, instant) in
            [("{begin}", ctx.window.map(|w| w.begin)), ("{end}", ctx.window.map(|w| w.end))]
        {
            if path.contains(placeholder) {
                let instant = instant.ok_or_else(|| {
                    ProcessError::new(format!(
                        "the path {:?} uses {placeholder} but the run has no time range; give the \
                         query a time range or remove the placeholder",
                        self.template
                    ))
                })?;
                path = path.replace(placeholder, &safe_instant(&instant));
            }
        }
        Ok(PathBuf::from(path))
    }
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

/// A file being written: the temporary file until `commit`, removed on `discard` or drop.
#[derive(Debug)]
pub(crate) struct PendingFile {
    target: PathBuf,
    temp: PathBuf,
    overwrite: bool,
    committed: bool,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl PendingFile {
    /// Creates the temporary file beside `target` (creating missing directories). Refuses
    /// when `target` exists and `overwrite` is false.
    pub fn create(target: PathBuf, overwrite: bool) -> Result<(Self, File), ProcessError> {
        refuse_existing(&target, overwrite)?;
        let file_name = target
            .file_name()
            .ok_or_else(|| {
                ProcessError::new(format!("the path {} names no file", target.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|err| {
            ProcessError::with_source(format!("cannot create the directory {}", dir.display()), err)
        })?;
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{file_name}.{}-{n}.tmp", std::process::id()));
        let file = File::create_new(&temp).map_err(|err| {
            ProcessError::with_source(
                format!("cannot create the temporary file {}", temp.display()),
                err,
            )
        })?;
        Ok((Self { target, temp, overwrite, committed: false }, file))
    }

    /// Flushes `file` to disk and renames it to the target, on a blocking thread.
    pub async fn commit(&mut self, file: File) -> Result<PathBuf, ProcessError> {
        refuse_existing(&self.target, self.overwrite)?;
        let (temp, target) = (self.temp.clone(), self.target.clone());
        let done = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            file.sync_all()?;
            drop(file);
            std::fs::rename(&temp, &target)?;
            // The rename itself is durable once the directory is synced.
            if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(dir).and_then(|d| d.sync_all()).ok();
            }
            Ok(())
        })
        .await
        .map_err(|err| ProcessError::new(format!("the commit task failed: {err}")))?;
        done.map_err(|err| {
            ProcessError::with_source(format!("cannot commit {}", self.target.display()), err)
        })?;
        self.committed = true;
        Ok(self.target.clone())
    }

    /// Removes the temporary file.
    pub fn discard(&mut self) {
        if !self.committed {
            if let Err(err) = std::fs::remove_file(&self.temp)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                {
                    tracing::warn!(
                        "cannot remove the temporary file {}: {err}",
                        self.temp.display()
                    );
                }
            }
            self.committed = true;
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        self.discard();
    }
}

fn refuse_existing(target: &Path, overwrite: bool) -> Result<(), ProcessError> {
    if !overwrite && target.exists() {
        return Err(ProcessError::new(format!(
            "{} exists; set `overwrite = true` to replace it",
            target.display()
        )));
    }
    Ok(())
}

/// A file format a [`FileSink`] writes.
pub trait SinkFormat: Send + 'static {
    /// The open writer.
    type Writer: Send;
    /// Starts writing `schema`'d batches into `file`.
    fn open(&self, file: File, schema: &SchemaRef) -> Result<Self::Writer, ProcessError>;
    /// Writes one batch.
    fn write(writer: &mut Self::Writer, batch: &RecordBatch) -> Result<(), ProcessError>;
    /// Ends the file (footer, buffers) and hands it back for fsync.
    fn close(writer: Self::Writer) -> Result<File, ProcessError>;
}

/// A processor that writes the whole result to one file, atomically: the file appears,
/// complete, in `finish`, and a failed or cancelled run leaves none.
pub struct FileSink<F: SinkFormat> {
    name: &'static str,
    path: PathTemplate,
    overwrite: bool,
    format: F,
    pending: Option<(PendingFile, F::Writer)>,
    rows: u64,
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
            pending: None,
            rows: 0,
        })
    }
}

#[async_trait]
impl<F: SinkFormat> BatchProcessor for FileSink<F> {
    fn name(&self) -> &str {
        self.name
    }

    async fn open(&mut self, schema: &SchemaRef, ctx: &ProcessContext) -> Result<(), ProcessError> {
        let target = self.path.render(ctx)?;
        let (pending, file) = PendingFile::create(target, self.overwrite)?;
        let writer = self.format.open(file, schema)?;
        self.pending = Some((pending, writer));
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let (_, writer) = self.pending.as_mut().ok_or_else(|| ProcessError::new("not opened"))?;
        F::write(writer, batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let (mut pending, writer) =
            self.pending.take().ok_or_else(|| ProcessError::new("not opened"))?;
        let file = F::close(writer)?;
        let path = pending.commit(file).await?;
        let mut report = Report::default();
        report.counts.insert("rows_written".into(), self.rows);
        report.files.push(path);
        Ok(report)
    }

    async fn abort(&mut self) {
        // Dropping the writer closes the file; dropping the pending file removes it.
        if let Some((mut pending, writer)) = self.pending.take() {
            drop(writer);
            pending.discard();
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use flightline_core::TimeRange;

    use super::*;

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
