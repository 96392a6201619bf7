//! Issue 20, cases 8 and 9: `import` on a truncated LMDB file, archives over `--max-file-mib`,
//! a ragged row, and scratch folders left by an import that was killed.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::archive::{import, rewrite_zip};
use common::{msp_fixture, real_files, text};
use fusionprot_pipeline::import::Benchmark;
use fusionprot_pipeline::import::fixture::fixture;

/// Names in `dir` starting with `prefix`.
fn left(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Case 8: a truncated `data.mdb` killed the import with SIGBUS (exit 135, no message) and left
/// `.staging-PID` in `--out` and `.fusionprot-import-*` beside it. Now the file's size is
/// checked against its own meta pages before LMDB maps it: a clear error naming the file, exit
/// 1, nothing left behind; from the extracted folder and from the tar.
#[test]
fn issue_20_a_truncated_lmdb_file_is_named_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    msp_fixture(dir.path(), &[]);
    let root = dir.path().join("split-by-sequence-identity-30");
    let mdb = root.join("data/val/data.mdb");
    let bytes = std::fs::read(&mdb).expect("data.mdb");
    std::fs::write(&mdb, &bytes[..bytes.len() / 2]).expect("truncate");
    let tar = dir.path().join("truncated.tar.gz");
    let o = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path())
        .arg("split-by-sequence-identity-30")
        .output()
        .expect("tar");
    assert!(o.status.success(), "{}", text(&o));
    for archive in [&root, &tar] {
        let out = dir.path().join("msp");
        let o = import("msp", archive, &out, &[]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{}: {t}", archive.display());
        assert!(
            t.contains("val/data.mdb: truncated")
                && t.contains(&format!("{} bytes", bytes.len() / 2)),
            "{t}"
        );
        assert!(left(&out, ".staging").is_empty(), "{:?}", left(&out, ""));
        assert!(left(dir.path(), ".fusionprot-import").is_empty());
    }
}

/// Case 9: every member read or unpacked obeys `--max-file-mib` (on main: a 1 GiB annotation
/// line was read whole, an inner zip copied out without a cap); a ragged row names its file and
/// line (on main: polars' advice to set `truncate_ragged_lines`, an option users cannot set).
#[test]
fn issue_20_import_caps_every_member_and_names_ragged_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = fixture(Benchmark::Ec, &real_files()).expect("fixture");
    let zip = dir.path().join("EnzymeCommission.zip");
    f.write_zip(&zip).expect("zip");
    let out = dir.path().join("ec");
    let long_line = |n: &str, b: Vec<u8>| {
        if !n.ends_with("_annot.tsv") {
            return Some(b);
        }
        let mut b = b;
        b.extend(b"9ZZZ-A\t");
        b.extend(std::iter::repeat_n(b'1', 3 << 20));
        b.push(b'\n');
        Some(b)
    };
    let big = dir.path().join("long-line.zip");
    rewrite_zip(&zip, &big, &long_line);
    let o = import("ec", &big, &out, &["--max-file-mib", "2"]);
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains("EnzymeCommission/nrPDB-EC_annot.tsv")
            && t.contains("over --max-file-mib 2"),
        "{t}"
    );
    // An inner zip padded past the cap with a stored (uncompressed) member.
    let padded = |n: &str, b: Vec<u8>| {
        if !n.ends_with("/train.zip") {
            return Some(b);
        }
        let mut inner = zip::ZipArchive::new(std::io::Cursor::new(b)).expect("inner");
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for i in 0..inner.len() {
            let mut m = inner.by_index(i).expect("member");
            let name = m.name().to_owned();
            let mut bytes = Vec::new();
            m.read_to_end(&mut bytes).expect("read");
            w.start_file(name, zip::write::SimpleFileOptions::default())
                .expect("start");
            w.write_all(&bytes).expect("write");
        }
        w.start_file(
            "train/padding.bin",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .expect("start");
        w.write_all(&vec![0u8; 3 << 20]).expect("write");
        Some(w.finish().expect("finish").into_inner())
    };
    let fat = dir.path().join("fat-inner.zip");
    rewrite_zip(&zip, &fat, &padded);
    let o = import("ec", &fat, &out, &["--max-file-mib", "2"]);
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains("EnzymeCommission/train.zip")
            && t.contains("over --max-file-mib 2"),
        "{t}"
    );
    assert!(!out.join("manifest.json").exists());
    assert!(left(dir.path(), ".fusionprot-import").is_empty());
    // Under the default cap the same archive imports.
    let o = import("ec", &fat, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));

    // A row with a field too many: named by file and line.
    let ragged_line = 3 + 2;
    let ragged = move |n: &str, b: Vec<u8>| {
        if !n.ends_with("_annot.tsv") {
            return Some(b);
        }
        let text = String::from_utf8(b).expect("utf8");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[ragged_line - 1].push_str("\textra");
        Some((lines.join("\n") + "\n").into_bytes())
    };
    let bad = dir.path().join("ragged.zip");
    rewrite_zip(&zip, &bad, &ragged);
    let o = import("ec", &bad, &out, &[]);
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains(&format!(
                "nrPDB-EC_annot.tsv, line {ragged_line}: 3 fields where the file has 2 columns"
            )),
        "{t}"
    );
    assert!(!t.contains("truncate_ragged_lines"), "{t}");
}

/// Case 9: Ctrl-C or kill -9 during an import left `.fusionprot-import-XXXX` (the unpacked inner
/// zips) that no later run removed. The folder now carries its owner's lock; the next import
/// beside it removes the folders of dead importers.
#[test]
fn issue_20_a_killed_imports_scratch_folder_is_removed_by_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = fixture(Benchmark::Ec, &real_files())
        .expect("fixture")
        .scaled(30);
    let zip = dir.path().join("EnzymeCommission.zip");
    f.write_zip(&zip).expect("zip");
    let out = dir.path().join("ec");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(["import", "ec"])
        .arg(&zip)
        .arg("--out")
        .arg(&out)
        .args(["-j", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    let scratch: PathBuf = loop {
        if let Some(name) = left(dir.path(), ".fusionprot-import").first() {
            let p = dir.path().join(name);
            if p.join("owner.lock").exists() && p.join("test.zip").exists() {
                break p;
            }
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the import ended before it could be killed"
        );
        assert!(t0.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(
        scratch.is_dir(),
        "the killed import's folder is already gone"
    );
    let small = dir.path().join("small.zip");
    fixture(Benchmark::Ec, &real_files())
        .expect("fixture")
        .write_zip(&small)
        .expect("zip");
    let o = import("ec", &small, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !scratch.exists(),
        "the dead import's scratch folder is still there"
    );
    assert!(left(dir.path(), ".fusionprot-import").is_empty());
}
