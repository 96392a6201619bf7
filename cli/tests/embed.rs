//! End-to-end: `fusionprot embed` on the prepared sample, as a user runs it; ESM-2 weights by
//! hub id through a local stand-in for the HuggingFace hub.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn fusionprot(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run fusionprot")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn prepared_sample(dir: &Path) -> String {
    let ds = dir.join("ds").display().to_string();
    let sample =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../data/sample");
    let out = fusionprot(
        &["prepare", &sample.display().to_string(), "--out", &ds],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    ds
}

fn tiny_config(dir: &Path) -> String {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        "[esm]\nlayers = 33\nembed_dim = 32\nheads = 4\n[gearnet]\nhidden_dims = [16, 16, 16, 16, 16, 16]\n",
    )
    .expect("write");
    path.display().to_string()
}

/// (protein_id, num_residues, embedding width, per-residue list lengths) read back with pyarrow.
fn read_back(path: &str) -> serde_json::Value {
    let script = "import json,sys,pyarrow.parquet as pq\n\
        t=pq.read_table(sys.argv[1]); d=t.to_pydict()\n\
        print(json.dumps({'schema': t.schema.metadata[b'fusionprot.schema'].decode(),\
        'ids': d['protein_id'], 'lens': d['num_residues'], 'dim': len(d['embedding'][0]),\
        'residue_rows': [len(r) for r in d.get('residue_embedding', [])],\
        'finite': all(x == x for row in d['embedding'] for x in row)}))";
    let out = Command::new(common::python())
        .args(["-c", script, path])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn embed_the_sample_with_a_random_tiny_model_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = prepared_sample(dir.path());
    let cfg = tiny_config(dir.path());
    let out1 = dir.path().join("a.parquet").display().to_string();
    let out2 = dir.path().join("b.parquet").display().to_string();
    for out in [&out1, &out2] {
        let o = fusionprot(
            &[
                "embed",
                &ds,
                "--model",
                "fusionprot",
                "--model-config",
                &cfg,
                "--random-init",
                "--out",
                out,
                "--per-residue",
                "--batch-size",
                "5",
            ],
            &[],
        );
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert!(
            t.contains("embedded 34 proteins (6317 residues") && t.contains("RANDOM weights"),
            "{t}"
        );
    }
    assert_eq!(
        std::fs::read(&out1).expect("a"),
        std::fs::read(&out2).expect("b"),
        "same seed, same bytes"
    );
    let v = read_back(&out1);
    assert_eq!(v["schema"], "embeddings/v1");
    assert_eq!(v["dim"], 32 + 6 * 16);
    let ids: Vec<String> = serde_json::from_value(v["ids"].clone()).expect("ids");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "rows in protein_id order");
    assert_eq!(
        v["lens"], v["residue_rows"],
        "one residue embedding per residue"
    );
    assert_eq!(v["finite"], true);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{out1}.manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["proteins"], 34);
    assert_eq!(manifest["model"]["random_init"][0], "all weights");
    assert!(
        manifest["dataset"]["manifest_sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64)
    );
}

#[test]
fn bad_requests_fail_clearly_and_keep_earlier_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = prepared_sample(dir.path());
    let out = dir.path().join("e.parquet");
    std::fs::write(&out, b"earlier result").expect("write");
    let out_s = out.display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "--random-init"),
        (
            vec!["--random-init".into(), "--device".into(), "tpu".into()],
            "unknown device",
        ),
        (
            vec!["--random-init".into(), "--device".into(), "cuda:3".into()],
            "CUDA device",
        ),
        (
            vec!["--checkpoint".into(), "/nonexistent.pth".into()],
            "/nonexistent.pth",
        ),
        (
            vec![
                "--model".into(),
                "gearnet".into(),
                "--esm".into(),
                "facebook/esm2_t6_8M_UR50D".into(),
            ],
            "no ESM part",
        ),
        (
            vec!["--esm".into(), "not a repo id".into()],
            "neither an existing file",
        ),
    ];
    for (extra, expect) in cases {
        let mut args: Vec<String> = vec!["embed".into(), ds.clone(), "--out".into(), out_s.clone()];
        args.extend(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = fusionprot(&refs, &[("HF_HUB_OFFLINE", "1")]);
        let t = text(&o);
        assert!(
            !o.status.success() && t.contains(expect),
            "{args:?}: expected {expect:?} in\n{t}"
        );
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[esm]\nlayers = 33\nwidth = 3\n").expect("write");
    let o = fusionprot(
        &[
            "embed",
            &ds,
            "--out",
            &out_s,
            "--random-init",
            "--model-config",
            &bad.display().to_string(),
        ],
        &[],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("bad.toml") && t.contains("width"),
        "{t}"
    );
    // not a dataset
    let o = fusionprot(
        &[
            "embed",
            dir.path().to_str().expect("utf-8"),
            "--out",
            &out_s,
            "--random-init",
        ],
        &[],
    );
    assert!(
        !o.status.success() && text(&o).contains("not a prepared dataset"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(&out).expect("read"),
        b"earlier result",
        "failed runs leave the old file"
    );
}

/// Kills the stand-in hub when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn esm_weights_by_hub_id_are_downloaded_once_then_read_from_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = prepared_sample(dir.path());
    // A tiny HF checkpoint (config.json + model.safetensors) written by transformers.
    let peer =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../trainer/tests/peer/esm_peer.py");
    let made = Command::new(common::python())
        .arg(&peer)
        .arg(dir.path())
        .output()
        .expect("peer");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let repo = dir.path().join("hub/tiny-org/esm-tiny");
    std::fs::create_dir_all(&repo).expect("mkdir");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(dir.path().join("hf").join(f), repo.join(f)).expect("copy");
    }
    let log = dir.path().join("requests.log");
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer/hub_server.py");
    let mut child = Command::new(common::python())
        .arg(&script)
        .arg(dir.path().join("hub"))
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hub server");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut port)
        .expect("port");
    let server = Server(child);
    let endpoint = format!("http://127.0.0.1:{}", port.trim());
    let cache = dir.path().join("cache");
    let cache_s = cache.display().to_string();
    let out = dir.path().join("e.parquet").display().to_string();
    let args = [
        "embed",
        &ds,
        "--model",
        "esm2",
        "--esm",
        "tiny-org/esm-tiny",
        "--out",
        &out,
    ];

    let o = fusionprot(
        &args,
        &[("HF_ENDPOINT", &endpoint), ("HF_HUB_CACHE", &cache_s)],
    );
    assert!(o.status.success(), "{}", text(&o));
    let requests = std::fs::read_to_string(&log).expect("log");
    assert!(
        requests.contains("/tiny-org/esm-tiny/resolve/main/model.safetensors"),
        "{requests}"
    );
    let snapshot =
        cache.join("models--tiny-org--esm-tiny/snapshots/0123456789abcdef0123456789abcdef01234567");
    assert!(
        snapshot.join("model.safetensors").exists(),
        "hub cache layout"
    );
    let first = std::fs::read(&out).expect("output");
    assert_eq!(read_back(&out)["dim"], 32);

    // Offline, with the server gone: the cache serves it, same embeddings.
    drop(server);
    let o = fusionprot(
        &args,
        &[("HF_HUB_OFFLINE", "1"), ("HF_HUB_CACHE", &cache_s)],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&out).expect("output"), first);
    let o = fusionprot(
        &[
            "embed",
            &ds,
            "--model",
            "esm2",
            "--esm",
            "tiny-org/other",
            "--out",
            &out,
        ],
        &[("HF_HUB_OFFLINE", "1"), ("HF_HUB_CACHE", &cache_s)],
    );
    assert!(
        !o.status.success() && text(&o).contains("not in the hub cache"),
        "{}",
        text(&o)
    );
}
