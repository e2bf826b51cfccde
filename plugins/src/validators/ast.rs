//! Small readings of the sqlparser AST shared by the validators.

use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, Query, Select, SetExpr, Statement, Visit, Visitor};

/// The queries whose rows are the result: the statement itself when it is a query.
pub(crate) fn result_query(statement: &Statement) -> Option<&Query> {
    match statement {
        Statement::Query(query) => Some(query),
        _ => None,
    }
}

/// The `SELECT`s whose projections are the result's columns: the branches of a set operation,
/// through parentheses, but not subqueries in `FROM` or expressions.
pub(crate) fn result_selects(query: &Query) -> Vec<&Select> {
    let mut selects = Vec::new();
    collect_result_selects(&query.body, &mut selects);
    selects
}

// Iterative: `SELECT .. UNION SELECT .. UNION ..` parses into a left-deep tree as deep as the
// number of branches, which would overflow the stack if walked recursively.
fn collect_result_selects<'a>(body: &'a SetExpr, out: &mut Vec<&'a Select>) {
    let mut pending = vec![body];
    while let Some(body) = pending.pop() {
        match body {
            SetExpr::Select(select) => out.push(select),
            SetExpr::Query(query) => pending.push(&query.body),
            SetExpr::SetOperation { left, right, .. } => {
                pending.push(right);
                pending.push(left);
            }
            _ => {}
        }
    }
}

/// Calls `f` on every `SELECT` anywhere in `node`: CTEs, derived tables, subqueries in
/// expressions, set-operation branches.
pub(crate) fn for_each_select<V: Visit>(node: &V, f: impl FnMut(&Select)) {
    struct EachSelect<F>(F);
    impl<F: FnMut(&Select)> Visitor for EachSelect<F> {
        type Break = ();
        fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
            (self.0)(select);
            ControlFlow::Continue(())
        }
    }
    let _ = node.visit(&mut EachSelect(f));
}

/// A column as an expression names it: `(qualifier, name)`, names lowercased as DataFusion
/// folds unquoted identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnRef {
    pub qualifier: Option<String>,
    pub name: String,
}

/// The column references of `expr` itself, not those inside its subqueries (a subquery's
/// columns belong to another scope).
pub(crate) fn column_refs(expr: &Expr) -> Vec<ColumnRef> {
    struct Refs {
        depth: usize,
        found: Vec<ColumnRef>,
    }
    impl Visitor for Refs {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if self.depth == 0 {
                self.found.extend(column_ref(expr));
            }
            ControlFlow::Continue(())
        }
    }
    let mut refs = Refs { depth: 0, found: Vec::new() };
    let _ = expr.visit(&mut refs);
    refs.found
}

fn column_ref(expr: &Expr) -> Option<ColumnRef> {
    match expr {
        Expr::Identifier(ident) => {
            Some(ColumnRef { qualifier: None, name: ident.value.to_lowercase() })
        }
        Expr::CompoundIdentifier(parts) => {
            let (last, rest) = parts.split_last()?;
            Some(ColumnRef {
                qualifier: rest.last().map(|q| q.value.to_lowercase()),
                name: last.value.to_lowercase(),
            })
        }
        _ => None,
    }
}

/// The operands of the top-level `AND` chain of `expr`, through parentheses.
pub(crate) fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    operands(expr, &BinaryOperator::And)
}

/// The operands of the top-level `AND` (or `OR`) chain of `expr`, through parentheses, in
/// order. Iterative: generated SQL can chain thousands of terms into a left-deep tree.
pub(crate) fn operands<'a>(expr: &'a Expr, chain: &BinaryOperator) -> Vec<&'a Expr> {
    let mut found = Vec::new();
    let mut pending = vec![expr];
    while let Some(expr) = pending.pop() {
        match expr {
            Expr::Nested(inner) => pending.push(inner),
            Expr::BinaryOp { left, op, right } if op == chain => {
                pending.push(right);
                pending.push(left);
            }
            other => found.push(other),
        }
    }
    found
}

/// Whether `op` compares its operands (the operators a range or join predicate uses).
pub(crate) fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Spaceship
    )
}
