//! A throw-away PostgreSQL for tests (Debian's, started by scripts/postgres-cluster as the
//! `postgres` user, socket only, stopped when dropped). Shared by the tracker's and the CLI's
//! tests (`#[path]`). Where PostgreSQL cannot run (not installed, not root) `start` says so and
//! returns None: the test is skipped, saying why, never silently passed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pg {
    script: PathBuf,
    dir: tempfile::TempDir,
    pub host: String,
    pub port: String,
}

impl Pg {
    /// Starts a server for `test`; None (after printing SKIPPED and the reason) where it cannot.
    pub fn start(test: &str) -> Option<Pg> {
        let script =
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
                .join("../scripts/postgres-cluster");
        let dir = tempfile::tempdir().expect("tempdir");
        let cluster = dir.path().join("pg");
        let up = Command::new(&script)
            .arg("start")
            .arg(&cluster)
            .output()
            .expect("scripts/postgres-cluster");
        if up.status.code() == Some(3) {
            eprintln!(
                "SKIPPED {test}: {}",
                String::from_utf8_lossy(&up.stderr).trim()
            );
            return None;
        }
        let pg = Pg {
            script,
            host: cluster.join("sock").display().to_string(),
            port: std::env::var("FP_PG_PORT").unwrap_or_else(|_| "54329".into()),
            dir,
        };
        assert!(
            up.status.success(),
            "postgres-cluster start: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        Some(pg)
    }

    /// Creates database `name` and returns its URL (understood by sqlx, libpq and psycopg2).
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/{name}?host={}",
            self.port, self.host
        )
    }

    /// Runs `sql` with psql in database `db`; rows as `a|b` lines.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let o = Command::new("psql")
            .args([
                "-h", &self.host, "-p", &self.port, "-U", "postgres", "-d", db,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-At", "-F", "|", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            o.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .output();
    }
}
