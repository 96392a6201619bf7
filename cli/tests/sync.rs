//! End-to-end: `fusionprot sync` names the spool line the server refuses, and `--skip-refused`
//! sets it aside in `FILE.rejected` and replays the rest.

mod common;
use common::{fusionprot, text};

#[test]
fn sync_names_a_refused_line_and_skip_refused_sets_it_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite://{}", dir.path().join("fp.db").display());
    let spool = dir.path().join("spool.jsonl");
    let line = |id: &str, run: &str| {
        serde_json::json!({"op": "log-batch", "id": id, "body": {"run_id": run,
            "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}]}})
        .to_string()
    };
    let create = serde_json::json!({"op": "create-run", "id": "c", "local_run_id": "local-1",
        "experiment": "ec", "body": {"run_name": "r", "start_time": 1, "tags": [
            {"key": "fusionprot.local_run_id", "value": "local-1"}]}});
    let lines = [
        create.to_string(),
        line("a", "local-1"),
        line("b", "no-such-run"),
        line("d", "local-1"),
    ];
    std::fs::write(&spool, lines.join("\n") + "\n").expect("spool");
    let s = spool.to_str().expect("utf-8");
    let o = fusionprot(&["sync", s, "--tracking-uri", &uri]);
    assert!(
        !o.status.success()
            && text(&o).contains("spool.jsonl:3")
            && text(&o).contains("--skip-refused"),
        "{}",
        text(&o)
    );
    let o = fusionprot(&["sync", s, "--tracking-uri", &uri, "--skip-refused"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("set aside 1 refused operations"),
        "{}",
        text(&o)
    );
    let rejected =
        std::fs::read_to_string(dir.path().join("spool.jsonl.rejected")).expect("rejects file");
    assert!(
        rejected.contains("no-such-run") && rejected.contains("\"refused\""),
        "{rejected}"
    );
    // A line that is not an operation is an error naming it.
    std::fs::write(&spool, "{\"op\": \"log-batch\"}\n").expect("spool");
    let o = fusionprot(&["sync", s, "--tracking-uri", &uri]);
    assert!(
        !o.status.success() && text(&o).contains("spool.jsonl:1: not a tracking operation"),
        "{}",
        text(&o)
    );
}
