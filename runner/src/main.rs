//! The `flightline` command. Thin: parses arguments and hands over to `flightline_runner`.

use std::process::ExitCode;

use clap::Parser;
use flightline_runner::cli::{Cli, Command};
use flightline_runner::commands;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    flightline_runner::init_tracing(cli.verbose, cli.log_format);
    let outcome = match cli.command {
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Run(args) => commands::run::run(args).await,
        Command::Check(args) => commands::check::run(args).await,
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
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
