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
    assert!(
        stdout.contains(
            "(identity `shorter` = identical residues / length of the shorter sequence, exact Smith-Waterman, \
             BLOSUM62, no coverage rule)"
        ),
        "{stdout}"
    );
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
            "(identity `aligned` = identical residues / aligned columns (gap columns included), exact \
             Smith-Waterman, BLOSUM62, coverage -c 0.8 --cov-mode 0)"
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
