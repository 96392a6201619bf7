//! The two SQL back ends and the few places their SQL differs. Every statement of the store is
//! written once, in the subset both understand (`ON CONFLICT`, `RETURNING`, row values,
//! `?` placeholders), and passes through [`Dialect::sql`], which rewrites the placeholders to
//! PostgreSQL's `$1, $2, …`. What cannot be shared is asked of the dialect by name: the
//! case-sensitive LIKE (SQLite's LIKE ignores case, so SQLite gets GLOB) and the collation that
//! sorts text by code point, as SQLite's BINARY does.

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect a `--db` value names: `postgres://…` / `postgresql://…` is PostgreSQL,
    /// anything else (a path, `sqlite://…`) SQLite.
    pub fn of(location: &str) -> Dialect {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }

    /// `sql` with its `?` placeholders as this dialect wants them. `?` inside a quoted string
    /// literal or a quoted identifier is left alone.
    pub fn sql(self, sql: &str) -> String {
        if self == Dialect::Sqlite {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        let mut quote: Option<char> = None;
        for ch in sql.chars() {
            match (quote, ch) {
                (None, '\'' | '"') => {
                    quote = Some(ch);
                    out.push(ch);
                }
                (Some(q), c) if c == q => {
                    // a doubled quote inside a literal closes and reopens it: same result
                    quote = None;
                    out.push(c);
                }
                (None, '?') => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                (_, c) => out.push(c),
            }
        }
        out
    }

    /// `expr` compared case-sensitively with a LIKE pattern (MLflow's LIKE), and the pattern to
    /// bind for it.
    pub fn like(self, expr: &str, pattern: &str) -> (String, String) {
        match self {
            Dialect::Sqlite => (format!("{expr} GLOB ?"), like_to_glob(pattern)),
            Dialect::Postgres => (format!("{expr} LIKE ?"), pattern.to_owned()),
        }
    }

    /// `expr` compared with a LIKE pattern ignoring case (MLflow's ILIKE).
    pub fn ilike(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{expr} LIKE ? ESCAPE '\\'"),
            Dialect::Postgres => format!("{expr} ILIKE ?"),
        }
    }

    /// `expr` in an ORDER BY, text sorting by code point in both (SQLite's BINARY collation;
    /// PostgreSQL's "C"), whatever the PostgreSQL database's default collation is.
    pub fn text_order(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => expr.to_owned(),
            Dialect::Postgres => format!("{expr} COLLATE \"C\""),
        }
    }
}

/// LIKE pattern → GLOB pattern, so that matching is case-sensitive (SQLite's LIKE is not).
/// A backslash escapes the next character, as LIKE's default escape does in PostgreSQL (and in
/// MLflow's SQLAlchemy stores): `\%` and `\_` are literal.
fn like_to_glob(p: &str) -> String {
    let literal = |out: &mut String, ch: char| match ch {
        '*' | '?' | '[' => {
            out.push('[');
            out.push(ch);
            out.push(']');
        }
        c => out.push(c),
    };
    let mut out = String::new();
    let mut chars = p.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => literal(&mut out, chars.next().unwrap_or('\\')),
            c => literal(&mut out, c),
        }
    }
    out
}

/// `location` safe to print: the password of a `postgres://user:password@host/db` URL hidden.
pub fn redacted(location: &str) -> String {
    if Dialect::of(location) != Dialect::Postgres {
        return location.to_owned();
    }
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let (auth, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            format!("{scheme}://{name}:***@{host}{tail}")
        }
        _ => location.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes_only() {
        let pg = Dialect::Postgres;
        assert_eq!(
            pg.sql("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(
            pg.sql("SELECT '?', \"odd?col\" FROM t WHERE x LIKE ? ESCAPE '\\' AND y = 'it''s?' AND z = ?"),
            "SELECT '?', \"odd?col\" FROM t WHERE x LIKE $1 ESCAPE '\\' AND y = 'it''s?' AND z = $2"
        );
        let s = "SELECT ? FROM t WHERE '?' = ?";
        assert_eq!(Dialect::Sqlite.sql(s), s);
    }

    #[test]
    fn locations_pick_the_dialect_and_hide_passwords() {
        assert_eq!(Dialect::of("fusionprot.db"), Dialect::Sqlite);
        assert_eq!(Dialect::of("sqlite:///x/y.db"), Dialect::Sqlite);
        assert_eq!(Dialect::of("postgres://u@h/db"), Dialect::Postgres);
        assert_eq!(Dialect::of("postgresql://h/db"), Dialect::Postgres);
        assert_eq!(
            redacted("postgres://ann:s3cr:et@db.lab:5432/fp?sslmode=require"),
            "postgres://ann:***@db.lab:5432/fp?sslmode=require"
        );
        assert_eq!(redacted("postgres://ann@db/fp"), "postgres://ann@db/fp");
        assert_eq!(redacted("/data/a:b@c.db"), "/data/a:b@c.db");
    }

    #[test]
    fn like_is_case_sensitive_in_both() {
        assert_eq!(
            Dialect::Sqlite.like("x", "a%_*"),
            ("x GLOB ?".to_owned(), "a*?[*]".to_owned())
        );
        assert_eq!(like_to_glob(r"a\%b\_c\\d["), "a%b_c\\d[[]");
        assert_eq!(
            Dialect::Postgres.like("x", "a%_*"),
            ("x LIKE ?".to_owned(), "a%_*".to_owned())
        );
    }
}
