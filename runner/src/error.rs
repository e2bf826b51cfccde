//! The one error type of `flightline-runner`.
//!
//! A variant's message leaves out its source: `main` and the log lines print the whole chain
//! with [`flightline_core::error::Chain`], each cause once.

use std::fmt;
use std::path::PathBuf;

/// Everything a `flightline` command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// An SDK error (client, validation, schema).
    #[error(transparent)]
    Core(#[from] flightline_core::Error),
    /// An embedded-server error.
    #[error(transparent)]
    Server(#[from] flightline_server::ServerError),
    /// `flightline validate` could not ask the server about the query (exit status 3); why is
    /// the source.
    #[error("cannot validate against {uri} (pass --offline to check the SQL text only)")]
    ServerCheck {
        /// The server.
        uri: String,
        /// Why it could not be asked.
        source: flightline_core::Error,
    },
    /// Reading or writing a local file failed; what the OS said is the source.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The job file has problems; every one found is listed, each with its line and key.
    #[error("{}", ConfigIssues(.0))]
    Config(Vec<ConfigIssue>),
    /// Another runner holds the state directory.
    #[error(
        "state directory {dir} is in use by another runner{} (lock file {lock}); stop it, or give \
         this runner its own [runner].state_dir",
        .holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Locked {
        /// The state directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// What the lock file says about its holder (`pid 1234`), if readable.
        holder: Option<String>,
    },
    /// The shared state database cannot be used: unreachable, a wrong password, a schema
    /// newer than this binary.
    #[error("state database {store}: {message}")]
    StateDb {
        /// `user@host:port/database`.
        store: String,
        /// What failed, and what to check.
        message: String,
    },
    /// A job's checkpoint was written for a different version of the job.
    #[error(
        "job {job:?}: its checkpoint {path} (up to {end}) was written for a different job \
         configuration; start over with --reset-checkpoint {job}, or keep the position with \
         --continue-checkpoint {job}"
    )]
    CheckpointMismatch {
        /// The job.
        job: String,
        /// The checkpoint file.
        path: PathBuf,
        /// Where the checkpoint stands.
        end: String,
    },
    /// A job's state in the shared database was written for a different version of the job.
    #[error(
        "job {job:?}: its state in {store} (up to {end}) was written for a different job \
         configuration; start over with --reset-checkpoint {job}, or keep the position with \
         --continue-checkpoint {job} (on one worker: the others then find the new configuration)"
    )]
    SharedCheckpointMismatch {
        /// The job.
        job: String,
        /// `user@host:port/database`.
        store: String,
        /// Where its checkpoint stands.
        end: String,
    },
    /// A checkpoint file cannot be read.
    #[error("job {job:?}: checkpoint {path} is unreadable: {reason} (move it away to start over)")]
    CheckpointCorrupt {
        /// The job.
        job: String,
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A processor could not be built from its options.
    #[error("job {job:?}: processor {processor}: {message}")]
    Processor {
        /// The job.
        job: String,
        /// The processor's name or plugin path.
        processor: String,
        /// What is wrong.
        message: String,
    },
    /// The Prometheus endpoint could not be started.
    #[error("metrics endpoint on {listen}: {message} (pick another [http] listen address)")]
    Metrics {
        /// The listen address.
        listen: String,
        /// What the exporter reported.
        message: String,
    },
    /// One or more jobs failed; each is logged with its cause.
    #[error("{failed} of {total} jobs failed: {}", names.join(", "))]
    JobsFailed {
        /// How many failed.
        failed: usize,
        /// How many ran.
        total: usize,
        /// Which.
        names: Vec<String>,
    },
    /// A validator of a job could not be built (a plugin that does not load, options it
    /// refuses).
    #[error("job {job:?}: validator {validator}: {message}")]
    Validator {
        /// The job.
        job: String,
        /// The rule's name or the plugin's path.
        validator: String,
        /// What is wrong.
        message: String,
    },
    /// A job's validators refused its SQL under `validation = "deny"`.
    #[error(
        "job {job:?}: refused by validation: {} (fix the SQL, or set the validator's `severity` \
         or the job's `validation = \"warn\"`)",
        denied.join("; ")
    )]
    ValidationDenied {
        /// The job.
        job: String,
        /// Each denying finding, as `validator NAME: deny [code] message (recommendation)`.
        denied: Vec<String>,
    },
}

/// One problem in a job file: where it is, which key, what was written, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the problem is not at one place, e.g. "no job").
    pub line: usize,
    /// The key path, e.g. `job[1].every` (empty for the file as a whole).
    pub key: String,
    /// The text written at that place, unless it may be a secret.
    pub value: Option<String>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        if let Some(value) = &self.value {
            write!(f, " = {value}")?;
        }
        write!(f, ": {}", self.message)
    }
}

struct ConfigIssues<'a>(&'a [ConfigIssue]);

impl fmt::Display for ConfigIssues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems in the job file:", many.len())?;
                for issue in many {
                    write!(f, "\n  {issue}")?;
                }
                Ok(())
            }
        }
    }
}

impl RunnerError {
    /// The process exit status: 3 when validation could not ask the server, 2 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunnerError::ServerCheck { .. } => 3,
            _ => 2,
        }
    }

    /// The `flightline` flags that fix the error, when some do. The SDK's messages name its
    /// API; the flags are the command's business.
    pub fn hint(&self) -> Option<&'static str> {
        use flightline_core::Error;
        let core = match self {
            RunnerError::Core(err) | RunnerError::ServerCheck { source: err, .. } => err,
            _ => return None,
        };
        match core {
            Error::Unauthenticated { .. } => Some(
                "pass a valid token with --token (or FLIGHTLINE_TOKEN), or a header with \
                 --header authorization=... / --header x-api-key=...",
            ),
            Error::CredentialsRefused { .. } => {
                Some("check --user and its password (FLIGHTLINE_PASSWORD or --password-file)")
            }
            Error::Connect { .. } => {
                Some("check --uri, and for TLS servers --tls-ca and --tls-domain")
            }
            _ => None,
        }
    }

    /// True when standard output (or any pipe) was closed under us, e.g. `flightline demo |
    /// head`: the reader has what it wanted, so the command ends quietly and successfully.
    pub fn is_broken_pipe(&self) -> bool {
        broken_pipe(self)
    }

    /// The `x-request-id` of the query that failed, when a call failed.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            RunnerError::Core(err) => err.request_id(),
            _ => None,
        }
    }
}

/// Walks the causes, looking inside `io::Error`s too (their `source` skips the error they
/// wrap).
fn broken_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return true;
        }
        if let Some(inner) = io.get_ref() {
            return broken_pipe(inner);
        }
    }
    err.source().is_some_and(broken_pipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_anywhere_in_the_chain_is_recognised() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let err = RunnerError::Io { path: "stdout".into(), source: pipe };
        assert!(err.is_broken_pipe());
        let wrapped = std::io::Error::other(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(RunnerError::Io { path: "stdout".into(), source: wrapped }.is_broken_pipe());
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!RunnerError::Io { path: "x".into(), source: other }.is_broken_pipe());
    }

    #[test]
    fn only_a_failed_server_check_exits_with_3() {
        let down = flightline_core::Error::Unavailable { message: "down".into() };
        let err = RunnerError::ServerCheck { uri: "grpc://h:1".into(), source: down };
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("--offline"), "{err}");
        let config = RunnerError::Core(flightline_core::Error::Config("bad".into()));
        assert_eq!(config.exit_code(), 2);
    }
}
