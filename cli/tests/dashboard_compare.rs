//! The dashboard's comparisons in a real browser (Debian's chromium-headless-shell; skipped,
//! saying so, where it is not installed): a baseline run and every other row's Δ to it, groups
//! with their 95% bootstrap interval and Δ / p against a baseline group, the paper table's
//! baseline row, and columns that default to the params that vary. Every number shown is checked
//! against the API's or SQL's.

mod common;

use std::process::Command;

use common::browser::{attrs, chromium, dom};
use serde_json::{Value, json};

fn post(base: &str, path: &str, body: &Value) -> Value {
    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
        ])
        .arg(body.to_string())
        .arg(format!("{base}{path}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {path}");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// `got` equals `want` to 1e-12 (the page and a second API call may sum in another order).
fn near(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

fn floats(page: &str, attr: &str) -> Vec<f64> {
    attrs(page, attr)
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect()
}

#[test]
fn baselines_intervals_tests_and_varying_columns_in_a_browser() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED baselines_intervals_tests_and_varying_columns_in_a_browser: chromium-headless-shell is not installed (scripts/setup installs it where apt can)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::serve(
        dir.path(),
        dir.path().join("fp.db").to_str().expect("utf8"),
        &[],
    );
    let base = format!("http://{}", server.addr);
    let exp = post(
        &base,
        "/api/2.0/mlflow/experiments/create",
        &json!({ "name": "cmp" }),
    )["experiment_id"]
        .as_str()
        .expect("exp")
        .to_owned();
    // 2 models x 4 seeds on one task (a param every run has alike)
    let mut ids = Vec::new();
    let mut value = std::collections::BTreeMap::new();
    for (m, model) in ["esm2", "fusionprot"].iter().enumerate() {
        for seed in 1..=4u32 {
            let id = post(
                &base,
                "/api/2.0/mlflow/runs/create",
                &json!({ "experiment_id": exp, "run_name": format!("{model}-s{seed}"), "start_time": 10 * m + seed as usize }),
            )["run"]["info"]["run_id"]
                .as_str()
                .expect("run")
                .to_owned();
            let v = 0.55
                + 0.05 * m as f64
                + 0.004 * f64::from(seed * seed % 5)
                + 0.001 * f64::from(seed)
                + 0.002 * f64::from(seed * (m as u32 + 3) % 4);
            post(
                &base,
                "/api/2.0/mlflow/runs/log-batch",
                &json!({ "run_id": id,
                    "metrics": [{ "key": "test/fmax", "value": v, "step": 0, "timestamp": 0 }],
                    "params": [{ "key": "model", "value": model }, { "key": "seed", "value": seed.to_string() },
                               { "key": "task", "value": "ec" }] }),
            );
            value.insert(id.clone(), v);
            ids.push(id);
        }
    }

    // Varying-only: with no columns chosen, the params that differ (model, seed) are shown, the
    // one every run has alike (task) is not.
    let page = dom(&browser, &format!("{base}/?view=runs&exp={exp}"));
    assert!(
        page.contains(">model<") && page.contains(">seed<"),
        "{page}"
    );
    assert!(!page.contains(">task<"), "a constant param became a column");

    // A baseline run: every other row shows its Δ to it, as the values say.
    let baseline = &ids[0];
    let page = dom(
        &browser,
        &format!("{base}/?view=runs&exp={exp}&cols=metrics.test/fmax&base={baseline}"),
    );
    let deltas = floats(&page, "data-delta");
    assert_eq!(deltas.len(), 7, "every row but the baseline's: {page}");
    let mut want: Vec<f64> = ids[1..]
        .iter()
        .map(|i| value[i] - value[baseline])
        .collect();
    let mut got = deltas.clone();
    want.sort_by(f64::total_cmp);
    got.sort_by(f64::total_cmp);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
    assert!(
        page.contains("class=\"base on\""),
        "the baseline is not marked"
    );

    // Groups by model with a baseline group: intervals around the means, Δ and Welch's p as
    // the API computes them.
    let gbase = r#"[["params.model","esm2"]]"#;
    let page = dom(
        &browser,
        &format!(
            "{base}/?view=runs&exp={exp}&group=params.model&cols=metrics.test/fmax&gbase={}",
            gbase.replace('"', "%22")
        ),
    );
    let api = post(
        &base,
        "/api/fusionprot/dashboard/groups",
        &json!({ "experiment_ids": [exp], "group_by": "params.model", "columns": ["metrics.test/fmax"],
                 "baseline": [["params.model", "esm2"]] }),
    );
    let col = &api["columns"]["metrics.test/fmax"];
    let (lo, hi, means) = (
        floats(&page, "data-ci-lo"),
        floats(&page, "data-ci-hi"),
        floats(&page, "data-mean"),
    );
    assert_eq!((lo.len(), hi.len(), means.len()), (2, 2, 2), "{page}");
    for i in 0..2 {
        assert!(
            lo[i] < means[i] && means[i] < hi[i],
            "{lo:?} {means:?} {hi:?}"
        );
        near(&lo[i..=i], &[col["ci_lo"][i].as_f64().expect("lo")]);
    }
    near(
        &floats(&page, "data-p"),
        &[col["p"][1].as_f64().expect("p")],
    );
    near(
        &floats(&page, "data-delta"),
        &[col["delta"][1].as_f64().expect("delta")],
    );
    assert!(
        page.contains("Welch's t-test, two-sided"),
        "the test is not named"
    );
    assert!(
        page.contains("10000 resamples, seed"),
        "the bootstrap is not stated"
    );
    // the paired test, chosen in the page, pairs by seed
    let page = dom(
        &browser,
        &format!(
            "{base}/?view=runs&exp={exp}&group=params.model&cols=metrics.test/fmax&test=paired&gbase={}",
            gbase.replace('"', "%22")
        ),
    );
    assert!(page.contains("paired t-test, two-sided"), "{page}");
    let paired = post(
        &base,
        "/api/fusionprot/dashboard/groups",
        &json!({ "experiment_ids": [exp], "group_by": "params.model", "columns": ["metrics.test/fmax"],
                 "baseline": [["params.model", "esm2"]], "test": "paired" }),
    );
    near(
        &floats(&page, "data-p"),
        &[paired["columns"]["metrics.test/fmax"]["p"][1]
            .as_f64()
            .expect("p")],
    );

    // The paper table with a baseline row and intervals; its exports carry them too.
    let page = dom(
        &browser,
        &format!(
            "{base}/?view=paper&exp={exp}&group=params.model&metrics=test/fmax&ci=1&pbase={}",
            gbase.replace('"', "%22")
        ),
    );
    near(
        &floats(&page, "data-delta"),
        &[col["delta"][1].as_f64().expect("delta")],
    );
    assert!(page.contains("class=\"baseline\""), "{page}");
    let markdown = page.split("id=\"markdown\"").nth(1).expect("markdown");
    assert!(
        markdown.contains("Δ +") && markdown.contains("(p="),
        "{markdown}"
    );
}
