//! `postgres_sink`: a run's rows into a PostgreSQL table, in one transaction that replaces the
//! rows an earlier run of the same window wrote, so that a rerun never duplicates.
//!
//! Every row carries three columns besides the result's: `flightline_job` (the job's name),
//! `flightline_begin` and `flightline_end` (the window; NULL for a run without a time range).
//! `open` connects, creates the table from the result's schema when it is absent (or checks
//! that an existing one takes every column with its type), begins a transaction, takes a
//! transaction-scoped advisory lock on (table, job, window) so that two reruns of one window
//! wait for each other, deletes the window's rows and starts a binary `COPY`. `process` sends
//! each batch; `finish` ends the COPY (the rows are then written but invisible); `commit`
//! commits. `abort`, or a dropped sink, rolls back: readers never see part of a run.
//!
//! When the run holds a lease from the runner's shared state ([`ProcessContext::lease`]) and
//! that state lives in this same database (the same `user@host:port/database`), `commit` also
//! marks the window committed under the lease, in the same transaction: the rows and the
//! window's commit land together or not at all, and a worker whose lease was taken over
//! commits nothing (fenced).

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use flightline_core::process::{
    BatchProcessor, ProcessContext, ProcessError, Report, WindowLease, async_trait,
};
use futures::SinkExt;
use serde::Deserialize;
use tokio_postgres::{Client, CopyInSink};

use crate::error::PluginsError;
use crate::postgres::fence::{commit_window, tag_session};
use crate::postgres::types::{quote_ident, quote_table};
use crate::postgres::{CopyEncoder, PgConnection, PgType};

/// The columns every row carries besides the result's.
pub const KEY_COLUMNS: [&str; 3] = ["flightline_job", "flightline_begin", "flightline_end"];

/// The types of [`KEY_COLUMNS`].
const KEY_TYPES: [PgType; 3] = [PgType::Text, PgType::Timestamptz, PgType::Timestamptz];

/// Every column a run writes, in COPY order: the key columns, then the result's.
fn all_columns<'a>(
    schema: &'a SchemaRef,
    types: &'a [PgType],
) -> impl Iterator<Item = (&'a str, PgType)> + 'a {
    let keys = KEY_COLUMNS.into_iter().zip(KEY_TYPES);
    keys.chain(schema.fields().iter().map(|f| f.name().as_str()).zip(types.iter().copied()))
}

/// A run's window bounds; both NULL for a run without a time range.
fn bounds(ctx: &ProcessContext) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    ctx.window.as_ref().map_or((None, None), |w| (Some(w.begin), Some(w.end)))
}

/// Options of `postgres_sink`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkOptions {
    /// The database.
    #[serde(flatten)]
    pub connection: PgConnection,
    /// The table, `name` or `schema.name`.
    pub table: String,
    /// Create the table from the result's schema when it is absent (default true).
    #[serde(default = "yes")]
    pub create: bool,
}

fn yes() -> bool {
    true
}

/// The `postgres_sink` processor.
pub struct PostgresSink {
    options: PostgresSinkOptions,
    open: Option<OpenCopy>,
}

/// A run in progress: the connection, inside its transaction, and the COPY while it lasts.
struct OpenCopy {
    client: Client,
    encoder: CopyEncoder,
    copy: Option<Pin<Box<CopyInSink<Bytes>>>>,
    /// The lease to commit the window under, when the state lives in this database.
    lease: Option<Arc<WindowLease>>,
}

impl PostgresSink {
    /// A sink with `options`, checked (the URL parses and holds no password; a table name).
    pub fn new(options: PostgresSinkOptions) -> Result<Self, PluginsError> {
        let refuse = |m: String| super::options_error("postgres_sink", m);
        options.connection.config().map_err(refuse)?;
        let table = options.table.trim();
        if table.is_empty() || table.split('.').count() > 2 || table.split('.').any(str::is_empty) {
            return Err(refuse(format!(
                "`table` {:?}: give a table name, or schema.name",
                options.table
            )));
        }
        Ok(Self { options, open: None })
    }

    /// The run's lease, when the shared state it comes from is this sink's database.
    fn same_store(&self, ctx: &ProcessContext) -> Option<Arc<WindowLease>> {
        let lease = ctx.lease.as_ref()?;
        (lease.store == self.options.connection.describe()).then(|| Arc::clone(lease))
    }

    fn fail(&self, doing: &str, error: &tokio_postgres::Error) -> ProcessError {
        ProcessError::new(self.options.connection.failure(doing, error))
    }

    async fn prepare_table(
        &self,
        client: &Client,
        schema: &SchemaRef,
        types: &[PgType],
    ) -> Result<(), ProcessError> {
        let table = quote_table(&self.options.table);
        if self.options.create {
            let columns: Vec<String> = all_columns(schema, types)
                .map(|(name, t)| {
                    let required = if name == KEY_COLUMNS[0] { " NOT NULL" } else { "" };
                    format!("{} {}{required}", quote_ident(name), t.sql())
                })
                .collect();
            let ddl = format!("CREATE TABLE IF NOT EXISTS {table} ({})", columns.join(", "));
            client
                .batch_execute(&ddl)
                .await
                .map_err(|e| self.fail("cannot create the table in", &e))?;
        }
        self.check_table(client, schema, types).await
    }

    /// An existing table must take every column with the exact type binary COPY writes.
    async fn check_table(
        &self,
        client: &Client,
        schema: &SchemaRef,
        types: &[PgType],
    ) -> Result<(), ProcessError> {
        let (schema_name, table_name) = match self.options.table.split_once('.') {
            Some((s, t)) => (Some(s.to_string()), t.to_string()),
            None => (None, self.options.table.clone()),
        };
        let rows = client
            .query(
                "SELECT column_name, udt_name FROM information_schema.columns \
                 WHERE table_name = $1 AND table_schema = coalesce($2, current_schema())",
                &[&table_name, &schema_name],
            )
            .await
            .map_err(|e| self.fail("cannot read the table's columns from", &e))?;
        let found: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        if found.is_empty() {
            return Err(ProcessError::new(format!(
                "table {} does not exist in PostgreSQL at {}: create it, or set create = true",
                self.options.table,
                self.options.connection.describe()
            )));
        }
        for (column, pg) in all_columns(schema, types) {
            match found.iter().find(|(name, _)| *name == column) {
                None => {
                    return Err(ProcessError::new(format!(
                        "table {} has no column {column:?} ({}): add it (ALTER TABLE ... ADD \
                         COLUMN), or select only the table's columns",
                        self.options.table,
                        pg.sql()
                    )));
                }
                Some((_, udt)) if !pg.accepts(udt) => {
                    return Err(ProcessError::new(format!(
                        "table {} has column {column:?} as {udt}, but the result gives {}: \
                         change the column's type, or CAST the column in the query",
                        self.options.table,
                        pg.sql()
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Begins the transaction, replaces the window's rows, and starts the COPY.
    async fn begin(
        &self,
        client: &Client,
        schema: &SchemaRef,
        types: &[PgType],
        ctx: &ProcessContext,
    ) -> Result<Pin<Box<CopyInSink<Bytes>>>, ProcessError> {
        let table = quote_table(&self.options.table);
        let job: &str = &ctx.job;
        let (begin, end) = bounds(ctx);
        client
            // Read committed whatever the database's default: the window's commit under the
            // lease must see a renewal made since the transaction began.
            .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(|e| self.fail("cannot begin a transaction in", &e))?;
        // A hash collision only makes two windows wait for each other, never mixes their rows.
        let lock_key = format!("{}\u{1f}{job}\u{1f}{begin:?}\u{1f}{end:?}", self.options.table);
        client
            .execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&lock_key])
            .await
            .map_err(|e| self.fail("cannot lock the window in", &e))?;
        let delete = format!(
            "DELETE FROM {table} WHERE {} = $1 AND {} IS NOT DISTINCT FROM $2 AND {} IS NOT \
             DISTINCT FROM $3",
            quote_ident(KEY_COLUMNS[0]),
            quote_ident(KEY_COLUMNS[1]),
            quote_ident(KEY_COLUMNS[2])
        );
        client
            .execute(&delete, &[&job, &begin, &end])
            .await
            .map_err(|e| self.fail("cannot replace the window's earlier rows in", &e))?;
        let columns: Vec<String> =
            all_columns(schema, types).map(|(name, _)| quote_ident(name)).collect();
        let statement = format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", columns.join(", "));
        let copy = client
            .copy_in(&statement)
            .await
            .map_err(|e| self.fail("cannot start COPY into", &e))?;
        Ok(Box::pin(copy))
    }
}

/// The PostgreSQL type of every column of `schema`, or what is wrong with the first column that
/// has none (and what to write in the query instead): what `open` checks, and `flightline
/// check` with the schema the server announces.
pub fn column_types(schema: &SchemaRef) -> Result<Vec<PgType>, String> {
    schema
        .fields()
        .iter()
        .map(|field| {
            if KEY_COLUMNS.contains(&field.name().as_str()) {
                return Err(format!(
                    "the result has a column named {:?}, which postgres_sink adds itself: \
                     rename it in the query",
                    field.name()
                ));
            }
            PgType::for_arrow(field.data_type()).map_err(|advice| {
                format!("column {:?} ({}): {advice}", field.name(), field.data_type())
            })
        })
        .collect()
}

#[async_trait]
impl BatchProcessor for PostgresSink {
    fn name(&self) -> &str {
        "postgres_sink"
    }

    async fn open(&mut self, schema: &SchemaRef, ctx: &ProcessContext) -> Result<(), ProcessError> {
        let types = column_types(schema).map_err(ProcessError::new)?;
        let client = self.options.connection.connect().await.map_err(ProcessError::new)?;
        let lease = self.same_store(ctx);
        if let Some(lease) = &lease {
            tag_session(&client, lease)
                .await
                .map_err(|e| self.fail("cannot tag the session in", &e))?;
        }
        self.prepare_table(&client, schema, &types).await?;
        let mut copy = self.begin(&client, schema, &types, ctx).await?;
        let mut header = BytesMut::new();
        CopyEncoder::header(&mut header);
        copy.send(header.freeze()).await.map_err(|e| self.fail("cannot write to", &e))?;
        let (begin, end) = bounds(ctx);
        let encoder = CopyEncoder::new(schema, &types)
            .with_text(&ctx.job)?
            .with_instant(begin)
            .with_instant(end);
        self.open = Some(OpenCopy { client, encoder, copy: Some(copy), lease });
        Ok(())
    }

    async fn process(
        &mut self,
        batch: &RecordBatch,
        _ctx: &ProcessContext,
    ) -> Result<(), ProcessError> {
        let open =
            self.open.as_mut().ok_or_else(|| ProcessError::new("postgres_sink was not opened"))?;
        let mut buf = BytesMut::with_capacity(batch.get_array_memory_size());
        open.encoder.encode(batch, &mut buf)?;
        let copy = open.copy.as_mut().ok_or_else(|| ProcessError::new("the COPY has ended"))?;
        if let Err(e) = copy.send(buf.freeze()).await {
            return Err(ProcessError::new(
                self.options.connection.failure("cannot write rows to", &e),
            ));
        }
        Ok(())
    }

    async fn finish(&mut self, _ctx: &ProcessContext) -> Result<Report, ProcessError> {
        let open =
            self.open.as_mut().ok_or_else(|| ProcessError::new("postgres_sink was not opened"))?;
        let mut copy = open.copy.take().ok_or_else(|| ProcessError::new("the COPY has ended"))?;
        let with_window = if open.lease.is_some() { ", committed with the window" } else { "" };
        let mut trailer = BytesMut::new();
        CopyEncoder::trailer(&mut trailer);
        let sent = async {
            copy.send(trailer.freeze()).await?;
            copy.as_mut().finish().await
        };
        let written = sent.await.map_err(|e| self.fail("cannot finish COPY into", &e))?;
        let mut report = Report::default();
        report.counts.insert("rows_written".into(), written);
        report.notes.push(format!(
            "rows of table {} at {} replaced for this window{with_window}",
            self.options.table,
            self.options.connection.describe()
        ));
        Ok(report)
    }

    async fn commit(&mut self) -> Result<(), ProcessError> {
        let open =
            self.open.take().ok_or_else(|| ProcessError::new("postgres_sink was not opened"))?;
        if let Some(lease) = &open.lease {
            let held = commit_window(&open.client, lease)
                .await
                .map_err(|e| self.fail("cannot commit the window's lease in", &e))?;
            if !held {
                let _ = open.client.batch_execute("ROLLBACK").await;
                return Err(ProcessError::new(format!(
                    "job {:?}: window {} was taken over by another worker (this worker held \
                     epoch {}); its rows were rolled back",
                    lease.job, lease.window, lease.epoch
                )));
            }
        }
        open.client.batch_execute("COMMIT").await.map_err(|e| self.fail("cannot commit in", &e))
    }

    async fn abort(&mut self) {
        // Dropping the client closes the connection, and PostgreSQL rolls the transaction back;
        // an explicit ROLLBACK first says so at once when the server is reachable.
        if let Some(open) = self.open.take() {
            drop(open.copy);
            let _ = open.client.batch_execute("ROLLBACK").await;
        }
    }
}
