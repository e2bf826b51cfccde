//! The state directory: one checkpoint file per scheduled job, and a lock so that only one
//! runner uses it.
//!
//! A checkpoint says "every window up to `end` is committed" and carries the hash of the job
//! configuration that wrote it. It is replaced atomically: written to a new temporary file
//! (created exclusively under an unpredictable name, never through a planted symlink), flushed
//! to disk, renamed over the old one, and the directory flushed so the rename itself survives
//! a power cut. A crash at any point leaves either the old or the new checkpoint. A failed
//! write is retried with backoff ([`StateDir::commit_retrying`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::exec::CancellationToken;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::RunnerError;
use crate::config::JobConfig;

/// What the operator said to do with a checkpoint written under another job configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMismatch {
    /// Refuse to run the job (the default).
    #[default]
    Refuse,
    /// Forget the checkpoint: start from the job's first window.
    Reset,
    /// Keep the position and adopt the new configuration.
    Continue,
}

/// The contents of a checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The job.
    pub job: String,
    /// Every window ending at or before this instant is committed.
    pub end: DateTime<Utc>,
    /// [`JobConfig::config_hash`] of the configuration that wrote it.
    pub config_hash: String,
}

/// An open, locked state directory. The lock is held until this is dropped (or the process
/// dies: the operating system releases it, so a killed runner never leaves a stale lock).
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    _lock: File,
}

impl StateDir {
    /// Creates `dir` if needed and takes its lock; fails with [`RunnerError::Locked`], naming
    /// the holder, when another runner has it.
    pub fn open(dir: &Path) -> Result<Self, RunnerError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| RunnerError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("runner.lock");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = Some(holder.trim().to_string()).filter(|h| !h.is_empty());
                return Err(RunnerError::Locked {
                    dir: dir.to_path_buf(),
                    lock: lock_path,
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(&lock_path)(source)),
        }
        // The holder's identity, for the message a second runner prints.
        let stamp = format!("pid {}", std::process::id());
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| lock.write_all(stamp.as_bytes()))
            .map_err(io(&lock_path))?;
        remove_stale_temps(dir);
        Ok(Self { dir: dir.to_path_buf(), _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint file of `job`.
    pub fn checkpoint_path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.checkpoint.json"))
    }

    /// Where `job` stands: `None` when it has no checkpoint (or `on_mismatch` is `Reset` and
    /// the configuration changed). A checkpoint from another configuration is refused unless
    /// the operator said otherwise.
    pub fn load(
        &self,
        job: &JobConfig,
        on_mismatch: OnMismatch,
    ) -> Result<Option<DateTime<Utc>>, RunnerError> {
        let path = self.checkpoint_path(&job.name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RunnerError::Io { path: path.display().to_string(), source });
            }
        };
        let corrupt = |reason: String| RunnerError::CheckpointCorrupt {
            job: job.name.clone(),
            path: path.clone(),
            reason,
        };
        let checkpoint: Checkpoint =
            serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if checkpoint.job != job.name {
            return Err(corrupt(format!("it belongs to job {:?}", checkpoint.job)));
        }
        if checkpoint.config_hash == job.config_hash {
            return Ok(Some(checkpoint.end));
        }
        match on_mismatch {
            OnMismatch::Refuse => Err(RunnerError::CheckpointMismatch {
                job: job.name.clone(),
                path,
                end: checkpoint.end.to_rfc3339(),
            }),
            OnMismatch::Reset => {
                tracing::warn!(job = %job.name, "configuration changed: checkpoint reset, starting over");
                Ok(None)
            }
            OnMismatch::Continue => {
                tracing::warn!(job = %job.name, end = %checkpoint.end, "configuration changed: continuing from the checkpoint");
                self.commit(job, checkpoint.end)?;
                Ok(Some(checkpoint.end))
            }
        }
    }

    /// Records that every window of `job` up to `end` is committed (atomically, durably).
    pub fn commit(&self, job: &JobConfig, end: DateTime<Utc>) -> Result<(), RunnerError> {
        let checkpoint =
            Checkpoint { job: job.name.clone(), end, config_hash: job.config_hash.clone() };
        let path = self.checkpoint_path(&job.name);
        let body = serde_json::to_vec_pretty(&checkpoint).unwrap_or_default();
        replace_file(&self.dir, &path, &body, temp_names(&job.name))
            .map_err(|source| RunnerError::Io { path: path.display().to_string(), source })
    }

    /// [`commit`](Self::commit), retried after a failure (a full disk, a directory briefly
    /// unwritable) until it succeeds or `cancel` fires: one bad write must not stop the job for
    /// the life of the process. `wait(n)` is the pause after the `n`-th failure (0-based);
    /// `on_failure` sees each failure and the pause that follows, so the caller can log it and
    /// keep the checkpoint lag gauge growing.
    ///
    /// Cancel safety: dropping the future between attempts leaves the old checkpoint or the
    /// new one, never a mix.
    pub async fn commit_retrying(
        &self,
        job: &JobConfig,
        end: DateTime<Utc>,
        wait: impl Fn(u32) -> Duration,
        mut on_failure: impl FnMut(&RunnerError, Duration),
        cancel: &CancellationToken,
    ) -> Result<(), RunnerError> {
        let mut failures = 0;
        loop {
            let err = match self.commit(job, end) {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            let pause = wait(failures);
            on_failure(&err, pause);
            failures = failures.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = cancel.cancelled() => return Err(err),
            }
        }
    }
}

/// Most names tried for a temporary file before giving up (each collision is a file someone
/// else put there).
const TEMP_NAME_TRIES: usize = 16;

/// Unpredictable temporary names for `job`'s checkpoint, so nobody can plant a file or a
/// symlink where the next write will go.
fn temp_names(job: &str) -> impl Iterator<Item = String> {
    let pid = std::process::id();
    std::iter::repeat_with(move || {
        format!(".{job}.checkpoint.json.{pid}.{:016x}.tmp", rand::rng().random::<u64>())
    })
}

/// Removes the temporary checkpoint files a killed runner left behind. Safe under the lock:
/// no other runner writes here. Only regular files go; a symlink is never followed or removed.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours =
            name.starts_with('.') && name.contains(".checkpoint.json.") && name.ends_with(".tmp");
        if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `body` to a new temporary file in `dir`, flushes it, renames it over `path` and
/// flushes `dir` so the rename survives a power cut. A failed write removes its temporary
/// file.
fn replace_file(
    dir: &Path,
    path: &Path,
    body: &[u8],
    names: impl IntoIterator<Item = String>,
) -> std::io::Result<()> {
    let (temp, mut file) = create_exclusive(dir, names)?;
    let written = file.write_all(body).and_then(|()| file.sync_all());
    drop(file);
    if let Err(err) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(err);
    }
    File::open(dir)?.sync_all()
}

/// Creates the first of `names` in `dir` that does not exist yet (`O_CREAT | O_EXCL`: an
/// existing file or symlink there is never opened, followed or truncated).
fn create_exclusive(
    dir: &Path,
    names: impl IntoIterator<Item = String>,
) -> std::io::Result<(PathBuf, File)> {
    for name in names.into_iter().take(TEMP_NAME_TRIES) {
        let temp = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "every temporary name tried in {} already exists; remove stray .*.tmp files there",
            dir.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scheduled_test_job;

    fn at(text: &str) -> DateTime<Utc> {
        flightline_core::time::parse_instant(text).unwrap()
    }

    #[test]
    fn a_committed_checkpoint_is_what_load_returns() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let job = scheduled_test_job();
        assert_eq!(state.load(&job, OnMismatch::Refuse).unwrap(), None);
        state.commit(&job, at("2024-01-01T00:05:00Z")).unwrap();
        let loaded = state.load(&job, OnMismatch::Refuse).unwrap();
        assert_eq!(loaded, Some(at("2024-01-01T00:05:00Z")));
    }

    #[test]
    fn an_unreadable_checkpoint_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let job = scheduled_test_job();
        // A directory where the file should be: unreadable even for root.
        std::fs::create_dir(state.checkpoint_path(&job.name)).unwrap();
        let err = state.load(&job, OnMismatch::Refuse).unwrap_err();
        assert!(matches!(err, RunnerError::Io { .. }), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_at_a_temp_name_is_neither_followed_nor_touched() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "precious").unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let job = scheduled_test_job();
        // The name older versions used, and the first name this write will try.
        let planted = [".j.checkpoint.json.tmp", ".j.checkpoint.json.planted.tmp"];
        for name in planted {
            std::os::unix::fs::symlink(&target, dir.path().join(name)).unwrap();
        }
        let names = planted.iter().map(|n| n.to_string()).chain(temp_names(&job.name));
        let path = state.checkpoint_path(&job.name);
        replace_file(dir.path(), &path, b"{}", names).unwrap();
        state.commit(&job, at("2024-01-01T00:05:00Z")).unwrap();

        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        for name in planted {
            let link = std::fs::read_link(dir.path().join(name)).unwrap();
            assert_eq!(link, target, "{name} was replaced");
        }
        let loaded = state.load(&job, OnMismatch::Refuse).unwrap();
        assert_eq!(loaded, Some(at("2024-01-01T00:05:00Z")));
    }

    #[cfg(unix)]
    #[test]
    fn stale_temp_files_go_at_open_but_planted_symlinks_stay() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".j.checkpoint.json.123.00ff.tmp");
        std::fs::write(&stale, "half a checkpoint").unwrap();
        let link = dir.path().join(".k.checkpoint.json.1.2.tmp");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        let _state = StateDir::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(std::fs::symlink_metadata(&link).is_ok());
    }

    #[test]
    fn temp_names_are_unpredictable_and_taken_names_are_skipped() {
        let a: Vec<String> = temp_names("j").take(2).collect();
        assert_ne!(a[0], a[1]);
        assert!(a[0].starts_with(".j.checkpoint.json.") && a[0].ends_with(".tmp"), "{}", a[0]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("taken"), "keep").unwrap();
        let names = ["taken".to_string(), "free".to_string()];
        let (path, _) = create_exclusive(dir.path(), names).unwrap();
        assert_eq!(path, dir.path().join("free"));
        assert_eq!(std::fs::read_to_string(dir.path().join("taken")).unwrap(), "keep");
        let err = create_exclusive(dir.path(), std::iter::repeat("taken".to_string()));
        assert_eq!(err.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    }

    #[tokio::test]
    async fn a_write_that_fails_once_is_retried_until_it_lands() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let job = scheduled_test_job();
        let path = state.checkpoint_path(&job.name);
        // A directory at the checkpoint's path makes the rename fail, even for root.
        std::fs::create_dir(&path).unwrap();
        let mut failures = Vec::new();
        let end = at("2024-01-01T00:05:00Z");
        let committed = state
            .commit_retrying(
                &job,
                end,
                |n| Duration::from_millis(10 * u64::from(n + 1)),
                |err, pause| {
                    failures.push((err.to_string(), pause));
                    // The disk recovers after the first failure.
                    let _ = std::fs::remove_dir(&path);
                },
                &CancellationToken::new(),
            )
            .await;
        committed.unwrap();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].0.contains("checkpoint.json"), "names the file: {failures:?}");
        assert_eq!(failures[0].1, Duration::from_millis(10));
        assert_eq!(state.load(&job, OnMismatch::Refuse).unwrap(), Some(end));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "the failed attempt's temp file stayed: {leftovers:?}");
    }

    #[tokio::test]
    async fn cancelling_stops_the_retries_with_the_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let job = scheduled_test_job();
        std::fs::create_dir(state.checkpoint_path(&job.name)).unwrap();
        let cancel = CancellationToken::new();
        let mut failures = 0;
        let result = state
            .commit_retrying(
                &job,
                at("2024-01-01T00:05:00Z"),
                |_| Duration::from_millis(1),
                |_, _| {
                    failures += 1;
                    if failures == 3 {
                        cancel.cancel();
                    }
                },
                &cancel,
            )
            .await;
        assert!(matches!(result, Err(RunnerError::Io { .. })), "{result:?}");
        assert_eq!(failures, 3);
    }
}
