//! `fusionprot import ec|go` end to end on miniature archives in TorchDrug's published layouts,
//! built here from the real structure files: proteins, labels and official splits are checked
//! against what the fixture wrote; bad archives fail naming the file and line; the dataset that
//! was there survives a failed import.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow_array::{Array, Int32Array, ListArray, StringArray};
use common::archive::{Edit, import, rewrite_zip};
use common::{fusionprot, msp_fixture, real_files, text};
use fusionprot_pipeline::dataset::read::read_table;
use fusionprot_pipeline::dataset::schema::Table;
use fusionprot_pipeline::import::Benchmark;
use fusionprot_pipeline::import::fixture::{Fixture, fixture};

fn strings(a: &dyn Array) -> &StringArray {
    a.as_any().downcast_ref().expect("utf8")
}

/// (protein, task) → label indices.
fn labels(ds: &Path) -> BTreeMap<(String, String), Vec<i32>> {
    let mut out = BTreeMap::new();
    for b in read_table(ds, Table::Labels).expect("labels") {
        let (ids, tasks) = (strings(b.column(0)), strings(b.column(1)));
        let lists: &ListArray = b.column(2).as_any().downcast_ref().expect("list");
        for i in 0..b.num_rows() {
            let v = lists.value(i);
            let v: &Int32Array = v.as_any().downcast_ref().expect("int32");
            out.insert(
                (ids.value(i).to_owned(), tasks.value(i).to_owned()),
                v.values().to_vec(),
            );
        }
    }
    out
}

/// (protein, split name) → split.
fn splits(ds: &Path) -> HashMap<(String, String), String> {
    let mut out = HashMap::new();
    for b in read_table(ds, Table::Splits).expect("splits") {
        let (ids, names, parts) = (
            strings(b.column(0)),
            strings(b.column(1)),
            strings(b.column(2)),
        );
        for i in 0..b.num_rows() {
            out.insert(
                (ids.value(i).to_owned(), names.value(i).to_owned()),
                parts.value(i).to_owned(),
            );
        }
    }
    out
}

fn protein_ids(ds: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for b in read_table(ds, Table::Proteins).expect("proteins") {
        let ids = strings(b.column(0));
        v.extend((0..b.num_rows()).map(|i| ids.value(i).to_owned()));
    }
    v
}

/// Every protein, label and split is what the fixture wrote.
fn check_against(f: &Fixture, ds: &Path, cutoff: usize) {
    let mut expected: Vec<String> = f.chains.iter().map(|c| c.id.clone()).collect();
    expected.sort();
    assert_eq!(
        protein_ids(ds),
        expected,
        "one protein per chain file, named as TorchDrug names it"
    );
    let got = labels(ds);
    let sp = splits(ds);
    for ch in &f.chains {
        for (t, (task, vocab)) in f.vocabularies.iter().enumerate() {
            let mut want: Vec<i32> = ch.terms[t]
                .iter()
                .map(|term| vocab.iter().position(|v| v == term).expect("in vocabulary") as i32)
                .collect();
            want.sort_unstable();
            assert_eq!(
                got[&(ch.id.clone(), task.clone())],
                want,
                "{} {task}",
                ch.id
            );
        }
        for (c, name) in ["0.3", "0.4", "0.5", "0.7", "0.95"].iter().enumerate() {
            let want = match ch.flags {
                Some(flags) if !flags[c] => "removed",
                _ => ch.split,
            };
            assert_eq!(
                sp[&(ch.id.clone(), format!("official-{name}"))],
                want,
                "{} at {name}",
                ch.id
            );
            if c == cutoff {
                assert_eq!(sp[&(ch.id.clone(), "official".to_owned())], want);
            }
        }
    }
    assert_eq!(got.len(), f.chains.len() * f.vocabularies.len());
}

#[test]
fn ec_archive_as_downloaded_and_as_extracted_gives_the_same_tables() {
    let f = fixture(Benchmark::Ec, &real_files()).expect("fixture");
    assert!(f.chains.len() >= 30, "{} chains", f.chains.len());
    assert!(
        f.chains.iter().any(|c| c.id.ends_with('7')),
        "multi-character chain ids"
    );
    assert!(
        f.chains.iter().filter(|c| !c.terms[0].is_empty()).count() >= 5,
        "EC numbers from COMPND"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("EnzymeCommission.zip");
    f.write_zip(&zip).expect("zip");
    let ds = dir.path().join("ec");
    let o = import("ec", &zip, &ds, &["--test-cutoff", "0.5", "-j", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("official-0.3: train"), "{}", text(&o));
    check_against(&f, &ds, 2);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(
        m["benchmark"]["tasks"][0]["terms"].as_array().map(Vec::len),
        Some(f.vocabularies[0].1.len())
    );
    assert_eq!(m["splits"]["official"]["test_cutoff"], 0.5);
    assert_eq!(m["parameters"]["inputs"][0], zip.to_str().expect("utf8"));
    // No unpacked inner zip is left beside the dataset.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");

    // The extracted folder, with inner zips or with unpacked split folders: same tables.
    for inner in [true, false] {
        let folder = dir.path().join(format!("extracted-{inner}"));
        f.write_folder(&folder, inner).expect("folder");
        let ds2 = dir.path().join(format!("ec-{inner}"));
        let o = import("ec", &folder, &ds2, &["--test-cutoff", "0.5"]);
        assert!(o.status.success(), "{}", text(&o));
        check_against(&f, &ds2, 2);
        for t in ["labels", "splits"] {
            assert_eq!(
                std::fs::read(ds.join(t).join("part-00000.parquet")).expect("part"),
                std::fs::read(ds2.join(t).join("part-00000.parquet")).expect("part"),
                "{t} from the folder (inner zips: {inner})"
            );
        }
    }

    // `split` adds a certified split beside the official ones; both stay.
    let o = fusionprot(&[
        "split",
        ds.to_str().expect("utf8"),
        "--identity",
        "aligned",
        "--name",
        "family",
        "-j",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let sp = splits(&ds);
    let id = &f.chains[0].id;
    assert!(sp.contains_key(&(id.clone(), "family".to_owned())));
    assert!(sp.contains_key(&(id.clone(), "official".to_owned())));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert!(
        m["splits"]["family"]["identity"].is_object()
            && m["splits"]["official"]["kind"] == "official"
    );

    // --only-ids keeps the listed chains only.
    let list = dir.path().join("ids.txt");
    let keep: Vec<&str> = f.chains.iter().step_by(3).map(|c| c.id.as_str()).collect();
    std::fs::write(&list, format!("# TorchDrug's ids\n{}\n", keep.join("\n"))).expect("list");
    let ds3 = dir.path().join("ec-only");
    let o = import(
        "ec",
        &zip,
        &ds3,
        &["--only-ids", list.to_str().expect("utf8")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let mut want: Vec<String> = keep.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(protein_ids(&ds3), want);
}

#[test]
fn go_archive_keeps_chains_with_an_empty_branch_all_negative() {
    let f = fixture(Benchmark::Go, &real_files()).expect("fixture");
    assert!(
        f.chains.iter().any(|c| c.terms.iter().any(Vec::is_empty)),
        "an empty branch cell"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("GeneOntology.zip");
    f.write_zip(&zip).expect("zip");
    let ds = dir.path().join("go");
    let o = import("go", &zip, &ds, &[]);
    assert!(o.status.success(), "{}", text(&o));
    check_against(&f, &ds, 4);
    let tasks: Vec<String> = labels(&ds).keys().map(|k| k.1.clone()).collect();
    for t in ["go-mf", "go-bp", "go-cc"] {
        assert!(tasks.iter().any(|x| x == t), "{t}");
    }
}

#[test]
fn bad_archives_name_the_file_and_line_and_leave_the_dataset_as_it_was() {
    let f = fixture(Benchmark::Ec, &real_files()).expect("fixture");
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("EnzymeCommission.zip");
    f.write_zip(&zip).expect("zip");
    let ds = dir.path().join("ec");
    let o = import("ec", &zip, &ds, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(ds.join("manifest.json")).expect("manifest");
    let bad_label_line = 3 + 2 + 1; // header lines, then the third chain
    let cases: Vec<(&str, Box<Edit>, String)> = vec![
        (
            "missing TSV",
            Box::new(|n: &str, b| (!n.ends_with("_annot.tsv")).then_some(b)),
            "no nrPDB-EC_annot.tsv in the archive".to_owned(),
        ),
        (
            "label not in the vocabulary",
            Box::new(move |n: &str, b: Vec<u8>| {
                if !n.ends_with("_annot.tsv") {
                    return Some(b);
                }
                let text = String::from_utf8(b).expect("utf8");
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                lines[bad_label_line - 1] = format!(
                    "{}\t7.7.7.7",
                    lines[bad_label_line - 1].split('\t').next().expect("id")
                );
                Some((lines.join("\n") + "\n").into_bytes())
            }),
            format!(
                "nrPDB-EC_annot.tsv, line {bad_label_line}: \"7.7.7.7\" is not in the ec vocabulary"
            ),
        ),
        (
            "bad test flag",
            Box::new(|n: &str, b: Vec<u8>| {
                if !n.ends_with("_test.csv") {
                    return Some(b);
                }
                let text = String::from_utf8(b).expect("utf8");
                Some(text.replacen(",1\r\n", ",yes\r\n", 1).into_bytes())
            }),
            "nrPDB-EC_test.csv, line 2".to_owned(),
        ),
        (
            "missing split zip",
            Box::new(|n: &str, b| (!n.ends_with("valid.zip")).then_some(b)),
            "EnzymeCommission/valid.zip: cannot read it".to_owned(),
        ),
        (
            "a chain without annotation",
            Box::new(|n: &str, b: Vec<u8>| {
                if !n.ends_with("_annot.tsv") {
                    return Some(b);
                }
                let text = String::from_utf8(b).expect("utf8");
                let lines: Vec<&str> = text.lines().collect();
                let kept: Vec<&str> = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != 3)
                    .map(|(_, l)| *l)
                    .collect();
                Some((kept.join("\n") + "\n").into_bytes())
            }),
            "has no row in".to_owned(),
        ),
    ];
    for (what, edit, message) in cases {
        let broken = dir.path().join("broken.zip");
        rewrite_zip(&zip, &broken, &*edit);
        let o = import("ec", &broken, &ds, &[]);
        assert!(!o.status.success(), "{what}: {}", text(&o));
        assert!(
            text(&o).contains(&message),
            "{what}: wanted {message:?} in\n{}",
            text(&o)
        );
        assert_eq!(
            std::fs::read(ds.join("manifest.json")).expect("manifest"),
            before,
            "{what}: dataset changed"
        );
        let stray: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".fusionprot-import"))
            .collect();
        assert!(stray.is_empty(), "{what}: left {stray:?}");
    }
    let o = import("ec", Path::new("/nonexistent.zip"), &ds, &[]);
    assert!(
        !o.status.success() && text(&o).contains("/nonexistent.zip"),
        "{}",
        text(&o)
    );
}

/// mutant id → (wild type, mutation, mutated residues, label, window start, window length).
type PairRow = (String, String, Vec<i32>, i64, i64, i64);

fn pairs(ds: &Path) -> BTreeMap<String, PairRow> {
    use arrow_array::{Int8Array, Int32Array};
    let mut out = BTreeMap::new();
    for b in read_table(ds, Table::Pairs).expect("pairs") {
        let s = |i: usize| strings(b.column(i));
        let lists: &ListArray = b.column(3).as_any().downcast_ref().expect("list");
        let label: &Int8Array = b.column(4).as_any().downcast_ref().expect("int8");
        let int = |i: usize| -> &Int32Array { b.column(i).as_any().downcast_ref().expect("int32") };
        for i in 0..b.num_rows() {
            let v = lists.value(i);
            let v: &Int32Array = v.as_any().downcast_ref().expect("int32");
            out.insert(
                s(0).value(i).to_owned(),
                (
                    s(1).value(i).to_owned(),
                    s(2).value(i).to_owned(),
                    v.values().to_vec(),
                    i64::from(label.value(i)),
                    i64::from(int(5).value(i)),
                    i64::from(int(6).value(i)),
                ),
            );
        }
    }
    out
}

fn check_msp(ds: &Path, expected: &[serde_json::Value]) {
    let got = pairs(ds);
    assert_eq!(got.len(), expected.len());
    let sp = splits(ds);
    let ids = protein_ids(ds);
    for e in expected {
        let id = e["id"].as_str().expect("id");
        let (wt, mutation, mutated, label, start, len) = &got[id];
        assert_eq!(wt, e["wild_type"].as_str().expect("wt"), "{id}");
        assert_eq!(mutation, e["mutation"].as_str().expect("mutation"), "{id}");
        let want: Vec<i32> = e["mutated"]
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v.as_i64().expect("int") as i32)
            .collect();
        assert_eq!(mutated, &want, "{id}: mutated residues");
        assert_eq!(*label, e["label"].as_i64().expect("label"), "{id}");
        assert_eq!(
            *start,
            e["window_start"].as_i64().expect("start"),
            "{id}: window"
        );
        assert_eq!(
            *len,
            e["window_length"].as_i64().expect("len"),
            "{id}: window"
        );
        assert_eq!(
            sp[&(id.to_owned(), "official".to_owned())],
            e["split"].as_str().expect("split"),
            "{id}"
        );
        assert!(ids.iter().any(|p| p == wt) && ids.iter().any(|p| p == id));
    }
    // Wild types are stored once however many mutants they have.
    let wts: std::collections::BTreeSet<&str> = expected
        .iter()
        .map(|e| e["wild_type"].as_str().expect("wt"))
        .collect();
    assert_eq!(ids.len(), expected.len() + wts.len());
    assert!(
        expected
            .iter()
            .any(|e| e["window_start"].as_i64() > Some(0)),
        "a mutation in a > 1000-residue complex"
    );
}

#[test]
fn msp_lmdb_as_downloaded_and_extracted_json_and_msgpack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = msp_fixture(dir.path(), &[]);
    let tar = dir.path().join("MSP-split-by-sequence-identity-30.tar.gz");
    let ds = dir.path().join("msp");
    let o = import("msp", &tar, &ds, &["-j", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    check_msp(&ds, &expected);

    // The extracted folder is only read: without lock.mdb (NO_LOCK) nothing is created, and every
    // byte of data.mdb stays as it was.
    let data = dir.path().join("split-by-sequence-identity-30/data");
    let mut before = BTreeMap::new();
    for s in ["train", "val", "test"] {
        std::fs::remove_file(data.join(s).join("lock.mdb")).expect("rm lock.mdb");
        before.insert(
            s,
            std::fs::read(data.join(s).join("data.mdb")).expect("data.mdb"),
        );
    }
    let ds2 = dir.path().join("msp-folder");
    let o = import("msp", dir.path(), &ds2, &[]);
    assert!(o.status.success(), "{}", text(&o));
    check_msp(&ds2, &expected);
    for (s, bytes) in before {
        let listing: Vec<_> = std::fs::read_dir(data.join(s))
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(listing, ["data.mdb"], "{s}: the import created files");
        assert_eq!(
            std::fs::read(data.join(s).join("data.mdb")).expect("data.mdb"),
            bytes,
            "{s} changed"
        );
    }
    for t in ["pairs", "splits", "residues", "edges"] {
        assert_eq!(
            std::fs::read(ds.join(t).join("part-00000.parquet")).expect("part"),
            std::fs::read(ds2.join(t).join("part-00000.parquet")).expect("part"),
            "{t}: the tar and the folder give the same table"
        );
    }

    let mp = dir.path().join("msgpack");
    std::fs::create_dir_all(&mp).expect("mkdir");
    let expected_mp = msp_fixture(&mp, &["--format", "msgpack"]);
    let ds3 = dir.path().join("msp-msgpack");
    let o = import(
        "msp",
        Path::new(
            mp.join("MSP-split-by-sequence-identity-30.tar.gz")
                .to_str()
                .expect("utf8"),
        ),
        &ds3,
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    check_msp(&ds3, &expected_mp);
}

#[test]
fn a_corrupt_msp_record_is_named_and_the_dataset_survives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&good).expect("mkdir");
    std::fs::create_dir_all(&bad).expect("mkdir");
    msp_fixture(&good, &[]);
    msp_fixture(&bad, &["--corrupt"]);
    let ds = dir.path().join("msp");
    let archive = |d: &Path| d.join("MSP-split-by-sequence-identity-30.tar.gz");
    let o = import("msp", &archive(&good), &ds, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(ds.join("manifest.json")).expect("manifest");
    let o = import("msp", &archive(&bad), &ds, &[]);
    assert!(!o.status.success());
    let msg = text(&o);
    assert!(
        msg.contains("split-by-sequence-identity-30/data/val, record 1")
            && msg.contains("not a gzip stream"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(ds.join("manifest.json")).expect("manifest"),
        before
    );
    // Not an LMDB at all.
    let junk = dir.path().join("junk/data/train");
    std::fs::create_dir_all(&junk).expect("mkdir");
    std::fs::write(junk.join("data.mdb"), b"junk").expect("write");
    for s in ["val", "test"] {
        std::fs::create_dir_all(dir.path().join("junk/data").join(s)).expect("mkdir");
        std::fs::write(
            dir.path().join("junk/data").join(s).join("data.mdb"),
            b"junk",
        )
        .expect("write");
    }
    let o = import("msp", &dir.path().join("junk"), &ds, &[]);
    assert!(
        !o.status.success() && text(&o).contains("data/train: not a readable LMDB environment"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(ds.join("manifest.json")).expect("manifest"),
        before
    );
}

#[test]
fn a_training_run_reads_a_task_on_a_named_split_and_bad_requests_name_what_exists() {
    use fusionprot_trainer::train::load_task;
    let f = fixture(Benchmark::Go, &real_files()).expect("fixture");
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("GeneOntology.zip");
    f.write_zip(&zip).expect("zip");
    let ds = dir.path().join("go");
    let o = import("go", &zip, &ds, &["--test-cutoff", "0.3"]);
    assert!(o.status.success(), "{}", text(&o));
    let data = load_task(&ds, "go-bp", "official").expect("task");
    assert_eq!(data.labels, f.vocabularies[1].1.len());
    let mut total = 0;
    for ch in &f.chains {
        let part = match ch.flags {
            Some(flags) if !flags[0] => continue,
            _ => ch.split,
        };
        let rows = &data.parts[part];
        let example = rows.iter().find(|e| e.id() == ch.id).expect("in its part");
        let target = data.target(example);
        for (j, term) in f.vocabularies[1].1.iter().enumerate() {
            assert_eq!(
                target[j] == 1.0,
                ch.terms[1].contains(term),
                "{} {term}",
                ch.id
            );
        }
        total += 1;
    }
    assert_eq!(data.parts.values().map(Vec::len).sum::<usize>(), total);
    for (task, split, message) in [
        (
            "go-xx",
            "official",
            "no task \"go-xx\"; this dataset has go-mf, go-bp, go-cc",
        ),
        (
            "go-bp",
            "family",
            "no split named \"family\"; it has official, official-0.3",
        ),
    ] {
        let e = load_task(&ds, task, split)
            .expect_err("bad request")
            .to_string();
        assert!(e.contains(message), "{e}");
    }
    // A prepared dataset without labels.
    let plain = dir.path().join("plain");
    let o = fusionprot(&[
        "prepare",
        real_files()[1].to_str().expect("utf8"),
        "--out",
        plain.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let e = load_task(&plain, "ec", "official")
        .expect_err("no labels")
        .to_string();
    assert!(e.contains("no labels: import a benchmark first"), "{e}");
}
