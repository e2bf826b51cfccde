//! The same processor, `top_targets`, linked statically and loaded as a plugin, over the same
//! in-memory batches; prints both throughputs and the ratio. Not a test: nothing is asserted.
//!
//! ```sh
//! cargo bench -p flightline-top-targets --bench static_vs_dynamic                 # 200k rows
//! cargo bench -p flightline-top-targets --bench static_vs_dynamic -- --rows 10000000
//! # without a release build of the stack (dev profile, the per-row crates optimised):
//! cargo test -p flightline-top-targets --bench static_vs_dynamic -- --rows 10000000
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use flightline_core::process::{BatchProcessor, ProcessContext, Report};
use top_targets::{Options, TopTargets};

const BATCH_ROWS: usize = 8192;
const ROUNDS: usize = 3;

fn main() {
    let rows = rows_from_args();
    let batches = batches(rows);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let plugin = flightline_core::plugin::load(plugin_path(), None).unwrap();
    let options = serde_json::json!({"top": 10, "max_level": 2});

    let (mut best_static, mut best_dynamic) = (Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        let mut s = TopTargets::new(serde_json::from_value::<Options>(options.clone()).unwrap());
        let (t, static_report) = runtime.block_on(drive(&mut s, &batches));
        best_static = best_static.min(t);
        let mut d = plugin.processor(&options).unwrap();
        let (t, dynamic_report) = runtime.block_on(drive(&mut d, &batches));
        best_dynamic = best_dynamic.min(t);
        assert_eq!(static_report, dynamic_report, "the two reports differ");
    }
    let rate = |t: Duration| rows as f64 / t.as_secs_f64() / 1e6;
    println!("rows: {rows} in {} batches of {BATCH_ROWS}, best of {ROUNDS}", batches.len());
    println!(
        "static:  {:>9.1} ms  {:>7.1} M rows/s",
        best_static.as_secs_f64() * 1e3,
        rate(best_static)
    );
    println!(
        "dynamic: {:>9.1} ms  {:>7.1} M rows/s",
        best_dynamic.as_secs_f64() * 1e3,
        rate(best_dynamic)
    );
    println!(
        "dynamic / static time: {:.3}",
        best_dynamic.as_secs_f64() / best_static.as_secs_f64()
    );
}

fn rows_from_args() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.replace('_', "").parse().expect("--rows takes a number"))
        .unwrap_or(200_000)
}

async fn drive(p: &mut dyn BatchProcessor, batches: &[RecordBatch]) -> (Duration, Report) {
    let start = Instant::now();
    let ctx = ProcessContext::new("bench");
    p.open(&batches[0].schema(), &ctx).await.unwrap();
    let mut rows = 0;
    for (i, batch) in batches.iter().enumerate() {
        p.process(batch, &ProcessContext::new("bench").at_batch(i as u64, rows)).await.unwrap();
        rows += batch.num_rows() as u64;
    }
    let report = p.finish(&ctx).await.unwrap();
    (start.elapsed(), report)
}

fn batches(rows: usize) -> Vec<RecordBatch> {
    let targets: Vec<String> = (0..40).map(|i| format!("module_{i}::worker")).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "target",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("level", DataType::Int32, false),
    ]));
    let values = Arc::new(StringArray::from(targets.clone()));
    (0..rows)
        .step_by(BATCH_ROWS)
        .map(|start| {
            let ids = start..(start + BATCH_ROWS).min(rows);
            let keys: Int32Array =
                ids.clone().map(|i| ((i * 31 + i / 7) % targets.len()) as i32).collect();
            let levels: Int32Array = ids.map(|i| ((i * 13 + i / 5) % 6 + 1) as i32).collect();
            let dict = DictionaryArray::<Int32Type>::try_new(keys, values.clone()).unwrap();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(dict), Arc::new(levels)]).unwrap()
        })
        .collect()
}

/// Builds this crate's cdylib in the bench's own profile (a no-op when fresh).
fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let status = Command::new(cargo)
        .args(["build", "--offline", "--lib", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", profile.parent().unwrap())
        .args(profile.file_name().is_some_and(|n| n == "release").then_some("--release"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build of the plugin failed");
    profile.join(format!(
        "{}top_targets{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}
