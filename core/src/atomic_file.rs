//! Publishing a file atomically: a reader of the target sees no file (or the previous one) or
//! the whole new one, never a part, and a crash leaves at most a temporary file that the next
//! writer of the same target removes.
//!
//! 1. [`AtomicFile::create`] removes temporary files of the same target left by processes that
//!    died (see [`remove_stale_temps`]), then creates an exclusive temporary file beside the
//!    target, `.NAME.flightline-tmp-PID-N`: `create_new`, so never through a symlink planted at
//!    that name and never over another file.
//! 2. The caller writes through [`AtomicFile::file`] (or an owned handle from
//!    [`AtomicFile::try_clone_file`]).
//! 3. [`AtomicFile::commit`] fsyncs the file, publishes it and fsyncs the directory, so the new
//!    name survives a power cut. [`Publish::Replace`] renames over the target;
//!    [`Publish::NoReplace`] hard-links the temporary file to the target, which the kernel
//!    refuses when the target exists (whatever it is, a dangling symlink included), so of two
//!    writers racing for one name exactly one wins and the other gets
//!    [`crate::Error::FileExists`]. Every error is returned, the directory
//!    fsync's included.
//!
//! Dropping an [`AtomicFile`] that was not committed removes its temporary file. Every call
//! here does blocking file I/O: from async code, run it on a blocking thread
//! (`tokio::task::spawn_blocking`).
//!
//! ```
//! use flightline_core::atomic_file::{AtomicFile, Publish};
//! use std::io::Write;
//!
//! # fn main() -> flightline_core::Result<()> {
//! let dir = std::env::temp_dir().join(format!("atomic-doc-{}", std::process::id()));
//! let target = dir.join("report.csv");
//! let file = AtomicFile::create(&target, Publish::NoReplace)?;
//! (&*file.file()).write_all(b"level,rows\n2,40\n").expect("write");
//! file.commit()?;
//! // The name is taken now: a second no-replace write is refused, the first file stays.
//! let again = AtomicFile::create(&target, Publish::NoReplace)?;
//! assert!(matches!(again.commit(), Err(flightline_core::Error::FileExists { .. })));
//! assert_eq!(std::fs::read_to_string(&target).expect("read"), "level,rows\n2,40\n");
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// What [`AtomicFile::commit`] does when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Replace it (an atomic rename over it).
    Replace,
    /// Keep it and fail with [`Error::FileExists`]: the check and the publish are one step.
    NoReplace,
}

/// Which step of writing a file failed, as the `step` of [`Error::File`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileStep {
    /// Creating the target's directory.
    CreateDir,
    /// Creating the temporary file.
    CreateTemp,
    /// Writing into the temporary file ([`write()`]).
    Write,
    /// Flushing the written file to disk.
    SyncFile,
    /// Putting the file in place under its name.
    Publish,
    /// Flushing the directory, which makes the new name durable.
    SyncDir,
}

impl fmt::Display for FileStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileStep::CreateDir => "create the directory of",
            FileStep::CreateTemp => "create a temporary file for",
            FileStep::Write => "write",
            FileStep::SyncFile => "flush to disk",
            FileStep::Publish => "put in place",
            FileStep::SyncDir => "flush the directory entry of",
        })
    }
}

/// The marker in every temporary file name: `.NAME.flightline-tmp-PID-N`.
const TEMP_MARKER: &str = ".flightline-tmp-";

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A file being written under a temporary name beside its target. See the [module](self).
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: File,
    publish: Publish,
    done: bool,
}

impl AtomicFile {
    /// Creates the target's directory if needed, removes stale temporary files of this target,
    /// and creates the exclusive temporary file.
    pub fn create(target: impl Into<PathBuf>, publish: Publish) -> Result<Self> {
        let target = target.into();
        let fail = |step, cause| Error::File { path: target.clone(), step, cause };
        let (dir, name) = split(&target).map_err(|cause| fail(FileStep::CreateTemp, cause))?;
        std::fs::create_dir_all(&dir).map_err(|cause| fail(FileStep::CreateDir, cause))?;
        remove_stale_temps(&target);
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(&name);
        temp_name.push(format!("{TEMP_MARKER}{}-{n}", std::process::id()));
        let temp = dir.join(temp_name);
        let file = File::create_new(&temp).map_err(|cause| fail(FileStep::CreateTemp, cause))?;
        Ok(Self { target, temp, file, publish, done: false })
    }

    /// The temporary file, open for writing (`&File` implements `Write`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// An owned handle to the temporary file, for writers that take ownership of theirs. Flush
    /// it (drop a `BufWriter` through `into_inner`) before [`commit`](Self::commit).
    pub fn try_clone_file(&self) -> Result<File> {
        self.file.try_clone().map_err(|cause| Error::File {
            path: self.target.clone(),
            step: FileStep::CreateTemp,
            cause,
        })
    }

    /// Where the file will appear.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file's path.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes the file to disk, publishes it under the target name and flushes the directory.
    /// On [`Error::FileExists`] and every failure before the publish, the temporary file is
    /// removed and the target untouched; a failed directory flush ([`FileStep::SyncDir`]) comes
    /// after the publish: the file is in place but may not survive a power cut.
    pub fn commit(self) -> Result<PathBuf> {
        self.commit_with(sync_dir)
    }

    /// [`commit`](Self::commit) with the directory flush given, so that its failure can be
    /// tested where the file system never fails it.
    fn commit_with(mut self, sync_dir: fn(&Path) -> io::Result<()>) -> Result<PathBuf> {
        let target = self.target.clone();
        let fail = |step, cause| Error::File { path: target.clone(), step, cause };
        self.file.sync_all().map_err(|cause| fail(FileStep::SyncFile, cause))?;
        match self.publish {
            Publish::Replace => std::fs::rename(&self.temp, &target),
            Publish::NoReplace => std::fs::hard_link(&self.temp, &target),
        }
        .map_err(|cause| match cause.kind() {
            io::ErrorKind::AlreadyExists => Error::FileExists { path: target.clone() },
            _ => fail(FileStep::Publish, cause),
        })?;
        if self.publish == Publish::Replace {
            // Renamed: there is no temporary file left to remove.
            self.done = true;
        }
        self.remove_temp();
        let (dir, _) = split(&target).map_err(|cause| fail(FileStep::SyncDir, cause))?;
        sync_dir(&dir).map_err(|cause| fail(FileStep::SyncDir, cause))?;
        Ok(target)
    }

    /// Removes the temporary file (also done on drop).
    pub fn discard(mut self) {
        self.remove_temp();
    }

    fn remove_temp(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if let Err(err) = std::fs::remove_file(&self.temp)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove the temporary file {}: {err}", self.temp.display());
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        self.remove_temp();
    }
}

/// Writes `bytes` to `target` atomically (see the [module](self)): create, write, commit.
pub fn write(target: impl Into<PathBuf>, bytes: &[u8], publish: Publish) -> Result<PathBuf> {
    use io::Write;
    let file = AtomicFile::create(target, publish)?;
    (&file.file).write_all(bytes).map_err(|cause| Error::File {
        path: file.target.clone(),
        step: FileStep::Write,
        cause,
    })?;
    file.commit()
}

/// Removes the temporary files of `target` (`.NAME.flightline-tmp-PID-N`, and the sinks' older
/// `.NAME.PID-N.tmp`) whose process is gone: a run killed mid-write leaves one behind. Files of
/// live processes, this one included, are kept. On Linux a process is gone when `/proc/PID` is;
/// elsewhere a file untouched for a day counts as stale. Returns how many were removed; a file
/// that cannot be removed is logged and skipped.
pub fn remove_stale_temps(target: &Path) -> usize {
    let Ok((dir, name)) = split(target) else { return 0 };
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = temp_owner(&file_name, &name) else { continue };
        if pid == std::process::id() || !is_stale(pid, &entry) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!("cannot remove the stale file {}: {err}", entry.path().display())
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed temporary files of {} left by runs that died", name);
    }
    removed
}

/// The PID in a temporary file name of target `name`, if `file_name` is one.
fn temp_owner(file_name: &OsStr, name: &str) -> Option<u32> {
    let rest = file_name.to_str()?.strip_prefix('.')?.strip_prefix(name)?;
    let (pid, _n) = match rest.strip_prefix(TEMP_MARKER) {
        Some(ours) => ours.split_once('-')?,
        None => rest.strip_prefix('.')?.strip_suffix(".tmp")?.split_once('-')?,
    };
    pid.parse().ok()
}

#[cfg(target_os = "linux")]
fn is_stale(pid: u32, _entry: &std::fs::DirEntry) -> bool {
    !Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn is_stale(_pid: u32, entry: &std::fs::DirEntry) -> bool {
    const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age > DAY)
}

/// The directory (`.` for a bare name) and the file name of `target`.
fn split(target: &Path) -> io::Result<(PathBuf, String)> {
    let name = target.file_name().and_then(OsStr::to_str).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path names no file (or not in UTF-8)")
    })?;
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((dir.to_path_buf(), name.to_string()))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_directory_flush_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let file = AtomicFile::create(&target, Publish::Replace).unwrap();
        let err = file.commit_with(|_| Err(io::Error::from_raw_os_error(5))).unwrap_err();
        match &err {
            Error::File { path, step: FileStep::SyncDir, cause } => {
                assert_eq!((path, cause.raw_os_error()), (&target, Some(5)));
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("out.csv") && text.contains("directory"), "{text}");
    }

    #[test]
    fn temp_names_are_recognised_only_for_their_target() {
        let owner = |f: &str| temp_owner(OsStr::new(f), "out.csv");
        assert_eq!(owner(".out.csv.flightline-tmp-42-7"), Some(42));
        assert_eq!(owner(".out.csv.42-7.tmp"), Some(42));
        assert_eq!(owner(".out.csv.bak.flightline-tmp-42-7"), None);
        assert_eq!(owner("out.csv"), None);
        assert_eq!(owner(".other.csv.flightline-tmp-42-7"), None);
    }
}
