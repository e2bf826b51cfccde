//! The tables the server answers from, and the per-call DataFusion session over them.
//!
//! Each call gets its own `SessionContext` (cheap: the tables and the runtime are shared), so
//! one call's time range can never leak into another's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use chrono::{DateTime, Utc};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::{MemTable, ViewTable, provider_as_source};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};

use crate::demo::{DemoConfig, NamedTable, demo_tables};
use crate::error::ServerError;
use crate::values::{DEFAULT_MAX_VALUE_BYTES, ValueCap, ValueGuards};

/// The column a time range applies to, as in Micromegas's views.
pub const TIME_COLUMN: &str = "time";

/// A user file served as a table (`--table name=path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTable {
    /// Table name in SQL.
    pub name: String,
    /// Parquet, CSV or NDJSON file (or a folder of them).
    pub path: PathBuf,
}

impl std::str::FromStr for UserTable {
    type Err = String;

    /// Parses `name=path`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((name, path)) if !name.trim().is_empty() && !path.trim().is_empty() => {
                Ok(Self { name: name.trim().to_string(), path: PathBuf::from(path.trim()) })
            }
            _ => Err(format!("expected name=path (e.g. sales=./sales.parquet), got {s:?}")),
        }
    }
}

/// Every table the server knows, by name, and the functions its sessions cap.
#[derive(Debug)]
pub struct Catalog {
    tables: Vec<NamedTable>,
    runtime: Arc<RuntimeEnv>,
    guards: ValueGuards,
}

impl Catalog {
    /// Builds the demo tables (unless `demo.rows == 0`) and registers the user files. Queries
    /// share a memory pool of `memory_limit` bytes: over it, sorts and aggregations spill or fail
    /// with `ResourceExhausted` instead of taking the machine down.
    /// With `in_memory`, each file is read into memory once, here.
    pub async fn new(
        demo: &DemoConfig,
        files: &[UserTable],
        memory_limit: usize,
        in_memory: bool,
    ) -> Result<Self, ServerError> {
        let mut tables = if demo.rows > 0 { demo_tables(demo)? } else { Vec::new() };
        // DataFusion reads Parquet strings as Utf8View by default, and the table's schema is
        // what clients receive: pyarrow's compute kernels cannot filter Utf8View (the ADBC
        // line of bench/run.py failed on it). Plain Utf8 reaches every client.
        let config = SessionConfig::new()
            .set_bool("datafusion.execution.parquet.schema_force_view_types", false);
        let loader = SessionContext::new_with_config(config);
        for file in files {
            if tables.iter().any(|(n, _)| *n == file.name) {
                return Err(user_table_error(
                    file,
                    "a table of that name exists already; pick another name",
                ));
            }
            let table = load_file(&loader, file).await?;
            let table = if in_memory { materialise(&loader, file, table).await? } else { table };
            tables.push((file.name.clone(), table));
        }
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
            .build_arc()
            .map_err(|e| ServerError::Serve(format!("cannot set up the query runtime: {e}")))?;
        let cap =
            ValueCap { max_value_bytes: DEFAULT_MAX_VALUE_BYTES, max_call_bytes: memory_limit };
        Ok(Self { tables, runtime, guards: ValueGuards::new(cap) })
    }

    /// Sessions refuse a function call that would build a value over `cap` (see
    /// [`crate::values`]); the default is [`DEFAULT_MAX_VALUE_BYTES`] per value and the memory
    /// limit per call.
    pub fn with_value_cap(mut self, cap: ValueCap) -> Self {
        self.guards = ValueGuards::new(cap);
        self
    }

    /// Names and schemas of the tables, in registration order.
    pub fn tables(&self) -> impl Iterator<Item = (&str, SchemaRef)> {
        self.tables.iter().map(|(n, t)| (n.as_str(), t.schema()))
    }

    /// A fresh session where every table with a timestamp `time` column is restricted to `range`.
    pub fn session(
        &self,
        range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> DfResult<SessionContext> {
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        self.guards.install(&ctx);
        for (name, table) in &self.tables {
            let table = match range {
                Some((begin, end)) if has_time_column(&table.schema()) => {
                    restrict_to_range(name, table.clone(), begin, end)?
                }
                _ => table.clone(),
            };
            ctx.register_table(name.as_str(), table)?;
        }
        Ok(ctx)
    }
}

fn has_time_column(schema: &SchemaRef) -> bool {
    schema
        .field_with_name(TIME_COLUMN)
        .is_ok_and(|f| matches!(f.data_type(), DataType::Timestamp(_, _)))
}

/// The table seen through `WHERE time >= begin AND time < end`, which DataFusion pushes down.
fn restrict_to_range(
    name: &str,
    table: Arc<dyn TableProvider>,
    begin: DateTime<Utc>,
    end: DateTime<Utc>,
) -> DfResult<Arc<dyn TableProvider>> {
    // Nanosecond timestamps span 1677..2262; an instant beyond is clamped rather than turned
    // into NULL, which would silently match no row (think `query_range_end: 9999-12-31`).
    let ts = |t: DateTime<Utc>| {
        let ns =
            t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX });
        lit(ScalarValue::TimestampNanosecond(Some(ns), Some("+00:00".into())))
    };
    let predicate = col(TIME_COLUMN).gt_eq(ts(begin)).and(col(TIME_COLUMN).lt(ts(end)));
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(table), None)?
        .filter(predicate)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

async fn load_file(
    ctx: &SessionContext,
    file: &UserTable,
) -> Result<Arc<dyn TableProvider>, ServerError> {
    let path =
        file.path.to_str().ok_or_else(|| user_table_error(file, "the path is not valid UTF-8"))?;
    if !file.path.exists() {
        return Err(user_table_error(file, "no such file or folder"));
    }
    let ext = extension(&file.path);
    let registered = match ext.as_str() {
        "parquet" => ctx.register_parquet(&file.name, path, ParquetReadOptions::default()).await,
        "csv" => ctx.register_csv(&file.name, path, CsvReadOptions::new()).await,
        "json" | "ndjson" | "jsonl" => {
            let dotted = format!(".{ext}");
            let options = JsonReadOptions::default().file_extension(&dotted);
            ctx.register_json(&file.name, path, options).await
        }
        _ => {
            return Err(user_table_error(
                file,
                "unknown format: name the file .parquet, .csv, .json, .ndjson or .jsonl",
            ));
        }
    };
    registered.map_err(|e| user_table_error(file, &e.to_string()))?;
    ctx.table_provider(file.name.as_str()).await.map_err(|e| user_table_error(file, &e.to_string()))
}

/// Reads a whole table into memory, keeping its partitions so that scans stay parallel.
async fn materialise(
    ctx: &SessionContext,
    file: &UserTable,
    table: Arc<dyn TableProvider>,
) -> Result<Arc<dyn TableProvider>, ServerError> {
    let fail = |e: DataFusionError| {
        user_table_error(file, &format!("cannot be read into memory ({e}); serve it from disk"))
    };
    let partitions =
        ctx.read_table(table.clone()).map_err(fail)?.collect_partitioned().await.map_err(fail)?;
    Ok(Arc::new(MemTable::try_new(table.schema(), partitions).map_err(fail)?))
}

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase()
}

fn user_table_error(file: &UserTable, reason: &str) -> ServerError {
    ServerError::Table {
        name: file.name.clone(),
        path: file.path.clone(),
        reason: reason.to_string(),
    }
}
