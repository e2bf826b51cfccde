//! The state directory: one checkpoint file per scheduled job, and a lock so that only one
//! runner uses it.
//!
//! A checkpoint says "every window up to `end` is committed" and carries the hash of the job
//! configuration that wrote it. It is replaced atomically ([`flightline_core::atomic_file`]):
//! written to a new temporary file (created exclusively under an unpredictable name, never
//! through a planted symlink), flushed to disk, renamed over the old one, and the directory
//! flushed so the rename itself survives a power cut. A crash at any point leaves either the old
//! or the new checkpoint. A failed write is retried with backoff
//! ([`StateDir::commit_retrying`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flightline_core::atomic_file::{self, Publish, TempOwners};
use flightline_core::exec::CancellationToken;
use serde::{Deserialize, Serialize};

use crate::RunnerError;
use crate::config::JobConfig;

/// The end of every checkpoint file's name: `JOB.checkpoint.json`.
const CHECKPOINT_SUFFIX: &str = ".checkpoint.json";

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

fn checkpoint_path(dir: &Path, job: &str) -> PathBuf {
    dir.join(format!("{job}{CHECKPOINT_SUFFIX}"))
}

/// Reads `job`'s checkpoint in `dir` without taking the directory's lock (a runner may hold
/// it): what `flightline status` shows. `None` when there is none yet.
pub fn peek(dir: &Path, job: &str) -> Result<Option<Checkpoint>, RunnerError> {
    let path = checkpoint_path(dir, job);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            RunnerError::CheckpointCorrupt { job: job.to_string(), path, reason: e.to_string() }
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RunnerError::Io { path: path.display().to_string(), source }),
    }
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
        // Under the lock nobody else writes here: every temporary checkpoint is a dead runner's.
        let is_checkpoint = |target: &str| target.ends_with(CHECKPOINT_SUFFIX);
        atomic_file::remove_temps_in(dir, is_checkpoint, TempOwners::Any);
        Ok(Self { dir: dir.to_path_buf(), _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint file of `job`.
    pub fn checkpoint_path(&self, job: &str) -> PathBuf {
        checkpoint_path(&self.dir, job)
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
        let Some(checkpoint) = peek(&self.dir, &job.name)? else { return Ok(None) };
        let corrupt = |reason: String| RunnerError::CheckpointCorrupt {
            job: job.name.clone(),
            path: path.clone(),
            reason,
        };
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
        let body = serde_json::to_vec_pretty(&checkpoint).unwrap_or_default();
        atomic_file::write(self.checkpoint_path(&job.name), &body, Publish::Replace)?;
        Ok(())
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
    fn a_second_open_is_refused_naming_the_runner_that_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _held = StateDir::open(dir.path()).unwrap();
        // flock locks belong to an open file, so a second open in this process conflicts too.
        match StateDir::open(dir.path()).unwrap_err() {
            RunnerError::Locked { holder, .. } => {
                assert_eq!(holder, Some(format!("pid {}", std::process::id())));
            }
            other => panic!("expected Locked, got {other}"),
        }
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

    /// The directory's file names, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_commit_leaves_the_checkpoint_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let job = scheduled_test_job();
        state.commit(&job, at("2024-01-01T00:05:00Z")).unwrap();
        state.commit(&job, at("2024-01-01T00:10:00Z")).unwrap();
        let checkpoint = format!("{}.checkpoint.json", job.name);
        assert_eq!(names(dir.path()), [checkpoint, "runner.lock".to_string()]);
        assert_eq!(state.load(&job, OnMismatch::Refuse).unwrap(), Some(at("2024-01-01T00:10:00Z")));
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_at_a_temp_name_is_neither_followed_nor_touched() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "precious").unwrap();
        let job = scheduled_test_job();
        // The name older versions used, and names of this process's temporary files.
        let pid = std::process::id();
        let planted = [
            format!(".{}.checkpoint.json.tmp", job.name),
            format!(".{}.checkpoint.json.flightline-tmp-{pid}-0000000000000000", job.name),
            format!(".{}.checkpoint.json.{pid}.0000000000000000.tmp", job.name),
        ];
        for name in &planted {
            std::os::unix::fs::symlink(&target, dir.path().join(name)).unwrap();
        }
        let state = StateDir::open(dir.path()).unwrap();
        state.commit(&job, at("2024-01-01T00:05:00Z")).unwrap();
        drop(state);
        let state = StateDir::open(dir.path()).unwrap();

        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        for name in &planted {
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
        // An older runner's name, and one of a process that is alive (pid 1) but cannot be
        // writing here: the state directory's lock was free.
        let stale = [
            dir.path().join(".j.checkpoint.json.123.00000000000000ff.tmp"),
            dir.path().join(".j.checkpoint.json.flightline-tmp-1-00ff"),
        ];
        for path in &stale {
            std::fs::write(path, "half a checkpoint").unwrap();
        }
        let link = dir.path().join(".k.checkpoint.json.flightline-tmp-1-2");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        let other = dir.path().join(".notes.txt.flightline-tmp-1-2");
        std::fs::write(&other, "not a checkpoint").unwrap();
        let _state = StateDir::open(dir.path()).unwrap();
        for path in &stale {
            assert!(!path.exists(), "{} stayed", path.display());
        }
        assert!(std::fs::symlink_metadata(&link).is_ok());
        assert!(other.exists());
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
        let checkpoint = format!("{}.checkpoint.json", job.name);
        let left = names(dir.path());
        assert_eq!(left, [checkpoint, "runner.lock".to_string()], "a temporary file stayed");
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
        let failed_publish = |err: &RunnerError| {
            matches!(err, RunnerError::Core(flightline_core::Error::File { step, .. })
                if *step == atomic_file::FileStep::Publish)
        };
        assert!(result.as_ref().is_err_and(failed_publish), "{result:?}");
        assert_eq!(failures, 3);
    }
}
