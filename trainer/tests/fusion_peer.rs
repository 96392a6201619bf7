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

use common::graphs::{proteins, spec, tiny_config, write_batch};
use fusionprot_trainer::weights::load::build;
use fusionprot_trainer::{Batch, Device, ModelKind};
use tch::Tensor;

const TOL: f64 = 1e-4;

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
    write_batch(&proteins, &[], &dir.path().join("batch.safetensors"));
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
