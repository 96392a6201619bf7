//! The graph agrees edge for edge with an independent Python implementation of spec §2.2
//! (tests/peer/graph_peer.py, numpy) on every real structure file, per chain and whole-entry.
//! Exact agreement is expected: both sides compute squared distances in f32 in the same order,
//! so even pairs on the 10 Å boundary are decided alike.

mod common;

use fusionprot_pipeline::protein::ProteinOptions;

fn check(opts: ProteinOptions, min_proteins: usize) {
    let out = tempfile::tempdir().expect("tempdir");
    let summary = common::run(&[common::real_dir()], out.path(), opts, 2);
    assert_eq!(summary.counts.files_failed, 0, "{:?}", summary.failures);
    assert!(
        summary.counts.proteins >= min_proteins,
        "{} proteins",
        summary.counts.proteins
    );
    let peer = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("tests/peer/graph_peer.py");
    let result = std::process::Command::new(common::python())
        .arg(&peer)
        .arg(out.path())
        .output()
        .expect("run the Python peer");
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "peer disagrees or failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("peer prints JSON");
    assert_eq!(report["proteins"], summary.counts.proteins as u64);
    assert_eq!(report["edges_ours"], summary.counts.edges);
    assert_eq!(report["edges_peer"], summary.counts.edges);
}

#[test]
fn graph_matches_the_python_peer_on_every_real_chain() {
    check(ProteinOptions::default(), 75);
}

#[test]
fn whole_entry_graph_matches_the_python_peer() {
    check(
        ProteinOptions {
            whole_entry: true,
            ..Default::default()
        },
        40,
    );
}

#[test]
fn truncated_graph_matches_the_python_peer() {
    check(
        ProteinOptions {
            truncate: Some(100),
            ..Default::default()
        },
        75,
    );
}
