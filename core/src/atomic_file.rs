//! Publishing a file atomically: a reader of the target sees no file (or the previous one) or
//! the whole new one, never a part, and a crash leaves at most a temporary file that the next
//! writer of the same target removes.
//!
//! 1. [`AtomicFile::create`] removes temporary files of the same target left by processes that
//!    died (see [`remove_stale_temps`]), then creates an exclusive temporary file beside the
//!    target, `.NAME.flightline-tmp-PID-RANDOM`: `create_new`, so never through a symlink
//!    planted at that name and never over another file, and under a name nobody can predict
//!    to plant something there first. A name that is taken anyway is skipped for a fresh one.
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

use rand::Rng;

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

/// The marker in every temporary file name: `.NAME.flightline-tmp-PID-RANDOM`.
const TEMP_MARKER: &str = ".flightline-tmp-";

/// Most names tried for a temporary file before giving up: with 64 random bits, each name taken
/// is a file someone put there on purpose.
const TEMP_NAME_TRIES: usize = 16;

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
        let random = std::iter::repeat_with(|| format!("{:016x}", rand::rng().random::<u64>()));
        Self::create_named(target.into(), publish, random)
    }

    /// [`create`](Self::create) with the random parts of the temporary names given, so that a
    /// taken name can be tested.
    fn create_named(
        target: PathBuf,
        publish: Publish,
        random: impl Iterator<Item = String>,
    ) -> Result<Self> {
        let fail = |step, cause| Error::File { path: target.clone(), step, cause };
        let (dir, name) = split(&target).map_err(|cause| fail(FileStep::CreateTemp, cause))?;
        std::fs::create_dir_all(&dir).map_err(|cause| fail(FileStep::CreateDir, cause))?;
        remove_stale_temps(&target);
        let pid = std::process::id();
        let names = random.map(|part| dir.join(format!(".{name}{TEMP_MARKER}{pid}-{part}")));
        let (temp, file) =
            create_exclusive(names, &name).map_err(|cause| fail(FileStep::CreateTemp, cause))?;
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

/// Creates the first of `paths` that does not exist yet (`O_CREAT | O_EXCL`: an existing file
/// or symlink there is never opened, followed or truncated), trying at most
/// [`TEMP_NAME_TRIES`].
fn create_exclusive(
    paths: impl Iterator<Item = PathBuf>,
    name: &str,
) -> io::Result<(PathBuf, File)> {
    for temp in paths.take(TEMP_NAME_TRIES) {
        match File::create_new(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "every temporary name tried exists already; remove the stray \
             .{name}{TEMP_MARKER}* files beside it"
        ),
    ))
}

/// Whose temporary files [`remove_temps_in`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempOwners {
    /// Only those of processes that are gone (see [`remove_stale_temps`]).
    Gone,
    /// Every one: for a directory only the caller writes (it holds a lock on it), where any
    /// temporary file was left by a writer that died.
    Any,
}

/// Removes the temporary files of `target` whose process is gone: a run killed mid-write leaves
/// one behind. Files of live processes, this one included, are kept. On Linux a process is gone
/// when `/proc/PID` is; elsewhere a file untouched for a day counts as stale. Returns how many
/// were removed; see [`remove_temps_in`].
pub fn remove_stale_temps(target: &Path) -> usize {
    let Ok((dir, name)) = split(target) else { return 0 };
    remove_temps_in(&dir, |of| of == name, TempOwners::Gone)
}

/// Removes the temporary files in `dir` of the targets `is_target` accepts (by file name), of
/// the `owners` given: `.NAME.flightline-tmp-PID-RANDOM`, and the older `.NAME.PID-N.tmp` (file
/// sinks) and `.NAME.PID.RANDOM.tmp` (checkpoints). Only regular files: a symlink at such a name
/// is not ours and stays. Returns how many were removed; a file that cannot be removed is logged
/// and skipped.
pub fn remove_temps_in(dir: &Path, is_target: impl Fn(&str) -> bool, owners: TempOwners) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some((target, pid)) = file_name.to_str().and_then(temp_parts) else { continue };
        if !is_target(target) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let gone = || pid != std::process::id() && is_stale(pid, &entry);
        if owners == TempOwners::Gone && !gone() {
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
        tracing::info!(
            removed,
            "removed temporary files in {} left by runs that died",
            dir.display()
        );
    }
    removed
}

/// The target's file name and the writer's PID in a temporary file name, if `file_name` is one.
fn temp_parts(file_name: &str) -> Option<(&str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    if let Some((target, tail)) = rest.rsplit_once(TEMP_MARKER) {
        let (pid, _random) = tail.split_once('-')?;
        return Some((target, pid.parse().ok()?));
    }
    let stem = rest.strip_suffix(".tmp")?;
    let (head, last) = stem.rsplit_once('.')?;
    let (target, pid) = match last.split_once('-') {
        // A sink's `.NAME.PID-N.tmp`.
        Some((pid, _n)) => (head, pid),
        // A checkpoint's `.NAME.PID.RANDOM.tmp`, RANDOM 16 hex digits.
        None if last.len() == 16 && last.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.rsplit_once('.')?
        }
        None => return None,
    };
    Some((target, pid.parse().ok()?))
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
    use std::io::Write;

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
    fn temp_names_are_recognised_with_their_target_and_owner() {
        assert_eq!(temp_parts(".out.csv.flightline-tmp-42-00ff"), Some(("out.csv", 42)));
        assert_eq!(temp_parts(".out.csv.42-7.tmp"), Some(("out.csv", 42)));
        assert_eq!(
            temp_parts(".j.checkpoint.json.42.0123456789abcdef.tmp"),
            Some(("j.checkpoint.json", 42))
        );
        assert_eq!(temp_parts(".out.csv.bak.flightline-tmp-42-7"), Some(("out.csv.bak", 42)));
        assert_eq!(temp_parts("out.csv"), None);
        assert_eq!(temp_parts(".out.csv.tmp"), None);
        assert_eq!(temp_parts(".a.1.2.tmp"), None);
        assert_eq!(temp_parts(".out.csv.flightline-tmp-x-7"), None);
    }

    #[test]
    fn a_taken_temp_name_is_skipped_for_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let pid = std::process::id();
        let taken = dir.path().join(format!(".out.csv{TEMP_MARKER}{pid}-first"));
        std::fs::write(&taken, "someone else's").unwrap();
        let parts = ["first", "second"].map(String::from).into_iter();
        let file = AtomicFile::create_named(target.clone(), Publish::Replace, parts).unwrap();
        assert_eq!(file.temp_path(), dir.path().join(format!(".out.csv{TEMP_MARKER}{pid}-second")));
        file.file().write_all(b"mine").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&taken).unwrap(), "someone else's");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
    }

    #[test]
    fn an_error_other_than_a_taken_name_is_returned_at_once_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        // The directory is missing: no other name can succeed, and "taken" would mislead.
        let missing = dir.path().join("missing");
        let names = (0..).map(|i| missing.join(format!("t{i}")));
        let err = create_exclusive(names, "t").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn when_every_temp_name_is_taken_the_error_says_which_files_to_remove() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let pid = std::process::id();
        std::fs::write(dir.path().join(format!(".out.csv{TEMP_MARKER}{pid}-same")), "x").unwrap();
        let parts = std::iter::repeat_with(|| "same".to_string());
        let err = AtomicFile::create_named(target, Publish::Replace, parts).unwrap_err();
        match &err {
            Error::File { step: FileStep::CreateTemp, cause, .. } => {
                assert_eq!(cause.kind(), io::ErrorKind::AlreadyExists);
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(".out.csv.flightline-tmp-*"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn removing_every_temp_in_a_directory_keeps_symlinks_and_other_targets() {
        let dir = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        let ours = [
            format!(".j.checkpoint.json{TEMP_MARKER}{pid}-00ff"),
            ".j.checkpoint.json.1.0123456789abcdef.tmp".to_string(),
        ];
        for name in &ours {
            std::fs::write(dir.path().join(name), "half").unwrap();
        }
        let link = dir.path().join(format!(".k.checkpoint.json{TEMP_MARKER}1-2"));
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        let other = dir.path().join(format!(".out.csv{TEMP_MARKER}1-2"));
        std::fs::write(&other, "half").unwrap();
        let is_checkpoint = |t: &str| t.ends_with(".checkpoint.json");
        assert_eq!(remove_temps_in(dir.path(), is_checkpoint, TempOwners::Any), 2);
        assert!(ours.iter().all(|name| !dir.path().join(name).exists()));
        assert!(link.is_symlink() && other.exists());
    }
}
