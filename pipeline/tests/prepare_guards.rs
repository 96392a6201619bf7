//! Issue 10: `prepare` never loses a dataset, and hostile archives are one file's error.
//! A run that prepared nothing keeps the tables it would have replaced; size claims of tar and
//! zip headers and decompressed gzip streams are capped before anything is allocated.

mod common;
use common::tree;

use std::io::Write;
use std::path::Path;

use fusionprot_pipeline::protein::ProteinOptions;
use fusionprot_pipeline::{PrepareError, Safeguards};

fn sample_dataset() -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("tempdir");
    let s = common::run(
        &[common::sample_dir()],
        out.path(),
        ProteinOptions::default(),
        2,
    );
    assert_eq!(s.counts.proteins, 34);
    out
}

fn nothing_prepared(err: PrepareError) -> (String, usize, Vec<(String, String)>) {
    let message = err.to_string();
    match err {
        PrepareError::NothingPrepared {
            failed, failures, ..
        } => (
            message,
            failed,
            failures.into_iter().map(|f| (f.path, f.error)).collect(),
        ),
        other => panic!("expected NothingPrepared, got {other}"),
    }
}

#[test]
fn issue_10_an_empty_folder_does_not_replace_a_dataset_unless_allowed() {
    let out = sample_dataset();
    let before = tree(out.path());
    let empty = tempfile::tempdir().expect("tempdir");
    let err = common::try_run_with(
        &[empty.path().to_owned()],
        out.path(),
        2,
        &Safeguards::default(),
    )
    .expect_err("zero proteins is an error");
    let (message, failed, _) = nothing_prepared(err);
    assert_eq!(
        message,
        "no proteins from 0 input files (0 failed, 0 filtered, 0 duplicates); the dataset keeps its previous tables (--allow-empty replaces them with empty ones)"
    );
    assert_eq!(failed, 0);
    assert_eq!(tree(out.path()), before, "the dataset must be untouched");

    let allow = Safeguards {
        allow_empty: true,
        ..Safeguards::default()
    };
    let s = common::try_run_with(&[empty.path().to_owned()], out.path(), 2, &allow)
        .expect("--allow-empty replaces");
    assert_eq!(s.counts.proteins, 0);
    let m = common::manifest(out.path());
    assert_eq!(m["tables"]["proteins"]["rows"], 0);
    assert_eq!(m["parameters"]["allow_empty"], true);
}

#[test]
fn issue_10_every_input_failing_is_an_error_even_with_allow_empty() {
    let out = sample_dataset();
    let before = tree(out.path());
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(bad.path().join("a_empty.pdb"), b"").expect("write");
    std::fs::write(
        bad.path().join("b_short.pdb"),
        b"HEADER\nATOM      2  CA  LYS A   1       2.388\n",
    )
    .expect("write");
    for allow_empty in [false, true] {
        let guards = Safeguards {
            allow_empty,
            ..Safeguards::default()
        };
        let err = common::try_run_with(&[bad.path().to_owned()], out.path(), 2, &guards)
            .expect_err("all inputs failed");
        let (message, failed, failures) = nothing_prepared(err);
        assert_eq!(
            message,
            "all 2 input files failed; the dataset keeps its previous tables"
        );
        assert_eq!(failed, 2);
        assert_eq!(failures[0], ("a_empty.pdb".into(), "empty file".into()));
        assert_eq!(failures[1].0, "b_short.pdb");
        assert!(
            failures[1].1.contains("line 2: ATOM record has"),
            "{:?}",
            failures[1]
        );
        assert_eq!(tree(out.path()), before);
    }
}

#[test]
fn issue_10_zero_proteins_into_a_new_folder_writes_nothing() {
    let empty = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("ds");
    let err = common::try_run_with(&[empty.path().to_owned()], &out, 1, &Safeguards::default())
        .expect_err("zero proteins");
    assert!(
        err.to_string()
            .ends_with("nothing was written (--allow-empty writes an empty dataset)"),
        "{err}"
    );
    assert!(!out.join("manifest.json").exists() && !out.join("proteins").exists());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn good_pdb() -> Vec<u8> {
    std::fs::read(common::sample_dir().join("1A8O.pdb")).expect("sample")
}

/// Failures of the run in `out`, as (path, error).
fn failures(out: &Path) -> Vec<(String, String)> {
    common::manifest(out)["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or_default().to_owned(),
                f["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn issue_10_a_gzip_bomb_is_one_files_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 50 MB of zeros behind a PDB-looking first line, about 50 KB gzipped.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b"HEADER    BOMB\n").expect("gzip");
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..50 {
        e.write_all(&zeros).expect("gzip");
    }
    let bomb = e.finish().expect("gzip");
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    std::fs::write(dir.path().join("bomb.pdb.gz"), &bomb).expect("write");
    std::fs::write(dir.path().join("good.pdb"), good_pdb()).expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let guards = Safeguards {
        max_file_bytes: 1 << 20,
        ..Safeguards::default()
    };
    let s = common::try_run_with(&[dir.path().to_owned()], out.path(), 2, &guards).expect("run");
    assert_eq!(s.counts.proteins, 1);
    assert_eq!(
        failures(out.path()),
        [(
            "bomb.pdb.gz".to_owned(),
            "gzip stream decompresses to more than the size cap of 1 MiB".to_owned()
        )]
    );
    assert_eq!(
        common::manifest(out.path())["parameters"]["max_file_bytes"],
        1 << 20
    );
}

#[test]
fn issue_10_files_over_the_cap_fail_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut big = good_pdb();
    big.resize(3 << 20, b'\n');
    std::fs::write(dir.path().join("big.pdb"), &big).expect("write");
    std::fs::write(dir.path().join("good.pdb.gz"), gzip(&good_pdb())).expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let guards = Safeguards {
        max_file_bytes: 2 << 20,
        ..Safeguards::default()
    };
    let s = common::try_run_with(&[dir.path().to_owned()], out.path(), 1, &guards).expect("run");
    assert_eq!(s.counts.proteins, 1);
    assert_eq!(
        failures(out.path()),
        [(
            "big.pdb".to_owned(),
            "file is 3145728 bytes, over the size cap of 2 MiB".to_owned()
        )]
    );
}

/// A tar member header claiming `size` bytes, followed by only a little data.
fn lying_tar_member(name: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).expect("path");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[b'A'; 512]);
    out
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *body).expect("append");
    }
    b.into_inner().expect("tar")
}

#[test]
fn issue_10_a_tar_header_claiming_a_petabyte_is_one_members_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = good_pdb();
    let mut tar = tar_of(&[("first.pdb", &good)]);
    // Drop the end-of-archive blocks, then append a member that claims 1 PiB.
    tar.truncate(tar.len() - 1024);
    tar.extend(lying_tar_member("huge.pdb", 1 << 50));
    std::fs::write(dir.path().join("lying.tar"), &tar).expect("write");
    std::fs::write(dir.path().join("other.pdb.gz"), gzip(&good)).expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let s = common::try_run_with(
        &[dir.path().to_owned()],
        out.path(),
        2,
        &Safeguards::default(),
    )
    .expect("run");
    let f = failures(out.path());
    assert_eq!(
        f[0],
        (
            "lying.tar/huge.pdb".to_owned(),
            "tar member claims 1125899906842624 bytes, over the size cap of 2048 MiB".to_owned()
        ),
        "{f:?}"
    );
    // The member before the lie and the other file are kept (same chain: one is a duplicate).
    let inputs = common::manifest(out.path())["inputs"].clone();
    let paths: Vec<&str> = inputs
        .as_array()
        .expect("inputs")
        .iter()
        .filter_map(|i| i["path"].as_str())
        .collect();
    assert_eq!(paths, ["lying.tar/first.pdb", "other.pdb.gz"]);
    assert_eq!(s.counts.proteins, 1);
}

#[test]
fn issue_10_truncated_archives_keep_the_members_before_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = good_pdb();
    let big = std::fs::read(common::sample_dir().join("1AMY.cif")).expect("sample");
    let mut tar = tar_of(&[("a.pdb", &good), ("b.cif", &big)]);
    tar.truncate(512 + good.len().div_ceil(512) * 512 + 512 + 1000);
    std::fs::write(dir.path().join("cut.tar"), &tar).expect("write");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("z.pdb", zip::write::SimpleFileOptions::default())
        .expect("zip entry");
    zip.write_all(&good).expect("zip write");
    let mut zip = zip.finish().expect("zip").into_inner();
    zip.truncate(zip.len() - 30);
    std::fs::write(dir.path().join("cut.zip"), &zip).expect("write");
    std::fs::write(dir.path().join("good.cif"), &big).expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let s = common::try_run_with(
        &[dir.path().to_owned()],
        out.path(),
        2,
        &Safeguards::default(),
    )
    .expect("run");
    let f = failures(out.path());
    assert_eq!(f.len(), 3, "{f:?}");
    assert_eq!(
        f[0],
        (
            "cut.tar/b.cif".to_owned(),
            format!(
                "tar member is truncated: 1000 of the {} bytes it claims",
                big.len()
            )
        )
    );
    assert_eq!(f[1].0, "cut.tar");
    assert!(f[1].1.starts_with("broken tar archive"), "{f:?}");
    assert_eq!(f[2].0, "cut.zip");
    assert!(f[2].1.starts_with("broken zip archive"), "{f:?}");
    // a.pdb from the cut tar, and good.cif.
    assert_eq!(s.counts.proteins, 2);
}

/// Rewrites the uncompressed size of every central-directory record of a zip.
fn lie_in_central_directory(zip: &mut [u8], size: u32) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + 46 <= zip.len() {
        if zip[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
            zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            n += 1;
            i += 46;
        } else {
            i += 1;
        }
    }
    n
}

fn zip_of(name: &str, body: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .expect("zip entry");
    zip.write_all(body).expect("zip write");
    zip.finish().expect("zip").into_inner()
}

#[test]
fn issue_10_a_zip_whose_central_directory_lies_is_one_files_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = good_pdb();
    // Claims 4 GiB for a small member.
    let mut huge_claim = zip_of("m.pdb", &good);
    assert_eq!(lie_in_central_directory(&mut huge_claim, 0xFFFF_FFF0), 1);
    std::fs::write(dir.path().join("a_claims_4gib.zip"), &huge_claim).expect("write");
    // Claims 100 bytes for 50 MB of deflated spaces: reading stops at the cap all the same.
    let mut bomb_body = b"HEADER    BOMB\n".to_vec();
    bomb_body.resize(50 << 20, b' ');
    let mut small_claim = zip_of("bomb.pdb", &bomb_body);
    drop(bomb_body);
    assert_eq!(lie_in_central_directory(&mut small_claim, 100), 1);
    std::fs::write(dir.path().join("b_bomb.zip"), &small_claim).expect("write");
    std::fs::write(dir.path().join("c_good.pdb"), &good).expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let guards = Safeguards {
        max_file_bytes: 1 << 20,
        ..Safeguards::default()
    };
    let s = common::try_run_with(&[dir.path().to_owned()], out.path(), 2, &guards).expect("run");
    assert_eq!(s.counts.proteins, 1);
    let f = failures(out.path());
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(
        f[0],
        (
            "a_claims_4gib.zip/m.pdb".to_owned(),
            "zip member claims 4294967280 bytes, over the size cap of 1 MiB".to_owned()
        )
    );
    assert_eq!(f[1].0, "b_bomb.zip/bomb.pdb", "{f:?}");
}
