//! Where the tracker's database is — a SQLite file or a PostgreSQL URL — parsed once, at the
//! edge (`--db`, `FUSIONPROT_DB`), instead of a path that sometimes carries a URL.

use std::path::{Path, PathBuf};

use super::Dialect;

/// A tracker database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A SQLite file (`fusionprot.db`, `sqlite:///abs/path.db`).
    Sqlite(PathBuf),
    /// An existing PostgreSQL database (`postgres://USER@HOST/DB`, `postgresql://…`).
    Postgres(String),
}

/// A `--db` value that names no database.
#[derive(Debug, thiserror::Error)]
#[error("{given:?}: {problem}")]
pub struct LocationError {
    given: String,
    problem: &'static str,
}

impl std::str::FromStr for DbLocation {
    type Err = LocationError;

    fn from_str(s: &str) -> Result<DbLocation, LocationError> {
        let refuse = |problem| {
            Err(LocationError {
                given: super::redacted(s),
                problem,
            })
        };
        if s.trim().is_empty() {
            return refuse("empty: give a SQLite file or a postgres:// URL");
        }
        if Dialect::of(s) == Dialect::Postgres {
            return Ok(DbLocation::Postgres(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return refuse("sqlite:// names no file (sqlite:///abs/path.db)");
            }
            return Ok(DbLocation::Sqlite(PathBuf::from(path)));
        }
        if s.contains("://") {
            return refuse(
                "not a database this tracker opens: a SQLite file, sqlite:///PATH or postgres://USER@HOST/DB",
            );
        }
        Ok(DbLocation::Sqlite(PathBuf::from(s)))
    }
}

impl DbLocation {
    pub fn dialect(&self) -> Dialect {
        match self {
            DbLocation::Sqlite(_) => Dialect::Sqlite,
            DbLocation::Postgres(_) => Dialect::Postgres,
        }
    }

    /// What [`super::Store::open`] takes: the file's path, or the URL.
    pub fn to_location(&self) -> String {
        match self {
            DbLocation::Sqlite(p) => p.display().to_string(),
            DbLocation::Postgres(url) => url.clone(),
        }
    }

    /// The SQLite file, when it is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DbLocation::Sqlite(p) => Some(p),
            DbLocation::Postgres(_) => None,
        }
    }
}

/// For messages and logs: a PostgreSQL URL's password is masked.
impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::redacted(&self.to_location()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_told_apart_once() {
        let parse = |s: &str| s.parse::<DbLocation>();
        assert_eq!(
            parse("fusionprot.db").ok(),
            Some(DbLocation::Sqlite("fusionprot.db".into()))
        );
        assert_eq!(
            parse("sqlite:///x/y.db").ok(),
            Some(DbLocation::Sqlite("/x/y.db".into()))
        );
        assert_eq!(
            parse("postgresql://u:pw@h/db").map(|l| l.dialect()).ok(),
            Some(Dialect::Postgres)
        );
        assert_eq!(
            parse("postgres://u:pw@h/db").expect("url").to_string(),
            "postgres://u:***@h/db"
        );
        for bad in ["", "  ", "sqlite://", "mysql://u@h/db"] {
            let e = parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("pw"), "{e}");
        }
        assert!(
            parse("mysql://u:pw@h/db")
                .expect_err("mysql")
                .to_string()
                .contains("postgres://")
        );
    }
}
