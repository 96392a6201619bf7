//! One query's DuckDB, and the check that a statement only reads, made by DuckDB itself before
//! anything runs, in two steps:
//!
//! 1. Parse only: `json_serialize_sql` serialises exactly the statements DuckDB's parser makes
//!    SELECT nodes (SELECT, WITH, VALUES, FROM-first, set operations, DESCRIBE, SHOW, SUMMARIZE)
//!    and refuses every other kind. Nothing is bound, so nothing is touched: binding is not free
//!    of side effects (binding `EXPORT DATABASE 'dir'` creates `dir`).
//! 2. Then prepare: the prepared statement's type must be SELECT too, and there must be exactly
//!    one statement (DuckDB's count). We open the in-memory database ourselves so that besides the
//!    safe `duckdb::Connection` we hold the raw handle; the duckdb crate does not expose a
//!    prepared statement's type, hence the few FFI calls here, each checked.

// The duckdb crate has no safe API for a statement's type; these calls follow DuckDB's C API
// contract (every handle created here is destroyed here, exactly once).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use duckdb::ffi;

/// What DuckDB's parser says a statement is, for the statements we run or name in refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementKind {
    /// A query: SELECT, VALUES, WITH, FROM-first, set operations, DESCRIBE / SHOW / SUMMARIZE.
    Select,
    /// Anything else, by DuckDB's name for it (COPY, EXPORT, CREATE, INSERT, ATTACH, CALL …).
    Other(&'static str),
}

fn kind_of(t: ffi::duckdb_statement_type) -> StatementKind {
    use StatementKind::{Other, Select};
    match t {
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT => Select,
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT => Other("INSERT"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE => Other("UPDATE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => Other("EXPLAIN"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE => Other("DELETE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PREPARE => Other("PREPARE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE => Other("CREATE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXECUTE => Other("EXECUTE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER => Other("ALTER"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION => Other("TRANSACTION"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY => Other("COPY"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ANALYZE => Other("ANALYZE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => Other("SET VARIABLE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC => Other("CREATE FUNCTION"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP => Other("DROP"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT => Other("EXPORT"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA => Other("PRAGMA"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VACUUM => Other("VACUUM"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL => Other("CALL"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET => Other("SET"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD => Other("LOAD"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH => Other("ATTACH"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH => Other("DETACH"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MULTI => Other("MULTI"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => Other("COPY DATABASE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE_EXTENSIONS => {
            Other("UPDATE EXTENSIONS")
        }
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO => Other("MERGE INTO"),
        _ => Other("unknown statement type"),
    }
}

/// An in-memory DuckDB: the safe connection for everything, the raw handle for classification.
/// Field order matters: the connection is dropped before the database is closed.
pub(crate) struct Sandbox {
    conn: duckdb::Connection,
    db: RawDatabase,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sandbox")
    }
}

struct RawDatabase(ffi::duckdb_database);

impl Drop for RawDatabase {
    fn drop(&mut self) {
        // SAFETY: the handle came from duckdb_open and is closed exactly once, after every
        // connection to it (the Sandbox's and classify's) is gone.
        unsafe { ffi::duckdb_close(&mut self.0) };
    }
}

impl Sandbox {
    /// Opens a fresh in-memory database.
    pub(crate) fn open() -> Result<Sandbox, String> {
        let mut raw: ffi::duckdb_database = ptr::null_mut();
        // SAFETY: a null path opens an in-memory database; `raw` is written on success.
        let rc = unsafe { ffi::duckdb_open(ptr::null(), &mut raw) };
        if rc != ffi::DuckDBSuccess || raw.is_null() {
            return Err("cannot open an in-memory DuckDB".into());
        }
        let db = RawDatabase(raw);
        // SAFETY: `raw` is a valid, open database that outlives this connection (field order);
        // open_from_raw does not close it.
        let conn = unsafe { duckdb::Connection::open_from_raw(db.0) }.map_err(|e| e.to_string())?;
        Ok(Sandbox { conn, db })
    }

    pub(crate) fn conn(&self) -> &duckdb::Connection {
        &self.conn
    }

    /// `Ok` when `sql` is exactly one statement that only reads, by both checks above; otherwise
    /// why not, in words for the user (DuckDB's own message where it gave one).
    pub(crate) fn check_read_only(&self, sql: &str) -> Result<(), String> {
        self.parses_as_one_select(sql)?;
        match self.classify(sql)? {
            StatementKind::Select => Ok(()),
            StatementKind::Other(kind) => Err(not_a_read(kind)),
        }
    }

    /// Step 1: DuckDB's parser alone (no binding) says `sql` is one SELECT.
    fn parses_as_one_select(&self, sql: &str) -> Result<(), String> {
        let text: String = self
            .conn
            .query_row(
                "SELECT json_serialize_sql(CAST(? AS VARCHAR))",
                [sql],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if v["error"] == serde_json::Value::Bool(true) {
            let message = v["error_message"].as_str().unwrap_or_default();
            return Err(if v["error_type"] == "not implemented" {
                not_a_read(&first_word(sql))
            } else {
                message.to_owned()
            });
        }
        match v["statements"].as_array().map(Vec::len) {
            Some(1) => Ok(()),
            Some(n) => Err(format!("one statement per query (found {n})")),
            None => Err("DuckDB's parser gave no statement".into()),
        }
    }

    /// How many statements `sql` holds and, when it is exactly one, what DuckDB's parser and
    /// binder make of it, without running anything. A statement that does not bind (an unknown
    /// table, a refused file) is an error carrying DuckDB's message.
    ///
    /// # Errors
    /// DuckDB's parse or bind message; "N statements" when there is not exactly one.
    fn classify(&self, sql: &str) -> Result<StatementKind, String> {
        let text = CString::new(sql).map_err(|_| "the query contains a NUL byte".to_owned())?;
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: the database is open; the connection is disconnected below on every path.
        if unsafe { ffi::duckdb_connect(self.db.0, &mut con) } != ffi::DuckDBSuccess {
            // SAFETY: disconnect accepts the (possibly null) handle connect left.
            unsafe { ffi::duckdb_disconnect(&mut con) };
            return Err("cannot connect to the query database".into());
        }
        let result = classify_on(con, &text);
        // SAFETY: `con` came from duckdb_connect above and is not used after this.
        unsafe { ffi::duckdb_disconnect(&mut con) };
        result
    }
}

fn not_a_read(kind: &str) -> String {
    format!(
        "only read queries (SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW, SUMMARIZE) run here, not {kind}"
    )
}

/// The statement's first keyword, upper-cased, to name it in a refusal.
fn first_word(sql: &str) -> String {
    let mut rest = sql.trim_start();
    // skip leading comments
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    if word.is_empty() {
        "non-SELECT".into()
    } else {
        word.to_ascii_uppercase()
    }
}

fn classify_on(con: ffi::duckdb_connection, text: &CStr) -> Result<StatementKind, String> {
    let mut extracted: ffi::duckdb_extracted_statements = ptr::null_mut();
    // SAFETY: `con` is connected and `text` NUL-terminated; `extracted` is destroyed below.
    let n = unsafe { ffi::duckdb_extract_statements(con, text.as_ptr(), &mut extracted) };
    let result = if n == 0 {
        // SAFETY: on failure the extracted object carries the parser's message.
        Err(
            unsafe { message(ffi::duckdb_extract_statements_error(extracted)) }
                .unwrap_or_else(|| "the query holds no statement".into()),
        )
    } else if n > 1 {
        Err(format!("one statement per query (found {n})"))
    } else {
        let mut stmt: ffi::duckdb_prepared_statement = ptr::null_mut();
        // SAFETY: index 0 exists (n == 1); `stmt` is destroyed below whether or not it prepared.
        let rc = unsafe { ffi::duckdb_prepare_extracted_statement(con, extracted, 0, &mut stmt) };
        let kind = if rc == ffi::DuckDBSuccess {
            // SAFETY: `stmt` prepared successfully.
            Ok(kind_of(unsafe {
                ffi::duckdb_prepared_statement_type(stmt)
            }))
        } else {
            // SAFETY: a failed prepare carries its message until destroyed.
            Err(unsafe { message(ffi::duckdb_prepare_error(stmt)) }
                .unwrap_or_else(|| "the query cannot be prepared".into()))
        };
        // SAFETY: created by duckdb_prepare_extracted_statement, destroyed once.
        unsafe { ffi::duckdb_destroy_prepare(&mut stmt) };
        kind
    };
    // SAFETY: created by duckdb_extract_statements, destroyed once.
    unsafe { ffi::duckdb_destroy_extracted(&mut extracted) };
    result
}

/// A C string owned by DuckDB, copied out.
///
/// # Safety
/// `p` is null or a NUL-terminated string that stays valid for this call.
unsafe fn message(p: *const c_char) -> Option<String> {
    // SAFETY: per this function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duckdb_classifies_reads_and_writes() {
        let s = Sandbox::open().expect("sandbox");
        for q in [
            "SELECT 1",
            "WITH t AS (SELECT 1 AS x) SELECT * FROM t",
            "VALUES (1), (2)",
            "FROM range(3)",
            "SELECT 1 UNION ALL SELECT 2",
            "DESCRIBE SELECT 1 AS x",
            "SUMMARIZE SELECT 1 AS x",
            "-- a comment\nSELECT 2",
        ] {
            assert_eq!(s.check_read_only(q), Ok(()), "{q}");
        }
        for (q, kind) in [
            ("COPY (SELECT 1) TO 'x.csv'", "COPY"),
            ("EXPORT DATABASE 'x'", "EXPORT"),
            ("CREATE TABLE t AS SELECT 1", "CREATE"),
            ("ATTACH 'x.db' AS x", "ATTACH"),
            ("INSTALL httpfs", "INSTALL"),
            ("SET threads = 1", "SET"),
            ("PRAGMA version", "PRAGMA"),
            ("CALL pragma_version()", "CALL"),
            ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN"),
            ("/* x */ INSERT INTO t VALUES (1)", "INSERT"),
        ] {
            let e = s.check_read_only(q).expect_err(q);
            assert!(e.ends_with(&format!("run here, not {kind}")), "{q}: {e}");
        }
        assert_eq!(
            s.check_read_only("SELECT 1; SELECT 2"),
            Err("one statement per query (found 2)".into())
        );
        let e = s
            .check_read_only("SELECT * FROM nowhere")
            .expect_err("unknown table");
        assert!(e.contains("nowhere"), "{e}");
        // query() runs a string as SQL, but DuckDB accepts only a SELECT there
        let e = s
            .check_read_only("SELECT * FROM query('COPY (SELECT 1) TO ''x.csv''')")
            .expect_err("query() with a COPY");
        assert!(e.contains("single SELECT"), "{e}");
        let e = s.check_read_only("SELEC 1").expect_err("syntax");
        assert!(e.to_lowercase().contains("syntax"), "{e}");
        // The prepared statement's type agrees for the statements that bind without effects.
        assert_eq!(s.classify("SELECT 1"), Ok(StatementKind::Select));
        assert_eq!(
            s.classify("CREATE TABLE t AS SELECT 1"),
            Ok(StatementKind::Other("CREATE"))
        );
    }

    /// Binding `EXPORT DATABASE 'dir'` creates `dir`: the parse-only step refuses it first.
    #[test]
    fn refusing_a_write_touches_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Sandbox::open().expect("sandbox");
        let target = dir.path().join("export");
        let q = format!("EXPORT DATABASE '{}'", target.display());
        assert!(s.check_read_only(&q).is_err());
        assert!(!target.exists(), "the refused EXPORT created its folder");
    }
}
