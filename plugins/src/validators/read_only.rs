//! `not_read_only`.

use std::ops::ControlFlow;

use async_trait::async_trait;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
use sqlparser::ast::{Select, Statement, Visit, Visitor};

use super::codes;

/// Refuses anything but reading: analytics jobs do not mutate. Allowed are queries, `EXPLAIN`
/// and `SHOW`; every statement is checked, also those nested in another (`EXPLAIN ANALYZE
/// DELETE ...`, a data-modifying CTE), and `SELECT ... INTO` (which creates a table) is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnlyValidator;

#[async_trait]
impl QueryValidator for ReadOnlyValidator {
    fn name(&self) -> &str {
        "read-only"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        let Ok(statements) = ctx.statements() else {
            return Vec::new();
        };
        let mut writes = Writes::default();
        for statement in statements {
            let _ = statement.visit(&mut writes);
        }
        writes.kinds.dedup();
        writes.kinds.into_iter().map(refusal).collect()
    }
}

#[derive(Default)]
struct Writes {
    kinds: Vec<String>,
}

impl Visitor for Writes {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if !is_read_only(statement) {
            self.kinds.push(statement_kind(statement));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if select.into.is_some() {
            self.kinds.push("SELECT INTO".to_string());
        }
        ControlFlow::Continue(())
    }
}

fn is_read_only(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCharset(_)
            | Statement::ShowObjects(_)
            | Statement::ShowTables { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowCollation { .. }
    )
}

/// The statement's leading keywords (`INSERT`, `DROP TABLE`, `COPY`), read from its variant.
/// Never from `Display`: that would format a generated statement of megabytes (a `DELETE` with
/// 100 000 `OR`s, a bulk `INSERT`) in full just to read its first word, and its recursion is
/// only as stack-safe as each `Display` impl of sqlparser makes it.
fn statement_kind(statement: &Statement) -> String {
    if let Statement::Drop { object_type, .. } = statement {
        return format!("DROP {object_type}");
    }
    let kind = match statement {
        Statement::Insert { .. } => "INSERT",
        Statement::Update { .. } => "UPDATE",
        Statement::Delete { .. } => "DELETE",
        Statement::Merge { .. } => "MERGE",
        Statement::Truncate { .. } => "TRUNCATE",
        Statement::Copy { .. } | Statement::CopyIntoSnowflake { .. } => "COPY",
        Statement::Set { .. } => "SET",
        Statement::Reset { .. } => "RESET",
        Statement::Use { .. } => "USE",
        Statement::Analyze { .. } => "ANALYZE",
        Statement::Vacuum { .. } => "VACUUM",
        Statement::CreateTable { .. } | Statement::CreateVirtualTable { .. } => "CREATE TABLE",
        Statement::CreateView { .. } => "CREATE VIEW",
        Statement::CreateIndex { .. } => "CREATE INDEX",
        Statement::CreateSchema { .. } => "CREATE SCHEMA",
        Statement::CreateDatabase { .. } => "CREATE DATABASE",
        Statement::CreateFunction { .. } | Statement::CreateMacro { .. } => "CREATE FUNCTION",
        Statement::CreateProcedure { .. } => "CREATE PROCEDURE",
        Statement::CreateTrigger { .. } => "CREATE TRIGGER",
        Statement::CreateSequence { .. } => "CREATE SEQUENCE",
        Statement::CreateType { .. } | Statement::CreateDomain { .. } => "CREATE TYPE",
        Statement::CreateRole { .. } | Statement::CreateUser { .. } => "CREATE ROLE",
        Statement::CreateExtension { .. } => "CREATE EXTENSION",
        Statement::CreateStage { .. } => "CREATE STAGE",
        Statement::CreateSecret { .. } => "CREATE SECRET",
        Statement::AlterTable { .. } | Statement::RenameTable { .. } => "ALTER TABLE",
        Statement::AlterView { .. } => "ALTER VIEW",
        Statement::AlterIndex { .. } => "ALTER INDEX",
        Statement::AlterSchema { .. } => "ALTER SCHEMA",
        Statement::AlterRole { .. } | Statement::AlterUser { .. } => "ALTER ROLE",
        Statement::AlterFunction { .. } => "ALTER FUNCTION",
        Statement::AlterType { .. } => "ALTER TYPE",
        Statement::DropFunction { .. } => "DROP FUNCTION",
        Statement::DropProcedure { .. } => "DROP PROCEDURE",
        Statement::DropTrigger { .. } => "DROP TRIGGER",
        Statement::DropExtension { .. } => "DROP EXTENSION",
        Statement::DropSecret { .. } => "DROP SECRET",
        Statement::Grant { .. } => "GRANT",
        Statement::Revoke { .. } => "REVOKE",
        Statement::Deny { .. } => "DENY",
        Statement::Call { .. } => "CALL",
        Statement::Execute { .. } => "EXECUTE",
        Statement::Prepare { .. } => "PREPARE",
        Statement::StartTransaction { .. } => "START TRANSACTION",
        Statement::Commit { .. } => "COMMIT",
        Statement::Rollback { .. } => "ROLLBACK",
        Statement::Savepoint { .. } => "SAVEPOINT",
        Statement::Comment { .. } => "COMMENT",
        Statement::Kill { .. } => "KILL",
        Statement::Lock { .. } | Statement::LockTables { .. } => "LOCK",
        Statement::Unload { .. } | Statement::ExportData { .. } => "UNLOAD",
        Statement::LoadData { .. } | Statement::Load { .. } => "LOAD",
        Statement::Install { .. } => "INSTALL",
        Statement::AttachDatabase { .. } | Statement::AttachDuckDBDatabase { .. } => "ATTACH",
        Statement::DetachDuckDBDatabase { .. } => "DETACH",
        Statement::OptimizeTable { .. } => "OPTIMIZE",
        Statement::Cache { .. } => "CACHE",
        Statement::Pragma { .. } => "PRAGMA",
        Statement::Declare { .. } => "DECLARE",
        Statement::Directory { .. } => "INSERT OVERWRITE DIRECTORY",
        _ => "a non-query statement",
    };
    kind.to_string()
}

fn refusal(kind: String) -> Finding {
    Finding::new(
        Severity::Deny,
        codes::NOT_READ_ONLY,
        format!("{kind} is not a read-only query: analytics jobs only read"),
        "run only SELECT queries (or EXPLAIN/SHOW); make changes to data outside Flightline",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<String> {
        let ctx = ValidationContext::new(sql);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(ReadOnlyValidator.validate(&ctx)).into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn the_refusal_names_the_statement() {
        for (sql, kind) in [
            ("INSERT INTO t VALUES (1)", "INSERT"),
            ("DELETE FROM t WHERE x = 1", "DELETE"),
            ("UPDATE t SET x = 1", "UPDATE"),
            ("DROP TABLE t", "DROP TABLE"),
            ("DROP VIEW v", "DROP VIEW"),
            ("CREATE TABLE c AS SELECT 1", "CREATE TABLE"),
            ("TRUNCATE TABLE t", "TRUNCATE"),
            ("COPY t TO '/tmp/x.csv'", "COPY"),
            ("SET x = 1", "SET"),
            ("EXPLAIN ANALYZE DELETE FROM t", "DELETE"),
            ("SELECT x INTO backup FROM t", "SELECT INTO"),
        ] {
            assert_eq!(
                kinds(sql),
                [format!("{kind} is not a read-only query: analytics jobs only read")],
                "{sql}"
            );
        }
    }

    /// A huge generated `DELETE` is refused on a 2 MiB stack (a test or tokio worker thread)
    /// without formatting it.
    #[test]
    fn a_huge_delete_is_refused_without_overflowing_the_stack() {
        let ors = (0..100_000).map(|i| format!("process_id = 'p{i}'")).collect::<Vec<_>>();
        let branches = vec!["SELECT process_id FROM processes"; 20_000];
        let sql = format!(
            "DELETE FROM log_entries WHERE {} OR process_id IN ({})",
            ors.join(" OR "),
            branches.join(" UNION ALL ")
        );
        let worker =
            std::thread::Builder::new().stack_size(2 << 20).spawn(move || kinds(&sql)).unwrap();
        let found = worker.join().expect("the validation thread overflowed or panicked");
        assert_eq!(found, ["DELETE is not a read-only query: analytics jobs only read"]);
    }
}
