//! The database schema: the SQL files of `migrations/`, embedded and applied in order at open.
//! A database written by a newer fusionprot (a migration we do not know) is refused.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::error::TrackerError;

/// `(version, description, sql)`, one per file of `migrations/`, in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "tracking",
    include_str!("../../migrations/0001_tracking.sql"),
)];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

pub fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    (*d).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Applies the missing migrations; refuses a database that has one this build does not know.
///
/// # Errors
/// A newer database, a changed migration (checksum), or a failed statement.
pub async fn apply(pool: &sqlx::SqlitePool, path: &str) -> Result<(), TrackerError> {
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_optional(pool)
            .await
            .ok()
            .flatten();
    if let Some(v) = applied
        && v > latest_version()
    {
        return Err(TrackerError::Schema(format!(
            "{path} has schema version {v}, newer than this fusionprot knows ({}); use a newer fusionprot (the database is left untouched)",
            latest_version()
        )));
    }
    migrator().run(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_embedded_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations/")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (file, (v, d, _)) in files.iter().zip(MIGRATIONS) {
            assert_eq!(file, &format!("{v:04}_{d}.sql"));
        }
    }
}
