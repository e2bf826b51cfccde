//! Atomic publishing: racing no-replace writers, stale temporary files, what a failure leaves.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Barrier};

use flightline_core::Error;
use flightline_core::atomic_file::{self, AtomicFile, Publish};

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn of_two_writers_racing_without_replace_exactly_one_wins_whole() {
    for _round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        let barrier = Arc::new(Barrier::new(2));
        let writers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|who| {
                let (target, barrier) = (target.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let content = who.repeat(200_000);
                    let file = AtomicFile::create(&target, Publish::NoReplace).unwrap();
                    file.file().write_all(content.as_bytes()).unwrap();
                    barrier.wait();
                    (content, file.commit())
                })
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let winners: Vec<&String> =
            results.iter().filter(|(_, r)| r.is_ok()).map(|(c, _)| c).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for (_, result) in &results {
            if let Err(err) = result {
                assert!(matches!(err, Error::FileExists { path } if path == &target), "{err:?}");
            }
        }
        assert_eq!(&std::fs::read_to_string(&target).unwrap(), winners[0]);
        assert_eq!(names(dir.path()), ["out.txt"], "a temporary file was left");
    }
}

#[cfg(unix)]
#[test]
fn a_dangling_symlink_at_the_target_is_not_followed_or_replaced_without_replace() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.txt");
    let elsewhere = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
    let err = atomic_file::write(&target, b"new", Publish::NoReplace).unwrap_err();
    assert!(matches!(err, Error::FileExists { .. }), "{err:?}");
    assert!(!elsewhere.exists() && target.is_symlink());
    // Replacing replaces the link itself, never writes through it.
    atomic_file::write(&target, b"new", Publish::Replace).unwrap();
    assert!(!elsewhere.exists() && !target.is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
}

#[cfg(target_os = "linux")]
#[test]
fn temporary_files_of_dead_processes_are_removed_when_the_target_is_next_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let (me, live) = (std::process::id(), 1);
    let stale = [format!(".out.csv.flightline-tmp-{dead}-0"), format!(".out.csv.{dead}-3.tmp")];
    let kept = [
        format!(".out.csv.flightline-tmp-{me}-999"),
        format!(".out.csv.flightline-tmp-{live}-0"),
        format!(".other.csv.flightline-tmp-{dead}-0"),
        "notes.txt".to_string(),
    ];
    for name in stale.iter().chain(&kept) {
        std::fs::write(dir.path().join(name), "partial").unwrap();
    }
    let file = AtomicFile::create(dir.path().join("out.csv"), Publish::Replace).unwrap();
    let temp = file.temp_path().file_name().unwrap().to_string_lossy().into_owned();
    assert!(temp.starts_with(&format!(".out.csv.flightline-tmp-{me}-")), "{temp}");
    let mut expected: Vec<String> = kept.to_vec();
    expected.push(temp);
    expected.sort();
    assert_eq!(names(dir.path()), expected);
    file.commit().unwrap();
    let mut after: Vec<String> = kept.to_vec();
    after.push("out.csv".into());
    after.sort();
    assert_eq!(names(dir.path()), after);
}

#[test]
fn a_failed_or_dropped_write_leaves_the_old_file_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("state.json");
    atomic_file::write(&target, b"old", Publish::Replace).unwrap();
    let file = AtomicFile::create(&target, Publish::Replace).unwrap();
    file.file().write_all(b"half").unwrap();
    drop(file);
    assert_eq!(names(dir.path()), ["state.json"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    // A publish that fails (a directory is in the way) names the file and the step.
    let blocked = dir.path().join("blocked");
    std::fs::create_dir_all(blocked.join("inside")).unwrap();
    let err = atomic_file::write(&blocked, b"x", Publish::Replace).unwrap_err();
    assert!(
        matches!(&err, Error::File { path, step: atomic_file::FileStep::Publish, .. } if path == &blocked),
        "{err:?}"
    );
    assert!(err.to_string().contains("blocked"), "{err}");
    assert_eq!(names(dir.path()), ["blocked", "state.json"]);
}
