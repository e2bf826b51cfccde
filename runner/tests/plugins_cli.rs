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

/// A library whose constructor (run by the dynamic loader before anything else) appends to
/// `marker`: `core/tests/support/named_plugin.c`.
fn compile_marking(dir: &Path, marker: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = dir.join("libmarking.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-DPLUGIN_NAME=\"marking\"", "-I"])
        .arg(root.join("plugins/include"))
        .arg(format!("-DMARKER_PATH=\"{}\"", marker.display()))
        .arg("-o")
        .arg(&out)
        .arg(root.join("core/tests/support/named_plugin.c"))
        .status()
        .unwrap();
    assert!(status.success());
    out
}

#[test]
fn inspect_prints_the_hash_without_running_the_library_and_says_when_abi_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let path = compile_marking(dir.path(), &marker);
    let inspect = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["plugins".as_ref(), "inspect".as_ref()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        args.push(path.as_os_str());
        let output = flightline(&args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    };
    let stdout = inspect(&[]);
    let sha = flightline_core::plugin::sha256_file(&path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    for part in [format!("sha256:       {sha}"), format!("size:         {size} bytes")] {
        assert!(stdout.contains(&part), "{part:?} missing:\n{stdout}");
    }
    assert!(stdout.contains("not loaded") && !stdout.contains("name:"), "{stdout}");
    assert!(!marker.exists(), "inspect ran the library's constructor:\n{stdout}");
    // The marker does tell: `--abi` loads the library, and says so before it does.
    let stdout = inspect(&["--abi"]);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "marking\n");
    let (before, after) = stdout.split_once("loading the library (runs its code)").unwrap();
    assert!(before.contains(&sha) && after.contains("name:         marking"), "{stdout}");
}

#[test]
fn inspect_abi_prints_what_the_plugin_declares_and_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let path = compile_example(dir.path());
    let output =
        flightline(&["plugins".as_ref(), "inspect".as_ref(), "--abi".as_ref(), path.as_os_str()]);
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
    let output =
        flightline(&["plugins".as_ref(), "inspect".as_ref(), "--abi".as_ref(), path.as_os_str()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("not a loadable shared library"),
        "{stderr}"
    );
}
