//! The Flight SQL service: arrow-flight's `FlightSqlService` over DataFusion.
//!
//! Tickets and prepared-statement handles are the SQL text itself, as Micromegas does: the
//! server keeps no per-statement state, so any replica behind a load balancer can answer any
//! ticket, and the Micromegas Python client can send its ticket without a GetFlightInfo.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use bytes::Bytes;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status, Streaming};

use crate::audit::Audit;
use crate::catalog::Catalog;
use crate::encode;
pub use crate::encode::flight_schema;
use crate::engine::QueryEngine;
use crate::identity::AuthenticatedUser;
use crate::identity::Caller;
use crate::options::CallOptions;
use crate::request_id::{RequestId, stamp, tag};
use crate::session::SessionStore;

/// Where every table lives, as generic tools (ADBC GetObjects, DBeaver) browse it.
const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";
const TABLE_TYPE: &str = "TABLE";

type DoGetStream = <FlightSqlServer as FlightService>::DoGetStream;

/// The embedded Flight SQL service.
#[derive(Clone)]
pub struct FlightSqlServer {
    catalog: Arc<Catalog>,
    engine: QueryEngine,
    sql_info: Arc<SqlInfoData>,
    sessions: Option<Arc<SessionStore>>,
}

impl std::fmt::Debug for FlightSqlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlServer").field("catalog", &self.catalog).finish_non_exhaustive()
    }
}

impl FlightSqlServer {
    /// A service answering from `catalog`, running queries on `engine`.
    pub fn new(catalog: Arc<Catalog>, engine: QueryEngine) -> Result<Self, crate::ServerError> {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "flightline");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        info.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        info.append(SqlInfo::FlightSqlServerSql, true);
        info.append(SqlInfo::FlightSqlServerSubstrait, false);
        info.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        info.append(SqlInfo::FlightSqlServerCancel, false);
        let sql_info = info.build().map_err(|e| crate::ServerError::Serve(e.to_string()))?;
        Ok(Self { catalog, engine, sql_info: Arc::new(sql_info), sessions: None })
    }

    /// Issues session tokens from `sessions` in `Handshake` (the auth interceptor must share
    /// the same store to accept them) and ends them on `CloseSession`.
    pub fn with_sessions(mut self, sessions: Arc<SessionStore>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// The schema clients will receive for `sql`: dictionaries hydrated unless preserved.
    async fn result_schema<T>(
        &self,
        sql: String,
        request: &Request<T>,
    ) -> Result<SchemaRef, Status> {
        let opts = CallOptions::from_metadata(request.metadata())?;
        let catalog = self.catalog.clone();
        let engine = self.engine.clone();
        engine
            .run(&Caller::of(request), &sql.clone(), async move {
                let df = plan(&catalog, &sql, &opts).await?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                Ok(flight_schema(schema, opts.preserve_dictionary))
            })
            .await
    }

    /// Executes `sql` on the query runtime and streams its result, batch by batch, with
    /// back-pressure; dropping the response stream cancels the query.
    async fn execute(
        &self,
        sql: String,
        request: &Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let audit = Audit::start(request, &sql);
        let opts = match CallOptions::from_metadata(request.metadata()) {
            Ok(opts) => opts,
            Err(status) => return Err(audit.fail(status)),
        };
        let catalog = self.catalog.clone();
        let tally = audit.tally();
        let stream = self
            .engine
            .stream(&Caller::of(request), &sql.clone(), async move {
                let df = plan(&catalog, &sql, &opts).await?;
                // Every operator yields often, so that dropping the task stops it at any size.
                let (plan, task) = crate::preempt::plan(df).await.map_err(plan_status)?;
                encode::execute(plan, task, opts.preserve_dictionary, tally).map_err(plan_status)
            })
            .await;
        let stream = match stream {
            Ok(stream) => stream,
            Err(status) => return Err(audit.fail(status)),
        };
        let mut response = Response::new(Box::pin(audit.follow(stream)) as DoGetStream);
        stamp(&mut response, &RequestId::of(request));
        Ok(response)
    }

    /// GetFlightInfo for `sql`: its schema and a ticket, or a failure that gets its audit line
    /// (no DoGet follows it).
    async fn flight_info(
        &self,
        sql: String,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = match self.result_schema(sql.clone(), &request).await {
            Ok(schema) => schema,
            Err(status) => return Err(Audit::start(&request, &sql).fail(status)),
        };
        let id = RequestId::of(&request);
        let mut response =
            single_endpoint_info(&schema, statement_ticket(&sql), request.into_inner())
                .map_err(|status| tag(status, &id))?;
        stamp(&mut response, &id);
        Ok(response)
    }
}

/// Plans `sql` under the call's options, without executing it.
async fn plan(catalog: &Catalog, sql: &str, opts: &CallOptions) -> Result<DataFrame, Status> {
    crate::budget::check(sql)?;
    let ctx = catalog.session(opts.range).map_err(df_status)?;
    // Analytics jobs read; they never create, insert or set.
    let read_only =
        SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let df = ctx.sql_with_options(sql, read_only).await.map_err(plan_status)?;
    match opts.limit {
        Some(n) => df.limit(0, Some(n)).map_err(plan_status),
        None => Ok(df),
    }
}

fn utf8_handle(bytes: &[u8], what: &str) -> Result<String, Status> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Status::invalid_argument(format!("{what} is not UTF-8 SQL text")))
}

/// Maps DataFusion errors to the gRPC codes Micromegas uses: the caller's fault (including
/// arithmetic on the caller's values: overflow, division by zero, bad casts) is
/// `InvalidArgument`, an exhausted budget `ResourceExhausted`.
pub fn df_status(err: DataFusionError) -> Status {
    let root = err.find_root();
    let message = clipped(root.to_string());
    match root {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_)
        | DataFusionError::Execution(_) => Status::invalid_argument(message),
        // I/O, object store and Parquet failures have variants of their own: what is left as
        // External here is a function failing on the caller's argument (a regular expression
        // that does not parse, say).
        DataFusionError::External(_) => Status::invalid_argument(message),
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        DataFusionError::ArrowError(e, _) => match e.as_ref() {
            ArrowError::MemoryError(_) => Status::resource_exhausted(message),
            ArrowError::ComputeError(_)
            | ArrowError::CastError(_)
            | ArrowError::ParseError(_)
            | ArrowError::InvalidArgumentError(_)
            | ArrowError::DivideByZero
            | ArrowError::ArithmeticOverflow(_) => Status::invalid_argument(message),
            _ => Status::internal(message),
        },
        _ => Status::internal(message),
    }
}

/// Maps an error raised while planning a statement. The statement is the only input to
/// planning, so an "internal" error there is DataFusion failing to type-check what the caller
/// wrote (`trim(0)` in ORDER BY is one): the caller can fix it, the server is fine, and
/// `Internal` would tell them to report a server bug instead.
pub fn plan_status(err: DataFusionError) -> Status {
    match err.find_root() {
        // The inner message, not `Display`, which appends DataFusion's "file a bug" request.
        DataFusionError::Internal(message) => Status::invalid_argument(clipped(format!(
            "the statement could not be planned: {message}; check the types of the function \
             arguments and add explicit CASTs"
        ))),
        _ => df_status(err),
    }
}

type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

/// The bearer token of a call, if it carries one.
fn bearer(md: &MetadataMap) -> Option<&str> {
    let (scheme, token) = md.get("authorization")?.to_str().ok()?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Error messages travel in an HTTP/2 header: one quoting a huge statement back would break
/// the response, so long messages are cut (on a character boundary).
pub fn clipped(mut message: String) -> String {
    const MAX: usize = 4096;
    if message.len() > MAX {
        let cut = (0..=MAX).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
        let dropped = message.len() - cut;
        message.truncate(cut);
        message.push_str(&format!("... ({dropped} more bytes)"));
    }
    message
}

type ActionStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::Result, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FlightSqlService for FlightSqlServer {
    type FlightService = FlightSqlServer;

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.flight_info(query.query, request).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let sql = utf8_handle(&query.prepared_statement_handle, "prepared statement handle")
            .map_err(|status| tag(status, &RequestId::of(&request)))?;
        self.flight_info(sql, request).await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let sql = utf8_handle(&ticket.statement_handle, "statement handle")
            .map_err(|status| tag(status, &RequestId::of(&request)))?;
        self.execute(sql, &request).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let sql = utf8_handle(&query.prepared_statement_handle, "prepared statement handle")
            .map_err(|status| tag(status, &RequestId::of(&request)))?;
        self.execute(sql, &request).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        // A query that fails to prepare never reaches DoGet: this is its audit line.
        let schema = match self.result_schema(query.query.clone(), &request).await {
            Ok(schema) => schema,
            Err(status) => return Err(Audit::start(&request, &query.query).fail(status)),
        };
        let options = IpcWriteOptions::default();
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&schema, &options)
            .try_into()
            .map_err(|e| Status::internal(format!("cannot encode the result schema: {e}")))?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Bytes::from(query.query.into_bytes()),
            dataset_schema,
            parameter_schema: Bytes::new(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        // Handles carry their SQL: there is nothing to free.
        Ok(())
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<ActionStream>, Status> {
        match request.get_ref().r#type.as_str() {
            // Flight's session actions (ADBC closes its session on disconnect): the session
            // token the call carries, if any, ends; CloseSessionResult { status: CLOSED }
            // encodes as field 1 = 1.
            "CloseSession" => {
                if let (Some(sessions), Some(token)) = (&self.sessions, bearer(request.metadata()))
                {
                    sessions.close(token);
                }
                let body = Bytes::from_static(&[0x08, 0x01]);
                let result = arrow_flight::Result { body };
                Ok(Response::new(Box::pin(futures::stream::once(async { Ok(result) }))))
            }
            other => Err(Status::unimplemented(format!(
                "action {other:?} is not supported by this server"
            ))),
        }
    }

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let Some(sessions) = &self.sessions else {
            return Err(Status::unimplemented(
                "this server has no users, so no handshake: authenticate with a bearer token or \
                 an API key, or with none if the server has no tokens",
            ));
        };
        // The auth interceptor checked the Basic credentials and named the user.
        let user = request.extensions().get::<AuthenticatedUser>().ok_or_else(|| {
            Status::unauthenticated(
                "the handshake needs `authorization: Basic base64(user:password)`",
            )
        })?;
        let token = sessions.issue(user)?;
        tracing::debug!(user = %user.0, "handshake issued a session token");
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("a session token is not valid header text"))?;
        let reply = HandshakeResponse { protocol_version: 0, payload: Bytes::from(token) };
        let mut response: Response<HandshakeStream> =
            Response::new(Box::pin(futures::stream::once(async { Ok(reply) })));
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        single_endpoint_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder = query.into_builder(&self.sql_info);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        single_endpoint_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for (name, schema) in self.catalog.tables() {
            // Report the schema queries return by default (dictionaries hydrated).
            let schema = flight_schema(schema, false);
            builder.append(CATALOG, SCHEMA, name, TABLE_TYPE, &schema).map_err(Status::from)?;
        }
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        single_endpoint_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        single_endpoint_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(CATALOG, SCHEMA);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        single_endpoint_info(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(TABLE_TYPE);
        one_batch(builder.schema(), builder.build())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// A FlightInfo with one endpoint whose ticket is `ticket`, served by this same server (no
/// location), size unknown. Query tickets carry their SQL; metadata tickets carry the command.
fn single_endpoint_info(
    schema: &Schema,
    ticket: Any,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket.encode_to_vec()));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor)
        .with_total_records(-1)
        .with_total_bytes(-1);
    Ok(Response::new(info))
}

/// The ticket of a query: its SQL, as the Micromegas Python client also sends it.
fn statement_ticket(sql: &str) -> Any {
    TicketStatementQuery { statement_handle: Bytes::from(sql.to_owned()) }.as_any()
}

fn one_batch<E: Into<FlightError>>(
    schema: SchemaRef,
    batch: Result<RecordBatch, E>,
) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(|e| Status::from(e.into()))?;
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datafusion_errors_map_to_grpc_codes() {
        let plan = DataFusionError::Plan("table 'x' not found".into());
        assert_eq!(df_status(plan).code(), tonic::Code::InvalidArgument);
        let wrapped = DataFusionError::Context(
            "ctx".into(),
            Box::new(DataFusionError::ResourcesExhausted("mem".into())),
        );
        assert_eq!(df_status(wrapped).code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            df_status(DataFusionError::Internal("bug".into())).code(),
            tonic::Code::Internal
        );
        // A function failing on the caller's argument, as regexp_replace does on a bad flag.
        let bad_pattern: Box<dyn std::error::Error + Send + Sync> =
            "regex parse error: unrecognized flag".into();
        assert_eq!(
            df_status(DataFusionError::External(bad_pattern)).code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn internal_errors_while_planning_are_the_statements_fault() {
        let internal = DataFusionError::Context(
            "planning".into(),
            Box::new(DataFusionError::Internal(
                "Function 'btrim' failed to match any signature".into(),
            )),
        );
        let status = plan_status(internal);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("btrim"), "{}", status.message());
        assert!(!status.message().contains("bug in DataFusion"), "{}", status.message());
        let plan = DataFusionError::Plan("table 'x' not found".into());
        assert_eq!(plan_status(plan).code(), tonic::Code::InvalidArgument);
        let mem = DataFusionError::ResourcesExhausted("mem".into());
        assert_eq!(plan_status(mem).code(), tonic::Code::ResourceExhausted);
    }
}
