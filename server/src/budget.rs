//! How much planning work a statement may ask for, checked before it is parsed.
//!
//! DataFusion's planner and optimizer take time that grows faster than linearly with some
//! shapes (measured with this build: 1 000 `+` terms plan in 7 s, 3 000 in 80 s; a chain of
//! `OR`s or `UNION ALL`s, or a run of `col + col`, does the same), and planning runs without
//! an await point, so neither the query timeout nor a disconnect can stop it once started. So
//! the shapes that make it slow are counted from the statement's tokens, in one pass that does
//! not recurse, and refused with `InvalidArgument` past limits under which planning takes
//! seconds. Long `IN (...)` lists, `CASE` arms and select lists grow planning time slowly and are
//! bounded by the token count.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use tonic::Status;

/// Operators one expression may chain at one nesting level (`a OR b OR ...`, `1 + 2 + ...`).
pub const MAX_OPERATOR_CHAIN: usize = 300;
/// Operators one statement may hold in all.
pub const MAX_OPERATORS: usize = 1_000;
/// Queries one statement may combine with `UNION`, `INTERSECT` or `EXCEPT`.
pub const MAX_COMBINED: usize = 300;
/// Joins one statement may hold (`JOIN`, or a comma between tables); planning time grows with
/// the cube of their number (measured: 60 plan in 4 s, 100 in 16 s).
pub const MAX_JOINS: usize = 64;
/// Tokens (words, literals, symbols) one statement may hold.
pub const MAX_TOKENS: usize = 20_000;

/// What the statement asks of the planner, as counted from its tokens.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cost {
    /// Tokens, whitespace and comments left out.
    pub tokens: usize,
    /// Binary operators in all.
    pub operators: usize,
    /// The longest run of binary operators within one expression at one nesting level.
    pub longest_chain: usize,
    /// `UNION`, `INTERSECT` and `EXCEPT`s.
    pub combined: usize,
    /// `JOIN`s and commas between tables.
    pub joins: usize,
}

impl Cost {
    /// Counts `sql`; `None` when it does not even tokenize (the parser then says why).
    pub fn of(sql: &str) -> Option<Self> {
        let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
        let mut cost = Cost::default();
        // The current runs of operators at each open parenthesis level, per precedence class:
        // a run of one class nests as deep as it is long; a lower class starts a new subtree
        // for the higher ones (`a + b = c OR d` is two chains of one, not one of three).
        let mut runs = vec![[0usize; CLASSES]];
        // Whether each level is in a FROM list, where a comma joins.
        let mut from = vec![false];
        for token in tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))) {
            cost.tokens += 1;
            let level = runs.len() - 1;
            match token {
                Token::LParen => {
                    runs.push([0; CLASSES]);
                    from.push(false);
                }
                Token::RParen if level > 0 => {
                    runs.pop();
                    from.pop();
                }
                Token::Comma => {
                    runs[level] = [0; CLASSES];
                    cost.joins += usize::from(from[level]);
                }
                Token::Word(w) if w.keyword == Keyword::JOIN => {
                    cost.joins += 1;
                    runs[level] = [0; CLASSES];
                }
                Token::Word(w) if combines(w.keyword) => {
                    cost.combined += 1;
                    runs[level] = [0; CLASSES];
                }
                Token::Word(w) if starts_clause(w.keyword) => {
                    runs[level] = [0; CLASSES];
                    from[level] = w.keyword == Keyword::FROM;
                }
                t => {
                    if let Some(class) = precedence(t) {
                        cost.operators += 1;
                        let run = &mut runs[level];
                        run[class] += 1;
                        run[class + 1..].fill(0);
                        cost.longest_chain = cost.longest_chain.max(run[class]);
                    }
                }
            }
        }
        Some(cost)
    }

    /// `InvalidArgument` naming the first limit this statement is over, if any.
    pub fn check(&self) -> Result<(), Status> {
        let over = |what: String, advice: &str| {
            Err(Status::invalid_argument(format!(
                "the statement is too complex to plan: {what}; {advice}"
            )))
        };
        if self.tokens > MAX_TOKENS {
            return over(
                format!("{} tokens, at most {MAX_TOKENS}", self.tokens),
                "shorten it, or serve long value lists as a table (--table)",
            );
        }
        if self.longest_chain > MAX_OPERATOR_CHAIN {
            return over(
                format!(
                    "an expression chains {} operators (OR, AND, +, || ...), at most \
                     {MAX_OPERATOR_CHAIN}",
                    self.longest_chain
                ),
                "write long OR lists of equalities as IN (...), or split the expression",
            );
        }
        if self.operators > MAX_OPERATORS {
            return over(
                format!("{} operators, at most {MAX_OPERATORS}", self.operators),
                "simplify the expressions or split the query",
            );
        }
        if self.combined > MAX_COMBINED {
            return over(
                format!("{} UNION, INTERSECT or EXCEPT, at most {MAX_COMBINED}", self.combined),
                "split the query, or serve the parts as one table (--table)",
            );
        }
        if self.joins > MAX_JOINS {
            return over(
                format!("{} joins, at most {MAX_JOINS}", self.joins),
                "split the query into steps",
            );
        }
        Ok(())
    }
}

/// Refuses `sql` with `InvalidArgument` when it asks for more planning than the limits allow.
pub fn check(sql: &str) -> Result<(), Status> {
    Cost::of(sql).map_or(Ok(()), |cost| cost.check())
}

/// Precedence classes of binary operators, loosest first.
const CLASSES: usize = 5;

/// The class of a binary operator: 0 OR, 1 AND, 2 comparison, 3 additive, 4 multiplicative.
fn precedence(token: &Token) -> Option<usize> {
    let class = match token {
        Token::Word(w) => match w.keyword {
            Keyword::OR => 0,
            Keyword::AND => 1,
            Keyword::LIKE | Keyword::ILIKE => 2,
            _ => return None,
        },
        Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Spaceship => 2,
        Token::Plus
        | Token::Minus
        | Token::StringConcat
        | Token::Pipe
        | Token::Ampersand
        | Token::Caret
        | Token::ShiftLeft
        | Token::ShiftRight => 3,
        Token::Mul | Token::Div | Token::Mod => 4,
        _ => return None,
    };
    Some(class)
}

fn combines(keyword: Keyword) -> bool {
    matches!(keyword, Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT)
}

/// Keywords after which a new expression starts.
fn starts_clause(keyword: Keyword) -> bool {
    matches!(
        keyword,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::ON
            | Keyword::USING
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::END
            | Keyword::WITH
            | Keyword::AS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(sql: &str) -> Cost {
        Cost::of(sql).unwrap()
    }

    #[test]
    fn chains_are_counted_per_expression_and_level() {
        let c = cost("SELECT a + b + c, d * (e - f - g - h) FROM t WHERE x = 1 OR y = 2");
        assert_eq!(c.longest_chain, 3, "{c:?}");
        assert_eq!(c.operators, 2 + 1 + 3 + 3, "{c:?}");
        // A looser operator starts new chains of the tighter ones; a tighter one does not
        // break a looser chain.
        let c = cost("SELECT a = 1 OR b = 2 OR c = 3 OR d * 2 + 1 = 4");
        assert_eq!(c.longest_chain, 3, "{c:?}");
        let c = cost("SELECT 1 + 2 * 3 + 4 * 5 + 6");
        assert_eq!(c.longest_chain, 3, "{c:?}");
        let c = cost("SELECT CASE WHEN a = 1 THEN b + 1 ELSE c + 1 END");
        assert_eq!((c.longest_chain, c.operators), (1, 3), "{c:?}");
        let c = cost("SELECT 1 UNION ALL SELECT 2 UNION SELECT 3 FROM a JOIN b ON a.x = b.x");
        assert_eq!((c.combined, c.joins), (2, 1), "{c:?}");
        let c = cost("SELECT a, b FROM t, u, (SELECT x, y FROM v) w WHERE f(a, b) GROUP BY a, b");
        assert_eq!(c.joins, 2, "{c:?}");
        assert_eq!(cost("SELECT count(*) FROM t").tokens, 7);
    }

    #[test]
    fn and_like_and_ilike_are_operators() {
        let c = cost("SELECT 1 WHERE a = 1 AND b = 2 AND c = 3");
        assert_eq!((c.longest_chain, c.operators), (2, 5), "{c:?}");
        let c = cost("SELECT 1 WHERE a LIKE 'x%' OR b ILIKE 'y%'");
        assert_eq!((c.longest_chain, c.operators), (1, 3), "{c:?}");
    }

    #[test]
    fn a_closing_parenthesis_ends_its_level_and_a_stray_one_is_ignored() {
        // The chain inside the parentheses does not continue outside them.
        let c = cost("SELECT (1 + 1 + 1) * 2 + 3");
        assert_eq!((c.longest_chain, c.operators), (2, 4), "{c:?}");
        // More closing than opening parentheses: counted (not a panic), left to the parser.
        let c = cost("SELECT 1) + 1) + 1");
        assert_eq!((c.longest_chain, c.operators), (2, 2), "{c:?}");
        assert!(check("SELECT 1) + 1").is_ok());
    }

    #[test]
    fn each_limit_refuses_just_past_it() {
        let chain = |n: usize| format!("SELECT {}", vec!["1"; n + 1].join(" + "));
        assert!(check(&chain(MAX_OPERATOR_CHAIN)).is_ok());
        let err = check(&chain(MAX_OPERATOR_CHAIN + 1)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("chains 301 operators"), "{}", err.message());

        let many = |n: usize| format!("SELECT {}", vec!["1 + 1"; n].join(", "));
        assert!(check(&many(MAX_OPERATORS)).is_ok());
        assert!(check(&many(MAX_OPERATORS + 1)).unwrap_err().message().contains("1001 operators"));

        let unions = |n: usize| vec!["SELECT 1"; n + 1].join(" UNION ALL ");
        assert!(check(&unions(MAX_COMBINED)).is_ok());
        assert!(check(&unions(MAX_COMBINED + 1)).unwrap_err().message().contains("301 UNION"));

        let joins =
            |n: usize| format!("SELECT 1 FROM t0 {}", vec!["JOIN t USING (x)"; n].join(" "));
        assert!(check(&joins(MAX_JOINS)).is_ok());
        assert!(check(&joins(MAX_JOINS + 1)).unwrap_err().message().contains("65 joins"));
        let commas = |n: usize| format!("SELECT 1 FROM {}", vec!["t"; n + 1].join(", "));
        assert!(check(&commas(MAX_JOINS)).is_ok());
        assert!(check(&commas(MAX_JOINS + 1)).is_err());

        // "SELECT" and the list: 1 + 2 * n - 1 tokens.
        let list = |n: usize| format!("SELECT {}", vec!["1"; n].join(", "));
        assert!(check(&list(MAX_TOKENS / 2)).is_ok());
        assert!(check(&list(MAX_TOKENS / 2 + 1)).unwrap_err().message().contains("tokens"));
        // What does not tokenize is left to the parser to explain.
        assert!(check("SELECT 'unterminated").is_ok());
    }
}
