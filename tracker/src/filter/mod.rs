//! MLflow's search filter and order-by grammar, compiled to SQL with bound values.
//!
//! Filter: clauses joined by `AND` (MLflow has no `OR`), each `entity.key OP value` where entity
//! is `metrics`, `params`, `tags` or `attributes` (also `metric`, `param`, `tag`, `attribute`,
//! `run`; none means attribute), the key bare or quoted with backticks or double quotes, OP one
//! of `= != < <= > >=` (numbers: metrics and numeric attributes), `= != LIKE ILIKE IN NOT IN`
//! (strings), values quoted with `'` or `"`, lists in parentheses. LIKE is case-sensitive, as in
//! MLflow. Nothing of the input is spliced into SQL: keys and values are bound.

use crate::error::TrackerError;
use crate::store::Dialect;

mod expr;
pub use expr::{Expr, expr_sql, parse_expr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Num(f64),
    Str(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub key: String,
    pub op: String,
    pub value: Value,
}

/// A bound SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Num(f64),
    Int(i64),
    Str(String),
}

/// Which table a filter runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Runs,
    Experiments,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Num(f64),
    Op(String),
    LParen,
    RParen,
    Comma,
    Dot,
}

fn bad(msg: impl Into<String>) -> TrackerError {
    TrackerError::invalid(format!("invalid filter: {}", msg.into()))
}

fn lex(s: &str) -> Result<Vec<Tok>, TrackerError> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if ch == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if ch == '.' && !c.get(i + 1).is_some_and(char::is_ascii_digit) {
            out.push(Tok::Dot);
            i += 1;
        } else if ch == '\'' || ch == '"' || ch == '`' {
            let mut j = i + 1;
            let mut v = String::new();
            while j < c.len() && c[j] != ch {
                v.push(c[j]);
                j += 1;
            }
            if j >= c.len() {
                return Err(bad(format!("unterminated quote at character {i}")));
            }
            out.push(if ch == '`' {
                Tok::Ident(v)
            } else {
                Tok::Quoted(v)
            });
            i = j + 1;
        } else if "<>=!".contains(ch) {
            let mut op = ch.to_string();
            if c.get(i + 1) == Some(&'=') {
                op.push('=');
                i += 1;
            }
            if op == "!" {
                return Err(bad("`!` must be `!=`"));
            }
            out.push(Tok::Op(op));
            i += 1;
        } else if ch.is_ascii_digit() || ch == '-' || ch == '+' || ch == '.' {
            let mut j = i + 1;
            while j < c.len()
                && (c[j].is_ascii_alphanumeric()
                    || c[j] == '.'
                    || ((c[j] == '-' || c[j] == '+') && matches!(c[j - 1], 'e' | 'E')))
            {
                j += 1;
            }
            let text: String = c[i..j].iter().collect();
            let n: f64 = text
                .parse()
                .map_err(|_| bad(format!("bad number {text:?}")))?;
            out.push(Tok::Num(n));
            i = j;
        } else if ch.is_alphanumeric() || ch == '_' {
            let mut j = i + 1;
            while j < c.len()
                && (c[j].is_alphanumeric()
                    || c[j] == '_'
                    || c[j] == '-'
                    || c[j] == ':'
                    || c[j] == '/')
            {
                j += 1;
            }
            out.push(Tok::Ident(c[i..j].iter().collect()));
            i = j;
        } else {
            return Err(bad(format!("unexpected character {ch:?} at {i}")));
        }
    }
    Ok(out)
}

/// Parses a filter string into clauses (empty filter: none).
///
/// # Errors
/// `INVALID_PARAMETER_VALUE` naming what is wrong.
pub fn parse(filter: &str) -> Result<Vec<Clause>, TrackerError> {
    if filter.len() > 10_000 {
        return Err(bad("longer than 10,000 characters"));
    }
    let toks = lex(filter)?;
    let mut i = 0;
    let mut clauses = Vec::new();
    while i < toks.len() {
        if !clauses.is_empty() {
            match &toks[i] {
                Tok::Ident(w) if w.eq_ignore_ascii_case("and") => i += 1,
                Tok::Ident(w) if w.eq_ignore_ascii_case("or") => {
                    return Err(bad(
                        "OR is not supported (MLflow filters join clauses with AND)",
                    ));
                }
                t => return Err(bad(format!("expected AND, found {t:?}"))),
            }
        }
        clauses.push(clause_at(&toks, &mut i)?);
    }
    Ok(clauses)
}

/// The clause that starts at `toks[*i]`; `*i` moves past it.
fn clause_at(toks: &[Tok], i: &mut usize) -> Result<Clause, TrackerError> {
    let mut j = *i;
    // identifier: [entity .] key
    let (entity, key) = match (toks.get(j), toks.get(j + 1), toks.get(j + 2)) {
        (Some(Tok::Ident(e)), Some(Tok::Dot), Some(Tok::Ident(k) | Tok::Quoted(k))) => {
            let entity = match e.to_ascii_lowercase().as_str() {
                "metrics" | "metric" => Entity::Metric,
                "params" | "param" | "parameter" | "parameters" => Entity::Param,
                "tags" | "tag" => Entity::Tag,
                "attributes" | "attribute" | "attr" | "run" => Entity::Attribute,
                other => {
                    return Err(bad(format!(
                        "unknown entity {other:?}: use metrics, params, tags or attributes"
                    )));
                }
            };
            j += 3;
            (entity, k.clone())
        }
        (Some(Tok::Ident(k)), _, _) => {
            j += 1;
            (Entity::Attribute, k.clone())
        }
        (t, _, _) => return Err(bad(format!("expected an identifier, found {t:?}"))),
    };
    // operator
    let op = match toks.get(j) {
        Some(Tok::Op(o)) => o.clone(),
        Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("like") => "LIKE".into(),
        Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("ilike") => "ILIKE".into(),
        Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("in") => "IN".into(),
        Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("not") => match toks.get(j + 1) {
            Some(Tok::Ident(w2)) if w2.eq_ignore_ascii_case("in") => {
                j += 1;
                "NOT IN".into()
            }
            _ => return Err(bad("NOT must be followed by IN")),
        },
        t => {
            return Err(bad(format!(
                "expected a comparison after {key:?}, found {t:?}"
            )));
        }
    };
    j += 1;
    let value = if op.ends_with("IN") {
        if toks.get(j) != Some(&Tok::LParen) {
            return Err(bad(format!("{op} needs a parenthesised list")));
        }
        j += 1;
        let mut items = Vec::new();
        loop {
            match toks.get(j) {
                Some(Tok::Quoted(s)) => items.push(s.clone()),
                t => {
                    return Err(bad(format!(
                        "expected a quoted string in the {op} list, found {t:?}"
                    )));
                }
            }
            j += 1;
            match toks.get(j) {
                Some(Tok::Comma) => j += 1,
                Some(Tok::RParen) => {
                    j += 1;
                    break;
                }
                t => {
                    return Err(bad(format!(
                        "expected , or ) in the {op} list, found {t:?}"
                    )));
                }
            }
        }
        Value::List(items)
    } else {
        let v = match toks.get(j) {
            Some(Tok::Num(n)) => Value::Num(*n),
            Some(Tok::Quoted(s)) => Value::Str(s.clone()),
            t => {
                return Err(bad(format!(
                    "expected a value after {key} {op}, found {t:?}"
                )));
            }
        };
        j += 1;
        v
    };
    *i = j;
    Ok(Clause {
        entity,
        key,
        op,
        value,
    })
}

/// Run attributes the filter and order-by may name, with their column and whether numeric.
fn run_attribute(key: &str) -> Option<(&'static str, bool)> {
    Some(match key {
        "run_id" | "run_uuid" => ("r.run_uuid", false),
        "run_name" | "runName" => ("r.run_name", false),
        "status" => ("r.status", false),
        "user_id" => ("r.user_id", false),
        "artifact_uri" => ("r.artifact_uri", false),
        "lifecycle_stage" => ("r.lifecycle_stage", false),
        "start_time" | "created" | "Created" => ("r.start_time", true),
        "end_time" => ("r.end_time", true),
        _ => return None,
    })
}

fn experiment_attribute(key: &str) -> Option<(&'static str, bool)> {
    Some(match key {
        "name" => ("e.name", false),
        "experiment_id" => ("CAST(e.experiment_id AS TEXT)", false),
        "creation_time" => ("e.creation_time", true),
        "last_update_time" => ("e.last_update_time", true),
        "lifecycle_stage" => ("e.lifecycle_stage", false),
        _ => return None,
    })
}

/// `expr OP value` for a string-valued expression.
fn string_cond(
    dialect: Dialect,
    expr: &str,
    op: &str,
    value: &Value,
    binds: &mut Vec<Bind>,
) -> Result<String, TrackerError> {
    match (op, value) {
        ("=" | "!=", Value::Str(s)) => {
            binds.push(Bind::Str(s.clone()));
            Ok(format!("{expr} {op} ?"))
        }
        ("LIKE", Value::Str(s)) => {
            let (cond, pattern) = dialect.like(expr, s);
            binds.push(Bind::Str(pattern));
            Ok(cond)
        }
        ("ILIKE", Value::Str(s)) => {
            binds.push(Bind::Str(s.clone()));
            Ok(dialect.ilike(expr))
        }
        ("IN" | "NOT IN", Value::List(items)) => {
            let marks = vec!["?"; items.len()].join(", ");
            binds.extend(items.iter().cloned().map(Bind::Str));
            Ok(format!("{expr} {op} ({marks})"))
        }
        _ => Err(bad(format!(
            "{op} does not apply to a string value {value:?}"
        ))),
    }
}

fn numeric_cond(
    expr: &str,
    op: &str,
    value: &Value,
    binds: &mut Vec<Bind>,
) -> Result<String, TrackerError> {
    match (op, value) {
        ("=" | "!=" | "<" | "<=" | ">" | ">=", Value::Num(n)) => {
            binds.push(Bind::Num(*n));
            Ok(format!("{expr} {op} ?"))
        }
        _ => Err(bad(format!("{op} {value:?} is not a numeric comparison"))),
    }
}

/// `EXISTS` over a key/value table (params, tags) tied to the outer row by `link`.
fn key_value_exists(
    dialect: Dialect,
    table: &str,
    link: &str,
    c: &Clause,
    binds: &mut Vec<Bind>,
) -> Result<String, TrackerError> {
    binds.push(Bind::Str(c.key.clone()));
    let inner = string_cond(dialect, "x.value", &c.op, &c.value, binds)?;
    Ok(format!(
        "EXISTS (SELECT 1 FROM {table} x WHERE {link} AND x.key = ? AND {inner})"
    ))
}

/// SQL conditions (joined with AND) for the clauses over runs (`r`) or experiments (`e`).
///
/// # Errors
/// A clause that does not apply (unknown attribute, string operator on a metric, …).
/// `metric_in_list` picks the metric filter's form: an IN list driven by the (key, value) index
/// when every matching run is sorted anyway (ordering by a metric, param or tag), a correlated
/// EXISTS when runs are read in index order and a page can stop early.
pub fn to_sql(
    dialect: Dialect,
    clauses: &[Clause],
    target: Target,
    binds: &mut Vec<Bind>,
    metric_in_list: bool,
) -> Result<Vec<String>, TrackerError> {
    clauses
        .iter()
        .map(|c| clause_sql(dialect, c, target, binds, metric_in_list))
        .collect()
}

/// The SQL condition of one clause (see [`to_sql`]), its values pushed onto `binds` in order.
///
/// # Errors
/// As [`to_sql`].
pub(crate) fn clause_sql(
    dialect: Dialect,
    c: &Clause,
    target: Target,
    binds: &mut Vec<Bind>,
    metric_in_list: bool,
) -> Result<String, TrackerError> {
    let cond = match (target, c.entity) {
        (Target::Runs, Entity::Metric) => {
            binds.push(Bind::Str(c.key.clone()));
            let inner = numeric_cond("m.value", &c.op, &c.value, binds)?;
            if metric_in_list {
                // every run is sorted anyway: collect the matches through the (key, value) index
                format!(
                    "r.run_uuid IN (SELECT m.run_uuid FROM latest_metrics m WHERE m.key = ? AND m.is_nan = 0 AND {inner})"
                )
            } else {
                // runs come in index order: probe each, stop after a page
                format!(
                    "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ? AND m.is_nan = 0 AND {inner})"
                )
            }
        }
        (Target::Runs, Entity::Param | Entity::Tag) => {
            let table = if c.entity == Entity::Param {
                "params"
            } else {
                "tags"
            };
            key_value_exists(dialect, table, "x.run_uuid = r.run_uuid", c, binds)?
        }
        (Target::Experiments, Entity::Tag) => key_value_exists(
            dialect,
            "experiment_tags",
            "x.experiment_id = e.experiment_id",
            c,
            binds,
        )?,
        (Target::Experiments, Entity::Metric | Entity::Param) => {
            return Err(bad(
                "experiments can be filtered by name, tags and times only",
            ));
        }
        (_, Entity::Attribute) => {
            let found = match target {
                Target::Runs => run_attribute(&c.key),
                Target::Experiments => experiment_attribute(&c.key),
            };
            let Some((col, numeric)) = found else {
                return Err(bad(format!("unknown attribute {:?}", c.key)));
            };
            if numeric {
                numeric_cond(col, &c.op, &c.value, binds)?
            } else {
                string_cond(dialect, col, &c.op, &c.value, binds)?
            }
        }
    };
    Ok(cond)
}

/// What `order_by` adds to a query: LEFT JOINs (with their bound keys, which come before the
/// WHERE clause's) and ORDER BY terms.
#[derive(Debug, Default)]
pub struct Order {
    pub joins: Vec<String>,
    pub join_binds: Vec<Bind>,
    pub terms: Vec<String>,
}

/// ORDER BY for `order_by` entries such as "metrics.`acc` DESC" or "attributes.start_time".
/// Metrics, params and tags are joined once each; missing values (and NaN metrics) sort last
/// in either direction, as in MLflow.
///
/// # Errors
/// An unknown attribute or a malformed entry.
pub fn order_sql(
    dialect: Dialect,
    order_by: &[String],
    target: Target,
) -> Result<Order, TrackerError> {
    let mut out = Order::default();
    for (i, o) in order_by.iter().enumerate() {
        let trimmed = o.trim();
        let (body, desc) = if let Some(b) = trimmed.strip_suffix_ci(" DESC") {
            (b, true)
        } else if let Some(b) = trimmed.strip_suffix_ci(" ASC") {
            (b, false)
        } else {
            (trimmed, false)
        };
        let invalid = || TrackerError::invalid(format!("invalid order_by clause {o:?}"));
        let clauses = parse(&format!("{body} = 0")).map_err(|_| invalid())?;
        let c = clauses.first().ok_or_else(invalid)?;
        let dir = if desc { "DESC" } else { "ASC" };
        let unknown =
            || TrackerError::invalid(format!("invalid order_by: unknown attribute {:?}", c.key));
        match (target, c.entity) {
            (Target::Runs, Entity::Metric | Entity::Param | Entity::Tag) => {
                let (table, missing, value) = match c.entity {
                    Entity::Metric => (
                        "latest_metrics",
                        // MLflow's order: values, then NaN, then missing (each group in
                        // the default order); NULLs never reach the value term, where SQLite
                        // and PostgreSQL would place them differently
                        format!(
                            "CASE WHEN o{i}.is_nan = 1 THEN 1 WHEN o{i}.value IS NULL THEN 2 ELSE 0 END"
                        ),
                        format!("o{i}.value"),
                    ),
                    Entity::Param => (
                        "params",
                        format!("o{i}.value IS NULL"),
                        dialect.text_order(&format!("o{i}.value")),
                    ),
                    _ => (
                        "tags",
                        format!("o{i}.value IS NULL"),
                        dialect.text_order(&format!("o{i}.value")),
                    ),
                };
                out.joins.push(format!(
                    "LEFT JOIN {table} o{i} ON o{i}.run_uuid = r.run_uuid AND o{i}.key = ?"
                ));
                out.join_binds.push(Bind::Str(c.key.clone()));
                out.terms.push(format!("{missing}, {value} {dir}"));
            }
            (Target::Runs, Entity::Attribute) => {
                let (col, numeric) = run_attribute(&c.key).ok_or_else(unknown)?;
                // start_time is always set, so it needs no NULLs-last term (and the index on
                // (…, start_time DESC, run_uuid) serves the order)
                if col == "r.start_time" {
                    out.terms.push(format!("{col} {dir}"));
                } else {
                    let sorted = if numeric {
                        col.to_owned()
                    } else {
                        dialect.text_order(col)
                    };
                    out.terms.push(format!("{col} IS NULL, {sorted} {dir}"));
                }
            }
            (Target::Experiments, Entity::Attribute) => {
                let (col, numeric) = experiment_attribute(&c.key).ok_or_else(unknown)?;
                let sorted = if numeric {
                    col.to_owned()
                } else {
                    dialect.text_order(col)
                };
                out.terms.push(format!("{col} IS NULL, {sorted} {dir}"));
            }
            _ => return Err(invalid()),
        }
    }
    Ok(out)
}

trait StripCi {
    fn strip_suffix_ci(&self, suffix: &str) -> Option<&str>;
}

impl StripCi for str {
    fn strip_suffix_ci(&self, suffix: &str) -> Option<&str> {
        let n = self.len().checked_sub(suffix.len())?;
        (self.is_char_boundary(n) && self[n..].eq_ignore_ascii_case(suffix)).then(|| &self[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_sql_test(
        clauses: &[Clause],
        target: Target,
        binds: &mut Vec<Bind>,
    ) -> Result<Vec<String>, TrackerError> {
        to_sql(Dialect::Sqlite, clauses, target, binds, false)
    }

    #[test]
    fn parses_mlflow_filters() {
        let c = parse("metrics.acc > 0.9 and params.lr = '0.01' AND tags.`mlflow.runName` LIKE 'ab%' and attributes.status IN ('FINISHED', 'RUNNING')")
            .expect("parses");
        assert_eq!(c.len(), 4);
        assert_eq!(
            c[0],
            Clause {
                entity: Entity::Metric,
                key: "acc".into(),
                op: ">".into(),
                value: Value::Num(0.9)
            }
        );
        assert_eq!(c[2].key, "mlflow.runName");
        assert_eq!(
            c[3].value,
            Value::List(vec!["FINISHED".into(), "RUNNING".into()])
        );
        assert_eq!(parse("  ").expect("empty"), vec![]);
        assert_eq!(
            parse("metrics.\"my loss\" <= -1e-3").expect("parses")[0].value,
            Value::Num(-1e-3)
        );
    }

    #[test]
    fn refuses_what_mlflow_refuses() {
        for f in [
            "metrics.a > 1 or metrics.b > 2",
            "metrics.a >",
            "foo.a = 1",
            "params.a = 'x",
            "metrics.a ! 3",
            "params.a IN 'x'",
        ] {
            assert!(parse(f).is_err(), "{f}");
        }
        let mut b = Vec::new();
        assert!(
            to_sql_test(
                &parse("metrics.a LIKE 'x'").expect("parses"),
                Target::Runs,
                &mut b
            )
            .is_err()
        );
        assert!(
            to_sql_test(
                &parse("attributes.nope = 'x'").expect("parses"),
                Target::Runs,
                &mut b
            )
            .is_err()
        );
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let mut binds = Vec::new();
        let sql = to_sql_test(
            &parse("params.`a'; DROP TABLE runs; --` = 'x OR 1=1'").expect("parses"),
            Target::Runs,
            &mut binds,
        )
        .expect("sql");
        assert!(!sql[0].contains("DROP"), "{sql:?}");
    }
}
