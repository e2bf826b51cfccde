//! Loading plugins: each failure has its own error, the pin is checked before loading, and the C
//! header and the Rust mirror agree on every layout.

mod support;

use flightline_core::Error;
use flightline_core::plugin::{self, PluginErrorKind, abi};
use serde_json::json;
use sha2::Digest;

fn kind(result: flightline_core::Result<impl std::fmt::Debug>) -> PluginErrorKind {
    match result {
        Err(Error::Plugin { kind, .. }) => kind,
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

#[test]
fn the_c_header_and_the_rust_mirror_agree_on_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::run_c_program(
        dir.path(),
        r#"
#include <stdio.h>
#include "flightline_plugin.h"
int main(void) {
  printf("%zu %zu %zu %zu %zu %zu %zu %zu\n",
         (size_t)FLIGHTLINE_PLUGIN_TABLE_SIZE_1, (size_t)FLIGHTLINE_PLUGIN_TABLE_SIZE_2,
         sizeof(struct FlightlinePluginTable),
         offsetof(struct FlightlinePluginTable, validate), sizeof(struct FlightlineContext),
         offsetof(struct FlightlineContext, window_end_ns), sizeof(struct FlightlineHost),
         sizeof(struct FlightlineError));
  return 0;
}
"#,
    );
    let rust = format!(
        "{} {} {} {} {} {} {} {}\n",
        abi::TABLE_SIZE_1,
        abi::TABLE_SIZE_2,
        std::mem::size_of::<abi::PluginTable>(),
        std::mem::offset_of!(abi::PluginTable, validate),
        std::mem::size_of::<abi::FlightlineContext>(),
        std::mem::offset_of!(abi::FlightlineContext, window_end_ns),
        std::mem::size_of::<abi::FlightlineHost>(),
        std::mem::size_of::<abi::FlightlineError>(),
    );
    assert_eq!(out, rust);
}

#[test]
fn a_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libnothing.so");
    let err = plugin::load(&path, None).unwrap_err();
    assert!(err.to_string().contains("libnothing.so"), "{err}");
    assert_eq!(kind(plugin::load(&path, None)), PluginErrorKind::NotFound);
}

#[test]
fn a_file_that_is_not_a_library_is_refused_by_the_dynamic_loader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libtext.so");
    std::fs::write(&path, "#!/bin/sh\necho not a library\n").unwrap();
    assert!(matches!(kind(plugin::load(&path, None)), PluginErrorKind::NotALibrary { .. }));
}

#[test]
fn a_library_without_the_entry_symbol_is_not_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::c_plugin(dir.path(), "plain", "int add(int a, int b) { return a + b; }\n");
    match kind(plugin::load(&path, None)) {
        PluginErrorKind::MissingSymbol { symbol } => assert_eq!(symbol, "flightline_plugin_init"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_plugin_of_another_abi_version_is_refused_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::c_plugin(
        dir.path(),
        "future",
        r#"
#include "flightline_plugin.h"
FlightlineStatus flightline_plugin_init(uint32_t version, void* table, struct FlightlineError* error) {
  (void)table; (void)error;
  return version == 7 ? FLIGHTLINE_STATUS_OK : FLIGHTLINE_STATUS_NOT_IMPLEMENTED;
}
"#,
    );
    let err = plugin::load(&path, None).unwrap_err();
    assert!(
        matches!(&err, Error::Plugin { kind: PluginErrorKind::NoCommonVersion { .. }, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("host speaks 2, 1"), "{text}");
    assert!(text.contains("NOT_IMPLEMENTED"), "{text}");
}

#[test]
fn a_wrong_sha256_is_refused_before_loading_and_the_right_one_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::top_levels(dir.path());
    let expected = hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()));
    match kind(plugin::load(&path, Some(&"ab".repeat(32)))) {
        PluginErrorKind::HashMismatch { expected: pin, actual } => {
            assert_eq!(pin, "ab".repeat(32));
            assert_eq!(actual, expected);
        }
        other => panic!("{other:?}"),
    }
    let loaded = plugin::load(&path, Some(&expected.to_uppercase())).unwrap();
    assert_eq!(loaded.sha256(), expected);
}

#[test]
fn refused_options_carry_the_plugins_message() {
    let probe = plugin::load(support::probe(), None).unwrap();
    match kind(probe.processor(&json!({"colour": "red"}))) {
        PluginErrorKind::OptionsRefused { message } => {
            assert!(message.contains("colour"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let c = plugin::load(support::top_levels(dir.path()), None).unwrap();
    match kind(c.validator(&json!({"deny_table": "no such; table"}))) {
        PluginErrorKind::OptionsRefused { message } => {
            assert!(message.contains("deny_table"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn inspect_shows_name_version_kind_abi_versions_and_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::top_levels(dir.path());
    let plugin = plugin::inspect(&path).unwrap();
    assert_eq!(plugin.name(), "top_levels");
    assert_eq!(plugin.version(), "1.0.0");
    assert!(plugin.kind().processor && plugin.kind().validator);
    assert_eq!(plugin.abi_versions(), &[abi::ABI_1]);
    let text = plugin.to_string();
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()));
    for part in ["top_levels", "1.0.0", "processor+validator", "ABI versions: 1", sha.as_str()] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    let rust = plugin::inspect(support::top_targets()).unwrap();
    assert_eq!((rust.name(), rust.kind().to_string().as_str()), ("top_targets", "processor"));
    assert_eq!(rust.version(), env!("CARGO_PKG_VERSION"));
    // The export glue speaks both: version 2 (two-phase) is chosen, version 1 stays for older
    // hosts.
    assert_eq!(rust.abi_versions(), &[abi::ABI_2, abi::ABI_1]);
    assert_eq!(rust.abi_version(), abi::ABI_2);
}

#[test]
fn a_library_loads_once_per_process() {
    let a = plugin::load(support::probe(), None).unwrap();
    let b = plugin::load(support::probe(), None).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}
