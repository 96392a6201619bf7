//! End-to-end: `fusionprot split` states its identity definition, and refuses a coverage rule
//! where the definition has none.

use std::process::Output;

use fusionprot_pipeline::split::synthetic::{FamilySpec, synthetic_families};

mod common;
use common::fusionprot;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Six families of three synthetic proteins as a sequences-only dataset in `dir/ds`.
fn families(dir: &std::path::Path) -> String {
    let spec = FamilySpec {
        families: 6,
        members: 3,
        length: (100, 140),
        member_identity: 0.9,
        chain_every: 0,
        chain_identity: 0.0,
        relative_every: 0,
        relative_identity: 0.0,
        partial_every: 0,
        partial_window: 0.0,
        partial_share: 1.0,
        partial_identity: 0.0,
    };
    let records: Vec<(String, String)> = synthetic_families(&spec, 5)
        .into_iter()
        .map(|s| (s.id, s.sequence))
        .collect();
    let ds = dir.join("ds");
    fusionprot_pipeline::split::sequences_dataset(&ds, &records).expect("dataset");
    ds.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn the_default_identity_is_the_shorter_sequence_and_the_certificate_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = families(dir.path());
    let out = fusionprot(&["split", &ds, "-j", "2", "--fractions", "0.5,0.25,0.25"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for part in [
        "its identity reaches 0.3 (shorter: identical residues / length of the shorter sequence over the \
         Smith-Waterman local alignment (BLOSUM62, gap open 11, extend 1); no coverage rule)",
        "significant (E-value ≤ 0.001 for the Smith-Waterman score",
        "every pair of the 18 distinct sequences aligned exactly (153 pairs",
    ] {
        assert!(stdout.contains(part), "{part:?} not in {stdout}");
    }
    // Above --all-pairs-below: the MMseqs2 search, its candidates and the audit.
    let out = fusionprot(&[
        "split",
        &ds,
        "-j",
        "2",
        "--fractions",
        "0.5,0.25,0.25",
        "--all-pairs-below",
        "10",
        "--name",
        "searched",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("--seq-id-mode 1, candidates at identity >= 0.20"),
        "{stdout}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("ds/manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["splits"]["family"]["identity"]["name"], "shorter");
}

#[test]
fn coverage_options_need_the_aligned_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = families(dir.path());
    for flags in [&["-c", "0.8"][..], &["--cov-mode", "1"][..]] {
        let mut args = vec!["split", ds.as_str()];
        args.extend(flags);
        let out = fusionprot(&args);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{flags:?} accepted with shorter");
        assert!(
            stderr.contains(
                "error: -c / --cov-mode set a coverage rule, which only --identity aligned has"
            ),
            "{stderr}"
        );
    }
    assert!(
        !dir.path().join("ds/splits").exists(),
        "a refused run writes nothing"
    );
    let out = fusionprot(&[
        "split",
        &ds,
        "--identity",
        "aligned",
        "-c",
        "0.8",
        "-j",
        "2",
        "--fractions",
        "0.5,0.25,0.25",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "(aligned: identical residues / aligned columns (gap columns included) over the Smith-Waterman local \
             alignment (BLOSUM62, gap open 11, extend 1); a pair counts only when the alignment covers at least 0.8 \
             of both sequences (--cov-mode 0))"
        ),
        "{stdout}"
    );
    let out = fusionprot(&["split", &ds, "--identity", "aligned", "-c", "1.5"]);
    assert!(
        text(&out).1.contains("-c must be within 0–1, got 1.5"),
        "{}",
        text(&out).1
    );
}

/// The all-vs-all search as array tasks: three `--search-chunk I/3` runs (each reads the dataset
/// only) and a split with `--hits` give the same split and certificate as one process; chunk files
/// that are missing, repeated or searched with other settings are refused and nothing is written.
#[test]
fn a_search_in_chunks_splits_as_one_process_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = FamilySpec {
        families: 12,
        members: 4,
        length: (80, 160),
        member_identity: 0.6,
        chain_every: 0,
        chain_identity: 0.0,
        relative_every: 3,
        relative_identity: 0.35,
        partial_every: 4,
        partial_window: 0.5,
        partial_share: 0.5,
        partial_identity: 0.8,
    };
    let records: Vec<(String, String)> = synthetic_families(&spec, 11)
        .into_iter()
        .map(|s| (s.id, s.sequence))
        .collect();
    let ds = dir.path().join("ds");
    fusionprot_pipeline::split::sequences_dataset(&ds, &records).expect("dataset");
    let ds_s = ds.to_str().expect("utf8");
    // The search path (a set this small is otherwise aligned pair by pair).
    let common = [
        "-j",
        "2",
        "--fractions",
        "0.5,0.25,0.25",
        "--all-pairs-below",
        "0",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["split", ds_s];
        args.extend(common);
        args.extend(extra);
        fusionprot(&args)
    };
    let o = run(&["--name", "one"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let hits: Vec<String> = (0..3)
        .map(|i| {
            dir.path()
                .join(format!("hits-{i}.tsv"))
                .display()
                .to_string()
        })
        .collect();
    // Chunks only read the dataset: every file in it is as it was, and no lock is taken, so
    // array tasks can run side by side (two at once here).
    let listing = |dir: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    v.push((p.display().to_string(), std::fs::read(&p).expect("read")));
                }
            }
        }
        v.sort();
        v
    };
    let before = listing(&ds);
    std::thread::scope(|sc| {
        let tasks: Vec<_> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                sc.spawn(move || run(&["--search-chunk", &format!("{i}/3"), "--hits-out", h]))
            })
            .collect();
        for t in tasks {
            let o = t.join().expect("chunk");
            assert!(o.status.success(), "{:?}", text(&o));
        }
    });
    assert_eq!(listing(&ds), before, "a chunk wrote into the dataset");
    let lines: usize = hits
        .iter()
        .map(|h| std::fs::read_to_string(h).expect("hits").lines().count() - 1)
        .sum();
    assert!(lines > 20, "{lines} hits");
    let mut args = vec!["--name", "chunked", "--hits"];
    args.extend(hits.iter().map(String::as_str));
    let o = run(&args);
    assert!(o.status.success(), "{:?}", text(&o));
    let rows = fusionprot_pipeline::dataset::splits::read_splits(&ds).expect("splits");
    let of = |name: &str| -> Vec<(String, String, Option<String>, Option<i32>)> {
        rows.iter()
            .filter(|r| r.name == name)
            .map(|r| {
                (
                    r.protein_id.clone(),
                    r.split.clone(),
                    r.cluster_id.clone(),
                    r.component_id,
                )
            })
            .collect()
    };
    assert_eq!(of("one"), of("chunked"));
    assert_eq!(of("one").len(), records.len());
    let manifest = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(ds.join("manifest.json")).expect("m"))
            .expect("json")
    };
    let m = manifest();
    for key in [
        "counts",
        "components",
        "search_pairs",
        "cross_split_pairs_checked",
        "rounds",
        "max_cross_split",
        "audit_max",
    ] {
        assert_eq!(
            m["splits"]["one"][key], m["splits"]["chunked"][key],
            "{key}"
        );
    }
    // Refused before anything is written.
    let before = std::fs::read(ds.join("manifest.json")).expect("manifest");
    let other = dir.path().join("other-settings.tsv").display().to_string();
    let o = run(&["--search-chunk", "2/3", "--hits-out", &other, "-s", "4"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&hits[0], &hits[1]], "missing chunk 2/3"),
        (vec![&hits[0], &hits[1], &hits[1], &hits[2]], "given twice"),
        (vec![&hits[0], &hits[1], &other], "other settings"),
    ];
    for (files, why) in cases {
        let mut args = vec!["--name", "bad", "--hits"];
        args.extend(files);
        let o = run(&args);
        let (out, err) = text(&o);
        assert!(!o.status.success(), "{why}: split anyway");
        assert!(err.contains(why), "{why}: {out}\n{err}");
        assert_eq!(
            std::fs::read(ds.join("manifest.json")).expect("m"),
            before,
            "{why}"
        );
    }
}
