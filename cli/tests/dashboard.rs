//! The dashboard in a real browser (Debian's chromium-headless-shell, installed by scripts/setup;
//! skipped, saying so, where it is not installed) over runs logged by the real `mlflow` client:
//! the table shows them, a filter narrows them, grouping by "all but the seed" gives the mean ±
//! sd (n) SQL gives, the compare view draws the curves (and shows them as a table), the paper
//! table exports Markdown with the best in bold, the SQL console returns rows, and a run named
//! `<img src=x onerror=…>` stays text. Every page comes with a CSP that forbids inline scripts.
//! Screenshots are kept in the target folder's `tmp/dashboard/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Server;
use common::browser::{attrs, chromium, dom, screenshot};
use serde_json::{Value, json};

/// POSTs `body` as JSON to `url` (with curl, a client other than ours); the response body.
fn post_json(url: &str, body: &Value) -> Vec<u8> {
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
        .arg(url)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {url}");
    out.stdout
}

fn sql(server: &Server, query: &str) -> Vec<Value> {
    let out = common::fusionprot(&[
        "query",
        query,
        "--tracker",
        &format!("http://{}", server.addr),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["rows"].as_array().expect("rows").clone()
}

#[test]
fn the_dashboard_shows_compares_groups_and_exports_runs_in_a_browser() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the_dashboard_shows_compares_groups_and_exports_runs_in_a_browser: chromium-headless-shell is not installed (scripts/setup installs it where apt can)"
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
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer/dashboard_runs.py");
    let out = Command::new(common::python())
        .arg(&script)
        .arg(&base)
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", common::text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let logged: Value = serde_json::from_str(text.lines().last().expect("ids")).expect("json");
    let exp = logged["experiment_id"].as_str().expect("exp").to_owned();
    let run = |name: &str| logged["runs"][name].as_str().expect("run").to_owned();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).expect("mkdir");

    // The page and its policy.
    let (status, headers, _) = common::http_full(&server.addr, "GET", "/");
    assert_eq!(status, 200);
    let csp = headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .expect("a CSP header");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );

    // The runs table: every run, the probe's name as text.
    let page = dom(&browser, &format!("{base}/?view=runs&exp={exp}"));
    assert!(page.contains("10 runs"), "{page}");
    assert!(page.contains("fusionprot-1e-4-s1"), "{page}");
    assert!(
        page.contains("&lt;img src=x onerror=document.title='pwned'&gt;"),
        "the probe is not shown as text"
    );
    assert!(
        !page.contains("<img src=\"x\""),
        "the probe became an element"
    );
    assert!(!page.contains("<title>pwned"), "the probe ran");
    screenshot(
        &browser,
        &format!("{base}/?view=runs&exp={exp}"),
        &shots.join("runs.png"),
    );

    // A pinned column comes first and stays in view (it is "stuck"); the others follow.
    let page = dom(
        &browser,
        &format!("{base}/?view=runs&exp={exp}&cols=metrics.valid/fmax,params.lr&pin=params.lr"),
    );
    let lr = page.find(">lr<").expect("lr header");
    let valid = page.find(">valid/fmax<").expect("valid header");
    assert!(lr < valid, "the pinned column is not first");
    assert!(page.contains("vt-cell stuck"), "no stuck cell");

    // A filter narrows the table.
    let page = dom(
        &browser,
        &format!("{base}/?view=runs&exp={exp}&filter=params.model%20%3D%20'esm2'"),
    );
    assert!(page.contains("3 runs"), "{page}");
    assert!(!page.contains("fusionprot-1e-4-s1"));

    // Grouped by all but the seed: mean ± sd (n) as SQL computes them.
    let page = dom(
        &browser,
        &format!(
            "{base}/?view=runs&exp={exp}&group=all-but:seed&cols=metrics.test_at_best_valid/fmax"
        ),
    );
    let want = sql(
        &server,
        "SELECT avg(m.value), stddev_samp(m.value), count(*) FROM latest_metrics m
         JOIN params p ON p.run_uuid = m.run_uuid AND p.key = 'model'
         JOIN params l ON l.run_uuid = m.run_uuid AND l.key = 'lr'
         WHERE m.key = 'test_at_best_valid/fmax' GROUP BY p.value, l.value ORDER BY 1",
    );
    let means: Vec<f64> = attrs(&page, "data-mean")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let sds: Vec<f64> = attrs(&page, "data-sd")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(means.len(), 3, "{page}");
    for w in &want {
        let (m, s) = (w[0].as_f64().expect("mean"), w[1].as_f64().expect("sd"));
        assert!(
            means.iter().any(|x| (x - m).abs() < 1e-9),
            "mean {m} not in {means:?}"
        );
        assert!(
            sds.iter().any(|x| (x - s).abs() < 1e-9),
            "sd {s} not in {sds:?}"
        );
        assert_eq!(w[2], json!(3));
    }

    // The compare view draws the curves of the selected runs, and shows them as a table.
    let sel = format!("{},{}", run("fusionprot-1e-4-s1"), run("esm2-1e-4-s2"));
    let url = format!("{base}/?view=compare&sel={sel}&metrics=valid/fmax,train/loss");
    let page = dom(&browser, &url);
    let points: Vec<usize> = attrs(&page, "data-points")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(points.len(), 2, "{page}");
    assert!(points.iter().all(|&p| p > 40), "{points:?}");
    assert!(page.contains("<canvas"), "no chart drawn");
    screenshot(&browser, &url, &shots.join("compare.png"));
    let page = dom(&browser, &format!("{url}&table=1"));
    assert!(page.contains("as-table"), "{page}");
    assert!(
        page.contains("esm2-1e-4-s2 test/fmax"),
        "the test twin is drawn with valid"
    );

    // Groups of runs in the compare view: a mean and a ± sd band per group and metric.
    let fp_runs: Vec<String> = ["1e-4", "5e-5"]
        .iter()
        .flat_map(|lr| (1..=3).map(move |s| format!("fusionprot-{lr}-s{s}")))
        .map(|n| run(&n))
        .collect();
    let page = dom(
        &browser,
        &format!(
            "{base}/?view=compare&live=0&sel={}&metrics=valid/fmax&group=all-but:seed",
            fp_runs.join(",")
        ),
    );
    assert_eq!(
        attrs(&page, "data-lines"),
        ["4"],
        "2 groups x valid and test"
    );
    assert_eq!(attrs(&page, "data-bands"), ["4"]);
    screenshot(
        &browser,
        &format!(
            "{base}/?view=compare&live=0&sel={}&metrics=valid/fmax&group=all-but:seed",
            fp_runs.join(",")
        ),
        &shots.join("compare-groups.png"),
    );

    // Explore: a line per run across the axes; a brush keeps the runs in its range (as SQL says).
    let dims = "params.model,params.lr,metrics.test_at_best_valid/fmax:best";
    let page = dom(
        &browser,
        &format!("{base}/?view=explore&exp={exp}&dims={dims}"),
    );
    assert_eq!(page.matches("class=\"kept\"").count(), 10, "{page}");
    assert!(page.contains("id=\"scatter\""));
    let values: Vec<f64> = sql(
        &server,
        "SELECT value FROM latest_metrics WHERE key = 'test_at_best_valid/fmax'",
    )
    .iter()
    .map(|r| r[0].as_f64().expect("value"))
    .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let upper = values
        .iter()
        .filter(|v| (*v - lo) / (hi - lo) >= 0.5)
        .count();
    assert!(upper > 0 && upper < 9, "{values:?}");
    let page = dom(
        &browser,
        &format!(
            "{base}/?view=explore&exp={exp}&dims={dims}&brush=metrics.test_at_best_valid/fmax:best:0.5:1"
        ),
    );
    assert_eq!(page.matches("class=\"kept\"").count(), upper, "{page}");
    assert!(page.contains(&format!("{upper} of 10 runs in the brushes")));
    screenshot(
        &browser,
        &format!(
            "{base}/?view=explore&exp={exp}&dims={dims}&brush=metrics.test_at_best_valid/fmax:best:0.5:1"
        ),
        &shots.join("explore.png"),
    );

    // The paper table, with its Markdown export and the best in bold.
    let page = dom(
        &browser,
        &format!("{base}/?view=paper&exp={exp}&group=params.model"),
    );
    assert!(page.contains("id=\"paper\""), "{page}");
    let best = sql(
        &server,
        "SELECT p.value, avg(m.value) FROM latest_metrics m JOIN params p ON p.run_uuid = m.run_uuid AND p.key = 'model'
         WHERE m.key = 'test_at_best_valid/fmax' GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
    );
    let winner = best[0][0].as_str().expect("model");
    assert!(
        page.contains(&format!("| {winner} | **")),
        "the best model is not bold in the Markdown: {page}"
    );
    // Issue 20: names with Markdown's and LaTeX's specials are escaped in both exports (a pasted
    // reference row named a_b|c\d^e~f&g%h#i).
    let page = dom(
        &browser,
        &format!(
            "{base}/?view=paper&exp={exp}&group=params.model&refs=a_b%7Cc%5Cd%5Ee~f%26g%25h%23i%3A%200.5"
        ),
    );
    for (export, escaped) in [
        ("markdown", r"a\_b\|c\\d\^e\~f\&amp;g\%h\#i (published)"),
        (
            "latex",
            r"a\_b\textbar{}c\textbackslash{}d\textasciicircum{}e\textasciitilde{}f\&amp;g\%h\#i (published)",
        ),
    ] {
        assert!(
            page.contains(escaped),
            "{export} export: {escaped} not in {page}"
        );
    }

    // The SQL console returns rows.
    let page = dom(
        &browser,
        &format!("{base}/?view=sql&q=SELECT%20run_name%20FROM%20runs%20ORDER%20BY%201"),
    );
    assert!(page.contains("id=\"rows\""), "{page}");
    assert!(page.contains("esm2-1e-4-s1"));
    assert!(page.contains("10 rows"));

    // The console's Parquet download is a Parquet file of the same rows.
    let (status, _, _) = common::http_full(&server.addr, "GET", "/web/pages.js");
    assert_eq!(status, 200);
    let parquet = post_json(
        &format!("{base}/api/sql"),
        &json!({ "query": "SELECT run_name FROM runs ORDER BY 1", "format": "parquet" }),
    );
    assert_eq!(&parquet[..4], b"PAR1", "not a Parquet file");
    let file = dir.path().join("console.parquet");
    std::fs::write(&file, &parquet).expect("write");
    let check = Command::new(common::python())
        .args(["-c", "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows, t.column(0)[1])"])
        .arg(&file)
        .output()
        .expect("python");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "10 esm2-1e-4-s1"
    );

    // The datasets page shows a split's certificate (the manifest of the demo's sample split).
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/split-manifest.json"),
        )
        .expect("fixture"),
    )
    .expect("json");
    let registered = post_json(
        &format!("{base}/api/fusionprot/datasets/register"),
        &json!({ "name": "sample", "manifest": manifest }),
    );
    assert!(
        String::from_utf8_lossy(&registered).contains("dataset_id"),
        "{}",
        String::from_utf8_lossy(&registered)
    );
    let page = dom(&browser, &format!("{base}/?view=datasets"));
    assert!(page.contains("max across splits"), "{page}");
    assert!(page.contains("train 30, valid 2, test 0"), "{page}");
    assert!(page.contains("shorter &lt; 0.3000"), "{page}");

    // A run's page: params, checkpoints table, and the probe's params stay text there too.
    let page = dom(&browser, &format!("{base}/?view=run&run={}", run("probe")));
    assert!(
        page.contains("&lt;script&gt;document.title='pwned2'&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<title>pwned"));
    // the inputs MLflow's client logged, with their context, as text
    let inputs = page.split("id=\"inputs\"").nth(1).expect("an inputs table");
    assert!(
        inputs.contains("&lt;b&gt;ec-train&lt;/b&gt;")
            && inputs.contains("d41d8cd9")
            && inputs.contains(">train<"),
        "{page}"
    );
    // MLflow's UI links open the run, and the experiment's runs
    let page = dom(
        &browser,
        &format!("{base}/?live=0#/experiments/{exp}/runs/{}", run("probe")),
    );
    assert!(
        page.contains("id=\"inputs\"") && page.contains(&run("probe")),
        "{page}"
    );
    let page = dom(&browser, &format!("{base}/?live=0#/experiments/{exp}"));
    assert!(
        page.contains("10 runs") && page.contains("fusionprot-1e-4-s1"),
        "{page}"
    );
    assert!(!page.contains("id=\"inputs\""), "{page}");
}
