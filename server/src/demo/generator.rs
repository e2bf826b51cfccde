//! The deterministic generator of demo rows: processes, then chunks of log and measure rows.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
    StringDictionaryBuilder, StructBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int32Type};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::DemoConfig;
use super::schemas::{log_entries_schema, measures_schema, processes_schema, property_fields};

/// Rows generated per chunk (and per record batch).
pub(super) const CHUNK_ROWS: u64 = 8192;

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

/// Which demo table a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Logs,
    Measures,
}

/// What every partition of every demo table shares. Times are integer nanoseconds: row `i` of
/// `rows` lies in `[start + i * window / rows, start + (i + 1) * window / rows)`, computed
/// exactly in 128 bits, so pruning by time never loses a row to rounding.
pub(super) struct Shared {
    pub(super) rows: u64,
    seed: u64,
    start_ns: i64,
    window_ns: u64,
    processes: Vec<Process>,
    streams: Vec<String>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("rows", &self.rows).field("seed", &self.seed).finish()
    }
}

impl Shared {
    pub(super) fn new(c: &DemoConfig) -> Self {
        let end_ns = c.end.timestamp_nanos_opt().unwrap_or(i64::MAX);
        let window_ns = c.window.num_nanoseconds().unwrap_or(0).max(1);
        let start_ns = end_ns.saturating_sub(window_ns);
        let processes = processes(c.seed);
        let mut rng = StdRng::seed_from_u64(c.seed ^ 0x5354_5245_414d);
        let streams = processes.iter().map(|_| uuid_like(&mut rng)).collect();
        Self {
            rows: c.rows,
            seed: c.seed,
            start_ns,
            // The window actually left after saturating at the start of time; at least 1.
            window_ns: end_ns.abs_diff(start_ns).max(1),
            processes,
            streams,
        }
    }

    /// The rows whose time can lie in `[lo, hi]`.
    pub(super) fn rows_between(&self, lo: i64, hi: i64) -> Range<u64> {
        // Row i's times have slot index i - 1 or i when rows <= window (one row per ns or
        // fewer); denser rows share a nanosecond, widening the margin by rows / window.
        let margin = i128::from(self.rows / self.window_ns) + 2;
        let clamp = |i: i128| u64::try_from(i.clamp(0, i128::from(self.rows))).unwrap_or(self.rows);
        clamp(self.slot(lo))..clamp(self.slot(hi) + margin)
    }

    /// `floor((t - start) * rows / window)`: -1 before the window, `rows` after it.
    fn slot(&self, t: i64) -> i128 {
        let offset = i128::from(t) - i128::from(self.start_ns);
        if offset < 0 {
            -1
        } else if offset >= i128::from(self.window_ns) {
            i128::from(self.rows)
        } else {
            // offset < 2^64 and rows < 2^64: the product fits in 128 bits.
            offset * i128::from(self.rows) / i128::from(self.window_ns)
        }
    }

    /// Time of row `i`: uniformly inside its own slot, so times increase with `i`.
    pub(super) fn time_ns(&self, i: u64, rng: &mut StdRng) -> i64 {
        let window = u128::from(self.window_ns);
        // A uniform fraction of the window, from one 64-bit draw as before.
        let within = (u128::from(rng.random::<u64>()) * window) >> 64;
        let offset = (u128::from(i) * window + within) / u128::from(self.rows.max(1));
        self.start_ns.saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }
}

pub(super) fn make_chunk(
    s: &Shared,
    kind: Kind,
    chunk: u64,
) -> Result<RecordBatch, arrow::error::ArrowError> {
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

pub(super) fn processes_batch(s: &Shared) -> Result<RecordBatch, arrow::error::ArrowError> {
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
    use chrono::{DateTime, Duration};

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
            let width = (i128::from(hi) - i128::from(lo)) * 30_000 / (7 * 86_400_000_000_000);
            assert!(i128::from(r.end - r.start) <= width + 3, "{r:?} for [{lo}, {hi}]");
        }
        assert_eq!(s.rows_between(i64::MIN, i64::MAX), 0..30_000);
        assert!(s.rows_between(i64::MAX - 1, i64::MAX).is_empty());
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
