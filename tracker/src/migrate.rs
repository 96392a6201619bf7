//! The database schema: the SQL files of `migrations/` (SQLite) and their twins in
//! `migrations/postgres/` (same versions and descriptions), embedded and applied in order at open.
//! A database written by a newer fusionprot (a migration we do not know) is refused.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::error::TrackerError;
use crate::store::Dialect;

/// `(version, description, sql)`, one per file of `migrations/`, in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "tracking",
        include_str!("../../migrations/0001_tracking.sql"),
    ),
    (
        2,
        "runs_search_order",
        include_str!("../../migrations/0002_runs_search_order.sql"),
    ),
    (
        3,
        "run_inputs",
        include_str!("../../migrations/0003_run_inputs.sql"),
    ),
    (
        4,
        "metric_point_counts",
        include_str!("../../migrations/0004_metric_point_counts.sql"),
    ),
];

/// The PostgreSQL twins of [`MIGRATIONS`], one per file of `migrations/postgres/`.
pub const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "tracking",
        include_str!("../../migrations/postgres/0001_tracking.sql"),
    ),
    (
        2,
        "runs_search_order",
        include_str!("../../migrations/postgres/0002_runs_search_order.sql"),
    ),
    (
        3,
        "run_inputs",
        include_str!("../../migrations/postgres/0003_run_inputs.sql"),
    ),
    (
        4,
        "metric_point_counts",
        include_str!("../../migrations/postgres/0004_metric_point_counts.sql"),
    ),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// The migrations of one dialect.
pub fn migrations(dialect: Dialect) -> &'static [(i64, &'static str, &'static str)] {
    match dialect {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => POSTGRES_MIGRATIONS,
    }
}

pub fn migrator(dialect: Dialect) -> Migrator {
    Migrator::with_migrations(
        migrations(dialect)
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
pub async fn apply(pool: &sqlx::AnyPool, dialect: Dialect, path: &str) -> Result<(), TrackerError> {
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
    migrator(dialect).run(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_embedded_in_order() {
        let dir = std::path::Path::new(
            &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../migrations");
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
        // the PostgreSQL twins: the same versions and descriptions, the files of migrations/postgres
        let twins: Vec<(i64, &str)> = POSTGRES_MIGRATIONS.iter().map(|m| (m.0, m.1)).collect();
        let ours: Vec<(i64, &str)> = MIGRATIONS.iter().map(|m| (m.0, m.1)).collect();
        assert_eq!(twins, ours);
        for (v, d, sql) in POSTGRES_MIGRATIONS {
            let file = dir.join("postgres").join(format!("{v:04}_{d}.sql"));
            assert_eq!(std::fs::read_to_string(&file).expect("twin").as_str(), *sql);
        }
    }

    #[tokio::test]
    async fn a_version_1_database_upgrades_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db").display().to_string();
        {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(opts).await.expect("pool");
            let (v, d, sql) = MIGRATIONS[0];
            Migrator::with_migrations(vec![Migration::new(
                v,
                d.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )])
            .run(&pool)
            .await
            .expect("version 1");
            sqlx::query("INSERT INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time) VALUES (5, 'kept', 'x', 1, 1)")
                .execute(&pool)
                .await
                .expect("row");
            // a run with two metrics of 3 and 1 points, from before 0004 counted them
            for sql in [
                "INSERT INTO runs (run_uuid, experiment_id, run_name, artifact_uri) VALUES ('r', 5, 'r', 'x')",
                "INSERT INTO metrics (run_uuid, key, step, timestamp, value) VALUES ('r', 'a', 0, 0, 1), ('r', 'a', 1, 0, 1), ('r', 'a', 2, 0, 1), ('r', 'b', 0, 0, 1)",
                "INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value) VALUES ('r', 'a', 2, 0, 1), ('r', 'b', 0, 0, 1)",
            ] {
                sqlx::query(sql).execute(&pool).await.expect(sql);
            }
            pool.close().await;
        }
        let store = crate::store::Store::open(&path, crate::store::Durability::Normal)
            .await
            .expect("upgrade");
        let version: i64 = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
            .fetch_one(store.reader())
            .await
            .expect("version");
        assert_eq!(version, latest_version());
        let index: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE name = 'runs_by_experiment_order'",
        )
        .fetch_optional(store.reader())
        .await
        .expect("index");
        assert!(index.is_some());
        assert_eq!(store.get_experiment("5").await.expect("kept").name, "kept");
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT key, points FROM latest_metrics ORDER BY key")
                .fetch_all(store.reader())
                .await
                .expect("counts");
        assert_eq!(counts, vec![("a".into(), 3), ("b".into(), 1)]);
    }
}
