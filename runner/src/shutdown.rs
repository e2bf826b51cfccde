//! Stopping on Ctrl-C or SIGTERM within a bound, whatever the work in flight is doing.
//!
//! `flightline run` and `flightline serve` watch the signals through [`Signals`]:
//!
//! 1. The first signal starts the graceful stop ([`Signals::first`] resolves): nothing new
//!    starts, work in flight gets the grace period, then it is cancelled.
//! 2. A second signal exits at once with [`EXIT_CUT`].
//! 3. Whatever happens, the process exits at the latest [`STOP_DEADLINE`] after the grace,
//!    with [`EXIT_CUT`]: cancelled work that never returns (a plugin call blocked on network
//!    I/O without a timeout, a computation that never yields) is abandoned, not waited for.
//!
//! The signals are watched on a thread of their own with its own small runtime, so neither a
//! runtime whose workers are all busy nor a blocked call can keep them from being heard.
//! Exiting early is safe for the state: a checkpoint only advances after its window
//! finished, and it is replaced atomically.

use std::sync::mpsc;
use std::time::Duration;

use flightline_core::exec::CancellationToken;

use crate::RunnerError;

/// Exit status when a signal cut work short: runs or queries in flight were cancelled after
/// the grace, or a second signal or the stop deadline ended the process.
pub const EXIT_CUT: u8 = 4;

/// How long after the grace the process may take to cancel, abort and clean up before it
/// exits anyway.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The signal watcher of one command. See the [module documentation](self).
#[derive(Debug)]
pub struct Signals {
    first: CancellationToken,
}

impl Signals {
    /// Starts watching SIGINT and SIGTERM; in-flight work gets `grace` after the first one.
    /// Returns once the handlers are in place, so no signal is missed after it.
    pub fn watch(grace: Duration) -> Result<Self, RunnerError> {
        let first = CancellationToken::new();
        let (ready, installed) = mpsc::channel();
        let token = first.clone();
        let spawned = std::thread::Builder::new()
            .name("flightline-signals".into())
            .spawn(move || watch_thread(&token, grace, &ready));
        let io = |source| RunnerError::Io { path: "signal handlers".into(), source };
        spawned.map_err(io)?;
        match installed.recv() {
            Ok(Ok(())) => Ok(Self { first }),
            Ok(Err(source)) => Err(io(source)),
            Err(_) => Err(io(std::io::Error::other("the signal thread ended before it started"))),
        }
    }

    /// Resolves on the first signal.
    pub fn first(&self) -> impl Future<Output = ()> + Send + 'static {
        let first = self.first.clone();
        async move { first.cancelled().await }
    }
}

/// The signal thread: installs the handlers, reports on `ready`, then waits.
fn watch_thread(
    first: &CancellationToken,
    grace: Duration,
    ready: &mpsc::Sender<std::io::Result<()>>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    runtime.block_on(async {
        let mut listener = match Listener::new() {
            Ok(listener) => listener,
            Err(err) => {
                let _ = ready.send(Err(err));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        listener.next().await;
        first.cancel();
        eprintln!(
            "flightline: stopping; work in flight gets {grace:?} (signal again to exit at once)"
        );
        let why = tokio::select! {
            () = listener.next() => "a second signal",
            () = tokio::time::sleep(grace.saturating_add(STOP_DEADLINE)) => "the stop deadline",
        };
        eprintln!(
            "flightline: exiting at once on {why}; unfinished work is cut and runs again next \
             time (exit status {EXIT_CUT})"
        );
        std::process::exit(EXIT_CUT.into());
    });
}

/// SIGINT and SIGTERM as one stream of "a signal came".
struct Listener {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Listener {
    #[cfg(unix)]
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn help_states_the_cut_exit_status_and_the_deadline() {
        let mut cli = crate::cli::Cli::command();
        for name in ["run", "serve"] {
            let Some(command) = cli.find_subcommand_mut(name) else { panic!("no {name}") };
            let help = command.render_long_help().to_string();
            let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(help.contains(&format!("{EXIT_CUT} a signal cut")), "{name}: {help}");
            let deadline = format!("at most {} s after the grace", STOP_DEADLINE.as_secs());
            assert!(help.contains(&deadline), "{name}: {help}");
            assert!(help.contains("A second signal exits at once"), "{name}: {help}");
        }
    }
}
