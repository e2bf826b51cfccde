//! The `flightline` command. Thin: parses arguments and hands over to `flightline_runner`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use flightline_core::error::Chain;
use flightline_runner::cli::{Cli, Command};
use flightline_runner::commands;

/// How long the runtime's shutdown waits for leftover blocking threads: a plugin call
/// abandoned by a cancelled run may never return, and must not keep the process alive.
const LEFTOVER_WAIT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    // Before any thread: batches' buffers then stay in malloc's heap (README, "Memory allocator").
    flightline_core::malloc::keep_freed_memory();
    let cli = Cli::parse();
    // The embedded server's audit lines are for `serve`; in the demo they would bury the run.
    let audit = !matches!(cli.command, flightline_runner::cli::Command::Demo(_));
    flightline_runner::init_tracing(cli.verbose, cli.log_format, audit);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(dispatch(cli.command));
    runtime.shutdown_timeout(LEFTOVER_WAIT);
    code
}

async fn dispatch(command: Command) -> ExitCode {
    let outcome = match command {
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Run(args) => commands::run::run(args).await,
        Command::Check(args) => commands::check::run(args).await,
        Command::Status(args) => commands::status::run(args).await,
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Query(args) => commands::query::run(args).await,
        Command::Schema(args) => commands::schema::run(args).await,
        Command::Validate(args) => commands::validate::run(args).await,
        Command::Plugins(args) => commands::plugins::run(args).await,
    };
    match outcome {
        Ok(code) => code,
        // The reader of our output went away (`flightline demo | head`): nothing is wrong.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            // One cause per line: messages leave their causes out, so each is said once.
            eprintln!("error: {:#}", Chain(&err));
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
