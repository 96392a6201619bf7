//! AlphaFold DB proteome tars hold every model twice (`.cif.gz` and `.pdb.gz`): one model is one
//! protein — the newest AFDB version, then the mmCIF file — whatever the order of the archive's
//! members or the shards a sharded run spreads them over, and the manifest records the AFDB
//! versions the dataset holds.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use fusionprot_pipeline::prepare::merge::{Mode, merge};
use fusionprot_pipeline::prepare::shard::Shard;
use fusionprot_pipeline::protein::ProteinOptions;
use fusionprot_pipeline::{PrepareConfig, prepare};

/// The sample's AlphaFold model as AFDB's mmCIF writes it (atom_site loop with pLDDT as B,
/// `_ma_target_ref_db_details.db_accession`), from its PDB file.
fn as_mmcif(pdb: &str, entry: &str) -> String {
    let mut out = format!(
        "data_{entry}\n_entry.id {entry}\n_struct.title 'AlphaFold monomer v2.0 prediction'\n\
         _ma_target_ref_db_details.db_accession Q5VSL9\nloop_\n_atom_site.group_PDB\n_atom_site.label_atom_id\n\
         _atom_site.label_comp_id\n_atom_site.auth_asym_id\n_atom_site.auth_seq_id\n_atom_site.Cartn_x\n\
         _atom_site.Cartn_y\n_atom_site.Cartn_z\n_atom_site.B_iso_or_equiv\n"
    );
    for l in pdb.lines().filter(|l| l.starts_with("ATOM")) {
        let f = |a: usize, b: usize| l[a..b].trim();
        out.push_str(&format!(
            "ATOM {} {} {} {} {} {} {} {}\n",
            f(12, 16),
            f(17, 20),
            f(21, 22),
            f(22, 26),
            f(30, 38),
            f(38, 46),
            f(46, 54),
            f(60, 66)
        ));
    }
    out.push_str("#\n");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn tar(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("tar"));
    for (name, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, bytes.as_slice())
            .expect("member");
    }
    b.finish().expect("finish");
}

fn model() -> (Vec<u8>, Vec<u8>) {
    let pdb = std::fs::read_to_string(common::real_dir().join("AF-Q5VSL9-F1-model_v2.pdb"))
        .expect("sample AF model");
    let cif = as_mmcif(&pdb, "AF-Q5VSL9-F1");
    (gzip(pdb.as_bytes()), gzip(cif.as_bytes()))
}

fn run(inputs: &[PathBuf], out: &Path, shard: Option<Shard>) -> serde_json::Value {
    let cfg = PrepareConfig {
        inputs: inputs.to_vec(),
        out: out.to_owned(),
        proteins: ProteinOptions::default(),
        jobs: 2,
        strict: true,
        only_ids: None,
        shard,
    };
    prepare(&cfg, &indicatif::ProgressBar::hidden()).expect("prepare");
    common::manifest(out)
}

/// (kept, skipped) file names of the one duplicate.
fn duplicate(m: &serde_json::Value) -> (String, String) {
    let d = m["duplicates"].as_array().expect("duplicates");
    assert_eq!(d.len(), 1, "{d:?}");
    let name = |k: &str| {
        d[0][k]
            .as_str()
            .expect(k)
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    (name("kept"), name("skipped"))
}

#[test]
fn one_model_is_one_protein_whatever_the_member_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdb, cif) = model();
    let (p, c) = (
        "AF-Q5VSL9-F1-model_v4.pdb.gz",
        "AF-Q5VSL9-F1-model_v4.cif.gz",
    );
    for (k, order) in [[(p, &pdb), (c, &cif)], [(c, &cif), (p, &pdb)]]
        .iter()
        .enumerate()
    {
        // The same archive name (the `source` column names it), the members in either order.
        let folder = dir.path().join(format!("order-{k}"));
        std::fs::create_dir_all(&folder).expect("mkdir");
        let archive = folder.join("UP000005640_9606_HUMAN_v4.tar");
        tar(&archive, &order.map(|(n, b)| (n, b.clone())));
        let out = dir.path().join(format!("ds{k}"));
        let m = run(&[archive], &out, None);
        assert_eq!(m["counts"]["proteins"], 1, "{}", m["counts"]);
        assert_eq!(
            duplicate(&m),
            (c.to_owned(), p.to_owned()),
            "member order {k}"
        );
        assert_eq!(
            m["alphafold_db"]["versions"],
            serde_json::json!({ "v4": 1 })
        );
    }
    // Both orders give the same tables.
    same_tables(&dir.path().join("ds0"), &dir.path().join("ds1"));
}

#[test]
fn the_newest_version_wins_and_the_manifest_names_the_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdb, cif) = model();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).expect("mkdir");
    // An older version's mmCIF and a newer version's PDB: the newer version wins.
    std::fs::write(inputs.join("AF-Q5VSL9-F1-model_v3.cif.gz"), &cif).expect("write");
    std::fs::write(inputs.join("AF-Q5VSL9-F1-model_v4.pdb.gz"), &pdb).expect("write");
    // Another protein of v2, and a PDB entry (no AFDB file: not counted).
    let other = String::from_utf8(flate2_decode(&pdb))
        .expect("text")
        .replace("Q5VSL9", "P00001");
    std::fs::write(inputs.join("AF-P00001-F1-model_v2.pdb"), other).expect("write");
    std::fs::copy(
        common::sample_dir().join("1A8O.pdb"),
        inputs.join("1A8O.pdb"),
    )
    .expect("copy");
    let m = run(&[inputs], &dir.path().join("ds"), None);
    assert_eq!(
        duplicate(&m),
        (
            "AF-Q5VSL9-F1-model_v4.pdb.gz".to_owned(),
            "AF-Q5VSL9-F1-model_v3.cif.gz".to_owned()
        )
    );
    assert_eq!(
        m["alphafold_db"]["versions"],
        serde_json::json!({ "v2": 1, "v4": 1 }),
        "{}",
        m["alphafold_db"]
    );
    // A dataset without AFDB files has no such section.
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).expect("mkdir");
    std::fs::copy(
        common::sample_dir().join("1A8O.pdb"),
        plain.join("1A8O.pdb"),
    )
    .expect("copy");
    let m = run(&[plain], &dir.path().join("ds-plain"), None);
    assert!(m.get("alphafold_db").is_none(), "{m}");
}

/// Two datasets' Parquet parts are byte-identical (the differing ones named).
#[track_caller]
fn same_tables(a: &Path, b: &Path) {
    let parts = |d: &Path| -> Vec<(String, Vec<u8>)> {
        common::tree(d)
            .into_iter()
            .filter(|(n, _)| n.ends_with(".parquet"))
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    let names = |p: &[(String, Vec<u8>)]| p.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&pa), names(&pb));
    let differ: Vec<&String> = pa
        .iter()
        .zip(&pb)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, _)| &x.0)
        .collect();
    assert!(differ.is_empty(), "{differ:?} differ");
}

fn flate2_decode(gz: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

#[test]
fn shards_that_split_a_model_s_two_files_merge_to_what_one_run_keeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pdb, cif) = model();
    let (p, c) = (
        "AF-Q5VSL9-F1-model_v4.pdb.gz",
        "AF-Q5VSL9-F1-model_v4.cif.gz",
    );
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).expect("mkdir");
    std::fs::write(inputs.join(p), &pdb).expect("write");
    std::fs::write(inputs.join(c), &cif).expect("write");
    // A shard count that puts the two files in different shards, the PDB file's first.
    let n = (2..64)
        .find(|&n| Shard::of(p, n) < Shard::of(c, n))
        .expect("a split");
    let whole = run(
        std::slice::from_ref(&inputs),
        &dir.path().join("whole"),
        None,
    );
    let shards: Vec<PathBuf> = (0..n)
        .map(|i| {
            let out = dir.path().join(format!("shard-{i}"));
            run(
                std::slice::from_ref(&inputs),
                &out,
                Some(Shard { index: i, count: n }),
            );
            out
        })
        .collect();
    let merged = dir.path().join("merged");
    merge(
        &shards,
        &merged,
        Mode::Copy,
        &indicatif::ProgressBar::hidden(),
    )
    .expect("merge");
    let m = common::manifest(&merged);
    assert_eq!(duplicate(&m), (c.to_owned(), p.to_owned()));
    assert_eq!(duplicate(&whole), duplicate(&m));
    assert_eq!(m["alphafold_db"], whole["alphafold_db"]);
    same_tables(&merged, &dir.path().join("whole"));
}
