//! `flightline plugins inspect lib.so`: a plugin library's size and SHA-256 to pin in a job
//! config, read without running any of the library's code; with `--abi`, what it declares
//! (loading it, which runs its code). The logic lives in `flightline_core::plugin`.

use std::path::PathBuf;
use std::process::ExitCode;

use flightline_core::plugin::LibraryFile;

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
    /// Print a plugin library's path, size and SHA-256 (the `sha256` pin of a job config)
    /// without loading it. With `--abi`, also load it and print its name, version, kind and ABI
    /// versions.
    Inspect {
        /// The shared library (`.so`, `.dylib`, `.dll`).
        path: PathBuf,
        /// Load the library to read its ABI table. Loading runs the library's code (its
        /// initialisers and `flightline_plugin_init`): only for a library you trust.
        #[arg(long)]
        abi: bool,
    },
}

/// Runs `flightline plugins ...`.
pub async fn run(args: PluginsArgs) -> Result<ExitCode, RunnerError> {
    match args.command {
        PluginsCommand::Inspect { path, abi } => {
            let file = LibraryFile::open(&path)?;
            super::print_stdout(&file.to_string())?;
            if !abi {
                super::print_stdout(
                    "(not loaded: none of its code ran; `--abi` loads it to show its name, \
                     version, kind and ABI versions)",
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            super::print_stdout("\nloading the library (runs its code):")?;
            let plugin = file.load()?;
            super::print_stdout(&plugin.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
