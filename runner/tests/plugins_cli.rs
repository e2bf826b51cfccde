//! `flightline plugins inspect`: the real binary on the C example plugin, compiled here with the
//! system `cc`, and on a file that is not a plugin.

use std::path::Path;
use std::process::{Command, Output};

fn flightline(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flightline")).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn compile_example(dir: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = dir.join("libtop_levels.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-I"])
        .arg(root.join("plugins/include"))
        .arg("-o")
        .arg(&out)
        .arg(root.join("plugins/c/top_levels.c"))
        .status()
        .unwrap();
    assert!(status.success());
    out
}

#[test]
fn inspect_prints_what_the_plugin_declares_and_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let path = compile_example(dir.path());
    let output = flightline(&["plugins".as_ref(), "inspect".as_ref(), path.as_os_str()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let sha = flightline_core::plugin::sha256_file(&path).unwrap();
    assert_eq!(sha.len(), 64);
    for part in [
        "name:         top_levels",
        "version:      1.0.0",
        "kind:         processor+validator",
        "ABI versions: 1",
        &sha,
    ] {
        assert!(stdout.contains(part), "{part:?} missing:\n{stdout}");
    }
}

#[test]
fn inspect_names_the_file_that_is_not_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello").unwrap();
    let output = flightline(&["plugins".as_ref(), "inspect".as_ref(), path.as_os_str()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("not a loadable shared library"),
        "{stderr}"
    );
}
