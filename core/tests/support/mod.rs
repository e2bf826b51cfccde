//! Shared by the test crates: the embedded demo server they query, and the test plugins (the
//! Rust ones built with cargo into this test's own target directory, the C ones with the system
//! `cc` into a temporary directory).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use arrow::array::{DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};

/// The fixed end of the demo window, so that counts over a range are reproducible.
pub fn demo_end() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_704_672_000, 0).expect("2024-01-08T00:00:00Z")
}

/// An embedded demo server, `rows` rows per table over the 7 days before [`demo_end`], on an
/// ephemeral port, and a client connected to it.
pub async fn demo_server(
    rows: u64,
    seed: u64,
) -> (flightline_server::RunningServer, flightline_core::FlightSqlClient) {
    let server = flightline_server::ServerBuilder::new()
        .demo_rows(rows)
        .seed(seed)
        .demo_end(demo_end())
        .demo_window(chrono::Duration::days(7))
        .spawn("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("start the embedded server");
    let client = flightline_core::FlightSqlClient::builder(server.uri())
        .connect()
        .await
        .expect("connect to the embedded server");
    (server, client)
}

/// `target/<profile>`: this test binary lives in `target/<profile>/deps`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// Builds the workspace crate `package` (a cdylib) and returns the path of `lib<lib>.so`.
/// Always runs cargo: a no-op when fresh, and never a stale library.
///
/// It builds the libraries of the whole workspace, not `-p package`: cargo unifies features
/// over the packages it is asked to build, so `-p` alone chose another feature set for arrow,
/// sqlparser and their dependencies and rebuilt them inside the test run (235 s per test,
/// measured). With `--workspace --lib` the features are those of the test command's own
/// build, and everything but the plugin is already fresh.
pub fn rust_plugin(package: &str, lib: &str) -> PathBuf {
    let profile = profile_dir();
    let target = profile.parent().expect("target dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--offline", "--workspace", "--lib", "--manifest-path"])
        .arg(workspace_dir().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target);
    if profile.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "cargo build of the workspace libraries (for {package}) failed");
    let path = profile.join(format!(
        "{}{lib}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(path.is_file(), "{} not built", path.display());
    path
}

/// The example Rust plugin, `plugins/top_targets`.
pub fn top_targets() -> PathBuf {
    rust_plugin("flightline-top-targets", "top_targets")
}

/// The test plugin, `plugins/test_plugin` (plugin name `probe`).
pub fn probe() -> PathBuf {
    rust_plugin("flightline-test-plugin", "flightline_test_plugin")
}

/// Compiles C `source` into `dir/lib<name>.so` with the system `cc` and the ABI header.
pub fn c_plugin(dir: &Path, name: &str, source: &str) -> PathBuf {
    let file = dir.join(format!("{name}.c"));
    std::fs::write(&file, source).expect("write C source");
    compile_c(&file, &dir.join(format!("lib{name}{}", std::env::consts::DLL_SUFFIX)))
}

/// The example C plugin, `plugins/c/top_levels.c`, compiled into `dir`.
pub fn top_levels(dir: &Path) -> PathBuf {
    let source = workspace_dir().join("plugins/c/top_levels.c");
    compile_c(&source, &dir.join(format!("libtop_levels{}", std::env::consts::DLL_SUFFIX)))
}

fn compile_c(source: &Path, out: &Path) -> PathBuf {
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I"])
        .arg(workspace_dir().join("plugins/include"))
        .arg("-o")
        .arg(out)
        .arg(source)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed for {}", source.display());
    out.to_path_buf()
}

/// Compiles and runs a C program against the header; returns its stdout.
pub fn run_c_program(dir: &Path, source: &str) -> String {
    let file = dir.join("program.c");
    let exe = dir.join("program");
    std::fs::write(&file, source).expect("write C source");
    let status = Command::new("cc")
        .arg("-I")
        .arg(workspace_dir().join("plugins/include"))
        .arg("-o")
        .arg(&exe)
        .arg(&file)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed");
    let output = Command::new(&exe).output().expect("run program");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The shape of `log_entries` that the example plugins read.
pub fn log_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "target",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("level", DataType::Int32, false),
        Field::new("msg", DataType::Utf8, false),
    ]))
}

const TARGETS: [&str; 5] = ["api::auth", "api::search", "db::pool", "http::server", "jobs::gc"];

/// `batches` batches of `rows` rows each; levels 1..=6 and targets in an uneven pattern.
pub fn log_batches(batches: usize, rows: usize) -> Vec<RecordBatch> {
    (0..batches)
        .map(|b| {
            let ids = (0..rows).map(|i| b * rows + i);
            let keys: Int32Array =
                ids.clone().map(|i| ((i * i + 3 * i) % TARGETS.len()) as i32).collect();
            let targets = DictionaryArray::<Int32Type>::try_new(
                keys,
                Arc::new(StringArray::from(TARGETS.to_vec())),
            )
            .expect("dictionary");
            let levels: Int32Array =
                ids.clone().map(|i| ((i * 7 + i / 3) % 6 + 1) as i32).collect();
            let msgs: StringArray = ids.map(|i| Some(format!("message {i}"))).collect();
            RecordBatch::try_new(
                log_schema(),
                vec![Arc::new(targets), Arc::new(levels), Arc::new(msgs)],
            )
            .expect("batch")
        })
        .collect()
}

/// Drives a processor the way the executor does for a run of its own: open, every batch in
/// order, finish, commit.
pub async fn drive(
    processor: &mut dyn flightline_core::process::BatchProcessor,
    job: &str,
    batches: &[RecordBatch],
) -> Result<flightline_core::process::Report, flightline_core::process::ProcessError> {
    use flightline_core::process::ProcessContext;
    let schema = batches.first().map(|b| b.schema()).unwrap_or_else(log_schema);
    processor.open(&schema, &ProcessContext::new(job)).await?;
    let mut rows = 0;
    for (index, batch) in batches.iter().enumerate() {
        processor.process(batch, &ProcessContext::new(job).at_batch(index as u64, rows)).await?;
        rows += batch.num_rows() as u64;
    }
    let report =
        processor.finish(&ProcessContext::new(job).at_batch(batches.len() as u64, rows)).await?;
    processor.commit().await?;
    Ok(report)
}

/// A log writer whose lines the test reads back: `fmt().with_writer(move || logs.clone())`.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
