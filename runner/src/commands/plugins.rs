//! `flightline plugins inspect lib.so`: what a plugin library declares, and its SHA-256 to pin
//! in a job config. The logic lives in `flightline_core::plugin`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::RunnerError;

/// Arguments of `flightline plugins`.
#[derive(Debug, clap::Args)]
pub struct PluginsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PluginsCommand,
}

/// The `plugins` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginsCommand {
    /// Load a plugin library and print its name, version, kind, ABI versions and SHA-256.
    Inspect {
        /// The shared library (`.so`, `.dylib`, `.dll`).
        path: PathBuf,
    },
}

/// Runs `flightline plugins ...`.
pub async fn run(args: PluginsArgs) -> Result<ExitCode, RunnerError> {
    match args.command {
        PluginsCommand::Inspect { path } => {
            let plugin = flightline_core::plugin::inspect(&path)?;
            super::print_stdout(&plugin.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
