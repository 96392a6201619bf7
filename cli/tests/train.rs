//! `fusionprot train` end to end on a miniature EC archive built from the real structure files:
//! a tracked run, its checkpoints and test predictions; a run killed with SIGKILL mid-epoch and
//! resumed ends bitwise equal to the uninterrupted one (weights, evaluations, predictions, the
//! tracked metrics); bad requests fail before any training, naming what is wrong.

mod common;

use std::path::Path;

use common::train::{
    checkpoint_files, interrupt, metrics, run_until_first_checkpoint, s, setup, sql, variant,
};
use common::{fusionprot, real_files, text};
use fusionprot_pipeline::import::Benchmark;
use fusionprot_pipeline::import::fixture::fixture;

#[test]
fn a_run_killed_mid_epoch_and_resumed_ends_bitwise_equal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = setup(dir.path(), "");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (db_a, db_b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let uri = |db: &Path| format!("sqlite://{}", s(db));

    let o = fusionprot(&[
        "train",
        "--config",
        s(&cfg),
        "--out",
        s(&a),
        "-j",
        "1",
        "--tracking-uri",
        &uri(&db_a),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("best"), "{}", text(&o));
    // keep = 1: the newest checkpoint and the best one.
    let kept = checkpoint_files(&a);
    assert!(
        kept.contains(&"epoch-0006".to_owned()) && kept.len() <= 2,
        "{kept:?}"
    );
    let score = fusionprot(&[
        "score",
        s(&a.join("test-predictions-best.parquet")),
        "--json",
    ]);
    assert!(score.status.success(), "{}", text(&score));

    // The same run, killed with SIGKILL after its first checkpoint, in the middle of epoch 3.
    let mut child = run_until_first_checkpoint(
        &[
            "train",
            "--config",
            s(&cfg),
            "--out",
            s(&b),
            "-j",
            "1",
            "--tracking-uri",
            &uri(&db_b),
        ],
        &b,
        std::process::Stdio::null(),
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(!b.join("checkpoints/epoch-0006").exists());
    let o = fusionprot(&[
        "train",
        "--resume",
        s(&b),
        "-j",
        "1",
        "--tracking-uri",
        &uri(&db_b),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed after epoch"), "{}", text(&o));

    for f in [
        "checkpoints/epoch-0006/model.safetensors",
        "checkpoints/epoch-0006/optimizer.safetensors",
        "test-predictions-best.parquet",
    ] {
        assert!(
            std::fs::read(a.join(f)).expect("a") == std::fs::read(b.join(f)).expect("b"),
            "{f} differs after resume"
        );
    }
    let state = |run: &Path| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("summary.json")).expect("summary"))
                .expect("json");
        v["state"].clone()
    };
    assert_eq!(state(&a), state(&b));
    // Ctrl-C (SIGINT) in the middle of epoch 3: a checkpoint at that step, exit code 130, and
    // --resume continues from that very step to the same end.
    let c = dir.path().join("c");
    let child = run_until_first_checkpoint(
        &["train", "--config", s(&cfg), "--out", s(&c), "-j", "1"],
        &c,
        std::process::Stdio::piped(),
    );
    let out = interrupt(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let mid: Vec<String> = checkpoint_files(&c)
        .into_iter()
        .filter(|n| n.contains("-step-"))
        .collect();
    assert_eq!(mid.len(), 1, "{:?}", checkpoint_files(&c));
    let o = fusionprot(&["train", "--resume", s(&c), "-j", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::read(a.join("checkpoints/epoch-0006/model.safetensors")).expect("a")
            == std::fs::read(c.join("checkpoints/epoch-0006/model.safetensors")).expect("c"),
        "a run resumed after Ctrl-C differs"
    );
    assert_eq!(state(&a), state(&c));
    // The tracked metrics of the resumed run are those of the uninterrupted one, none twice.
    assert_eq!(metrics(&db_a), metrics(&db_b));
    assert!(
        metrics(&db_a).contains("valid/f1_max"),
        "{}",
        metrics(&db_a)
    );
}

#[test]
fn bad_requests_fail_before_training_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = setup(dir.path(), "");
    let text_of = |o: &std::process::Output| {
        assert!(!o.status.success(), "{}", text(o));
        text(o)
    };
    let cases = [
        (
            variant(&cfg, "task.toml", &[("task = \"ec\"", "task = \"go-bp\"")]),
            "no task \"go-bp\"; this dataset has ec",
        ),
        (
            variant(
                &cfg,
                "split.toml",
                &[("max_residues", "split = \"family\"\nmax_residues")],
            ),
            "no split named \"family\"",
        ),
        (
            variant(&cfg, "key.toml", &[("epochs = 6", "epochs = 6\nepoch = 3")]),
            "unknown field `epoch`",
        ),
        (
            variant(
                &cfg,
                "kind.toml",
                &[("kind = \"fusionprot\"", "kind = \"esm3\"")],
            ),
            "unknown model kind \"esm3\"",
        ),
    ];
    for (path, message) in cases {
        let out = dir.path().join(format!(
            "run-{}",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
        ));
        let o = fusionprot(&["train", "--config", s(&path), "--out", s(&out)]);
        let t = text_of(&o);
        assert!(
            t.contains(message),
            "{}: wanted {message:?} in {t}",
            path.display()
        );
        assert!(!out.join("checkpoints/epoch-0002").exists());
    }
    let o = fusionprot(&[
        "train",
        "--config",
        s(&cfg),
        "--out",
        s(&dir.path().join("x")),
        "--device",
        "cuda:7",
    ]);
    assert!(text_of(&o).contains("CUDA device"), "{}", text(&o));
    let o = fusionprot(&["train", "--resume", s(&dir.path().join("nothing"))]);
    assert!(text_of(&o).contains("config.toml"), "{}", text(&o));
    // A finished run is not overwritten by a new one in the same folder.
    let quick = variant(&cfg, "quick.toml", &[("epochs = 6", "epochs = 2")]);
    let run = dir.path().join("done");
    let o = fusionprot(&["train", "--config", s(&quick), "--out", s(&run), "-j", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = fusionprot(&["train", "--config", s(&quick), "--out", s(&run), "-j", "1"]);
    assert!(
        text_of(&o).contains("already holds a run: pass --resume"),
        "{}",
        text(&o)
    );
}

#[test]
fn seeds_run_one_after_another_as_separate_runs_of_one_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = setup(dir.path(), "");
    let quick = variant(
        &cfg,
        "quick.toml",
        &[
            ("epochs = 6", "epochs = 2"),
            (
                "max_residues = 100",
                "max_residues = 100
evaluate_train = true",
            ),
        ],
    );
    let out = dir.path().join("seeds");
    let db = dir.path().join("t.db");
    let o = fusionprot(&[
        "train",
        "--config",
        s(&quick),
        "--out",
        s(&out),
        "--seeds",
        "1,2",
        "-j",
        "1",
        "--tracking-uri",
        &format!("sqlite://{}", s(&db)),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("over seeds [1, 2]") && text(&o).contains("(n = 2)"),
        "{}",
        text(&o)
    );
    for seed in [1, 2] {
        assert!(
            out.join(format!("seed-{seed}/checkpoints/epoch-0002"))
                .is_dir()
        );
    }
    let q = sql(
        &db,
        "csv",
        "SELECT r.run_name, g.value AS grp, t.value AS seed FROM runs r \
         JOIN tags g ON g.run_uuid = r.run_uuid AND g.key = 'group' \
         JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'seed' ORDER BY seed",
    );
    let rows = q;
    let group = s(&out);
    assert!(
        rows.contains(&format!("fusionprot-ec-seed1,{group},1")),
        "{rows}"
    );
    assert!(
        rows.contains(&format!("fusionprot-ec-seed2,{group},2")),
        "{rows}"
    );
    // evaluate_train adds the train part's metrics to every evaluation.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("seed-1/summary.json")).expect("summary"))
            .expect("json");
    assert!(
        summary["state"]["evaluations"][0]["train"]["f1_max"].is_number(),
        "{summary}"
    );
    // `evaluate` on the best checkpoint gives the run's own test predictions, byte for byte.
    let pred = dir.path().join("pred.parquet");
    let o = fusionprot(&[
        "evaluate",
        s(&out.join("seed-1/checkpoints/epoch-0002")),
        "--split",
        "official:test",
        "--out",
        s(&pred),
        "-j",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(&pred).expect("pred"),
        std::fs::read(out.join("seed-1/test-predictions-best.parquet")).expect("best")
    );
    // A dataset whose task has another vocabulary (here fewer terms) is refused by name.
    let f = fixture(Benchmark::Ec, &real_files()[..12]).expect("fixture");
    let zip = dir.path().join("small.zip");
    f.write_zip(&zip).expect("zip");
    let small = dir.path().join("small");
    let o = fusionprot(&["import", "ec", s(&zip), "--out", s(&small)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = fusionprot(&[
        "evaluate",
        s(&out.join("seed-1/checkpoints/epoch-0002")),
        "--dataset",
        s(&small),
        "--out",
        s(&pred),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("does not have the vocabulary the checkpoint was trained on"),
        "{}",
        text(&o)
    );
    // Different seeds, different heads: the two runs are not copies.
    let a = std::fs::read(out.join("seed-1/checkpoints/epoch-0002/model.safetensors")).expect("a");
    let b = std::fs::read(out.join("seed-2/checkpoints/epoch-0002/model.safetensors")).expect("b");
    assert_ne!(a, b);
}

#[test]
fn the_tiny_model_overfits_a_small_labelled_set() {
    // Learning, not just running: every chain with an EC number (TorchDrug's recall counts the
    // unlabelled chains too, which would cap Fmax), 13 of them in train, 160 steps.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = fixture(Benchmark::Ec, &real_files()).expect("fixture");
    let zip = dir.path().join("EnzymeCommission.zip");
    f.write_zip(&zip).expect("zip");
    let ids = dir.path().join("labelled.txt");
    let labelled: Vec<&str> = f
        .chains
        .iter()
        .filter(|c| !c.terms[0].is_empty())
        .map(|c| c.id.as_str())
        .collect();
    std::fs::write(&ids, labelled.join("\n")).expect("ids");
    let ds = dir.path().join("ec");
    let o = fusionprot(&[
        "import",
        "ec",
        s(&zip),
        "--out",
        s(&ds),
        "--only-ids",
        s(&ids),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let tiny =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../trainer/configs/tiny.toml");
    let cfg = dir.path().join("overfit.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ndataset = {:?}\ntask = \"ec\"\nmax_residues = 60\nevaluate_train = true\n\n\
             [model]\nkind = \"fusionprot\"\nconfig = {:?}\nrandom_init = true\n\n\
             [optim]\nlr = 3e-3\nsequence_model_lr_ratio = 1.0\ntrain_fusion_parameters = true\n\
             micro_batch = 4\ngradient_interval = 1\nepochs = 40\neval_every = 10\n\n\
             [scheduler]\nenabled = false\n",
            s(&ds),
            s(&tiny)
        ),
    )
    .expect("config");
    let run = dir.path().join("run");
    let o = fusionprot(&["train", "--config", s(&cfg), "--out", s(&run), "-j", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).expect("summary"))
            .expect("json");
    let last = &summary["state"]["evaluations"][3];
    assert!(last["step"].as_i64() <= Some(160), "{last}");
    let fmax = last["train"]["f1_max"].as_f64().expect("train f1_max");
    let first = summary["state"]["evaluations"][0]["train"]["f1_max"]
        .as_f64()
        .expect("first");
    assert!(
        fmax >= 0.95,
        "train Fmax {fmax} after {} steps (first evaluation {first})",
        last["step"]
    );
}

#[test]
fn a_tracked_run_reads_back_with_mlflow_and_a_spooled_one_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = setup(dir.path(), "");
    let quick = variant(&cfg, "quick.toml", &[("epochs = 6", "epochs = 2")]);
    let db = dir.path().join("fp.db");
    let server = common::serve(dir.path(), s(&db), &[]);
    let uri = format!("http://{}", server.addr);
    let run = dir.path().join("run");
    let o = fusionprot(&[
        "train",
        "--config",
        s(&quick),
        "--out",
        s(&run),
        "-j",
        "1",
        "--tracking-uri",
        &uri,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let run_id = std::fs::read_to_string(run.join("run-id")).expect("run-id");
    // The real mlflow client reads the run back.
    let code = r#"
import sys
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1])
r = c.get_run(sys.argv[2])
assert r.info.status == "FINISHED", r.info.status
assert r.data.params["data.task"] == "ec", r.data.params
assert r.data.tags["model"] == "fusionprot", r.data.tags
hist = c.get_metric_history(sys.argv[2], "valid/f1_max")
assert len(hist) == 1 and hist[0].value == r.data.metrics["valid/f1_max"], hist
assert "test_at_best_valid/f1_max" in r.data.metrics, r.data.metrics
assert len(c.get_metric_history(sys.argv[2], "train/loss")) >= 2
names = sorted(f.path for f in c.list_artifacts(sys.argv[2]))
assert names == ["summary.json", "test-predictions-best.parquet"], names
got = c.download_artifacts(sys.argv[2], "test-predictions-best.parquet", sys.argv[3])
assert open(got, "rb").read() == open(sys.argv[4], "rb").read(), "artifact bytes differ"
print("ok")
"#;
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    let o = std::process::Command::new(common::python())
        .args([
            "-c",
            code,
            &uri,
            run_id.trim(),
            s(&downloads),
            s(&run.join("test-predictions-best.parquet")),
        ])
        .output()
        .expect("python");
    assert!(
        o.status.success() && text(&o).contains("ok"),
        "{}",
        text(&o)
    );

    // With the server down the run goes to the spool; `sync` replays it into the tracker.
    let dead = "http://127.0.0.1:9"; // discard port: nothing listens
    let offline = dir.path().join("offline");
    let o = fusionprot(&[
        "train",
        "--config",
        s(&quick),
        "--out",
        s(&offline),
        "-j",
        "1",
        "--tracking-uri",
        dead,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let spool = offline.join("tracking-spool.jsonl");
    assert!(spool.is_file(), "no spool written");
    let o = fusionprot(&["sync", s(&spool), "--tracking-uri", &uri]);
    assert!(o.status.success(), "{}", text(&o));
    let q = sql(
        &db,
        "csv",
        "SELECT count(DISTINCT r.run_uuid) AS runs, count(*) AS points FROM metrics m JOIN runs r USING (run_uuid) WHERE m.key = 'valid/f1_max'",
    );
    assert!(q.contains("2,2"), "{}", q);
    // The checkpoints spooled with the metrics replay too: one per evaluation of each run, each
    // with its weights' sha256; the http run's dataset is registered by its manifest and linked.
    let q = sql(
        &db,
        "csv",
        "SELECT count(*) AS n, count(DISTINCT run_uuid) AS runs, min(length(sha256)) AS sha FROM checkpoints",
    );
    assert!(q.contains("2,2,64"), "{}", q);
    let q = sql(&db, "csv", "SELECT count(*) FROM run_datasets");
    assert!(q.contains("\n1"), "{}", q);
    drop(server);
}

/// MSP from Atom3D's LMDB layout (written by Python's `lmdb` from real structures, one complex
/// over 1000 residues so its pairs are windowed): pairs trained through two forward passes,
/// AUROC / AUPR per evaluation, selection on valid AUROC, `evaluate` reproducing the best test
/// predictions; `--set` overrides are applied and kept in the run's resolved config (absolute
/// paths, so `--resume` works from another directory); checkpoints recorded in the tracker with
/// their sha256 and metrics, the dataset linked, the predictions stored as an artifact beside the
/// local tracker database.
#[test]
fn msp_pairs_train_with_overrides_checkpoint_tags_and_artifacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::msp_fixture(dir.path(), &[]);
    let ds = dir.path().join("msp");
    let o = fusionprot(&[
        "import",
        "msp",
        s(&dir.path().join("MSP-split-by-sequence-identity-30.tar.gz")),
        "--out",
        s(&ds),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let tiny =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../trainer/configs/tiny.toml");
    let cfg = dir.path().join("msp.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ndataset = {:?}\ntask = \"msp\"\n\n[model]\nkind = \"fusionprot\"\nconfig = {:?}\nrandom_init = true\n\n\
             [optim]\nlr = 1e-3\nmicro_batch = 2\ngradient_interval = 1\nepochs = 3\neval_every = 1\n\n[scheduler]\nenabled = false\n",
            "msp",
            s(&tiny)
        ),
    )
    .expect("config");
    let out = dir.path().join("run");
    let db = dir.path().join("t.db");
    // Relative dataset path, resolved against the working directory.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .current_dir(dir.path())
        .args([
            "train",
            "--config",
            s(&cfg),
            "--out",
            s(&out),
            "-j",
            "1",
            "--set",
            "optim.epochs=2",
            "--set",
            "data.prefetch=3",
            "--tracking-uri",
            &format!("sqlite://{}", s(&db)),
        ])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("valid AUROC"), "{}", text(&o));
    let resolved = std::fs::read_to_string(out.join("config.toml")).expect("config");
    assert!(
        resolved.contains("epochs = 2") && resolved.contains("prefetch = 3"),
        "{resolved}"
    );
    assert!(
        resolved.contains(&format!("dataset = {:?}", s(&ds))),
        "{resolved}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(summary["selection"], "auroc", "{summary}");
    assert_eq!(summary["state"]["epoch"], 2, "{summary}");
    let e = &summary["state"]["evaluations"][1];
    for part in ["valid", "test"] {
        for m in ["auroc", "auprc"] {
            let v = e[part][m].as_f64().unwrap_or(f64::NAN);
            assert!((0.0..=1.0).contains(&v), "{part}/{m}: {summary}");
        }
        assert!(e[part].get("f1_max").is_none(), "{summary}");
    }
    let train_pairs = summary["train_proteins"].as_u64().expect("pairs");
    assert!(train_pairs >= 4, "{summary}");
    assert_eq!(
        summary["train_examples_seen"].as_u64(),
        Some(2 * train_pairs)
    );
    // The best checkpoint's test predictions, one logit per pair, reproduced by `evaluate`.
    let best = summary["state"]["best"].as_u64().expect("best") as usize;
    let best_epoch = summary["state"]["evaluations"][best]["epoch"]
        .as_u64()
        .expect("epoch");
    let ckpt = out.join(format!("checkpoints/epoch-{best_epoch:04}"));
    let pred = dir.path().join("pred.parquet");
    let o = fusionprot(&[
        "evaluate",
        s(&ckpt),
        "--split",
        "official:test",
        "--out",
        s(&pred),
        "-j",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let best_pred = std::fs::read(out.join("test-predictions-best.parquet")).expect("best");
    assert_eq!(std::fs::read(&pred).expect("pred"), best_pred);
    let scored = fusionprot(&["score", s(&pred), "--json"]);
    assert!(scored.status.success(), "{}", text(&scored));
    let scored: serde_json::Value = serde_json::from_slice(&scored.stdout).expect("json");
    let at_best = summary["state"]["evaluations"][best]["test"]["auroc"]
        .as_f64()
        .expect("test auroc");
    assert!(
        (scored["auroc [label]"].as_f64().expect("auroc") - at_best).abs() < 1e-12,
        "{scored} vs {at_best}"
    );
    // Tracked: every checkpoint in the tracker's checkpoints table with the sha256 of its weights
    // and its metrics, the best one flagged; the dataset registered and linked; the predictions as
    // an artifact under the database's folder.
    let q = sql(
        &db,
        "json",
        "SELECT c.step, c.path, c.sha256, c.is_best, c.metrics_json, r.artifact_uri FROM checkpoints c \
         JOIN runs r USING (run_uuid) ORDER BY c.checkpoint_id",
    );
    let rows: serde_json::Value = serde_json::from_str(&q).expect("json");
    let rows = rows["rows"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let best_row = rows
        .iter()
        .find(|r| {
            r[1].as_str()
                .is_some_and(|p| p.ends_with(&format!("epoch-{best_epoch:04}")))
        })
        .expect("the best checkpoint");
    let weights = std::fs::read(ckpt.join("model.safetensors")).expect("weights");
    let sha = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&weights))
    };
    assert_eq!(best_row[2], sha.as_str(), "{best_row:?}");
    let metrics: serde_json::Value =
        serde_json::from_str(best_row[4].as_str().expect("metrics")).expect("metrics json");
    assert!(metrics["valid/auroc"].is_number(), "{metrics}");
    // The tracker keeps one best: the latest checkpoint logged as best.
    assert_eq!(
        rows.iter().filter(|r| r[3] == 1 || r[3] == true).count(),
        1,
        "{rows:?}"
    );
    let q = sql(
        &db,
        "csv",
        "SELECT d.name, l.context FROM run_datasets l JOIN datasets d USING (dataset_id)",
    );
    assert!(q.contains("msp,official"), "{}", q);
    let uri = rows[0][5].as_str().expect("uri");
    let rel = uri
        .strip_prefix("mlflow-artifacts:")
        .expect("mlflow-artifacts uri");
    let stored = dir
        .path()
        .join("artifacts")
        .join(rel.trim_matches('/'))
        .join("test-predictions-best.parquet");
    assert_eq!(std::fs::read(&stored).expect("artifact"), best_pred);
    // --resume from elsewhere: nothing left to do, and the paths still resolve.
    let o = fusionprot(&["train", "--resume", s(&out), "-j", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    // A task the dataset lacks, named with what exists.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .current_dir(dir.path())
        .args([
            "train",
            "--config",
            s(&cfg),
            "--out",
            s(&dir.path().join("bad")),
            "--set",
            "data.task=ec",
        ])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no task \"ec\"") && text(&o).contains("msp"),
        "{}",
        text(&o)
    );
}

/// `optim.amp` on CPU runs the loss scaler alone (autocast is CUDA-only): scaling by a power of two
/// and unscaling are exact, so the run ends bitwise equal to one without it, and the scaler's state
/// (scale, good steps) is in the checkpoint for a resume.
#[test]
fn loss_scaling_is_exact_and_checkpointed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = setup(dir.path(), "");
    let plain = variant(&cfg, "plain.toml", &[("epochs = 6", "epochs = 2")]);
    let amp = variant(
        &cfg,
        "amp.toml",
        &[("epochs = 6", "epochs = 2\namp = true")],
    );
    for (c, name) in [(&plain, "plain"), (&amp, "amp")] {
        let o = fusionprot(&[
            "train",
            "--config",
            s(c),
            "--out",
            s(&dir.path().join(name)),
            "-j",
            "1",
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let weights = |name: &str| {
        std::fs::read(
            dir.path()
                .join(name)
                .join("checkpoints/epoch-0002/model.safetensors"),
        )
        .expect("weights")
    };
    assert_eq!(weights("plain"), weights("amp"));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("amp/checkpoints/epoch-0002/state.json")).expect("state"),
    )
    .expect("json");
    assert_eq!(state["scaler"]["scale"], 65536.0, "{state}");
    assert_eq!(state["scaler"]["growth_tracker"], state["step"], "{state}");
    assert_eq!(state["scaler"]["skipped"], 0, "{state}");
}
