//! The dashboard's filter: MLflow's clauses joined with AND and also OR, grouped with
//! parentheses (AND binds tighter than OR, as in SQL). The MLflow API itself keeps MLflow's
//! AND-only grammar ([`super::parse`]); this one is for the dashboard's reads.

use super::{Bind, Clause, Target, Tok, bad, clause_at, clause_sql, lex};
use crate::error::TrackerError;
use crate::store::Dialect;

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Clause(Clause),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Nesting deeper than this is refused (a guard against pathological input).
const MAX_DEPTH: usize = 32;

/// Parses `a AND (b OR c) OR d`; an empty filter is `None`.
///
/// # Errors
/// `INVALID_PARAMETER_VALUE` naming what is wrong (unbalanced parentheses, a dangling AND / OR,
/// a malformed clause).
pub fn parse_expr(filter: &str) -> Result<Option<Expr>, TrackerError> {
    if filter.len() > 10_000 {
        return Err(bad("longer than 10,000 characters"));
    }
    let toks = lex(filter)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut i = 0;
    let e = or(&toks, &mut i, 0)?;
    if i < toks.len() {
        return Err(bad(format!("unexpected {:?}", toks[i])));
    }
    Ok(Some(e))
}

fn word(t: Option<&Tok>, w: &str) -> bool {
    matches!(t, Some(Tok::Ident(x)) if x.eq_ignore_ascii_case(w))
}

fn or(toks: &[Tok], i: &mut usize, depth: usize) -> Result<Expr, TrackerError> {
    let mut parts = vec![and(toks, i, depth)?];
    while word(toks.get(*i), "or") {
        *i += 1;
        parts.push(and(toks, i, depth)?);
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Expr::Or(parts)
    })
}

fn and(toks: &[Tok], i: &mut usize, depth: usize) -> Result<Expr, TrackerError> {
    let mut parts = vec![factor(toks, i, depth)?];
    while word(toks.get(*i), "and") {
        *i += 1;
        parts.push(factor(toks, i, depth)?);
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Expr::And(parts)
    })
}

fn factor(toks: &[Tok], i: &mut usize, depth: usize) -> Result<Expr, TrackerError> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("parentheses nested deeper than {MAX_DEPTH}")));
    }
    if toks.get(*i) == Some(&Tok::LParen) {
        *i += 1;
        let e = or(toks, i, depth + 1)?;
        if toks.get(*i) != Some(&Tok::RParen) {
            return Err(bad("a parenthesis is not closed"));
        }
        *i += 1;
        return Ok(e);
    }
    match toks.get(*i) {
        None => Err(bad("the filter ends after AND / OR")),
        Some(Tok::RParen) => Err(bad("unexpected )")),
        _ => Ok(Expr::Clause(clause_at(toks, i)?)),
    }
}

/// The SQL condition of `e` over runs (`r`), its values pushed onto `binds` in text order.
///
/// # Errors
/// A clause that does not apply (as [`super::to_sql`]).
pub fn expr_sql(
    dialect: Dialect,
    e: &Expr,
    target: Target,
    binds: &mut Vec<Bind>,
    metric_in_list: bool,
) -> Result<String, TrackerError> {
    Ok(match e {
        Expr::Clause(c) => clause_sql(dialect, c, target, binds, metric_in_list)?,
        Expr::And(parts) | Expr::Or(parts) => {
            let joiner = if matches!(e, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            let mut sql = Vec::with_capacity(parts.len());
            for p in parts {
                sql.push(expr_sql(dialect, p, target, binds, metric_in_list)?);
            }
            format!("({})", sql.join(joiner))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(e: &Expr) -> String {
        match e {
            Expr::Clause(c) => c.key.clone(),
            Expr::And(p) => format!("and({})", p.iter().map(keys).collect::<Vec<_>>().join(",")),
            Expr::Or(p) => format!("or({})", p.iter().map(keys).collect::<Vec<_>>().join(",")),
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let e = parse_expr("params.a = '1' or params.b = '2' and params.c = '3'")
            .expect("parses")
            .expect("some");
        assert_eq!(keys(&e), "or(a,and(b,c))");
        let e = parse_expr("(params.a = '1' OR params.b = '2') AND metrics.x > 0.5")
            .expect("parses")
            .expect("some");
        assert_eq!(keys(&e), "and(or(a,b),x)");
        assert_eq!(parse_expr("  ").expect("empty"), None);
        let mut binds = Vec::new();
        let sql = expr_sql(Dialect::Sqlite, &e, Target::Runs, &mut binds, false).expect("sql");
        assert!(sql.starts_with("((EXISTS") && sql.contains(" OR "), "{sql}");
        // binds in the order their ? appear: a's key and value, b's, then x's
        assert_eq!(
            binds,
            [
                Bind::Str("a".into()),
                Bind::Str("1".into()),
                Bind::Str("b".into()),
                Bind::Str("2".into()),
                Bind::Str("x".into()),
                Bind::Num(0.5)
            ]
        );
    }

    #[test]
    fn malformed_expressions_are_refused_with_a_reason() {
        for (f, why) in [
            ("(params.a = '1'", "not closed"),
            ("params.a = '1' OR", "ends after"),
            ("params.a = '1')", "unexpected"),
            ("()", "unexpected"),
        ] {
            let e = parse_expr(f).expect_err(f).to_string();
            assert!(e.contains(why), "{f}: {e}");
        }
        let deep = format!("{}params.a = '1'{}", "(".repeat(40), ")".repeat(40));
        assert!(parse_expr(&deep).is_err());
        // MLflow's own grammar still refuses OR
        assert!(super::super::parse("params.a = '1' OR params.b = '2'").is_err());
    }
}
