//! Run hygiene and live views in a real browser, driven as a user would (DevTools protocol,
//! `tests/peer/browser_steps.py`; skipped, saying so, where chromium-headless-shell is not
//! installed) against `serve --token`: the page takes the token, renames a run, sets and deletes a
//! tag, saves notes, deletes and restores the run — each checked through the API afterwards — and
//! its live event stream opens with a ticket (never the token in a URL or the server's log).

mod common;

use std::path::Path;
use std::process::Command;

use common::browser::chromium;
use serde_json::{Value, json};

const TOKEN: &str = "s3cret-token-4711";

fn api(addr: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-X", method, "-H"])
        .arg(format!("Authorization: Bearer {TOKEN}"));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d"])
            .arg(b.to_string());
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {path}");
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn a_run_is_renamed_tagged_noted_deleted_and_restored_in_the_page_with_a_token() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED a_run_is_renamed_tagged_noted_deleted_and_restored_in_the_page_with_a_token: chromium-headless-shell is not installed (scripts/setup installs it where apt can)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("serve.log");
    let server = common::serve_logged(
        dir.path(),
        dir.path().join("fp.db").to_str().expect("utf8"),
        &[],
        &[("FUSIONPROT_TOKEN", TOKEN), ("RUST_LOG", "info")],
        Some(&log),
    );
    let addr = server.addr.clone();
    let base = format!("http://{}", server.addr);
    let run = api(
        &addr,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(&json!({ "experiment_id": "0", "run_name": "first-name" })),
    )["run"]["info"]["run_id"]
        .as_str()
        .expect("run")
        .to_owned();
    api(
        &addr,
        "POST",
        "/api/2.0/mlflow/runs/log-batch",
        Some(&json!({ "run_id": run, "metrics": [
            { "key": "system/rank0/examples_per_s", "value": 812.5, "step": 3, "timestamp": 1 },
            { "key": "system/rank1/gpu_memory_gb", "value": 61.0, "step": 3, "timestamp": 1 },
            { "key": "valid/fmax", "value": 0.5, "step": 3, "timestamp": 1 }] })),
    );
    let page = format!("{base}/?view=run&run={run}");
    let ready = "document.body.dataset.ready === '1'";
    let click = |id: &str| format!("document.getElementById('{id}').click()");
    let set = |id: &str, v: &str| format!("document.getElementById('{id}').value = {v:?}");
    let text_of = |id: &str| format!("(document.getElementById('{id}') || {{}}).textContent");
    let steps = json!([
        { "go": format!("{base}/?view=sql") },
        { "do": format!("sessionStorage.setItem('fp-token', {TOKEN:?})") },
        { "go": page },
        { "wait": format!("{ready} && {} === 'first-name'", text_of("run-name")), "why": "the run page with the token" },
        { "wait": format!("{} === 'live'", text_of("live")), "why": "the live stream opened with a ticket" },
        // the system panel lists the system/ metrics and links their curves
        { "wait": "document.getElementById('system') && document.getElementById('system').innerText.includes('system/rank1/gpu_memory_gb')", "why": "the system panel" },
        { "wait": "document.getElementById('system-curves').href.includes('system%2Frank0%2Fexamples_per_s')", "why": "the system curves link" },
        { "do": set("rename-input", "second-name") },
        { "do": click("rename") },
        { "wait": format!("{} === 'second-name'", text_of("run-name")), "why": "the rename" },
        { "do": set("tag-key", "owner") },
        { "do": set("tag-value", "ana <b>") },
        { "do": click("tag-add") },
        { "wait": "document.getElementById('tags').innerText.includes('ana <b>')", "why": "the new tag, as text" },
        { "do": "document.querySelector('[data-delete-tag=\"owner\"]').click()" },
        { "wait": "document.getElementById('tags') && !document.getElementById('tags').innerText.includes('owner')", "why": "the tag deleted" },
        { "do": set("note", "seed 3 diverged; rerun") },
        { "do": click("note-save") },
        { "wait": "document.getElementById('tags').innerText.includes('seed 3 diverged')", "why": "the note saved" },
        { "do": click("delete-run") },
        { "wait": format!("{} === 'deleted' && document.getElementById('restore-run')", text_of("lifecycle")), "why": "the run deleted" },
    ]);
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer/browser_steps.py");
    let drive = |steps: &Value| {
        let out = Command::new(common::python())
            .arg(&script)
            .arg(&browser)
            .arg(steps.to_string())
            .output()
            .expect("python");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "{}",
            common::text(&out)
        );
    };
    drive(&steps);
    let got = api(
        &addr,
        "GET",
        &format!("/api/2.0/mlflow/runs/get?run_id={run}"),
        None,
    );
    assert_eq!(got["run"]["info"]["run_name"], "second-name");
    assert_eq!(got["run"]["info"]["lifecycle_stage"], "deleted");
    let tags = got["run"]["data"]["tags"].as_array().expect("tags");
    assert!(
        tags.iter()
            .any(|t| t["key"] == "mlflow.note.content" && t["value"] == "seed 3 diverged; rerun"),
        "{tags:?}"
    );
    assert!(!tags.iter().any(|t| t["key"] == "owner"), "{tags:?}");
    // restore, in the page
    drive(&json!([
        { "go": format!("{base}/?view=sql") },
        { "do": format!("sessionStorage.setItem('fp-token', {TOKEN:?})") },
        { "go": format!("{base}/?view=run&run={run}") },
        { "wait": "document.getElementById('restore-run')", "why": "the restore button of a deleted run" },
        { "do": click("restore-run") },
        { "wait": format!("{} === 'active'", text_of("lifecycle")), "why": "the run restored" },
    ]));
    let got = api(
        &addr,
        "GET",
        &format!("/api/2.0/mlflow/runs/get?run_id={run}"),
        None,
    );
    assert_eq!(got["run"]["info"]["lifecycle_stage"], "active");
    // the stream was opened with a ticket; the token never reached the server's log
    drop(server);
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("/api/fusionprot/events"), "{logged}");
    assert!(!logged.contains(TOKEN), "the token is in the server's log");
    assert!(
        !logged.contains("ticket="),
        "a ticket is in the server's log"
    );
}
