//! Atom3D's LMDB datasets (spec training.md §2.1), read-only: `num_examples`,
//! `serialization_format` (`json` or `msgpack`; `pkl` is refused, it would mean running pickle),
//! and records under the keys `"0"` … `"N-1"`, each the gzip of one serialized dict.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use heed::types::Bytes;
use heed::{CommitOrAbort, Database, EnvFlags, EnvOpenOptions};
use sha2::Digest;

use super::ImportError;

/// How the records are serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Msgpack,
}

/// Refuses a `data.mdb` shorter than its own meta pages say it is. LMDB maps the file and reads
/// pages straight from the mapping, so a truncated file (an interrupted download or copy) kills
/// the process with SIGBUS at the first page past the end instead of returning an error.
///
/// The meta pages (0 and 1, LMDB data version 1 on 64-bit, as py-lmdb writes them) hold the page
/// size (`mm_dbs[FREE_DBI].md_pad`) and the last page in use (`mm_last_pg`); the newer of the two
/// (by `mm_txnid`) describes the file. Whatever this does not recognise is left to LMDB, which
/// reads the meta pages with `pread`, not through the map.
///
/// # Errors
/// A file shorter than `(mm_last_pg + 1) × page size`, naming the file and both sizes.
fn check_size(path: &Path, label: &str) -> Result<(), ImportError> {
    const MAGIC: u32 = 0xBEEF_C0DE;
    // Page header (16 bytes), then MDB_meta: magic, version, address, mapsize, two MDB_db of 48
    // bytes (the first one's md_pad is the page size), mm_last_pg, mm_txnid.
    const PSIZE: usize = 16 + 24;
    const LAST_PG: usize = 16 + 120;
    const TXNID: usize = 16 + 128;
    const META: usize = TXNID + 8;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let u32_at =
        |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let mut meta = |offset: u64| -> Option<[u8; META]> {
        use std::io::Seek;
        let mut b = [0u8; META];
        file.seek(std::io::SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut b).ok()?;
        (u32_at(&b, 16) == MAGIC && u32_at(&b, 20) == 1).then_some(b)
    };
    let Some(first) = meta(0) else {
        return Ok(());
    };
    let psize = u64::from(u32_at(&first, PSIZE));
    if !(512..=65536).contains(&psize) || !psize.is_power_of_two() {
        return Ok(());
    }
    let newest = match meta(psize) {
        Some(second) if u64_at(&second, TXNID) > u64_at(&first, TXNID) => second,
        _ => first,
    };
    let last_pg = u64_at(&newest, LAST_PG);
    let need = last_pg.saturating_add(1).saturating_mul(psize);
    if len < need {
        return Err(ImportError::File {
            file: format!("{label}/data.mdb"),
            line: None,
            message: format!(
                "truncated: {len} bytes, but its last page in use ({last_pg}, {psize}-byte pages) ends at byte {need} \
                 (an interrupted download or copy?); LMDB would crash reading it"
            ),
        });
    }
    Ok(())
}

/// Reads the environment folder `dir` (holding `data.mdb`) read-only, without a lock file, and
/// calls `each(i, record, sha256 of its stored bytes)` for the records in index order, after
/// `len(num_examples)`. Returns the number of records.
///
/// # Errors
/// Not an LMDB environment, missing or malformed metadata keys, a missing key, a broken gzip
/// stream, a document that does not parse as `T` (naming `label` and the key), and `each`'s own.
pub fn for_each_record<T: serde::de::DeserializeOwned>(
    dir: &Path,
    label: &str,
    len: impl FnOnce(usize),
    mut each: impl FnMut(usize, T, String) -> Result<(), ImportError>,
) -> Result<usize, ImportError> {
    let bad = |message: String| ImportError::File {
        file: label.to_owned(),
        line: None,
        message,
    };
    check_size(&dir.join("data.mdb"), label)?;
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.max_dbs(1);
    // SAFETY (both calls): LMDB maps `data.mdb` into memory; heed requires the caller to promise the
    // file is not truncated or written by another process while mapped and that the environment is
    // opened once per process at a time. The import opens each environment once, read-only
    // (READ_ONLY: no write transaction can exist; NO_LOCK: no lock file is created or written, so the
    // user's folder stays untouched), reads it and drops it before returning.
    #[allow(unsafe_code)]
    let env = unsafe {
        options.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK | EnvFlags::NO_READ_AHEAD);
        options.open(dir)
    }
    .map_err(|e| bad(format!("not a readable LMDB environment: {e}")))?;
    let rtxn = env
        .read_txn()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let db: Database<Bytes, Bytes> = env
        .open_databases_and_commit(rtxn, |dbo, rtxn| {
            dbo.open_database(rtxn, None)
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .map_err(|e: heed::Error| bad(format!("cannot open the main database: {e}")))?
        .unwrap_commit()
        .ok_or_else(|| bad("no main database".into()))?;
    let rtxn = env
        .read_txn()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let meta = |key: &str| -> Result<Vec<u8>, ImportError> {
        db.get(&rtxn, key.as_bytes())
            .map_err(|e| bad(format!("cannot read key {key:?}: {e}")))?
            .map(<[u8]>::to_vec)
            .ok_or_else(|| bad(format!("no {key:?} key: not an Atom3D LMDB dataset")))
    };
    let len_text = meta("num_examples")?;
    let n: usize = std::str::from_utf8(&len_text)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            bad(format!(
                "num_examples is {:?}, not a count",
                String::from_utf8_lossy(&len_text)
            ))
        })?;
    let format = match meta("serialization_format")?.as_slice() {
        b"json" => Format::Json,
        b"msgpack" => Format::Msgpack,
        b"pkl" => {
            return Err(bad(
                "records are pickled (serialization_format pkl): unpickling runs code, so only json and msgpack are read".into(),
            ));
        }
        other => {
            return Err(bad(format!(
                "unknown serialization_format {:?}",
                String::from_utf8_lossy(other)
            )));
        }
    };
    len(n);
    for i in 0..n {
        let key = i.to_string();
        let bad = |message: String| ImportError::Record {
            env: label.to_owned(),
            key: key.clone(),
            id: None,
            message,
        };
        let gz = db
            .get(&rtxn, key.as_bytes())
            .map_err(|e| bad(format!("cannot read: {e}")))?
            .ok_or_else(|| bad(format!("missing (num_examples is {n})")))?;
        let sha = crate::dataset::part::hex(&sha2::Sha256::digest(gz));
        let mut raw = Vec::with_capacity(gz.len() * 4);
        GzDecoder::new(gz)
            .read_to_end(&mut raw)
            .map_err(|e| bad(format!("not a gzip stream: {e}")))?;
        let value: T = match format {
            Format::Json => {
                serde_json::from_slice(&raw).map_err(|e| bad(format!("not the expected JSON: {e}")))
            }
            Format::Msgpack => rmp_serde::from_slice(&raw)
                .map_err(|e| bad(format!("not the expected msgpack: {e}"))),
        }?;
        each(i, value, sha)?;
    }
    Ok(n)
}
