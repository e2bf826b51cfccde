//! `join_without_condition`.

use async_trait::async_trait;
use flightline_core::validate::{Finding, QueryValidator, Severity, ValidationContext};
use sqlparser::ast::{
    BinaryOperator, Expr, Join, JoinConstraint, JoinOperator, Select, TableFactor,
};

use super::ast::{column_refs, conjuncts, for_each_select, is_comparison};
use super::codes;

/// Warns on cross products, in every `SELECT` (CTEs and subqueries too).
///
/// The relations of a `FROM` start apart. A `JOIN` with `ON` a condition naming a column,
/// `USING` or `NATURAL` connects its relation to the relations on its left; so do correlated
/// joins, which are meant to pair each row with its own: `UNNEST(...)`, `LATERAL` subqueries
/// and functions, `CROSS APPLY`/`OUTER APPLY`. A comma, `CROSS JOIN`, a `JOIN` without
/// condition or `JOIN ... ON <constant>` (`ON true`) connects nothing. Each comparison in the
/// `WHERE`'s `AND`-chain between column expressions of two different relations (`a.x = b.x`)
/// connects those two. The `SELECT` is flagged when its relations still form more than one
/// connected group, so `FROM a, b, c WHERE a.x = b.x AND a.y = b.y` warns for `c`. A
/// comparison whose sides cannot be told apart (unqualified columns, a qualifier that is not
/// a relation of this `FROM`) is taken to connect some two groups, to stay quiet when unsure.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinConditionValidator;

#[async_trait]
impl QueryValidator for JoinConditionValidator {
    fn name(&self) -> &str {
        "join-condition"
    }

    async fn validate(&self, ctx: &ValidationContext) -> Vec<Finding> {
        let Ok(statements) = ctx.statements() else {
            return Vec::new();
        };
        let mut findings = Vec::new();
        for statement in statements {
            for_each_select(statement, |select| {
                let missing = unlinked_relations(select);
                if missing > 0 {
                    findings.push(finding(missing));
                }
            });
        }
        findings
    }
}

/// How many links the `SELECT`'s relations lack to form one connected group.
fn unlinked_relations(select: &Select) -> usize {
    let mut groups = Groups::default();
    for (index, from) in select.from.iter().enumerate() {
        let left = groups.add(&from.relation);
        // `FROM t, UNNEST(t.tags)`: correlated to what precedes it.
        if index > 0 && is_correlated(&from.relation) {
            groups.union(0, left);
        }
        for join in &from.joins {
            let right = groups.add(&join.relation);
            if !is_unconstrained(join) {
                groups.union(left, right);
            }
        }
    }
    let mut loose = 0;
    for conjunct in select.selection.iter().flat_map(conjuncts) {
        match comparison_sides(conjunct) {
            Some(Link::Between(a, b)) => match (groups.find_name(&a), groups.find_name(&b)) {
                (Some(a), Some(b)) => groups.union(a, b),
                _ => loose += 1,
            },
            Some(Link::Unsure) => loose += 1,
            None => {}
        }
    }
    groups.count().saturating_sub(1).saturating_sub(loose)
}

/// The relations of one `FROM` as a union-find forest, each known by its alias or table name.
#[derive(Default)]
struct Groups {
    parent: Vec<usize>,
    names: Vec<(String, usize)>,
}

impl Groups {
    fn add(&mut self, relation: &TableFactor) -> usize {
        let id = self.parent.len();
        self.parent.push(id);
        let mut names = Vec::new();
        relation_names(relation, &mut names);
        self.names.extend(names.into_iter().map(|name| (name, id)));
        id
    }

    fn find(&mut self, mut id: usize) -> usize {
        while self.parent[id] != id {
            self.parent[id] = self.parent[self.parent[id]];
            id = self.parent[id];
        }
        id
    }

    fn find_name(&mut self, name: &str) -> Option<usize> {
        let id = self.names.iter().find(|(known, _)| known == name).map(|(_, id)| *id)?;
        Some(self.find(id))
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        self.parent[a] = b;
    }

    fn count(&mut self) -> usize {
        (0..self.parent.len()).filter(|&id| self.find(id) == id).count()
    }
}

/// The names a column qualifier may use for `relation` (lowercased): its alias, and for a
/// table its name; a parenthesised join contributes the names of everything inside it.
fn relation_names(relation: &TableFactor, out: &mut Vec<String>) {
    if let TableFactor::NestedJoin { table_with_joins, alias } = relation {
        out.extend(alias.iter().map(|a| a.name.value.to_lowercase()));
        relation_names(&table_with_joins.relation, out);
        for join in &table_with_joins.joins {
            relation_names(&join.relation, out);
        }
        return;
    }
    if let TableFactor::Table { name, .. } = relation {
        let last = name.0.last().and_then(|part| part.as_ident());
        out.extend(last.map(|ident| ident.value.to_lowercase()));
    }
    let alias = match relation {
        TableFactor::Table { alias, .. }
        | TableFactor::Derived { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. } => alias.as_ref(),
        _ => None,
    };
    out.extend(alias.map(|a| a.name.value.to_lowercase()));
}

fn is_unconstrained(join: &Join) -> bool {
    if is_correlated(&join.relation) {
        return false;
    }
    let constraint = match &join.join_operator {
        JoinOperator::CrossApply | JoinOperator::OuterApply => return false,
        JoinOperator::ArrayJoin | JoinOperator::LeftArrayJoin | JoinOperator::InnerArrayJoin => {
            return false;
        }
        JoinOperator::CrossJoin(_) => return true,
        JoinOperator::AsOf { .. } => return false,
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c) => c,
    };
    match constraint {
        JoinConstraint::None => true,
        JoinConstraint::On(expr) => column_refs(expr).is_empty(),
        JoinConstraint::Using(_) | JoinConstraint::Natural => false,
    }
}

fn is_correlated(relation: &TableFactor) -> bool {
    matches!(
        relation,
        TableFactor::UNNEST { .. }
            | TableFactor::Derived { lateral: true, .. }
            | TableFactor::Function { lateral: true, .. }
    )
}

/// What a `WHERE` comparison says about the relations it compares.
enum Link {
    /// Columns of these two qualifiers are compared.
    Between(String, String),
    /// Columns are compared, but which relations they belong to is unknown.
    Unsure,
}

fn comparison_sides(expr: &Expr) -> Option<Link> {
    let Expr::BinaryOp { left, op, right } = expr else {
        return None;
    };
    if !is_comparison(op) || *op == BinaryOperator::NotEq {
        return None;
    }
    let (left, right) = (column_refs(left), column_refs(right));
    let mut unsure = false;
    for l in &left {
        for r in &right {
            match (&l.qualifier, &r.qualifier) {
                (Some(a), Some(b)) if a != b => return Some(Link::Between(a.clone(), b.clone())),
                (Some(_), Some(_)) => {}
                _ => unsure = true,
            }
        }
    }
    unsure.then_some(Link::Unsure)
}

fn finding(missing: usize) -> Finding {
    let what = if missing == 1 {
        "a relation is joined".to_string()
    } else {
        format!("{missing} relations are joined")
    };
    Finding::new(
        Severity::Warn,
        codes::JOIN_WITHOUT_CONDITION,
        format!(
            "{what} without a join condition (CROSS JOIN, a comma join or ON <constant> not \
             linked in WHERE): every row of one side pairs with every row of the other"
        ),
        "join with ON a.key = b.key (or USING), or link the tables in WHERE",
    )
}
