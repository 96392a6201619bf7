//! End-to-end: the per-class breakdown of a run's predictions artifact — the bundled sample
//! prepared and registered, a run linked to it logging an EC-style predictions table with the real
//! mlflow client — equals `fusionprot score` on each sub-table built independently in Python
//! (`tests/peer/breakdown_check.py`); the run page shows it in a browser; and what cannot be
//! broken down is refused or said, never guessed.

mod common;

use std::path::Path;

use common::browser::{attrs, chromium, dom};
use common::{fusionprot, serve, text};

#[test]
fn the_breakdown_of_a_runs_predictions_is_what_score_gives_on_each_bucket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../data/sample");
    let ds = dir.path().join("ec-sample");
    let o = fusionprot(&[
        "prepare",
        sample.to_str().expect("utf8"),
        "--out",
        ds.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let server = serve(
        dir.path(),
        dir.path().join("fp.db").to_str().expect("utf8"),
        &["--data-root", dir.path().to_str().expect("utf8")],
    );
    let url = format!("http://{}", server.addr);
    let dataset_id = common::register_dataset(&server, &ds);
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    let s = |p: &Path| p.to_str().expect("utf8").to_owned();
    let run = common::peer_run(
        "breakdown_check.py",
        &[
            &url,
            &s(&ds),
            &dataset_id,
            env!("CARGO_BIN_EXE_fusionprot"),
            &s(&work),
        ],
    );

    // `fusionprot score --by` gives the same buckets as the server, bit for bit.
    let served = common::breakdown(&server, &format!("run_id={run}"));
    let pred = work.join("test-predictions-best.parquet");
    let o = fusionprot(&[
        "score",
        pred.to_str().expect("utf8"),
        "--by",
        "ec-class",
        "--by",
        "length",
        "--dataset",
        ds.to_str().expect("utf8"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let cli: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    for view in served["breakdowns"].as_array().expect("views") {
        let by = view["by"].as_str().expect("by");
        assert_eq!(cli["breakdown"][by], view["buckets"], "{by}");
    }
    // … and says what it needs
    let o = fusionprot(&["score", pred.to_str().expect("utf8"), "--by", "length"]);
    assert!(
        !o.status.success() && text(&o).contains("--by length needs --dataset"),
        "{}",
        text(&o)
    );
    let o = fusionprot(&[
        "score",
        pred.to_str().expect("utf8"),
        "--by",
        "length",
        "--dataset",
        work.to_str().expect("utf8"),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("reading protein lengths"),
        "{}",
        text(&o)
    );

    // An artifact that is not there, or not a predictions table, is refused by name.
    let (status, _, body) = common::http_full(
        &server.addr,
        "GET",
        &format!("/api/fusionprot/dashboard/breakdown?run_id={run}&artifact=nope.parquet"),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nope.parquet"), "{body}");
    let (status, _, body) = common::http_full(
        &server.addr,
        "GET",
        &format!("/api/fusionprot/dashboard/breakdown?run_id={run}&artifact=../../x"),
    );
    assert_eq!(status, 400, "{body}");

    // The run page shows the breakdown: a row per bucket with its Fmax.
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the browser half of the_breakdown_of_a_runs_predictions_is_what_score_gives_on_each_bucket: no chromium-headless-shell"
        );
        return;
    };
    let page = dom(&browser, &format!("{url}/?view=run&run={run}"));
    let buckets = attrs(&page, "data-bucket");
    assert!(
        buckets.iter().any(|b| b == "EC 3 hydrolases") && buckets.iter().any(|b| b == "0–99"),
        "{buckets:?}\n{page}"
    );
    let fmax: Vec<f64> = attrs(&page, "data-fmax")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(fmax.len(), buckets.len());
    assert!(fmax.iter().all(|f| (0.0..=1.0).contains(f)), "{fmax:?}");
    assert!(
        page.contains("identity to train"),
        "the unavailable view is not said: {page}"
    );
}
