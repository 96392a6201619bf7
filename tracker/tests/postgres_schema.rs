//! The tracker's PostgreSQL migrations (`migrations/postgres/`) stay the twin of its SQLite ones:
//! the same versions, applied by a real PostgreSQL (Debian's, started by scripts/postgres-cluster),
//! giving the same tables, columns in the same order, types that map one to one (INTEGER → bigint,
//! TEXT → text, REAL → double precision), the same NOT NULL columns, primary keys and named
//! indexes as the schema `Store::open` builds in SQLite. Skipped, saying so, only where PostgreSQL
//! is not installed or the tests do not run as root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fusionprot_tracker::store::{Durability, Store};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn versions(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("migrations")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.ends_with(".sql").then_some(name)
        })
        .collect();
    v.sort();
    v
}

/// table → [(column, type, not null)], table → primary key columns, and index names.
type Schema = (
    BTreeMap<String, Vec<(String, String, bool)>>,
    BTreeMap<String, Vec<String>>,
    Vec<String>,
);

fn sqlite_schema(db: &Path) -> Schema {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let path = db.display().to_string();
        Store::open(&path, Durability::Normal).await.expect("store");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
            .await
            .expect("pool");
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT m.name, p.name, upper(p.type), p.\"notnull\", p.pk FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE '\\_%' ESCAPE '\\' \
             AND m.name NOT LIKE 'sqlite%' ORDER BY m.name, p.cid",
        )
        .fetch_all(&pool)
        .await
        .expect("columns");
        let mut columns: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
        let mut keys: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for (table, column, ty, notnull, pk) in rows {
            let ty = match ty.as_str() {
                "INTEGER" => "bigint",
                "TEXT" => "text",
                "REAL" => "double precision",
                other => panic!("{table}.{column}: type {other} has no PostgreSQL twin"),
            };
            // A primary key column is never NULL in either (SQLite's pragma says 0 for them).
            columns
                .entry(table.clone())
                .or_default()
                .push((column.clone(), ty.to_owned(), notnull == 1 || pk > 0));
            if pk > 0 {
                keys.entry(table).or_default().push((pk, column));
            }
        }
        let keys = keys
            .into_iter()
            .map(|(t, mut v)| {
                v.sort();
                (t, v.into_iter().map(|(_, c)| c).collect())
            })
            .collect();
        let mut indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        )
        .fetch_all(&pool)
        .await
        .expect("indexes");
        indexes.sort();
        (columns, keys, indexes)
    })
}

fn psql(host: &str, port: &str, args: &[&str]) -> String {
    let o = Command::new("psql")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-At",
            "-F",
            "|",
        ])
        .args(args)
        .output()
        .expect("psql");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn postgres_schema(host: &str, port: &str) -> Schema {
    let mut columns: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
    for line in psql(
        host,
        port,
        &["-c", "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '\\_%' ORDER BY table_name, ordinal_position"],
    )
    .lines()
    {
        let f: Vec<&str> = line.split('|').collect();
        columns
            .entry(f[0].to_owned())
            .or_default()
            .push((f[1].to_owned(), f[2].to_owned(), f[3] == "NO"));
    }
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in psql(
        host,
        port,
        &["-c", "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc \
                 JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name) \
                 WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' \
                 ORDER BY tc.table_name, kcu.ordinal_position"],
    )
    .lines()
    {
        let f: Vec<&str> = line.split('|').collect();
        keys.entry(f[0].to_owned()).or_default().push(f[1].to_owned());
    }
    let mut indexes: Vec<String> = psql(
        host,
        port,
        &[
            "-c",
            "SELECT indexname FROM pg_indexes i WHERE schemaname = 'public' \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect();
    indexes.sort();
    (columns, keys, indexes)
}

#[test]
fn the_postgres_migrations_are_the_twin_of_the_sqlite_ones() {
    let sqlite_dir = root().join("migrations");
    let pg_dir = sqlite_dir.join("postgres");
    assert_eq!(
        versions(&sqlite_dir),
        versions(&pg_dir),
        "migration versions"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = dir.path().join("pg");
    let script = root().join("scripts/postgres-cluster");
    let up = Command::new(&script)
        .args(["start", cluster.to_str().expect("utf8")])
        .output()
        .expect("postgres-cluster");
    if up.status.code() == Some(3) {
        eprintln!(
            "SKIPPED the_postgres_migrations_are_the_twin_of_the_sqlite_ones: {}",
            String::from_utf8_lossy(&up.stderr).trim()
        );
        return;
    }
    struct Stop(PathBuf, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new(&self.0).arg("stop").arg(&self.1).output();
        }
    }
    let _stop = Stop(script, cluster.clone());
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let host = cluster.join("sock").display().to_string();
    let port = std::env::var("FP_PG_PORT").unwrap_or_else(|_| "54329".into());
    let mut args = Vec::new();
    for v in versions(&pg_dir) {
        args.push("-f".to_owned());
        args.push(pg_dir.join(v).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    psql(&host, &port, &args);
    let pg = postgres_schema(&host, &port);
    let lite = sqlite_schema(&dir.path().join("t.db"));
    assert_eq!(
        pg.0.keys().collect::<Vec<_>>(),
        lite.0.keys().collect::<Vec<_>>(),
        "tables"
    );
    for (table, cols) in &lite.0 {
        assert_eq!(&pg.0[table], cols, "columns of {table}");
    }
    assert_eq!(pg.1, lite.1, "primary keys");
    assert_eq!(pg.2, lite.2, "indexes");
    assert!(lite.0.len() >= 10, "{:?}", lite.0.keys());
}
