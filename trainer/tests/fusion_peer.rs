//! FusionProt's fused network, GearNet and ESM-GearNet against a PyTorch peer written from the
//! spec (tests/peer/fusion_peer.py), on real graphs from the pipeline: four sample proteins of
//! different lengths in one batch, reference depths (33 ESM layers, 6 GearNet layers) at tiny
//! widths. The peer writes its weights as a FusionProt-style `.pth` state_dict, which we load
//! strictly through our own unpickler.
//!
//! Tolerance: |ours − peer| ≤ 1e-4 · (1 + |peer|) per element, float32 on CPU. Values pass
//! through 33 transformer layers and 6 graph layers whose sum aggregation adds up to ~50 terms,
//! then sum readouts over up to ~200 residues (|graph feature| up to ~1e2): a few ulp of
//! reassociation per op compound to ~1e-5 relative; any modelling difference (token position,
//! relation, BN mode, schedule) shows up at ≥ 1e-2.

mod common;

use std::path::Path;

use fusionprot_trainer::data::DatasetGraphs;
use fusionprot_trainer::load::{ModelSpec, build};
use fusionprot_trainer::{Batch, Device, ModelKind, ProteinGraph};
use tch::Tensor;

const TOL: f64 = 1e-4;

fn proteins(dir: &Path) -> Vec<ProteinGraph> {
    let out = dir.join("dataset");
    let cfg = fusionprot_pipeline::PrepareConfig {
        inputs: vec![common::sample_dir()],
        out: out.clone(),
        proteins: Default::default(),
        jobs: 1,
        strict: false,
        only_ids: None,
    };
    fusionprot_pipeline::prepare(&cfg, &indicatif::ProgressBar::hidden()).expect("prepare");
    let mut all: Vec<ProteinGraph> = DatasetGraphs::open(&out)
        .expect("open")
        .collect::<Result<_, _>>()
        .expect("read graphs");
    all.sort_by_key(|p| (p.len(), p.id.clone()));
    // four proteins of different lengths; the longest is truncated to keep the test quick
    let n = all.len();
    let mid = all[n / 2].len();
    let chosen = vec![
        all[0].clone(),
        all[n / 4].clone(),
        all[n / 2].clone(),
        all[n - 1].truncated(mid + 37),
    ];
    let lens: Vec<usize> = chosen.iter().map(ProteinGraph::len).collect();
    assert!(
        lens.windows(2).all(|w| w[0] < w[1]),
        "distinct lengths: {lens:?}"
    );
    chosen
}

fn write_batch(proteins: &[ProteinGraph], path: &Path) {
    let mut src = Vec::new();
    let mut dst = Vec::new();
    let mut rel = Vec::new();
    let mut offset = 0i64;
    for p in proteins {
        for (s, d, r) in &p.edges {
            src.push(offset + i64::from(*s));
            dst.push(offset + i64::from(*d));
            rel.push(i64::from(*r));
        }
        offset += p.len() as i64;
    }
    let cat = |f: &dyn Fn(&ProteinGraph) -> &Vec<i64>| -> Tensor {
        Tensor::from_slice(
            &proteins
                .iter()
                .flat_map(|p| f(p).clone())
                .collect::<Vec<_>>(),
        )
    };
    let lengths: Vec<i64> = proteins.iter().map(|p| p.len() as i64).collect();
    let named = vec![
        ("residue_type", cat(&|p| &p.residue_type)),
        ("onehot", cat(&|p| &p.onehot)),
        ("lengths", Tensor::from_slice(&lengths)),
        ("src", Tensor::from_slice(&src)),
        ("dst", Tensor::from_slice(&dst)),
        ("rel", Tensor::from_slice(&rel)),
    ];
    Tensor::write_safetensors(&named, path).expect("write batch");
}

fn tiny_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        "[esm]\nlayers = 33\nembed_dim = 32\nheads = 4\n[gearnet]\nhidden_dims = [16, 16, 16, 16, 16, 16]\n",
    )
    .expect("write config");
    path
}

fn spec(kind: ModelKind, config: &Path, checkpoint: &Path) -> ModelSpec {
    ModelSpec {
        kind,
        config: Some(config.to_path_buf()),
        checkpoint: Some(checkpoint.to_path_buf()),
        esm: None,
        random_init: false,
        device: Device::Cpu,
        seed: 0,
    }
}

#[track_caller]
fn close(what: &str, ours: &Tensor, peer: &Tensor) {
    let d = common::max_rel_diff(ours, peer);
    eprintln!("{what}: max relative difference {d:.2e}");
    if std::env::var_os("FP_DEBUG").is_some() {
        let cols = ours.size()[1];
        for start in (0..cols).step_by(16) {
            let w = 16.min(cols - start);
            let a = ours.narrow(1, start, w);
            let b = peer.narrow(1, start, w);
            eprintln!(
                "  cols {start}..{}: rel {:.2e} abs {:.2e} max|peer| {:.2e}",
                start + w,
                common::max_rel_diff(&a, &b),
                common::max_abs_diff(&a, &b),
                b.abs().max().double_value(&[])
            );
        }
    }
    assert!(d <= TOL, "{what}: max |diff|/(1+|peer|) = {d:e} > {TOL:e}");
}

fn check(kind: ModelKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let proteins = proteins(dir.path());
    write_batch(&proteins, &dir.path().join("batch.safetensors"));
    common::peer(
        "fusion_peer.py",
        &[
            Path::new(kind.name()),
            &dir.path().join("batch.safetensors"),
            dir.path(),
        ],
    );
    let peer = common::read(&dir.path().join("out.safetensors"));
    let config = tiny_config(dir.path());
    let loaded = build(&spec(kind, &config, &dir.path().join("model.pth"))).expect("load .pth");
    let batch = Batch::new(&proteins, Device::Cpu);
    let eval = tch::no_grad(|| loaded.model.forward(&batch, false));
    close(
        &format!("{} eval graph_feature", kind.name()),
        &eval.graph_feature,
        &peer["eval_graph"],
    );
    close(
        &format!("{} eval node_feature", kind.name()),
        &eval.node_feature,
        &peer["eval_node"],
    );

    // Round trip: save as safetensors, reload, identical output.
    let saved = dir.path().join("model.safetensors");
    fusionprot_trainer::weights::save(&loaded.model, &saved).expect("save");
    let again = build(&spec(kind, &config, &saved)).expect("reload safetensors");
    let eval2 = tch::no_grad(|| again.model.forward(&batch, false));
    assert!(
        eval2.graph_feature.equal(&eval.graph_feature),
        "round trip changed the output"
    );

    // Train mode: BatchNorm on batch statistics.
    let train = tch::no_grad(|| loaded.model.forward(&batch, true));
    close(
        &format!("{} train graph_feature", kind.name()),
        &train.graph_feature,
        &peer["train_graph"],
    );
    close(
        &format!("{} train node_feature", kind.name()),
        &train.node_feature,
        &peer["train_node"],
    );
}

#[test]
fn fusionprot_matches_the_peer_and_round_trips() {
    check(ModelKind::Fusionprot);
}

#[test]
fn esm_gearnet_matches_the_peer() {
    check(ModelKind::EsmGearnet);
}

#[test]
fn gearnet_matches_the_peer() {
    check(ModelKind::Gearnet);
}
