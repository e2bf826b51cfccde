//! The interop venv, for the Rust tests that run Python peers (pytest suites, the roapi
//! binary): included by path (`#[path = "../../interop/venv.rs"] mod venv;`) from the test
//! crates that need it, each one directory below the repository's root.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root: the parent of the including crate's directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate has a parent directory")
        .to_path_buf()
}

/// A finished process's status and output, for an assertion message.
pub fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Creates (or checks) `.venv` with interop/setup_venv.sh and returns its root.
pub fn setup_venv() -> PathBuf {
    let root = repo_root();
    let output = Command::new("bash")
        .arg(root.join("interop/setup_venv.sh"))
        .current_dir(&root)
        .output()
        .expect("run bash interop/setup_venv.sh");
    assert!(output.status.success(), "interop/setup_venv.sh failed\n{}", show(&output));
    let venv = root.join(".venv");
    assert!(venv.join("bin/python").exists(), "setup_venv.sh did not create {}", venv.display());
    venv
}
