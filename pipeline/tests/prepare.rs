//! `prepare` as a whole: determinism, bad inputs, archives, re-runs and the table contract.

mod common;
use common::tree;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use fusionprot_pipeline::protein::ProteinOptions;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn two_runs_with_different_jobs_are_byte_identical() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let real = common::real_dir();
    common::run(
        std::slice::from_ref(&real),
        a.path(),
        ProteinOptions::default(),
        1,
    );
    common::run(&[real], b.path(), ProteinOptions::default(), 2);
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    let names: Vec<&str> = ta.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"manifest.json") && names.contains(&"edges/part-00000.parquet"),
        "{names:?}"
    );
    for ((na, ba), (nb, bb)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs between --jobs 1 and --jobs 2");
    }
    assert_eq!(ta.len(), tb.len());
}

#[test]
fn manifest_records_inputs_parts_and_duplicates() {
    let out = tempfile::tempdir().expect("tempdir");
    let summary = common::run(
        &[common::real_dir()],
        out.path(),
        ProteinOptions::default(),
        2,
    );
    let m = common::manifest(out.path());
    assert_eq!(m["dataset_schema_version"], 2);
    assert_eq!(m["tables"]["residues"]["schema"], "residues/v1");
    assert_eq!(m["counts"]["proteins"], summary.counts.proteins as u64);
    let inputs = m["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 48);
    let one = inputs
        .iter()
        .find(|i| i["path"] == "1AMY.cif")
        .expect("1AMY.cif listed");
    assert_eq!(one["bytes"], 393_628);
    assert_eq!(one["sha256"].as_str().map(str::len), Some(64));
    // 1A8O.pdb and 1A8O.cif describe the same chain: the first in input order is kept.
    let dups = m["duplicates"].as_array().expect("duplicates");
    let d = dups
        .iter()
        .find(|d| d["protein_id"] == "1A8O_A")
        .expect("1A8O_A duplicate");
    assert_eq!(
        (d["kept"].as_str(), d["skipped"].as_str()),
        (Some("1A8O.cif"), Some("1A8O.pdb"))
    );
    for part in m["tables"]["edges"]["parts"].as_array().expect("parts") {
        let path = out.path().join(part["path"].as_str().expect("path"));
        assert_eq!(part["bytes"], read(&path).len() as u64);
    }
}

/// Writes `files` (name → bytes) into a fresh folder.
fn folder(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write");
    }
    dir
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

const GOOD_ATOM: &str =
    "ATOM      2  CA  LYS A   1       2.388  10.533   9.168  1.00  9.68           C\n";

fn bad_inputs() -> tempfile::TempDir {
    let good = read(&common::sample_dir().join("1A8O.pdb"));
    let mut truncated_gz = gzip(&good);
    truncated_gz.truncate(truncated_gz.len() / 2);
    let missing_col = "data_x\nloop_\n_atom_site.group_PDB\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n\
_atom_site.auth_asym_id\n_atom_site.auth_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n\
ATOM CA LYS A 1 1.0 2.0\n";
    folder(&[
        ("a_good.pdb", good),
        ("b_empty.pdb", Vec::new()),
        ("c_truncated.pdb.gz", truncated_gz),
        ("d_binary.cif", vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 3]),
        (
            "e_short.pdb",
            format!("HEADER\n{}", &GOOD_ATOM[..40]).into_bytes(),
        ),
        (
            "f_overflow.pdb",
            GOOD_ATOM.replace("  2.388", "*******").into_bytes(),
        ),
        ("g_missing_column.cif", missing_col.as_bytes().to_vec()),
        (
            "h_no_ca.pdb",
            GOOD_ATOM.replace(" CA ", " CB ").into_bytes(),
        ),
    ])
}

#[test]
fn bad_inputs_are_recorded_with_file_line_and_reason_and_do_not_stop_the_run() {
    let inputs = bad_inputs();
    let out = tempfile::tempdir().expect("tempdir");
    let summary = common::run(
        &[inputs.path().to_owned()],
        out.path(),
        ProteinOptions::default(),
        2,
    );
    assert_eq!(summary.counts.proteins, 1, "only 1A8O_A survives");
    assert_eq!(summary.counts.files_failed, 7);
    let m = common::manifest(out.path());
    let failures: Vec<(String, String)> = m["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or_default().to_owned(),
                f["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expect = [
        ("b_empty.pdb", "empty file"),
        ("c_truncated.pdb.gz", "gzip stream is broken"),
        ("d_binary.cif", "not a text file"),
        ("e_short.pdb", "line 2: ATOM record has 40 columns"),
        (
            "f_overflow.pdb",
            "line 1: x (columns 31-38) is not a number: \"*******\"",
        ),
        ("g_missing_column.cif", "lacks required column(s): Cartn_z"),
        ("h_no_ca.pdb", "no protein"),
    ];
    assert_eq!(failures.len(), expect.len(), "{failures:?}");
    for ((path, error), (want_path, want_error)) in failures.iter().zip(expect) {
        assert_eq!(path, want_path);
        assert!(
            error.contains(want_error),
            "{path}: {error:?} lacks {want_error:?}"
        );
    }
}

#[test]
fn strict_stops_at_the_first_failure_and_keeps_the_previous_dataset() {
    let out = tempfile::tempdir().expect("tempdir");
    common::run(
        &[common::sample_dir().join("1A8O.pdb")],
        out.path(),
        ProteinOptions::default(),
        1,
    );
    let before = tree(out.path());
    let inputs = bad_inputs();
    let err = common::try_run(
        &[inputs.path().to_owned()],
        out.path(),
        ProteinOptions::default(),
        1,
        true,
    )
    .expect_err("strict fails");
    assert!(err.to_string().contains("b_empty.pdb: empty file"), "{err}");
    assert_eq!(
        tree(out.path()),
        before,
        "a failed run must not touch the dataset"
    );
}

fn protein_rows(out: &Path) -> Vec<(String, String, i32)> {
    let dir = out.join("proteins");
    let mut rows = Vec::new();
    for e in std::fs::read_dir(dir).expect("proteins/") {
        let file = File::open(e.expect("entry").path()).expect("part");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let col = |name: &str| batch.column_by_name(name).expect(name).clone();
            let id = col("protein_id");
            let id = id
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("utf8");
            let seq = col("sequence");
            let seq = seq
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("utf8");
            let n = col("num_residues");
            let n = n
                .as_any()
                .downcast_ref::<arrow_array::Int32Array>()
                .expect("i32");
            for i in 0..batch.num_rows() {
                rows.push((id.value(i).to_owned(), seq.value(i).to_owned(), n.value(i)));
            }
        }
    }
    rows
}

#[test]
fn tar_of_gzipped_members_and_zip_give_the_same_proteins_as_the_folder() {
    let sample = common::sample_dir();
    let names: Vec<PathBuf> = std::fs::read_dir(&sample)
        .expect("sample")
        .map(|e| e.expect("entry").path())
        .filter(|p| fusionprot_pipeline::prepare::input::is_structure_name(&p.to_string_lossy()))
        .collect();
    let work = tempfile::tempdir().expect("tempdir");
    // AlphaFold DB ships proteomes as tar files of gzipped members.
    let tar_path = work.path().join("proteome.tar");
    let mut tar = tar::Builder::new(File::create(&tar_path).expect("tar"));
    let zip_path = work.path().join("set.zip");
    let mut zip = zip::ZipWriter::new(File::create(&zip_path).expect("zip"));
    for p in &names {
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        let bytes = read(p);
        let (member, body) = if name.ends_with(".gz") {
            (name.clone(), bytes.clone())
        } else {
            (format!("{name}.gz"), gzip(&bytes))
        };
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("v4/{member}"), body.as_slice())
            .expect("append");
        zip.start_file(
            format!("set/{name}"),
            zip::write::SimpleFileOptions::default(),
        )
        .expect("zip entry");
        zip.write_all(&bytes).expect("zip write");
    }
    tar.finish().expect("tar");
    zip.finish().expect("zip");
    drop(tar);

    let from_dir = tempfile::tempdir().expect("tempdir");
    common::run(&[sample], from_dir.path(), ProteinOptions::default(), 2);
    let from_tar = tempfile::tempdir().expect("tempdir");
    common::run(&[tar_path], from_tar.path(), ProteinOptions::default(), 2);
    let from_zip = tempfile::tempdir().expect("tempdir");
    common::run(&[zip_path], from_zip.path(), ProteinOptions::default(), 2);
    let want = protein_rows(from_dir.path());
    assert!(want.len() > 30, "{} proteins", want.len());
    assert_eq!(protein_rows(from_tar.path()), want);
    assert_eq!(protein_rows(from_zip.path()), want);
    let m = common::manifest(from_tar.path());
    assert!(
        m["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .any(|i| i["path"] == "proteome.tar/v4/1AMY.cif.gz"),
        "archive members are named archive/member"
    );
}

#[test]
fn rerun_replaces_tables_and_clears_stale_splits_and_staging() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = out.path();
    common::run(&[common::sample_dir()], o, ProteinOptions::default(), 2);
    std::fs::create_dir_all(o.join("splits")).expect("splits");
    std::fs::write(o.join("splits/part-00000.parquet"), b"old").expect("write");
    std::fs::create_dir_all(o.join(".staging-99999/edges")).expect("stale staging");
    std::fs::write(o.join("notes.txt"), b"user file").expect("write");
    let opts = ProteinOptions {
        truncate: Some(50),
        ..Default::default()
    };
    common::run(&[common::sample_dir().join("1AMY.cif")], o, opts, 2);
    assert!(!o.join("splits").exists());
    assert!(!o.join(".staging-99999").exists());
    assert_eq!(read(&o.join("notes.txt")), b"user file");
    assert_eq!(
        protein_rows(o),
        [(
            "1AMY_A".to_owned(),
            "QVLFQGFNWESWKHNGGWYNFLMGKVDDIAAAGITHVWLPPASQSVAEQG".to_owned(),
            50
        )]
    );
    assert_eq!(common::manifest(o)["parameters"]["truncate"], 50);
}

#[test]
fn parts_carry_the_schema_tag_sorting_and_row_group_statistics() {
    let out = tempfile::tempdir().expect("tempdir");
    common::run(
        &[common::sample_dir()],
        out.path(),
        ProteinOptions::default(),
        2,
    );
    let file = File::open(out.path().join("residues/part-00000.parquet")).expect("part");
    let reader = parquet::file::reader::SerializedFileReader::new(file).expect("parquet");
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    let kv = meta
        .file_metadata()
        .key_value_metadata()
        .expect("kv metadata");
    assert!(
        kv.iter()
            .any(|k| k.key == "fusionprot.schema" && k.value.as_deref() == Some("residues/v1"))
    );
    let rg = meta.row_group(0);
    assert_eq!(rg.sorting_columns().map(|s| s[0].column_idx), Some(0));
    let stats = rg.column(0).statistics().expect("protein_id statistics");
    assert_eq!(stats.min_bytes_opt(), Some(b"19HC_A".as_slice()));
}
