//! The demo telemetry generator: `log_entries`, `measures` and `processes` in Micromegas's shapes.
//!
//! Rows are generated lazily, one chunk at a time, from `(seed, chunk index)`: the server's
//! memory does not grow with `--demo-rows`, and every scan of a table sees exactly the same rows.
//! Row `i` of `n` gets a time in its own slot of `[end - window, end)`, so times increase with `i`
//! and "the last 7 days" always has data.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
    StringDictionaryBuilder, StructBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use std::ops::Range;

use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::ServerError;

/// Rows generated per chunk (and per record batch).
const CHUNK_ROWS: u64 = 8192;
/// Partitions per table: lets DataFusion scan with both cores.
const PARTITIONS: u64 = 4;

/// How much demo data to make, and where in time to put it.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Rows in `log_entries` and in `measures` each.
    pub rows: u64,
    /// Seed of the deterministic generator.
    pub seed: u64,
    /// End of the time window (exclusive).
    pub end: DateTime<Utc>,
    /// Length of the time window.
    pub window: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { rows: 100_000, seed: 42, end: Utc::now(), window: Duration::days(7) }
    }
}

/// A demo process: the columns every row of that process repeats.
struct Process {
    process_id: String,
    exe: &'static str,
    username: &'static str,
    realname: &'static str,
    computer: &'static str,
    distro: &'static str,
    cpu_brand: &'static str,
    parent: Option<usize>,
}

const EXES: [&str; 8] = [
    "/usr/bin/api-gateway",
    "/usr/bin/api-gateway",
    "/opt/game/server",
    "/opt/game/server",
    "/usr/bin/ingestor",
    "/usr/bin/analytics-worker",
    "/usr/bin/analytics-worker",
    "/opt/game/client.exe",
];
const USERS: [(&str, &str); 4] = [
    ("svc-api", "API Service"),
    ("svc-game", "Game Service"),
    ("alice", "Alice Martin"),
    ("bob", "Bob Chen"),
];
const COMPUTERS: [&str; 4] = ["web-01", "web-02", "game-eu-1", "worker-07"];
const DISTROS: [&str; 2] = ["Debian GNU/Linux 12", "Windows 11"];
const CPUS: [&str; 2] = ["AMD EPYC 7B13", "Intel(R) Core(TM) i7-12700"];
const TARGETS: [&str; 8] = [
    "api::http",
    "api::auth",
    "game::net",
    "game::physics",
    "ingest::blocks",
    "worker::jobs",
    "db::pool",
    "tokio::runtime",
];
const MEASURES: [(&str, &str); 6] = [
    ("cpu_usage", "percent"),
    ("memory_used", "bytes"),
    ("request_latency", "ms"),
    ("frame_time", "ms"),
    ("queue_depth", "count"),
    ("gc_pause", "ms"),
];

fn processes(seed: u64) -> Vec<Process> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..EXES.len())
        .map(|i| {
            let (username, realname) = USERS[i % USERS.len()];
            Process {
                process_id: uuid_like(&mut rng),
                exe: EXES[i],
                username,
                realname,
                computer: COMPUTERS[i % COMPUTERS.len()],
                distro: DISTROS[usize::from(i == 7)],
                cpu_brand: CPUS[i % 2],
                parent: (i % 3 == 2).then(|| i - 1),
            }
        })
        .collect()
}

fn uuid_like(rng: &mut StdRng) -> String {
    let a: u128 = rng.random();
    let h = format!("{a:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn utc_ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()))
}

fn properties_type() -> DataType {
    DataType::List(Arc::new(Field::new("Property", DataType::Struct(property_fields()), false)))
}

fn property_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ])
}

fn leading_fields() -> Vec<Field> {
    ["process_id", "stream_id", "block_id", "exe", "username", "computer"]
        .into_iter()
        .map(|n| Field::new(n, DataType::Utf8, false))
        .collect()
}

fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The schema of `log_entries`.
pub fn log_entries_schema() -> SchemaRef {
    let mut f = leading_fields();
    f.extend([
        Field::new("target", dict_utf8(), false),
        Field::new("insert_time", utc_ts(), false),
        Field::new("time", utc_ts(), false),
        Field::new("level", DataType::Int32, false),
        Field::new("msg", DataType::Utf8, false),
        Field::new("properties", properties_type(), true),
    ]);
    Arc::new(Schema::new(f))
}

/// The schema of `measures`.
pub fn measures_schema() -> SchemaRef {
    let mut f = leading_fields();
    f.extend([
        Field::new("insert_time", utc_ts(), false),
        Field::new("time", utc_ts(), false),
        Field::new("target", dict_utf8(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("unit", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
        Field::new("properties", properties_type(), true),
    ]);
    Arc::new(Schema::new(f))
}

/// The schema of `processes`.
pub fn processes_schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        s("process_id"),
        s("exe"),
        s("username"),
        s("realname"),
        s("computer"),
        s("distro"),
        s("cpu_brand"),
        Field::new("start_time", utc_ts(), false),
        Field::new("insert_time", utc_ts(), false),
        Field::new("parent_process_id", DataType::Utf8, true),
        Field::new("properties", properties_type(), true),
    ]))
}

/// Which demo table a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Logs,
    Measures,
}

/// A table and the name SQL knows it by.
pub type NamedTable = (String, Arc<dyn TableProvider>);

/// The three demo tables as DataFusion providers, by name.
pub fn demo_tables(config: &DemoConfig) -> Result<Vec<NamedTable>, ServerError> {
    let shared = Arc::new(Shared::new(config));
    let logs = DemoTable { shared: shared.clone(), kind: Kind::Logs, schema: log_entries_schema() };
    let measures =
        DemoTable { shared: shared.clone(), kind: Kind::Measures, schema: measures_schema() };
    let batch = processes_batch(&shared).map_err(ServerError::demo)?;
    let processes =
        MemTable::try_new(processes_schema(), vec![vec![batch]]).map_err(ServerError::demo)?;
    Ok(vec![
        ("log_entries".to_string(), Arc::new(logs)),
        ("measures".to_string(), Arc::new(measures)),
        ("processes".to_string(), Arc::new(processes)),
    ])
}

/// A lazily generated demo table. Times grow with the row index, so a filter on `time` turns
/// into a range of rows and only the chunks that can match are generated (as Micromegas prunes
/// partitions by time): "the last hour" of a week of data costs an hour's worth of work.
#[derive(Debug)]
struct DemoTable {
    shared: Arc<Shared>,
    kind: Kind,
    schema: SchemaRef,
}

#[async_trait::async_trait]
impl TableProvider for DemoTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: DataFusion still applies the filter; we only skip chunks that cannot match.
        Ok(filters
            .iter()
            .map(|f| match time_bounds(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (lo, hi) = filters
            .iter()
            .filter_map(time_bounds)
            .fold((i64::MIN, i64::MAX), |(lo, hi), (l, h)| (lo.max(l), hi.min(h)));
        let rows = self.shared.rows_between(lo, hi);
        let partitions = (0..PARTITIONS)
            .map(|partition| {
                Arc::new(DemoPartition {
                    shared: self.shared.clone(),
                    kind: self.kind,
                    schema: self.schema.clone(),
                    rows: rows.clone(),
                    partition,
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        let table = StreamingTable::try_new(self.schema.clone(), partitions)?;
        table.scan(state, projection, &[], limit).await
    }
}

/// `[lo, hi]` in nanoseconds that a conjunct like `time >= t`, `t > time` or
/// `time BETWEEN a AND b` allows; `None` for anything else.
fn time_bounds(expr: &Expr) -> Option<(i64, i64)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (t, op) = match (is_time(left), is_time(right)) {
                (true, false) => (timestamp_ns(right)?, *op),
                (false, true) => (timestamp_ns(left)?, op.swap()?),
                _ => return None,
            };
            match op {
                Operator::Gt | Operator::GtEq => Some((t, i64::MAX)),
                Operator::Lt | Operator::LtEq => Some((i64::MIN, t)),
                Operator::Eq => Some((t, t)),
                _ => None,
            }
        }
        Expr::Between(b) if !b.negated && is_time(&b.expr) => {
            Some((timestamp_ns(&b.low)?, timestamp_ns(&b.high)?))
        }
        _ => None,
    }
}

fn is_time(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(c) if c.name == "time")
}

fn timestamp_ns(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else { return None };
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

/// What every partition of every demo table shares.
struct Shared {
    rows: u64,
    seed: u64,
    start_ns: i64,
    slot_ns: f64,
    processes: Vec<Process>,
    streams: Vec<String>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("rows", &self.rows).field("seed", &self.seed).finish()
    }
}

impl Shared {
    fn new(c: &DemoConfig) -> Self {
        let end_ns = c.end.timestamp_nanos_opt().unwrap_or(i64::MAX);
        let window_ns = c.window.num_nanoseconds().unwrap_or(0).max(1);
        let processes = processes(c.seed);
        let mut rng = StdRng::seed_from_u64(c.seed ^ 0x5354_5245_414d);
        let streams = processes.iter().map(|_| uuid_like(&mut rng)).collect();
        Self {
            rows: c.rows,
            seed: c.seed,
            start_ns: end_ns.saturating_sub(window_ns),
            slot_ns: window_ns as f64 / c.rows.max(1) as f64,
            processes,
            streams,
        }
    }

    /// The rows whose time can lie in `[lo, hi]`, rounded out by one row for float error.
    fn rows_between(&self, lo: i64, hi: i64) -> Range<u64> {
        let index = |t: i64| ((t as f64 - self.start_ns as f64) / self.slot_ns).floor();
        let first = (index(lo) - 1.0).max(0.0);
        let last = (index(hi) + 2.0).max(0.0);
        let clamp = |x: f64| if x >= self.rows as f64 { self.rows } else { x as u64 };
        clamp(first)..clamp(last)
    }

    /// Time of row `i`: uniformly inside its own slot, so times increase with `i`.
    fn time_ns(&self, i: u64, rng: &mut StdRng) -> i64 {
        let offset = (i as f64 + rng.random::<f64>()) * self.slot_ns;
        self.start_ns.saturating_add(offset as i64)
    }
}

/// Every `PARTITIONS`-th chunk that overlaps `rows`, starting at chunk `partition`.
#[derive(Debug)]
struct DemoPartition {
    shared: Arc<Shared>,
    kind: Kind,
    schema: SchemaRef,
    rows: Range<u64>,
    partition: u64,
}

impl PartitionStream for DemoPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let shared = self.shared.clone();
        let kind = self.kind;
        let (first, end) = (self.rows.start / CHUNK_ROWS, self.rows.end.div_ceil(CHUNK_ROWS));
        let chunks = (first + self.partition..end).step_by(PARTITIONS as usize);
        let stream = futures::stream::iter(chunks).map(move |chunk| {
            make_chunk(&shared, kind, chunk)
                .map_err(|e| datafusion::error::DataFusionError::ArrowError(Box::new(e), None))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

fn make_chunk(s: &Shared, kind: Kind, chunk: u64) -> Result<RecordBatch, arrow::error::ArrowError> {
    let first = chunk * CHUNK_ROWS;
    let last = (first + CHUNK_ROWS).min(s.rows);
    let salt = if kind == Kind::Logs { 0x4c4f_4753 } else { 0x4d45_4153 };
    let mut rng = StdRng::seed_from_u64(s.seed ^ salt ^ chunk.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut cols = Columns::new(kind, (last - first) as usize);
    for i in first..last {
        let p = rng.random_range(0..s.processes.len());
        let time = s.time_ns(i, &mut rng);
        cols.leading(s, p, chunk, time, rng.random_range(1_000_000..900_000_000));
        let target = TARGETS[(p + rng.random_range(0..3)) % TARGETS.len()];
        match kind {
            Kind::Logs => cols.log(target, &mut rng),
            Kind::Measures => cols.measure(target, &mut rng),
        }
        cols.properties(s.processes[p].computer, i);
    }
    cols.finish(kind)
}

/// Column builders for one chunk.
struct Columns {
    leading: Vec<StringBuilder>,
    target: StringDictionaryBuilder<Int32Type>,
    insert_time: TimestampNanosecondBuilder,
    time: TimestampNanosecondBuilder,
    level: Int32Builder,
    msg: StringBuilder,
    name: StringBuilder,
    unit: StringBuilder,
    value: Float64Builder,
    properties: ListBuilder<StructBuilder>,
}

impl Columns {
    fn new(kind: Kind, rows: usize) -> Self {
        let cap = |on: bool| if on { rows } else { 0 };
        let logs = kind == Kind::Logs;
        Self {
            leading: (0..6).map(|_| StringBuilder::with_capacity(rows, rows * 24)).collect(),
            target: StringDictionaryBuilder::new(),
            insert_time: TimestampNanosecondBuilder::with_capacity(rows).with_timezone("+00:00"),
            time: TimestampNanosecondBuilder::with_capacity(rows).with_timezone("+00:00"),
            level: Int32Builder::with_capacity(cap(logs)),
            msg: StringBuilder::with_capacity(cap(logs), cap(logs) * 40),
            name: StringBuilder::with_capacity(cap(!logs), cap(!logs) * 12),
            unit: StringBuilder::with_capacity(cap(!logs), cap(!logs) * 6),
            value: Float64Builder::with_capacity(cap(!logs)),
            properties: ListBuilder::new(StructBuilder::from_fields(property_fields(), 2))
                .with_field(Arc::new(Field::new(
                    "Property",
                    DataType::Struct(property_fields()),
                    false,
                ))),
        }
    }

    fn leading(&mut self, s: &Shared, p: usize, chunk: u64, time: i64, insert_delay_ns: i64) {
        let proc_ = &s.processes[p];
        let block = format!("{}-{chunk:06}", &s.streams[p][..8]);
        let values = [
            proc_.process_id.as_str(),
            &s.streams[p],
            &block,
            proc_.exe,
            proc_.username,
            proc_.computer,
        ];
        for (b, v) in self.leading.iter_mut().zip(values) {
            b.append_value(v);
        }
        self.time.append_value(time);
        self.insert_time.append_value(time.saturating_add(insert_delay_ns));
    }

    fn log(&mut self, target: &str, rng: &mut StdRng) {
        self.target.append_value(target);
        let level = pick_level(rng.random_range(0..1000));
        self.level.append_value(level);
        let n: u32 = rng.random_range(1..5000);
        self.msg.append_value(message(level, target, n));
    }

    fn measure(&mut self, target: &str, rng: &mut StdRng) {
        self.target.append_value(target);
        let (name, unit) = MEASURES[rng.random_range(0..MEASURES.len())];
        self.name.append_value(name);
        self.unit.append_value(unit);
        let x: f64 = rng.random();
        let value = match unit {
            "percent" => 100.0 * x * x,
            "bytes" => (256.0 + 3840.0 * x) * 1024.0 * 1024.0,
            "ms" => -20.0 * (1.0 - x).ln(),
            _ => (x * 64.0).floor(),
        };
        self.value.append_value(value);
    }

    fn properties(&mut self, computer: &str, i: u64) {
        let env = if i.is_multiple_of(5) { "staging" } else { "production" };
        for (k, v) in [("env", env), ("host", computer)] {
            push_property(self.properties.values(), k, v);
        }
        self.properties.append(true);
    }

    fn finish(mut self, kind: Kind) -> Result<RecordBatch, arrow::error::ArrowError> {
        let mut cols: Vec<ArrayRef> =
            self.leading.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        let target: ArrayRef = Arc::new(self.target.finish());
        let times: [ArrayRef; 2] =
            [Arc::new(self.insert_time.finish()), Arc::new(self.time.finish())];
        match kind {
            Kind::Logs => {
                cols.push(target);
                cols.extend(times);
                cols.push(Arc::new(self.level.finish()));
                cols.push(Arc::new(self.msg.finish()));
            }
            Kind::Measures => {
                cols.extend(times);
                cols.push(target);
                cols.push(Arc::new(self.name.finish()));
                cols.push(Arc::new(self.unit.finish()));
                cols.push(Arc::new(self.value.finish()));
            }
        }
        cols.push(Arc::new(self.properties.finish()));
        let schema = if kind == Kind::Logs { log_entries_schema() } else { measures_schema() };
        RecordBatch::try_new(schema, cols)
    }
}

fn push_property(s: &mut StructBuilder, key: &str, value: &str) {
    for (i, v) in [key, value].into_iter().enumerate() {
        if let Some(b) = s.field_builder::<StringBuilder>(i) {
            b.append_value(v);
        }
    }
    s.append(true);
}

/// Mostly Info and Debug, a few Warn, rare Error and Fatal.
fn pick_level(per_mille: u32) -> i32 {
    match per_mille {
        0 => 1,
        1..=19 => 2,
        20..=89 => 3,
        90..=589 => 4,
        590..=889 => 5,
        _ => 6,
    }
}

fn message(level: i32, target: &str, n: u32) -> String {
    match level {
        1 => format!("fatal: {target} lost its state, aborting (code {n})"),
        2 => format!("request {n} failed: connection reset by peer"),
        3 => format!("slow operation in {target}: {n} ms"),
        4 => format!("request {n} completed in {} ms", n % 250),
        5 => format!("cache lookup key=user:{n} hit={}", !n.is_multiple_of(3)),
        _ => format!("poll tick {n}"),
    }
}

fn processes_batch(s: &Shared) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut strings: Vec<StringBuilder> = (0..7).map(|_| StringBuilder::new()).collect();
    let mut start = TimestampNanosecondBuilder::new().with_timezone("+00:00");
    let mut insert = TimestampNanosecondBuilder::new().with_timezone("+00:00");
    let mut parent = StringBuilder::new();
    let mut props = ListBuilder::new(StructBuilder::from_fields(property_fields(), 8))
        .with_field(Arc::new(Field::new("Property", DataType::Struct(property_fields()), false)));
    for (i, p) in s.processes.iter().enumerate() {
        let values = [
            p.process_id.as_str(),
            p.exe,
            p.username,
            p.realname,
            p.computer,
            p.distro,
            p.cpu_brand,
        ];
        for (b, v) in strings.iter_mut().zip(values) {
            b.append_value(v);
        }
        let t = s.start_ns.saturating_add(i as i64 * 60_000_000_000);
        start.append_value(t);
        insert.append_value(t.saturating_add(1_000_000_000));
        parent.append_option(p.parent.map(|q| s.processes[q].process_id.clone()));
        push_property(props.values(), "version", "1.4.2");
        props.append(true);
    }
    let mut cols: Vec<ArrayRef> =
        strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
    cols.push(Arc::new(start.finish()));
    cols.push(Arc::new(insert.finish()));
    cols.push(Arc::new(parent.finish()));
    cols.push(Arc::new(props.finish()));
    RecordBatch::try_new(processes_schema(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rows: u64) -> DemoConfig {
        DemoConfig {
            rows,
            seed: 7,
            end: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            window: Duration::days(7),
        }
    }

    #[test]
    fn chunks_are_deterministic_and_in_window() {
        let s = Shared::new(&config(20_000));
        let a = make_chunk(&s, Kind::Logs, 1).unwrap();
        let b = make_chunk(&s, Kind::Logs, 1).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.num_rows(), 8192);
        let last = make_chunk(&s, Kind::Logs, 2).unwrap();
        assert_eq!(last.num_rows(), 20_000 - 2 * 8192);
        let t = last
            .column(8)
            .as_any()
            .downcast_ref::<arrow::array::TimestampNanosecondArray>()
            .unwrap();
        let end = 1_700_000_000_000_000_000i64;
        assert!(t.values().iter().all(|&v| v >= end - 7 * 86_400_000_000_000 && v < end));
        assert!(t.values().windows(2).all(|w| w[0] <= w[1]), "times increase with the row index");
    }

    #[test]
    fn row_ranges_cover_every_row_in_the_time_window() {
        let s = Shared::new(&config(30_000));
        let times: Vec<i64> = (0..4)
            .flat_map(|c| {
                let b = make_chunk(&s, Kind::Logs, c).unwrap();
                let t = b
                    .column(8)
                    .as_any()
                    .downcast_ref::<arrow::array::TimestampNanosecondArray>()
                    .unwrap();
                t.values().to_vec()
            })
            .collect();
        assert_eq!(times.len(), 30_000);
        for (lo, hi) in [
            (times[100], times[200]),
            (times[0] - 5, times[0]),
            (times[29_999], i64::MAX),
            (i64::MIN, times[7]),
        ] {
            let r = s.rows_between(lo, hi);
            for (i, t) in times.iter().enumerate() {
                if *t >= lo && *t <= hi {
                    assert!(
                        r.contains(&(i as u64)),
                        "row {i} at {t} outside {r:?} for [{lo}, {hi}]"
                    );
                }
            }
            assert!(r.end - r.start <= (hi.saturating_sub(lo) as f64 / s.slot_ns) as u64 + 4);
        }
        assert_eq!(s.rows_between(i64::MIN, i64::MAX), 0..30_000);
        assert!(s.rows_between(i64::MAX - 1, i64::MAX).is_empty());
    }

    #[test]
    fn time_bounds_read_comparisons_and_between() {
        use datafusion::logical_expr::{col, lit};
        let ts = |v: i64| lit(ScalarValue::TimestampNanosecond(Some(v), Some("+00:00".into())));
        assert_eq!(time_bounds(&col("time").gt_eq(ts(5))), Some((5, i64::MAX)));
        assert_eq!(time_bounds(&ts(9).gt(col("time"))), Some((i64::MIN, 9)));
        assert_eq!(time_bounds(&col("time").between(ts(1), ts(2))), Some((1, 2)));
        assert_eq!(time_bounds(&col("level").gt_eq(lit(3))), None);
        assert_eq!(time_bounds(&col("time").not_eq(ts(3))), None);
    }

    #[test]
    fn levels_are_mostly_info_and_debug() {
        let counts = (0..1000).fold([0u32; 7], |mut c, pm| {
            c[pick_level(pm) as usize] += 1;
            c
        });
        assert_eq!(counts[1], 1);
        assert!(counts[4] + counts[5] > 700);
        assert!(counts[2] < 30);
    }

    #[test]
    fn schemas_match_batches() {
        let s = Shared::new(&config(10));
        assert_eq!(make_chunk(&s, Kind::Measures, 0).unwrap().schema(), measures_schema());
        assert_eq!(processes_batch(&s).unwrap().num_rows(), 8);
    }
}
