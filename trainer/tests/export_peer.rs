//! `fusionprot export` against the reference: a short pre-training run of the tiny FusionProt
//! (the library's `pretrain`, as the command runs it) from the PyTorch peer's weights, its best
//! checkpoint exported by `export` (the command's code), then loaded by the peer with
//! `load_state_dict(strict=True)` (tests/peer/export_peer.py: no key missing, none unexpected)
//! and run in eval mode on four real graphs: the features equal ours from the same file.
//!
//! Tolerance: as tests/fusion_peer.rs (1e-4 · (1 + |peer|), float32 through 33 + 6 layers).

mod common;

use common::graphs::{proteins, spec, tiny_config, write_batch};
use fusionprot_trainer::train::{NoLog, PretrainConfig, RunOptions, export, pretrain};
use fusionprot_trainer::weights::load::build;
use fusionprot_trainer::{Batch, Device, ModelKind};

#[test]
fn an_exported_pretraining_checkpoint_loads_strictly_in_pytorch_and_computes_the_same() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let p = proteins(d);
    let batch = d.join("batch.safetensors");
    write_batch(&p, &[], &batch);
    common::peer(
        "fusion_peer.py",
        &[std::path::Path::new("fusionprot"), &batch, d],
    );
    let tiny = tiny_config(d);

    let text = format!(
        "[data]\ndatasets = [{:?}]\n[model]\nkind = \"fusionprot\"\nconfig = {:?}\ncheckpoint = {:?}\n\
         [objective]\nprobe = 0\n[optim]\nlr = 1e-2\nmicro_batch = 4\ngradient_interval = 1\nepochs = 1\nsave_every = 1\n",
        d.join("dataset"),
        tiny,
        d.join("model.pth")
    );
    let cfg = PretrainConfig::parse(&text, "test.toml").expect("config");
    let run = d.join("run");
    std::fs::create_dir_all(&run).expect("run folder");
    std::fs::write(run.join("config.toml"), cfg.to_toml().expect("toml")).expect("config.toml");
    pretrain(
        &cfg,
        &RunOptions {
            out: run.clone(),
            device: Device::Cpu,
            resume: false,
            stop: None,
            dist: None,
        },
        &mut NoLog,
        &indicatif::ProgressBar::hidden(),
    )
    .expect("pre-training");

    let file = d.join("exported.safetensors");
    let e = export(&run.join("checkpoints/best"), &file).expect("export");
    assert_eq!(e.dropped, 4, "the projection's two layers are left out");
    let names = common::read(&file);
    assert!(names.keys().all(|k| !k.starts_with("mlp.")));
    assert!(names.contains_key("sequence_model.model.layers.32.self_attn.rot_emb.inv_freq"));
    assert!(
        names["sequence_model.model.lm_head.weight"]
            .equal(&names["sequence_model.model.embed_tokens.weight"])
    );
    assert!(d.join("exported.safetensors.manifest.json").is_file());

    let out = d.join("features.safetensors");
    common::peer("export_peer.py", &[&file, &batch, &out]);
    let peer = common::read(&out);
    let ours = build(&spec(ModelKind::Fusionprot, &tiny, &file))
        .expect("our loader reads the export")
        .model;
    let f = tch::no_grad(|| ours.forward(&Batch::new(&p, Device::Cpu), false));
    for (what, a, b) in [
        ("graph", &f.graph_feature, &peer["graph"]),
        ("node", &f.node_feature, &peer["node"]),
    ] {
        let diff = common::max_rel_diff(a, b);
        assert!(diff <= 1e-4, "{what} features differ by {diff:e}");
    }
    // The run moved the weights: the peer's features from its own initial weights differ.
    let before = common::read(&d.join("out.safetensors"));
    let moved = common::max_rel_diff(&peer["graph"], &before["eval_graph"]);
    assert!(moved > 1e-3, "pre-training changed nothing ({moved:e})");
}
