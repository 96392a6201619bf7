//! `fusionprot pretrain` end to end on the bundled sample and the real structures: a tiny
//! FusionProt pre-trained with Multiview Contrast learns (the contrastive loss falls, the
//! positive pair's rank among the probe's candidates rises), its weights start a fine-tuning run
//! (param `model.init`, the file's sha256) and export; a run killed with SIGKILL mid-epoch and
//! resumed ends bitwise equal; residue-type prediction runs; bad requests fail before any step.

mod common;

use std::path::{Path, PathBuf};

use common::train::{checkpoint_files, run_until_first_checkpoint, s, setup, sql, variant};
use common::{fusionprot, text};

/// The sample and the real structures prepared as two datasets, and a tiny-MC config over both.
fn datasets(dir: &Path, extra: &str) -> PathBuf {
    let sample =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../data/sample");
    let real =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../shared/data/real");
    for (input, name) in [(&sample, "sample"), (&real, "real")] {
        let o = fusionprot(&["prepare", s(input), "--out", s(&dir.join(name))]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let tiny =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../trainer/configs/tiny.toml");
    let cfg = dir.join("mc.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ndatasets = [{:?}, {:?}]\n\n[model]\nkind = \"fusionprot\"\nconfig = {:?}\nrandom_init = true\n\n\
             [objective]\nkind = \"multiview-contrast\"\n\n\
             [optim]\nlr = 1e-3\nmicro_batch = 8\ngradient_interval = 1\nepochs = 20\nsave_every = 5\n{extra}",
            s(&dir.join("sample")),
            s(&dir.join("real")),
            s(&tiny)
        ),
    )
    .expect("config");
    cfg
}

/// `fusionprot pretrain --config CFG --out OUT -j 2 --tracking-uri sqlite://DB EXTRA…`, succeeding.
fn pretrain(cfg: &Path, out: &Path, db: &Path, extra: &[&str]) -> std::process::Output {
    let uri = uri(db);
    let mut args = vec!["pretrain", "--config", s(cfg), "--out", s(out), "-j", "2"];
    args.extend(["--tracking-uri", &uri]);
    args.extend(extra);
    let o = fusionprot(&args);
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn uri(db: &Path) -> String {
    format!("sqlite://{}", s(db))
}

/// `key`'s values by step.
fn series(db: &Path, key: &str) -> Vec<(i64, f64)> {
    let csv = sql(
        db,
        "csv",
        &format!("SELECT step, value FROM metrics WHERE key = '{key}' ORDER BY step"),
    );
    csv.lines()
        .skip(1)
        .map(|l| {
            let (a, b) = l.split_once(',').expect("two columns");
            (a.parse().expect("step"), b.parse().expect("value"))
        })
        .collect()
}

fn mean(v: &[(i64, f64)]) -> f64 {
    v.iter().map(|x| x.1).sum::<f64>() / v.len() as f64
}

#[test]
fn pretraining_learns_and_its_weights_start_fine_tuning_and_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = datasets(dir.path(), "");
    let (run, db) = (dir.path().join("mc"), dir.path().join("t.db"));
    let o = pretrain(&cfg, &run, &db, &[]);
    assert!(
        text(&o).contains(
            "with multiview-contrast on 112 proteins of 2 dataset(s): 20 epochs, 280 steps"
        ),
        "{}",
        text(&o)
    );
    let tags = sql(
        &db,
        "csv",
        "SELECT key, value FROM tags WHERE key = 'fusionprot.objective'",
    );
    assert!(
        tags.contains("fusionprot.objective,multiview-contrast"),
        "{tags}"
    );

    // It learns: the loss of the last 28 steps is well below that of the first 28, and the probe
    // (64 proteins, two views each, fixed by the seed) ranks the positive pair higher than the
    // untrained model did at step 0.
    let loss = series(&db, "train/loss");
    assert_eq!(loss.len(), 280, "train/loss per step");
    let (first, last) = (mean(&loss[..28]), mean(&loss[252..]));
    assert!(last < 0.8 * first, "loss {first:.3} -> {last:.3}");
    let rank = series(&db, "train/probe_rank");
    let top1 = series(&db, "train/probe_top1");
    assert_eq!(
        rank.first().map(|r| r.0),
        Some(0),
        "a probe before the first step"
    );
    assert_eq!(rank.len(), 5, "step 0 and every 5 epochs: {rank:?}");
    let (r0, r1) = (rank[0].1, rank[4].1);
    assert!(r1 < 0.6 * r0, "positive-pair rank {r0} -> {r1} of 64");
    assert!(top1[4].1 > top1[0].1 + 0.1, "top-1 {top1:?}");
    assert!(!series(&db, "train/mutual_information").is_empty());
    assert!(!series(&db, "speed/proteins_per_second").is_empty());

    // Its best checkpoint (the newest: pre-training has no selection) starts a fine-tuning run.
    let best = run.join("checkpoints/best");
    let ec = setup(dir.path(), "");
    let quick = variant(&ec, "quick.toml", &[("epochs = 6", "epochs = 2")]);
    let ft = dir.path().join("ft");
    let o = fusionprot(&[
        "train",
        "--config",
        s(&quick),
        "--out",
        s(&ft),
        "-j",
        "1",
        "--set",
        &format!("model.init={}", s(&best)),
        "--tracking-uri",
        &uri(&db),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let params = sql(
        &db,
        "csv",
        "SELECT p.key, p.value FROM params p JOIN runs r USING (run_uuid) \
         WHERE r.run_name LIKE '%-ec-%' AND p.key LIKE 'model.init%' ORDER BY p.key",
    );
    let weights = run.join("checkpoints/epoch-0020/model.safetensors");
    let digest = common::sha256_hex(&std::fs::read(&weights).expect("weights"));
    assert!(
        params.contains(&format!("model.init,{}", s(&best))),
        "{params}"
    );
    assert!(
        params.contains(&format!("model.init.weights,{}", s(&weights))),
        "{params}"
    );
    assert!(
        params.contains(&format!("model.init.sha256,{digest}")),
        "{params}"
    );
    // The projection (two layers: weight and bias) is the only thing left out.
    assert!(params.contains("model.init.dropped,4"), "{params}");

    // And exports under the reference's names (the PyTorch side: trainer/tests/export_peer.rs).
    let file = dir.path().join("mc.safetensors");
    let o = fusionprot(&["export", s(&best), "--out", s(&file)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("exported 689 tensors"), "{}", text(&o));
    let check = std::process::Command::new(common::python())
        .args([
            "-c",
            "import sys; from safetensors.torch import load_file; \
             t = load_file(sys.argv[1]); \
             assert not [k for k in t if k.startswith('mlp.')]; \
             assert 'structure_token' in t and 'sequence_model.mapping' in t; print(len(t))",
            s(&file),
        ])
        .output()
        .expect("python");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // The exported file embeds like any checkpoint.
    let emb = dir.path().join("emb.parquet");
    let tiny =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../trainer/configs/tiny.toml");
    let o = fusionprot(&[
        "embed",
        s(&dir.path().join("sample")),
        "--model",
        "fusionprot",
        "--checkpoint",
        s(&file),
        "--model-config",
        s(&tiny),
        "--out",
        s(&emb),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_pretraining_run_killed_mid_epoch_and_resumed_ends_bitwise_equal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = datasets(dir.path(), "");
    let cfg = variant(
        &cfg,
        "short.toml",
        &[("epochs = 20\nsave_every = 5", "epochs = 4\nsave_every = 2")],
    );
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (db_a, db_b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let args = |out: &Path, db: &Path| -> Vec<String> {
        [
            "pretrain",
            "--config",
            s(&cfg),
            "--out",
            s(out),
            "-j",
            "1",
            "--tracking-uri",
            &uri(db),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let o = fusionprot(
        &args(&a, &db_a)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let b_args = args(&b, &db_b);
    let mut child = run_until_first_checkpoint(
        &b_args.iter().map(String::as_str).collect::<Vec<_>>(),
        &b,
        std::process::Stdio::null(),
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(!b.join("checkpoints/epoch-0004").exists());
    let o = fusionprot(&[
        "pretrain",
        "--resume",
        s(&b),
        "-j",
        "1",
        "--tracking-uri",
        &uri(&db_b),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed after epoch 2"), "{}", text(&o));
    for f in [
        "checkpoints/epoch-0004/model.safetensors",
        "checkpoints/epoch-0004/optimizer.safetensors",
        "checkpoints/epoch-0004/state.json",
    ] {
        assert!(
            std::fs::read(a.join(f)).expect("a") == std::fs::read(b.join(f)).expect("b"),
            "{f} differs after resume"
        );
    }
    // Every tracked value but the speed is the uninterrupted run's, none logged twice.
    let tracked = |db: &Path| {
        sql(
            db,
            "csv",
            "SELECT key, step, value FROM metrics WHERE key NOT LIKE 'speed/%' ORDER BY key, step",
        )
    };
    assert_eq!(tracked(&db_a), tracked(&db_b));
    assert!(
        tracked(&db_a).contains("train/probe_rank"),
        "{}",
        tracked(&db_a)
    );
}

#[test]
fn residue_type_prediction_trains_and_logs_its_accuracy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = datasets(dir.path(), "");
    let (run, db) = (dir.path().join("rt"), dir.path().join("t.db"));
    pretrain(
        &cfg,
        &run,
        &db,
        &[
            "--set",
            "objective.kind=residue-type",
            "--set",
            "optim.epochs=10",
        ],
    );
    let tags = sql(
        &db,
        "csv",
        "SELECT value FROM tags WHERE key = 'fusionprot.objective'",
    );
    assert!(tags.contains("residue-type"), "{tags}");
    let loss = series(&db, "train/loss");
    assert_eq!(loss.len(), 140);
    // Cross-entropy over 20 types starts near ln 20 and falls as the residue frequencies and
    // then the context are learnt; the probe's accuracy rises above the untrained model's.
    let (first, last) = (mean(&loss[..14]), mean(&loss[126..]));
    assert!(
        first > 2.5 && last < first - 0.2,
        "loss {first:.3} -> {last:.3}"
    );
    assert!(!series(&db, "train/accuracy").is_empty());
    let acc = series(&db, "train/probe_accuracy");
    assert_eq!(acc.len(), 3, "{acc:?}");
    assert!(acc[2].1 > acc[0].1, "probe accuracy {acc:?}");
    assert!(checkpoint_files(&run).contains(&"epoch-0010".to_owned()));
}

#[test]
fn bad_pretraining_requests_fail_before_any_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = datasets(dir.path(), "");
    let fails = |args: &[&str], wanted: &str| {
        let o = fusionprot(args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", text(&o));
        assert!(
            text(&o).contains(wanted),
            "{args:?}: wanted {wanted:?} in {}",
            text(&o)
        );
    };
    let out = |name: &str| dir.path().join(name);
    // A fine-tuning config for pretrain, and the reverse.
    let ec = setup(dir.path(), "");
    fails(
        &["pretrain", "--config", s(&ec), "--out", s(&out("x1"))],
        "makes this a fine-tuning configuration: run it with `fusionprot train`",
    );
    fails(
        &["train", "--config", s(&cfg), "--out", s(&out("x2"))],
        "makes this a pre-training configuration: run it with `fusionprot pretrain`",
    );
    // An empty dataset.
    let empty = out("empty");
    let o =
        fusionprot(&[
            "prepare",
            s(&Path::new(
                &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
            )
            .join("../data/sample")),
            "--out",
            s(&empty),
            "--min-residues",
            "100000",
            "--allow-empty",
        ]);
    assert!(o.status.success(), "{}", text(&o));
    fails(
        &[
            "pretrain",
            "--config",
            s(&cfg),
            "--out",
            s(&out("x3")),
            "--set",
            &format!("data.datasets=[{:?}]", s(&empty)),
        ],
        "holds no protein to pre-train on",
    );
    assert!(!out("x3").exists(), "a refused run left a folder");
    // Crops and masks that cannot be: checked with the config.
    fails(
        &[
            "pretrain",
            "--config",
            s(&cfg),
            "--out",
            s(&out("x4")),
            "--set",
            "objective.crop_length=0",
        ],
        "objective.crop_length",
    );
    fails(
        &[
            "pretrain",
            "--config",
            s(&cfg),
            "--out",
            s(&out("x5")),
            "--set",
            "objective.edge_mask_rate=1.5",
        ],
        "objective.edge_mask_rate",
    );
    // model.init that is not there, and a checkpoint of another architecture.
    fails(
        &[
            "pretrain",
            "--config",
            s(&cfg),
            "--out",
            s(&out("x6")),
            "--set",
            &format!("model.init={:?}", s(&out("nothing"))),
        ],
        "no checkpoint there",
    );
    assert!(!out("x6").exists(), "a refused run left a folder");
    let quick = dir.path().join("quick");
    let o = fusionprot(&[
        "pretrain",
        "--config",
        s(&cfg),
        "--out",
        s(&quick),
        "--set",
        "optim.epochs=1",
        "--set",
        "objective.probe=0",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    fails(
        &[
            "pretrain",
            "--config",
            s(&cfg),
            "--out",
            s(&out("x7")),
            "--set",
            "model.kind=esm-gearnet",
            "--set",
            &format!("model.init={:?}", s(&quick)),
        ],
        "the weights do not match the esm-gearnet model",
    );
    assert!(!out("x7").join("checkpoints/epoch-0001").exists());
    // An unknown objective is named with the choices.
    fails(
        &[
            "pretrain",
            "--config",
            s(&cfg),
            "--out",
            s(&out("x8")),
            "--set",
            "objective.kind=siamdiff",
        ],
        "multiview-contrast",
    );
}

#[test]
fn pretraining_streams_a_linked_dataset_dataset_by_dataset() {
    // AlphaFold DB proteomes arrive as shards: three shards of the sample joined by
    // `merge --link` (nothing copied), pre-trained on with the real structures in the reference's
    // dataset-by-dataset order: epoch 1 walks the linked dataset (34 proteins: 5 steps of 8),
    // epoch 2 the real one (78: 10 steps).
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = datasets(dir.path(), "");
    let sample =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../data/sample");
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| {
            let out = dir.path().join(format!("shard-{i}"));
            let o = fusionprot(&[
                "prepare",
                s(&sample),
                "--out",
                s(&out),
                "--shard",
                &format!("{i}/3"),
            ]);
            assert!(o.status.success(), "{}", text(&o));
            out
        })
        .collect();
    let linked = dir.path().join("linked");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|p| s(p)));
    args.extend(["--out", s(&linked), "--link"]);
    let o = fusionprot(&args);
    assert!(o.status.success(), "{}", text(&o));
    let db = dir.path().join("t.db");
    let o = fusionprot(&[
        "pretrain",
        "--config",
        s(&cfg),
        "--out",
        s(&dir.path().join("run")),
        "--set",
        &format!(
            "data.datasets=[{:?}, {:?}]",
            s(&linked),
            s(&dir.path().join("real"))
        ),
        "--set",
        "data.order=dataset-by-dataset",
        "--set",
        "data.epochs_per_dataset=1",
        "--set",
        "optim.epochs=2",
        "--tracking-uri",
        &uri(&db),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("on 112 proteins of 2 dataset(s): 2 epochs, 15 steps"),
        "{}",
        text(&o)
    );
    let speed = series(&db, "speed/proteins_per_second");
    assert_eq!(
        speed.iter().map(|x| x.0).collect::<Vec<_>>(),
        [5, 15],
        "{speed:?}"
    );
    // Both datasets are linked to the run, each under its own context.
    let links = sql(
        &db,
        "csv",
        "SELECT context FROM run_datasets ORDER BY context",
    );
    assert!(
        links.contains("pretrain\n") && links.contains("pretrain-2"),
        "{links}"
    );
}
