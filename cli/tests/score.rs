//! `fusionprot score` against independent peers (cli/tests/peer/score_peer.py): TorchDrug's own
//! formulas in float64 torch with stable sorts (`--ties index`), sklearn's AUROC / AP and Fmax from
//! its definition (`--ties grouped`), on random, tied, ±0, all-negative and one-column (MSP) sets.
//! Tolerance 1e-9: both sides accumulate in float64 over the same float32 scores, so only the
//! order of additions differs. Bad tables fail naming the row.

mod common;

use std::path::Path;

use common::{fusionprot, python, text};

fn score(path: &Path, ties: &str) -> serde_json::Map<String, serde_json::Value> {
    let o = fusionprot(&[
        "score",
        path.to_str().expect("utf8"),
        "--json",
        "--ties",
        ties,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v.as_object().expect("object").clone()
}

#[test]
fn metrics_match_torchdrug_formulas_and_sklearn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer/score_peer.py");
    let o = std::process::Command::new(python())
        .arg(script)
        .arg(dir.path())
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", text(&o));
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("expected.json")).expect("expected"))
            .expect("json");
    let mut compared = 0;
    for (case, modes) in expected.as_object().expect("cases") {
        let path = dir.path().join(format!("{case}.parquet"));
        for (ties, want) in modes.as_object().expect("modes") {
            let got = score(&path, ties);
            for (metric, w) in want.as_object().expect("metrics") {
                let g = got[metric]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{case} {ties}: no {metric}"));
                let w = w.as_f64().expect("number");
                assert!(
                    (g - w).abs() <= 1e-9,
                    "{case} --ties {ties} {metric}: ours {g}, peer {w}"
                );
                compared += 1;
            }
            if ties == "index" {
                let mut keys: Vec<&String> = got.keys().collect();
                keys.sort();
                let mut want_keys: Vec<&String> = want.as_object().expect("m").keys().collect();
                want_keys.sort();
                assert_eq!(keys, want_keys, "{case}: exactly TorchDrug's metric names");
            }
        }
    }
    assert!(compared >= 30, "{compared}");
    // Ties matter: the tied case differs between the two orders.
    let tied = dir.path().join("tied.parquet");
    assert_ne!(
        score(&tied, "index")["auroc@micro"],
        score(&tied, "grouped")["auroc@micro"]
    );
}

#[test]
fn bad_tables_are_refused_naming_the_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let code = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
lst = pa.list_(pa.float32())
def w(name, preds, targets):
    pq.write_table(pa.table({"protein_id": [f"x{i}" for i in range(len(preds))],
        "prediction": pa.array(preds, type=lst), "target": pa.array(targets, type=lst)}), f"{sys.argv[1]}/{name}.parquet")
w("ragged", [[0.1, 0.2], [0.3]], [[0, 1], [1]])
w("nan", [[0.1, 0.2], [float("nan"), 0.3]], [[0, 1], [1, 0]])
w("target", [[0.1, 0.2], [0.2, 0.3]], [[0, 1], [1, 0.5]])
w("empty", [], [])
pq.write_table(pa.table({"protein_id": ["x0", "x1", "x0"],
    "prediction": pa.array([[0.1], [0.2], [0.3]], type=lst), "target": pa.array([[0], [1], [1]], type=lst)}),
    f"{sys.argv[1]}/duplicate.parquet")
pq.write_table(pa.table({"protein_id": ["a"], "scores": pa.array([[0.1]], type=lst)}), f"{sys.argv[1]}/nocol.parquet")
"#;
    let o = std::process::Command::new(python())
        .arg("-c")
        .arg(code)
        .arg(dir.path())
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", text(&o));
    for (case, message) in [
        (
            "ragged",
            "row 1 (x1): prediction has 1 values, earlier rows 2",
        ),
        ("nan", "row 1 (x1): prediction[0] is NaN"),
        (
            "target",
            "row 1 (x1): target[1] is 0.5, targets must be 0 or 1",
        ),
        ("empty", "the table has no rows"),
        (
            "duplicate",
            "protein x0 is listed twice (rows 0 and 2): each protein is scored once",
        ),
        ("nocol", "no column \"prediction\""),
    ] {
        let p = dir.path().join(format!("{case}.parquet"));
        let o = fusionprot(&["score", p.to_str().expect("utf8")]);
        assert!(!o.status.success(), "{case}");
        assert!(text(&o).contains(message), "{case}: {}", text(&o));
        assert!(
            text(&o).contains(&format!("{case}.parquet")),
            "{case}: names the file"
        );
    }
}

/// Issue 20: polars and pyarrow write large strings, large and fixed-size lists, float64 and
/// dictionary-encoded ids by default; `score` refused them. Every one now scores exactly as the
/// plain `list<float32>` table with the same values.
#[test]
fn issue_20_tables_in_polars_and_pyarrow_layouts_score_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let code = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
ids = [f"p{i}" for i in range(6)]
pred = [[0.9, 0.1, 0.4], [0.2, 0.8, 0.3], [0.6, 0.5, 0.7], [0.1, 0.2, 0.9], [0.3, 0.9, 0.2], [0.7, 0.4, 0.1]]
tgt = [[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0]]
out = sys.argv[1]
def w(name, id_type, list_type):
    ids_arr = pa.array(ids, type=id_type) if id_type is not None else pa.array(ids).dictionary_encode()
    pq.write_table(pa.table({"protein_id": ids_arr, "prediction": pa.array(pred, type=list_type),
        "target": pa.array(tgt, type=list_type)}), f"{out}/{name}.parquet")
w("plain", pa.string(), pa.list_(pa.float32()))
w("large", pa.large_string(), pa.large_list(pa.float64()))
w("fixed", pa.string(), pa.list_(pa.float32(), 3))
w("dictionary", None, pa.list_(pa.float64()))
"#;
    let o = std::process::Command::new(python())
        .arg("-c")
        .arg(code)
        .arg(dir.path())
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", text(&o));
    let plain = score(&dir.path().join("plain.parquet"), "index");
    for case in ["large", "fixed", "dictionary"] {
        assert_eq!(
            score(&dir.path().join(format!("{case}.parquet")), "index"),
            plain,
            "{case}"
        );
    }
}
