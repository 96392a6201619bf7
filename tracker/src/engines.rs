//! The database engines the tracker is built with, and their versions as `fusionprot doctor`
//! shows them.

use sqlx::Connection;

/// Errors opening an engine to ask its version.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] sqlx::Error),
    #[cfg(feature = "sql")]
    #[error("DuckDB: {0}")]
    Duckdb(#[from] duckdb::Error),
}

/// The SQLite library version linked through sqlx (`select sqlite_version()`).
///
/// # Errors
/// When an in-memory database cannot be opened.
pub async fn sqlite_version() -> Result<String, EngineError> {
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
    let (version,): (String,) = sqlx::query_as("select sqlite_version()")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(version)
}

/// The DuckDB library version (`select version()`), e.g. `v1.5.6`.
///
/// # Errors
/// When libduckdb cannot open an in-memory database.
#[cfg(feature = "sql")]
pub fn duckdb_version() -> Result<String, EngineError> {
    let conn = duckdb::Connection::open_in_memory()?;
    let version = conn.query_row("select version()", [], |row| row.get(0))?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_reports_a_dotted_version() {
        let v = sqlite_version().await.expect("in-memory SQLite");
        let parts: Vec<&str> = v.split('.').collect();
        assert!(parts.len() >= 3 && parts[0] == "3", "{v}");
    }

    #[cfg(feature = "sql")]
    #[test]
    fn duckdb_reports_the_linked_release() {
        let v = duckdb_version().expect("in-memory DuckDB");
        // duckdb = "=1.10506.0" is the Rust binding of DuckDB 1.5.6, dynamic or bundled.
        assert_eq!(v, "v1.5.6");
    }
}
