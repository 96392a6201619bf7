//! Issue 10: protein ids never collide silently. AlphaFold2 and ColabFold write the same file
//! names into every job folder; each file must give its own proteins, whatever `--jobs` is, in
//! folders and in archives, while a true duplicate (identical bytes) is still reported.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::{Array, StringArray};
use fusionprot_pipeline::protein::ProteinOptions;

/// A real PDB file without its HEADER line, as AlphaFold2 and ColabFold write them: the entry id
/// then comes from the file name.
fn headerless(name: &str) -> Vec<u8> {
    let path = common::real_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("HEADER")).collect();
    let mut out = kept.join("\n").into_bytes();
    out.push(b'\n');
    out
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

/// AlphaFold2 output folders: `t1/ranked_0.pdb`, `t1/unrelaxed_model_1.pdb`, `t2/…` with the
/// same names, and `t3/ranked_0.pdb` byte-identical to `t1/ranked_0.pdb` (a true duplicate).
const ALPHAFOLD2: [(&str, &str); 5] = [
    ("t1/ranked_0.pdb", "1A8O.pdb"),
    ("t1/unrelaxed_model_1.pdb", "1orc.pdb"),
    ("t2/ranked_0.pdb", "1dpx.pdb"),
    ("t2/unrelaxed_model_1.pdb", "1BHL.pdb"),
    ("t3/ranked_0.pdb", "1A8O.pdb"),
];

/// ColabFold names files after the job name: two runs of job `query` in two folders.
const COLABFOLD: [(&str, &str); 4] = [
    (
        "jobA/query_unrelaxed_rank_001_alphafold2_ptm_model_1_seed_000.pdb",
        "1A8O.pdb",
    ),
    (
        "jobA/query_unrelaxed_rank_002_alphafold2_ptm_model_2_seed_000.pdb",
        "1orc.pdb",
    ),
    (
        "jobB/query_unrelaxed_rank_001_alphafold2_ptm_model_1_seed_000.pdb",
        "1dpx.pdb",
    ),
    (
        "jobB/query_unrelaxed_rank_002_alphafold2_ptm_model_2_seed_000.pdb",
        "1BHL.pdb",
    ),
];

fn layout(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, real) in files {
        put(dir.path(), rel, &headerless(real));
    }
    dir
}

/// (protein_id, entry_id, source, sequence) of every protein row, in table order.
fn proteins(out: &Path) -> Vec<(String, String, String, String)> {
    let batches = fusionprot_pipeline::dataset::read::read_table(
        out,
        fusionprot_pipeline::dataset::schema::Table::Proteins,
    )
    .expect("proteins table");
    let mut rows = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column_by_name(name)
                .expect(name)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8")
                .clone()
        };
        let (id, entry, source, seq) = (
            col("protein_id"),
            col("entry_id"),
            col("source"),
            col("sequence"),
        );
        for i in 0..id.len() {
            rows.push((
                id.value(i).to_owned(),
                entry.value(i).to_owned(),
                source.value(i).to_owned(),
                seq.value(i).to_owned(),
            ));
        }
    }
    rows
}

/// The sequence `prepare` gives the real file's one chain.
fn sequence_of(real: &str) -> String {
    let out = tempfile::tempdir().expect("tempdir");
    common::run(
        &[common::real_dir().join(real)],
        out.path(),
        ProteinOptions::default(),
        1,
    );
    let rows = proteins(out.path());
    assert_eq!(rows.len(), 1, "{real}: {rows:?}");
    rows[0].3.clone()
}

fn ids(rows: &[(String, String, String, String)]) -> Vec<&str> {
    rows.iter().map(|r| r.0.as_str()).collect()
}

#[test]
fn issue_10_alphafold2_job_folders_keep_every_model_and_report_the_true_duplicate() {
    let inputs = layout(&ALPHAFOLD2);
    let out = tempfile::tempdir().expect("tempdir");
    let summary = common::run(
        &[inputs.path().to_owned()],
        out.path(),
        ProteinOptions::default(),
        2,
    );
    let rows = proteins(out.path());
    assert_eq!(
        ids(&rows),
        [
            "t1/ranked_0_A",
            "t1/unrelaxed_model_1_A",
            "t2/ranked_0_A",
            "t2/unrelaxed_model_1_A"
        ]
    );
    // Each id holds its own file's chain.
    for (row, real) in rows
        .iter()
        .zip(["1A8O.pdb", "1orc.pdb", "1dpx.pdb", "1BHL.pdb"])
    {
        assert_eq!(row.3, sequence_of(real), "{} should be {real}", row.0);
    }
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str()),
        ("t1/ranked_0", "t1/ranked_0.pdb")
    );
    assert_eq!(summary.counts.duplicates_skipped, 1);
    let m = common::manifest(out.path());
    let dups = m["duplicates"].as_array().expect("duplicates");
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert_eq!(dups[0]["protein_id"], "t1/ranked_0_A");
    assert_eq!(dups[0]["kept"], "t1/ranked_0.pdb");
    assert_eq!(dups[0]["skipped"], "t3/ranked_0.pdb");
}

#[test]
fn issue_10_ids_from_paths_do_not_depend_on_jobs_or_on_how_the_folders_are_given() {
    let inputs = layout(&ALPHAFOLD2);
    let one = tempfile::tempdir().expect("tempdir");
    common::run(
        &[inputs.path().to_owned()],
        one.path(),
        ProteinOptions::default(),
        1,
    );
    let three = tempfile::tempdir().expect("tempdir");
    common::run(
        &[inputs.path().to_owned()],
        three.path(),
        ProteinOptions::default(),
        3,
    );
    for table in ["proteins", "residues", "edges"] {
        let part = format!("{table}/part-00000.parquet");
        assert!(
            std::fs::read(one.path().join(&part)).expect("part")
                == std::fs::read(three.path().join(&part)).expect("part"),
            "{part} differs between --jobs 1 and --jobs 3"
        );
    }
    // The job folders named one by one give the same ids as their parent folder.
    let separately = tempfile::tempdir().expect("tempdir");
    let jobs: Vec<PathBuf> = ["t1", "t2", "t3"]
        .iter()
        .map(|t| inputs.path().join(t))
        .collect();
    common::run(&jobs, separately.path(), ProteinOptions::default(), 2);
    assert_eq!(
        ids(&proteins(separately.path())),
        ids(&proteins(one.path()))
    );
}

#[test]
fn issue_10_colabfold_job_folders_with_the_same_file_names_keep_every_model() {
    let inputs = layout(&COLABFOLD);
    let out = tempfile::tempdir().expect("tempdir");
    let summary = common::run(
        &[inputs.path().to_owned()],
        out.path(),
        ProteinOptions::default(),
        2,
    );
    assert_eq!(summary.counts.duplicates_skipped, 0);
    assert_eq!(
        ids(&proteins(out.path())),
        [
            "jobA/query_unrelaxed_rank_001_alphafold2_ptm_model_1_seed_000_A",
            "jobA/query_unrelaxed_rank_002_alphafold2_ptm_model_2_seed_000_A",
            "jobB/query_unrelaxed_rank_001_alphafold2_ptm_model_1_seed_000_A",
            "jobB/query_unrelaxed_rank_002_alphafold2_ptm_model_2_seed_000_A"
        ]
    );
}

#[test]
fn issue_10_archive_members_follow_the_same_rule() {
    let work = tempfile::tempdir().expect("tempdir");
    let tar_path = work.path().join("af2.tar");
    let mut tar = tar::Builder::new(File::create(&tar_path).expect("tar"));
    for (rel, real) in ALPHAFOLD2 {
        let body = headerless(real);
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, rel, body.as_slice())
            .expect("append");
    }
    tar.into_inner().expect("tar").flush().expect("flush");
    let zip_path = work.path().join("colabfold.zip");
    let mut zip = zip::ZipWriter::new(File::create(&zip_path).expect("zip"));
    for (rel, real) in COLABFOLD {
        zip.start_file(rel, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(&headerless(real)).expect("zip write");
    }
    zip.finish().expect("zip");

    let from_archives = tempfile::tempdir().expect("tempdir");
    common::run(
        &[tar_path, zip_path],
        from_archives.path(),
        ProteinOptions::default(),
        2,
    );
    let rows = proteins(from_archives.path());
    let from_folders = tempfile::tempdir().expect("tempdir");
    let af2 = layout(&ALPHAFOLD2);
    let cf = layout(&COLABFOLD);
    common::run(
        &[af2.path().to_owned(), cf.path().to_owned()],
        from_folders.path(),
        ProteinOptions::default(),
        2,
    );
    let want = proteins(from_folders.path());
    assert_eq!(rows.len(), 8, "{:?}", ids(&rows));
    assert_eq!(ids(&rows), ids(&want));
    let t1 = rows
        .iter()
        .find(|r| r.0 == "t1/ranked_0_A")
        .expect("t1/ranked_0_A");
    assert_eq!(
        (t1.1.as_str(), t1.2.as_str()),
        ("t1/ranked_0", "af2.tar/t1/ranked_0.pdb")
    );
    for (a, b) in rows.iter().zip(&want) {
        assert_eq!(a.3, b.3, "{} has another sequence from the archive", a.0);
    }
}

#[test]
fn issue_10_files_with_a_pdb_id_stay_duplicates_across_folders() {
    // Same entry from HEADER in two folders: one structure, reported once as a duplicate.
    let dir = tempfile::tempdir().expect("tempdir");
    let real = std::fs::read(common::real_dir().join("1A8O.pdb")).expect("real");
    put(dir.path(), "a/model.pdb", &real);
    put(dir.path(), "b/model.pdb", &real);
    let out = tempfile::tempdir().expect("tempdir");
    let summary = common::run(
        &[dir.path().to_owned()],
        out.path(),
        ProteinOptions::default(),
        2,
    );
    assert_eq!(ids(&proteins(out.path())), ["1A8O_A"]);
    assert_eq!(summary.counts.duplicates_skipped, 1);
}
