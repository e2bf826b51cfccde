//! Against a Flight SQL server no one here wrote: roapi (from PyPI, its wheel ships the
//! binary; installed into .venv by interop/setup_venv.sh) serving a Parquet file this test
//! writes. roapi ignores the Micromegas time headers, so a scheduled job uses
//! `time_range = "sql"`; each window's rows must be processed exactly once.

mod common;
#[path = "../../interop/venv.rs"]
mod venv;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;

use arrow::array::{Int64Array, RecordBatch, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use flightline_core::FlightSqlClient;
use futures::TryStreamExt;

use common::{PATIENCE, RunnerProcess, job_file, read_parquet, times};

/// Rows in the file: one every 7 seconds from 2024-01-01T00:00:00Z (about 2 hours).
const ROWS: i64 = 1000;
const START_NANOS: i64 = 1_704_067_200_000_000_000;
const STEP_NANOS: i64 = 7_000_000_000;

struct Roapi {
    child: Child,
    uri: String,
}

impl Drop for Roapi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn roapi_binary() -> PathBuf {
    let binary = venv::setup_venv().join("bin/roapi");
    assert!(binary.exists(), "the roapi wheel did not install {}", binary.display());
    binary
}

fn write_events(path: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("time", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), false),
        Field::new("v", DataType::Int64, false),
    ]));
    let time =
        TimestampNanosecondArray::from_iter_values((0..ROWS).map(|i| START_NANOS + i * STEP_NANOS))
            .with_timezone("UTC");
    let v = Int64Array::from_iter_values(0..ROWS);
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(time), Arc::new(v)]).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn start_roapi(table: &Path) -> Roapi {
    let mut child = Command::new(roapi_binary())
        .args(["--addr-flight-sql", "127.0.0.1:0", "--addr-http", "127.0.0.1:0"])
        .args(["--addr-postgres", "127.0.0.1:0", "-t"])
        .arg(format!("events={}", table.display()))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start roapi");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // "🚀 Listening on 127.0.0.1:PORT for FlightSQL traffic..."
            if let Some(rest) = line.split("Listening on ").nth(1)
                && let Some(addr) = rest.strip_suffix(" for FlightSQL traffic...")
            {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx.recv_timeout(PATIENCE).expect("roapi reports its Flight SQL address");
    Roapi { child, uri: format!("grpc://{addr}") }
}

#[test]
fn the_sdk_and_a_scheduled_sql_mode_job_work_against_roapi() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("events.parquet");
    write_events(&table);
    let roapi = start_roapi(&table);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // roapi logs its address as it starts listening: the first connection may still be
        // refused, so readiness is the first answered query (bounded).
        let deadline = std::time::Instant::now() + PATIENCE;
        let (client, batches) = loop {
            let attempt = async {
                let client = FlightSqlClient::builder(&roapi.uri).connect().await?;
                let batches = client.query("SELECT count(*) AS n FROM events", None).await?;
                Ok::<_, flightline_core::Error>((client, batches))
            };
            match attempt.await {
                Ok(ready) => break ready,
                Err(err) if std::time::Instant::now() < deadline && err.is_retryable() => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(err) => panic!("roapi never answered: {err}"),
            }
        };
        let n = batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
        assert_eq!(n, ROWS);
        let streamed: Vec<RecordBatch> = client
            .query_stream("SELECT v FROM events WHERE v < 100", None)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(streamed.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
        let prepared = client.prepare("SELECT time, v FROM events").await.unwrap();
        let names: Vec<&str> =
            prepared.dataset_schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["time", "v"]);
    });

    let out = dir.path().join("out");
    let jobs = job_file(
        dir.path(),
        &format!(
            r#"
[server]
uri = "{uri}"
time_range = "sql"
[runner]
state_dir = "{state}"
[[job]]
name = "events"
sql = "SELECT time, v FROM events WHERE time >= {{begin}} AND time < {{end}}"
begin = "2024-01-01T00:00:00Z"
end = "2024-01-01T02:00:00Z"
every = "1s"
window = "10m"
validation = "off"
processors = [{{ name = "parquet_sink", options = {{ path = "{out}/{{begin}}.parquet", overwrite = true }} }}]
"#,
            uri = roapi.uri,
            state = dir.path().join("state").display(),
            out = out.display()
        ),
    );
    let (status, stdout, stderr) = RunnerProcess::start(&jobs, &["--once"]).finish();
    assert!(status.success(), "{stdout}\n{stderr}");

    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 12, "one file per 10-minute window: {files:?}");
    let window = 600 * 1_000_000_000_i64;
    let mut seen = BTreeSet::new();
    for (index, file) in files.iter().enumerate() {
        let begin = START_NANOS + index as i64 * window;
        let times = times(&read_parquet(file));
        // roapi returned only the window's rows: the SQL carried the range.
        let expected = (0..ROWS)
            .map(|i| START_NANOS + i * STEP_NANOS)
            .filter(|t| (begin..begin + window).contains(t))
            .count();
        assert_eq!(times.len(), expected, "{}", file.display());
        for t in times {
            assert!((begin..begin + window).contains(&t), "{t} outside {}", file.display());
            assert!(seen.insert(t), "row at {t} twice");
        }
    }
    let in_range = (0..ROWS)
        .map(|i| START_NANOS + i * STEP_NANOS)
        .filter(|t| *t < START_NANOS + 12 * window)
        .count();
    assert_eq!(seen.len(), in_range, "every row of the two hours exactly once");
}
