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
    let snakefile =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../workflows/Snakefile");
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
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("..");
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = match common::SlurmCluster::start(dir.path(), None) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED the_slurm_array_and_merge_equal_one_prepare: {why}");
            return;
        }
    };
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
        .env("SLURM_CONF", &cluster.conf)
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

/// Every row of `table` read with pyarrow from the parts the manifest of `dataset` lists (or,
/// for a table it does not list, such as `splits`, from the table's folder; an independent reader), sorted by protein_id with each protein's rows in stored order, as JSON lines.
fn rows_by_protein(dataset: &Path, table: &str) -> String {
    let o = std::process::Command::new(common::python())
        .args([
            "-c",
            "import json, sys, os, pyarrow as pa, pyarrow.parquet as pq\n\
             d, t = sys.argv[1], sys.argv[2]\n\
             m = json.load(open(os.path.join(d, 'manifest.json')))\n\
             paths = [p['path'] for p in m['tables'][t]['parts']] if t in m['tables'] else sorted(os.path.join(t, f) for f in os.listdir(os.path.join(d, t)))\n\
             parts = [pq.read_table(os.path.join(d, p)) for p in paths]\n\
             tab = pa.concat_tables(parts)\n\
             tab = tab.append_column('_i', pa.array(range(tab.num_rows)))\n\
             tab = tab.sort_by([('protein_id', 'ascending'), ('_i', 'ascending')]).drop_columns(['_i'])\n\
             for r in tab.to_pylist(): print(json.dumps(r, default=str))",
        ])
        .arg(dataset)
        .arg(table)
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).expect("utf8")
}

/// `merge --link` writes only a manifest over the shards' parts: every reader (an independent
/// one, `show`, `split`, SQL, `doctor`) sees the copying merge's proteins and rows; what a link
/// cannot represent (a duplicate across shards, a name the whole run changes) is refused before
/// writing; a shard changed or a part removed afterwards is an error naming it.
/// The real files of `all/real` without the ones whose id another file also has (a PDB and an
/// mmCIF of one entry), copied to `dir/clean`: a set whose shards a link can represent.
fn clean_real(dir: &Path, all: &Path) -> PathBuf {
    let real = dir.join("clean");
    let first = dir.join("first");
    prepare(&all.join("real"), &first, &[]);
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("manifest.json")).expect("m"))
            .expect("json");
    let skipped: Vec<&str> = first["duplicates"]
        .as_array()
        .expect("duplicates")
        .iter()
        .map(|d| d["skipped"].as_str().expect("skipped"))
        .collect();
    assert!(!skipped.is_empty(), "{first}");
    std::fs::create_dir_all(&real).expect("mkdir");
    for e in std::fs::read_dir(all.join("real")).expect("real") {
        let p = e.expect("entry").path();
        if !skipped.iter().any(|k| p.ends_with(k)) {
            std::fs::copy(&p, real.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    real
}

/// `input` prepared as three shards in `dir/shards/shard-I`.
fn three_shards(dir: &Path, input: &Path) -> Vec<PathBuf> {
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("shards/shard-{i}")))
        .collect();
    for (i, shard) in shards.iter().enumerate() {
        prepare(input, shard, &["--shard", &format!("{i}/3")]);
    }
    shards
}

/// `fusionprot merge SHARDS… --out OUT EXTRA…`.
fn merge_into(shards: &[PathBuf], out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|p| s(p)));
    args.extend(["--out", s(out)]);
    args.extend(extra);
    fusionprot(&args)
}

#[test]
fn linked_shards_read_as_the_copied_merge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all = inputs(dir.path());
    let real = clean_real(dir.path(), &all);
    let single = dir.path().join("single");
    prepare(&real, &single, &[]);
    let single_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(single.join("manifest.json")).expect("m"))
            .expect("json");
    assert_eq!(single_manifest["counts"]["duplicates_skipped"], 0);
    let shards = three_shards(dir.path(), &real);
    let merge = |out: &Path, extra: &[&str]| merge_into(&shards, out, extra);
    let copied = dir.path().join("copied");
    let o = merge(&copied, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let linked = dir.path().join("linked");
    let o = merge(&linked, &["--link"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("linked 3 shards"), "{}", text(&o));

    // Nothing copied: the linked folder holds its manifest only.
    assert_eq!(
        files(&linked).into_keys().collect::<Vec<_>>(),
        ["manifest.json"]
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(linked.join("manifest.json")).expect("m"))
            .expect("json");
    assert_eq!(m["link"]["shards"].as_array().map(Vec::len), Some(3), "{m}");
    assert_eq!(m["link"]["shards"][1]["path"], "../shards/shard-1");
    for key in [
        "counts",
        "inputs",
        "failures",
        "duplicates",
        "parameters",
        "graph",
    ] {
        assert_eq!(m[key], single_manifest[key], "{key}");
    }
    // Every table, read independently through the manifest, has the same rows.
    for table in ["proteins", "residues", "edges"] {
        let want = rows_by_protein(&copied, table);
        assert!(want.lines().count() > 10, "{table}: {want}");
        assert_eq!(rows_by_protein(&linked, table), want, "{table}");
    }
    // A link over an existing dataset retires its tables through the journaled swap (left in
    // place they would hide the linked parts from every reader).
    let over = dir.path().join("over");
    let o = merge(&over, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = merge(&over, &["--link"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        files(&over).into_keys().collect::<Vec<_>>(),
        ["manifest.json"]
    );
    assert_eq!(
        rows_by_protein(&over, "residues"),
        rows_by_protein(&copied, "residues")
    );

    // Our own readers: one protein, a whole table, a split, SQL over the registered dataset.
    let protein = |ds: &Path| {
        let o = fusionprot(&["show", s(ds), "--table", "residues", "--protein", "1AFS_A"]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(protein(&linked), protein(&copied));
    for ds in [&copied, &linked] {
        let o = fusionprot(&["split", s(ds), "--name", "family", "--remove-to-separate"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_eq!(
        rows_by_protein(&linked, "splits"),
        rows_by_protein(&copied, "splits")
    );
    let db = dir.path().join("fp.db");
    for (ds, name) in [(&copied, "copied"), (&linked, "linked")] {
        let o = fusionprot(&["register", s(ds), "--name", name, "--db", s(&db)]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let sql = |q: &str| {
        let o = fusionprot(&["query", q, "--db", s(&db), "--format", "csv"]);
        assert!(o.status.success(), "{q}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let count =
        "SELECT count(*) AS n, count(DISTINCT protein_id) AS p, sum(x) AS sx FROM {}_residues";
    assert_eq!(
        sql(&count.replace("{}", "linked")),
        sql(&count.replace("{}", "copied"))
    );
    let o = fusionprot(&["doctor", s(&linked)]);
    assert!(o.status.success(), "{}", text(&o));

    // A part removed: the readers name it.
    let part = shards[2].join("residues/part-00000.parquet");
    let aside = dir.path().join("aside.parquet");
    std::fs::rename(&part, &aside).expect("move");
    let o = fusionprot(&[
        "show",
        s(&linked),
        "--table",
        "residues",
        "--limit",
        "100000",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("shard-2/residues/part-00000.parquet"),
        "{}",
        text(&o)
    );
    std::fs::rename(&aside, &part).expect("back");
    // A shard prepared again after the link: doctor says which.
    let shard_manifest = shards[1].join("manifest.json");
    let mut changed = std::fs::read_to_string(&shard_manifest).expect("manifest");
    changed.push(' ');
    std::fs::write(&shard_manifest, changed).expect("write");
    let o = fusionprot(&["doctor", s(&linked)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("linked shard ../shards/shard-1 was changed"),
        "{}",
        text(&o)
    );

    // Shards a link cannot represent (duplicates across shards, path-derived names), refused
    // before anything is written.
    let hard: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("hard/shard-{i}")))
        .collect();
    for (i, shard) in hard.iter().enumerate() {
        prepare(&all, shard, &["--shard", &format!("{i}/4")]);
    }
    let out = dir.path().join("hard-linked");
    let mut args = vec!["merge"];
    args.extend(hard.iter().map(|p| s(p)));
    args.extend(["--out", s(&out), "--link"]);
    let o = fusionprot(&args);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--link cannot drop or rename rows"),
        "{}",
        text(&o)
    );
    assert!(!out.join("manifest.json").exists());
}

/// Issue 20, cases 2 and 3. `merge` copied a shard with a missing `edges` part (exit 0, a
/// protein with residues and no edges, `doctor` ok) and re-hashed a rewritten part as its own;
/// a `merge --link` dataset read a shard prepared again after the link (fewer proteins than its
/// manifest says) and `split` ran on it. Now merge checks every part of every shard (present,
/// listed, size, sha256) before writing anything, and every reader of a link checks that its
/// shards hold the manifests it linked, naming the shard.
#[test]
fn issue_20_merge_and_link_refuse_shards_that_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all = inputs(dir.path());
    let real = clean_real(dir.path(), &all);
    let shards = three_shards(dir.path(), &real);
    let merge = |out: &Path, extra: &[&str]| merge_into(&shards, out, extra);
    let out = dir.path().join("merged");
    let refused = |why: &str, name: &str| {
        let o = merge(&out, &[]);
        let t = text(&o);
        assert!(!o.status.success(), "{why}: merged anyway:\n{t}");
        assert!(t.contains("shard-1") && t.contains(name), "{why}: {t}");
        assert!(!out.exists(), "{why}: something was written at --out");
    };
    let edges = shards[1].join("edges/part-00000.parquet");
    let aside = dir.path().join("aside.parquet");
    std::fs::rename(&edges, &aside).expect("move");
    refused("a missing part", "edges/part-00000.parquet");
    std::fs::rename(&aside, &edges).expect("back");
    // Rewritten with the same size: only its sha256 tells.
    let residues = shards[1].join("residues/part-00000.parquet");
    let original = std::fs::read(&residues).expect("part");
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    std::fs::write(&residues, &flipped).expect("write");
    refused("a rewritten part", "rewritten after the shard was prepared");
    std::fs::write(&residues, &original).expect("write");
    let extra = shards[1].join("residues/part-00001.parquet");
    std::fs::write(&extra, &original).expect("write");
    refused("an extra part", "residues/part-00001.parquet is not listed");
    std::fs::remove_file(&extra).expect("rm");
    let o = merge(&out, &[]);
    assert!(o.status.success(), "{}", text(&o));

    // The link, then shard 1 prepared again from fewer files.
    let linked = dir.path().join("linked");
    let o = merge(&linked, &["--link"]);
    assert!(o.status.success(), "{}", text(&o));
    let db = dir.path().join("fp.db");
    let o = fusionprot(&["register", s(&linked), "--db", s(&db)]);
    assert!(o.status.success(), "{}", text(&o));
    let fewer = dir.path().join("fewer");
    std::fs::create_dir_all(&fewer).expect("mkdir");
    for f in ["1AFS.pdb", "1orc.pdb", "3CRO.pdb"] {
        std::fs::copy(real.join(f), fewer.join(f)).expect("copy");
    }
    prepare(&fewer, &shards[1], &[]);
    let changed = "linked shard ../shards/shard-1 was changed after the link";
    for args in [
        vec!["show", s(&linked), "--table", "proteins", "--limit", "1000"],
        vec!["split", s(&linked), "--name", "family"],
        vec!["doctor", s(&linked)],
    ] {
        let o = fusionprot(&args);
        assert!(
            !o.status.success() && text(&o).contains(changed),
            "{args:?}: {}",
            text(&o)
        );
    }
    assert!(!linked.join("splits").exists());
    let o = fusionprot(&[
        "query",
        "SELECT count(*) FROM linked_proteins",
        "--db",
        s(&db),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(changed), "{}", text(&o));
}
