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
/// What counts: each relation added by a comma in `FROM`, by `CROSS JOIN`, by a `JOIN` without
/// `ON`/`USING`/`NATURAL`, or by `JOIN ... ON` a condition that names no column (`ON true`),
/// is an *unconstrained* join. Each comparison in the `WHERE`'s `AND`-chain between two
/// column expressions of different relations (different qualifiers, or unqualified) *links*
/// one. The `SELECT` is flagged when it has more unconstrained joins than links. Joins that are
/// meant to be correlated are exempt: `UNNEST(...)`, `LATERAL` subqueries and functions,
/// `CROSS APPLY`/`OUTER APPLY`.
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
                let missing = unconstrained_joins(select).saturating_sub(links(select));
                if missing > 0 {
                    findings.push(finding(missing));
                }
            });
        }
        findings
    }
}

fn unconstrained_joins(select: &Select) -> usize {
    let commas = select.from.iter().skip(1).filter(|t| !is_correlated(&t.relation)).count();
    let joins = select.from.iter().flat_map(|t| &t.joins).filter(|j| is_unconstrained(j)).count();
    commas + joins
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

fn links(select: &Select) -> usize {
    select
        .selection
        .as_ref()
        .map(|w| conjuncts(w).into_iter().filter(|e| links_two(e)).count())
        .unwrap_or(0)
}

fn links_two(expr: &Expr) -> bool {
    let Expr::BinaryOp { left, op, right } = expr else {
        return false;
    };
    if !is_comparison(op) || *op == BinaryOperator::NotEq {
        return false;
    }
    let (left, right) = (column_refs(left), column_refs(right));
    left.iter().any(|l| {
        right.iter().any(|r| match (&l.qualifier, &r.qualifier) {
            (Some(a), Some(b)) => a != b,
            _ => true,
        })
    })
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
