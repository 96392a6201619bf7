//! `prepare --shard I/N` + `merge` on real structure files: the merged dataset is byte-identical to
//! one `prepare` over all inputs (tables and manifest), with duplicate ids and path-derived names
//! that cross shards, an archive unit and a failing file; shards that do not fit together are
//! refused before anything is written, naming why, and leave an existing dataset as it was.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{fusionprot, real_files, text};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// Every file below `dir` (tables and manifest; the lock file left out) with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().is_some_and(|n| n != ".lock") {
                let rel = p.strip_prefix(root).expect("rel").display().to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A PDB file's text without its HEADER (no id inside: the entry id comes from the file name).
fn headerless(name: &str) -> String {
    let real = real_files();
    let path = real
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .expect("real file");
    std::fs::read_to_string(path)
        .expect("pdb")
        .lines()
        .filter(|l| !l.starts_with("HEADER"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The inputs: the real files, a copy of one under another name (a duplicate id), three
/// `ranked_0.pdb` without ids (two distinct, one identical to the first: path-derived names),
/// a tar archive of three more, and a file that is not a structure.
fn inputs(dir: &Path) -> PathBuf {
    let root = dir.join("in");
    let real = root.join("real");
    std::fs::create_dir_all(&real).expect("mkdir");
    for f in real_files() {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        if name.ends_with(".tsv") || name.ends_with(".md") || name.ends_with(".py") {
            continue;
        }
        std::fs::copy(&f, real.join(&name)).expect("copy");
    }
    std::fs::copy(real.join("1AFS.pdb"), root.join("copy-of-1afs.pdb")).expect("copy");
    for (t, src) in [
        ("t1", "adk_open.pdb"),
        ("t2", "1orc.pdb"),
        ("t3", "adk_open.pdb"),
    ] {
        std::fs::create_dir_all(root.join(t)).expect("mkdir");
        std::fs::write(root.join(t).join("ranked_0.pdb"), headerless(src)).expect("write");
    }
    let job = dir.join("job");
    std::fs::create_dir_all(job.join("x")).expect("mkdir");
    std::fs::copy(real.join("1dpx.pdb"), job.join("1dpx.pdb")).expect("copy");
    std::fs::copy(real.join("3CRO.pdb"), job.join("3CRO.pdb")).expect("copy");
    std::fs::write(job.join("x/ranked_0.pdb"), headerless("4JSV.pdb")).expect("write");
    let o = std::process::Command::new("tar")
        .args([
            "-cf",
            s(&root.join("set.tar")),
            "-C",
            s(&job),
            "1dpx.pdb",
            "3CRO.pdb",
            "x/ranked_0.pdb",
        ])
        .output()
        .expect("tar");
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(root.join("broken.pdb"), "this is not a structure\n").expect("write");
    root
}

fn prepare(input: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["prepare", s(input), "--out", s(out), "-j", "2"];
    args.extend(extra);
    let o = fusionprot(&args);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn merged_shards_equal_one_prepare_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = inputs(dir.path());
    let single = dir.path().join("single");
    prepare(&input, &single, &[]);
    let want = files(&single);
    let manifest: serde_json::Value =
        serde_json::from_slice(&want["manifest.json"]).expect("manifest");
    // The inputs exercise what must be resolved globally.
    assert!(
        manifest["counts"]["duplicates_skipped"].as_u64() >= Some(2),
        "{manifest}"
    );
    assert_eq!(manifest["counts"]["files_failed"], 1, "{manifest}");
    let ids = String::from_utf8_lossy(
        &fusionprot(&["show", s(&single), "--table", "proteins", "--limit", "1000"]).stdout,
    )
    .into_owned();
    assert!(
        ids.contains("t1/ranked_0") && ids.contains("t2/ranked_0"),
        "{ids}"
    );

    for n in [1usize, 3, 4] {
        let shards: Vec<PathBuf> = (0..n)
            .map(|i| dir.path().join(format!("n{n}/shard-{i}")))
            .collect();
        for (i, shard) in shards.iter().enumerate() {
            prepare(&input, shard, &["--shard", &format!("{i}/{n}")]);
        }
        let merged = dir.path().join(format!("n{n}/merged"));
        // Given in reverse order: the order of the arguments does not matter.
        let mut args = vec!["merge".to_owned()];
        args.extend(shards.iter().rev().map(|p| s(p).to_owned()));
        args.extend(["--out".to_owned(), s(&merged).to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = fusionprot(&args);
        assert!(o.status.success(), "{}", text(&o));
        let got = files(&merged);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{n} shards"
        );
        for (name, bytes) in &want {
            assert!(
                &got[name] == bytes,
                "{n} shards: {name} differs{}",
                if name == "manifest.json" {
                    format!(
                        ":\n{}\nvs\n{}",
                        String::from_utf8_lossy(&got[name]),
                        String::from_utf8_lossy(bytes)
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    // With 4 shards, duplicates and the ranked_0 group really are spread over several shards.
    let mut holders = BTreeMap::<String, Vec<usize>>::new();
    let mut named_in = Vec::new();
    for i in 0..4 {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(format!("n4/shard-{i}/manifest.json"))).expect("m"),
        )
        .expect("json");
        if m["shard"]["named"]
            .as_array()
            .expect("named")
            .iter()
            .any(|n| n["entry"] == "ranked_0")
        {
            named_in.push(i);
        }
        for e in m["shard"]["entries"].as_array().expect("entries") {
            holders
                .entry(e["original_id"].as_str().expect("id").to_owned())
                .or_default()
                .push(i);
        }
    }
    assert!(
        holders.values().any(|v| v.windows(2).any(|w| w[0] != w[1])),
        "no protein id is in two shards: {holders:?}"
    );
    assert!(
        named_in.len() >= 2,
        "the ranked_0 files are all in one shard: {named_in:?}"
    );
}

#[test]
fn shards_that_do_not_fit_together_are_refused_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = inputs(dir.path());
    let shard = |name: &str, spec: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec!["--shard", spec];
        args.extend(extra);
        prepare(&input, &out, &args);
        out
    };
    let s0 = shard("s0", "0/3", &[]);
    let s1 = shard("s1", "1/3", &[]);
    let s2 = shard("s2", "2/3", &[]);
    let s2_truncated = shard("s2t", "2/3", &["--truncate", "50"]);
    let whole = dir.path().join("whole");
    prepare(&input, &whole, &[]);
    // An existing dataset at --out stays as it was after every refusal.
    let before = files(&whole);
    let other_inputs = dir.path().join("other");
    std::fs::create_dir_all(&other_inputs).expect("mkdir");
    std::fs::copy(input.join("real/1AFS.pdb"), other_inputs.join("1AFS.pdb")).expect("copy");
    let foreign = dir.path().join("foreign");
    prepare(&other_inputs, &foreign, &["--shard", "2/3"]);
    let cases: Vec<(Vec<&Path>, &str)> = vec![
        (vec![&s0, &s2], "missing shard 1/3"),
        (vec![&s0, &s1, &s1, &s2], "given twice"),
        (vec![&s0, &s1, &s2_truncated], "differ in parameters"),
        (vec![&s0, &s1, &whole], "not a shard"),
        (vec![&s0, &s1, &foreign], "differ in input lists"),
    ];
    for (shards, why) in cases {
        let mut args = vec!["merge"];
        args.extend(shards.iter().map(|p| s(p)));
        args.extend(["--out", s(&whole)]);
        let o = fusionprot(&args);
        assert!(!o.status.success(), "{why}: merged anyway");
        assert!(text(&o).contains(why), "{why}: {}", text(&o));
        assert_eq!(files(&whole), before, "{why}: the dataset changed");
    }
    let o = fusionprot(&[
        "prepare",
        s(&input),
        "--out",
        s(&dir.path().join("x")),
        "--shard",
        "3/3",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("0 <= I < N"), "{}", text(&o));
}

/// The shipped Snakefile (Snakemake from PyPI, local executor): 3 shards, merge, the split's
/// search in 2 chunks, split; the tables equal one `prepare` byte for byte and the split is stored.
#[test]
fn the_snakefile_prepares_merges_and_splits() {
    let snakemake = common::python().with_file_name("snakemake");
    if !snakemake.exists() {
        panic!("{} missing: run scripts/setup", snakemake.display());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = inputs(dir.path());
    let single = dir.path().join("single");
    prepare(&input, &single, &[]);
    let wf = dir.path().join("wf");
    let snakefile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/Snakefile");
    let o = std::process::Command::new(&snakemake)
        .args([
            "-s",
            s(&snakefile),
            "--cores",
            "2",
            "--directory",
            s(dir.path()),
            "--config",
            &format!("inputs={}", s(&input)),
            &format!("out={}", s(&wf)),
            "shards=3",
            "threads=1",
            &format!("fusionprot={}", env!("CARGO_BIN_EXE_fusionprot")),
            "split=--name family --remove-to-separate",
            "search_chunks=2",
        ])
        .output()
        .expect("snakemake");
    assert!(o.status.success(), "{}", text(&o));
    let want = files(&single);
    let got = files(&wf.join("dataset"));
    for (name, bytes) in &want {
        if name.starts_with("proteins/")
            || name.starts_with("residues/")
            || name.starts_with("edges/")
        {
            assert!(&got[name] == bytes, "{name} differs");
        }
    }
    assert!(
        got.keys().any(|k| k.starts_with("splits/")),
        "{:?}",
        got.keys()
    );
    let m: serde_json::Value = serde_json::from_slice(&got["manifest.json"]).expect("manifest");
    assert!(m["splits"]["family"].is_object(), "{m}");
    assert_eq!(
        m["splits"]["family"]["parameters"]["search_chunks"], 2,
        "{m}"
    );
}

/// A one-node Slurm cluster (Debian's slurm-wlm and munge, started here as root by
/// scripts/slurm-cluster): `workflows/slurm/submit --wait` runs the prepare array and the merge
/// job; the dataset equals one `prepare` over the sample and the real files, byte for byte.
/// Skipped, saying so, only where Slurm is not installed or the tests do not run as root.
#[test]
fn the_slurm_array_and_merge_equal_one_prepare() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = dir.path().join("cluster");
    let up = std::process::Command::new(root.join("scripts/slurm-cluster"))
        .args(["start", s(&cluster)])
        .output()
        .expect("slurm-cluster");
    if up.status.code() == Some(3) {
        eprintln!(
            "SKIPPED the_slurm_array_and_merge_equal_one_prepare: {}",
            text(&up).trim()
        );
        return;
    }
    struct Stop(PathBuf, PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = std::process::Command::new(&self.0)
                .args(["stop", s(&self.1)])
                .output();
        }
    }
    let _stop = Stop(root.join("scripts/slurm-cluster"), cluster.clone());
    assert!(up.status.success(), "{}", text(&up));
    let input = inputs(dir.path());
    let sample = root.join("data/sample");
    let both = format!("{} {}", s(&sample), s(&input));
    let single = dir.path().join("single");
    let o = fusionprot(&[
        "prepare",
        s(&sample),
        s(&input),
        "--out",
        s(&single),
        "-j",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("slurm");
    let o = std::process::Command::new("timeout")
        .arg("600")
        .arg(root.join("workflows/slurm/submit"))
        .args([
            "--inputs",
            &both,
            "--out",
            s(&out),
            "--shards",
            "3",
            "--split",
            "",
            "--bin",
            env!("CARGO_BIN_EXE_fusionprot"),
            "--wait",
            "--",
            "--mem=1G",
            "--cpus-per-task=1",
        ])
        .env("SLURM_CONF", cluster.join("slurm.conf"))
        .output()
        .expect("submit");
    let logs: String = std::fs::read_dir(out.join("logs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    assert!(o.status.success(), "{}\n{logs}", text(&o));
    assert_eq!(files(&out.join("dataset")), files(&single), "{logs}");
    for i in 0..3 {
        assert!(out.join(format!("shards/{i}/manifest.json")).is_file());
    }
}
