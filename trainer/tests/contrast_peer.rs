//! One Multiview Contrast step against PyTorch (tests/peer/mc_peer.py): tiny FusionProt on four
//! real graphs, the same two views given explicitly to both sides as crop windows and masked edge
//! positions (a view each with and without edge masking), each its own forward pass, the
//! projection MLP, InfoNCE at τ 0.07, ESM frozen and Adam over everything else. Our side runs
//! exactly what a pre-training run runs: the `MultiviewContrast` objective stepped by
//! `Trainer::step_inspecting` with the optimizer `pretrain::optimizer` builds.
//!
//! Tolerances (float32 on CPU): the loss 1e-5 absolute (InfoNCE with τ = 0.07 and
//! near-parallel views is known to about 1e-6, training.md §7.8); projections 1e-4 of their
//! largest entry; gradients 2e-3 of each tensor's largest gradient (33 transformer and 6 graph
//! layers, two passes, reassociation); parameters after the step 1e-4·(1 + |p|) + 5% of lr (Adam's
//! first step is ±lr·m̂/(√v̂ + eps)); BatchNorm buffers (two updates per step) 1e-4·(1 + |b|).
//! GearNet's conv biases and the embedding's linear bias feed a train-mode BatchNorm: their true
//! gradient is 0 and the stored one rounding noise (training.md §7.1), so their gradients are not
//! compared and their values held to 2.5·lr. ESM must be bitwise unchanged.

mod common;

use std::collections::BTreeMap;

use common::graphs::{proteins, spec, tiny_config, write_batch};
use fusionprot_trainer::train::contrast::{Given, MultiviewContrast};
use fusionprot_trainer::train::pretrain::optimizer;
use fusionprot_trainer::train::pretrain_config::PretrainOptim;
use fusionprot_trainer::train::pretrain_data::Proteins;
use fusionprot_trainer::train::task::MultiLabelHead;
use fusionprot_trainer::train::views::{ViewRule, ViewSpec};
use fusionprot_trainer::train::{Draw, Example, MicroBatch, Trainer};
use fusionprot_trainer::weights::load::build;
use fusionprot_trainer::{Device, Model, ModelKind, ProteinGraph};
use tch::{Kind, Tensor};

const LR: f64 = 1e-2;

/// Two views of every protein: view 1 crops 50 residues (or all) at a chosen start with no mask,
/// view 2 another crop with a few masked edge positions (one repeated), as RandomEdgeMask draws.
fn views(p: &[ProteinGraph]) -> [Vec<ViewSpec>; 2] {
    let crop = |g: &ProteinGraph, at: f64| {
        let start = ((g.len().saturating_sub(50)) as f64 * at) as usize;
        (start, 50.min(g.len() - start))
    };
    let one = p
        .iter()
        .map(|g| {
            let (start, len) = crop(g, 0.3);
            ViewSpec {
                start,
                len,
                masked: vec![],
            }
        })
        .collect();
    let two = p
        .iter()
        .map(|g| {
            let (start, len) = crop(g, 0.8);
            let edges = g.window(start, len).edges.len();
            let k = ((0.15 * edges as f64) as usize).max(1);
            let mut masked: Vec<usize> = (0..k).map(|i| (i * 7919 + 13) % edges).collect();
            masked.push(masked[0]);
            ViewSpec { start, len, masked }
        })
        .collect();
    [one, two]
}

fn write_views(v: &[Vec<ViewSpec>; 2], path: &std::path::Path) {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (k, specs) in v.iter().enumerate() {
        let n = k + 1;
        let col = |f: &dyn Fn(&ViewSpec) -> i64| {
            Tensor::from_slice(&specs.iter().map(f).collect::<Vec<i64>>())
        };
        named.push((format!("{n}.start"), col(&|s| s.start as i64)));
        named.push((format!("{n}.len"), col(&|s| s.len as i64)));
        named.push((format!("{n}.count"), col(&|s| s.masked.len() as i64)));
        let masked: Vec<i64> = specs
            .iter()
            .flat_map(|s| s.masked.iter().map(|&m| m as i64))
            .collect();
        // safetensors wants at least one element per tensor: a dummy is never read (count 0).
        let masked = if masked.is_empty() { vec![-1] } else { masked };
        named.push((format!("{n}.masked"), Tensor::from_slice(&masked)));
    }
    Tensor::write_safetensors(&named, path).expect("write views");
}

/// The tiny model of the peer and the projection head with the peer's initial weights.
fn setup(dir: &std::path::Path, views: [Vec<ViewSpec>; 2]) -> (Model, MultiviewContrast) {
    let model = build(&spec(
        ModelKind::Fusionprot,
        &tiny_config(dir),
        &dir.join("model.pth"),
    ))
    .expect("load the peer's model")
    .model;
    let dim = model.output_dim();
    let head = MultiLabelHead::new(&model.vs.root(), dim, dim, 2);
    let init = common::read(&dir.join("head.safetensors"));
    let vars = model.vs.variables();
    tch::no_grad(|| {
        for (name, value) in &init {
            vars[name].shallow_clone().copy_(value);
        }
    });
    let objective = MultiviewContrast {
        proteins: Proteins::none(),
        head,
        rule: ViewRule {
            crop: 50,
            edge_mask_rate: 0.15,
            edge_mask: true,
        },
        tau: 0.07,
        device: Device::Cpu,
        given: vec![Given::Windows(views)].into(),
        probe: Vec::new(),
        seed: 0,
    };
    (model, objective)
}

/// A view the peer cut, split back into proteins (ids of `p`).
fn peer_view(
    peer: &std::collections::HashMap<String, Tensor>,
    key: &str,
    p: &[ProteinGraph],
) -> Vec<ProteinGraph> {
    let col = |f: &str| Vec::<i64>::try_from(&peer[&format!("{key}.{f}")]).expect("i64 column");
    let (rt, oh, lengths) = (col("residue_type"), col("onehot"), col("lengths"));
    let (src, dst, rel) = (col("src"), col("dst"), col("rel"));
    let mut out = Vec::new();
    let mut offset = 0i64;
    for (g, &n) in p.iter().zip(&lengths) {
        let range = offset as usize..(offset + n) as usize;
        let edges = (0..src.len())
            .filter(|&e| range.contains(&(src[e] as usize)))
            .map(|e| {
                (
                    (src[e] - offset) as i32,
                    (dst[e] - offset) as i32,
                    rel[e] as i8,
                )
            })
            .collect();
        out.push(ProteinGraph {
            id: g.id.clone(),
            residue_type: rt[range.clone()].to_vec(),
            onehot: oh[range].to_vec(),
            edges,
        });
        offset += n;
    }
    out
}

fn noisy(name: &str) -> bool {
    name == "structure_embed_linear.bias"
        || (name.starts_with("structure_model.layers.")
            && (name.ends_with("linear.bias") || name.ends_with("self_loop.bias")))
}

#[test]
fn one_multiview_contrast_step_matches_pytorch() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = proteins(dir.path());
    let v = views(&p);
    let (batch, view_file) = (
        dir.path().join("batch.safetensors"),
        dir.path().join("views.safetensors"),
    );
    write_batch(&p, &[], &batch);
    write_views(&v, &view_file);
    common::peer("mc_peer.py", &[&batch, &view_file, dir.path()]);
    let peer = common::read(&dir.path().join("step.safetensors"));

    // The projections, from a copy of the start (its BatchNorm updates do not matter).
    let (copy, obj) = setup(dir.path(), v.clone());
    let projected = obj.project(&copy, &p, &v).expect("project");
    for (k, name) in ["x", "y"].iter().enumerate() {
        let want = &peer[*name];
        let scale = want.abs().max().double_value(&[]);
        let d = common::max_abs_diff(&projected[k], want) / scale;
        assert!(
            d <= 1e-4,
            "projection {name} differs by {d:e} of its largest entry"
        );
    }

    let (model, mut objective) = setup(dir.path(), v);
    let init: BTreeMap<String, Tensor> = model
        .vs
        .variables()
        .into_iter()
        .map(|(k, t)| (k, t.copy()))
        .collect();
    let opt = optimizer(
        &model,
        &PretrainOptim {
            lr: LR,
            ..PretrainOptim::default()
        },
        false,
    )
    .expect("optimizer");
    let mut trainer = Trainer {
        model: &model,
        opt,
        scaler: None,
        lr: LR,
        micro_batch: p.len(),
        dist: None,
        comm: Default::default(),
    };
    let rows: Vec<Example> = p
        .iter()
        .map(|g| Example::Protein { id: g.id.clone() })
        .collect();
    let refs: Vec<&Example> = rows.iter().collect();
    let draw = Draw {
        seed: 0,
        epoch: 0,
        step: 1,
        micro: 0,
    };
    let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
    let report = trainer
        .step_inspecting(
            &mut objective,
            &[MicroBatch {
                rows: &refs,
                graphs: &p,
            }],
            &[draw],
            &mut |m: &Model| {
                for (name, t) in m.vs.variables() {
                    let g = t.grad();
                    if g.defined() {
                        grads.insert(name, g.copy());
                    }
                }
            },
        )
        .expect("step");
    let want = peer["loss"].double_value(&[0]);
    assert!(
        (report.loss - want).abs() <= 1e-5,
        "loss {} vs PyTorch {want}",
        report.loss
    );
    assert!(report.loss > 0.01, "a loss not saturated: {}", report.loss);

    // Gradients: the same set of parameters has one (ESM none: frozen), and they agree.
    let mut compared = 0;
    for (name, want) in peer
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("grad.").map(|n| (n, v)))
    {
        let got = grads
            .get(name)
            .unwrap_or_else(|| panic!("{name}: PyTorch has a gradient, we do not"));
        if noisy(name) {
            continue;
        }
        let scale = want.abs().max().double_value(&[]).max(1e-12);
        let d = common::max_abs_diff(got, want) / scale;
        assert!(
            d <= 2e-3,
            "{name}: gradient differs by {d:e} of its largest entry"
        );
        compared += 1;
    }
    assert!(
        grads.keys().all(|k| !k.starts_with("sequence_model.")),
        "ESM got gradients"
    );
    assert!(
        grads
            .keys()
            .all(|k| peer.contains_key(&format!("grad.{k}"))),
        "we have gradients PyTorch has not"
    );
    assert!(compared > 40, "{compared} gradients compared");

    // The same projections from the finished view graphs the peer cut (the other way to give
    // views): the peer's graphs, edges in its order.
    let (copy, obj) = setup(dir.path(), views(&p));
    let cut = [peer_view(&peer, "view1", &p), peer_view(&peer, "view2", &p)];
    let projected = obj.project_graphs(&copy, &cut).expect("project graphs");
    for (k, name) in ["x", "y"].iter().enumerate() {
        let want = &peer[*name];
        let scale = want.abs().max().double_value(&[]);
        let d = common::max_abs_diff(&projected[k], want) / scale;
        assert!(
            d <= 1e-4,
            "projection {name} of the given graphs differs by {d:e}"
        );
    }

    // After one Adam step: every parameter and buffer.
    let mut checked = 0;
    for (name, ours) in model.vs.variables() {
        let Some(want) = peer.get(&name) else {
            continue;
        };
        let ours = ours.to_kind(Kind::Double);
        let want = want.to_kind(Kind::Double);
        if name.starts_with("sequence_model.") {
            assert!(
                ours.equal(&init[&name].to_kind(Kind::Double)),
                "{name}: ESM moved"
            );
        }
        let d = (&ours - &want).abs();
        let worst = d.max().double_value(&[]);
        let ok = if noisy(&name) {
            worst <= 2.5 * LR
        } else if name.contains("running_") {
            (&d - (want.abs() + 1.0) * 1e-4).max().double_value(&[]) <= 0.0
        } else {
            (&d - (want.abs() + 1.0) * 1e-4 - 0.05 * LR)
                .max()
                .double_value(&[])
                <= 0.0
        };
        assert!(
            ok,
            "{name}: differs from PyTorch by up to {worst:e} after the step"
        );
        checked += 1;
    }
    assert!(checked > 450, "{checked} tensors compared");
    // Pre-training trains FusionProt's own fusion parameters (fine-tuning never does).
    for name in [
        "structure_token",
        "structure_embed_linear.weight",
        "structure_linears.0.weight",
        "seq_linears.1.weight",
        "mlp.layers.1.weight",
    ] {
        let now = model.vs.variables()[name].copy();
        assert!(!now.equal(&init[name]), "{name} did not move");
    }
}
