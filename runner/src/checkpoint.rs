//! The state directory: one checkpoint file per scheduled job, and a lock so that only one
//! runner uses it.
//!
//! A checkpoint says "every window up to `end` is committed" and carries the hash of the job
//! configuration that wrote it. It is replaced atomically: written to a temporary file,
//! flushed to disk, renamed over the old one, and the directory flushed so the rename itself
//! survives a power cut. A crash at any point leaves either the old or the new checkpoint.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
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
        let temp = self.dir.join(format!(".{}.checkpoint.json.tmp", job.name));
        let body = serde_json::to_vec_pretty(&checkpoint).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            // The rename is only durable once the directory entry is.
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| RunnerError::Io { path: path.display().to_string(), source })
    }
}
