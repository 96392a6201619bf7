//! The trainer's AdamW against `torch.optim.AdamW` (tests/peer/adamw_peer.py) on the same tiny
//! network, weights and batches: three steps (one batch; two accumulated micro-batches; a changed
//! learning rate). Parameters in no group and parameters without a gradient stay bitwise as they
//! were. Saving the state mid-run and loading it into a fresh optimizer continues bitwise equal to
//! the uninterrupted run. Tolerance against PyTorch: 1e-6 absolute + 1e-5 relative (float32; the
//! two sides' kernels round differently, e.g. our `v·β2 + g²·(1−β2)` against torch's `addcmul_`).

mod common;

use std::collections::BTreeMap;

use fusionprot_trainer::train::{AdamW, AdamWConfig, ParamGroup};
use tch::nn::{Init, VarStore};
use tch::{Device, Kind, Tensor};

const LR: f64 = 1e-3;
const RATIO: f64 = 0.1;

struct Net {
    vs: VarStore,
    p: BTreeMap<&'static str, Tensor>,
}

fn net(init: &BTreeMap<String, Tensor>) -> Net {
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let mut p = BTreeMap::new();
    for name in [
        "sequence_model.w1",
        "sequence_model.b1",
        "structure_model.w2",
        "mlp.w3",
        "lm_head.weight",
        "structure_token",
    ] {
        let value = &init[name];
        let mut path = root.clone();
        let (prefix, last) = name.rsplit_once('.').unwrap_or(("", name));
        for part in prefix.split('.').filter(|s| !s.is_empty()) {
            path = path.sub(part);
        }
        let v = path.var(last, &value.size(), Init::Const(0.0));
        tch::no_grad(|| {
            let mut v = v.shallow_clone();
            v.copy_(value);
        });
        p.insert(name, v);
    }
    Net { vs, p }
}

fn loss(n: &Net, x: &Tensor, y: &Tensor) -> Tensor {
    let h = (x.matmul(&n.p["sequence_model.w1"]) + &n.p["sequence_model.b1"]).relu();
    let z = (h.matmul(&n.p["structure_model.w2"]) + &n.p["structure_token"]).relu();
    z.matmul(&n.p["mlp.w3"])
        .binary_cross_entropy_with_logits::<Tensor>(y, None, None, tch::Reduction::Mean)
}

fn optimizer(n: &Net) -> AdamW {
    let groups = vec![
        ParamGroup {
            name: "sequence_model".into(),
            prefixes: vec!["sequence_model.".into()],
            lr_ratio: RATIO,
        },
        ParamGroup {
            name: "rest".into(),
            prefixes: vec!["structure_model.".into(), "mlp.".into(), "lm_head.".into()],
            lr_ratio: 1.0,
        },
    ];
    let cfg = AdamWConfig {
        lr: LR,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-8,
        weight_decay: 0.01,
    };
    AdamW::new(&n.vs, groups, cfg).expect("optimizer")
}

/// Step `k` (0, 1, 2) of the peer's schedule.
fn step(n: &Net, opt: &mut AdamW, t: &BTreeMap<String, Tensor>, k: usize) {
    match k {
        0 | 2 => {
            if k == 2 {
                opt.set_lr(0, LR * RATIO * 0.6);
            }
            loss(n, &t["x0"], &t["y0"]).backward();
        }
        _ => {
            for m in ["1", "2"] {
                (loss(n, &t[&format!("x{m}")], &t[&format!("y{m}")]) / 2.0).backward();
            }
        }
    }
    opt.step();
    opt.zero_grad();
}

#[test]
fn adamw_matches_torch_and_resumes_bitwise() {
    tch::set_num_threads(1);
    tch::manual_seed(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut init = BTreeMap::new();
    let randn = |s: &[i64]| Tensor::randn(s, (Kind::Float, Device::Cpu)) * 0.5;
    for (name, shape) in [
        ("sequence_model.w1", vec![8, 16]),
        ("sequence_model.b1", vec![16]),
        ("structure_model.w2", vec![16, 6]),
        ("mlp.w3", vec![6, 3]),
        ("lm_head.weight", vec![3, 4]),
        ("structure_token", vec![6]),
    ] {
        init.insert(name.to_owned(), randn(&shape));
    }
    for k in 0..3 {
        init.insert(format!("x{k}"), randn(&[5, 8]));
        init.insert(
            format!("y{k}"),
            Tensor::rand([5, 3], (Kind::Float, Device::Cpu))
                .gt(0.5)
                .to_kind(Kind::Float),
        );
    }
    let list: Vec<(&str, &Tensor)> = init.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Tensor::write_safetensors(&list, dir.path().join("init.safetensors")).expect("write");
    common::peer("adamw_peer.py", &[dir.path()]);
    let peer: BTreeMap<String, Tensor> =
        Tensor::read_safetensors(dir.path().join("peer.safetensors"))
            .expect("peer")
            .into_iter()
            .collect();

    // Uninterrupted.
    let a = net(&init);
    let mut opt = optimizer(&a);
    assert_eq!(opt.excluded(), ["structure_token"]);
    for k in 0..3 {
        step(&a, &mut opt, &init, k);
    }
    for (name, got) in &a.p {
        let want = &peer[*name];
        let diff = (got - want).abs().max().double_value(&[]);
        let bound = 1e-6 + 1e-5 * want.abs().max().double_value(&[]);
        assert!(
            diff <= bound,
            "{name}: differs from torch.optim.AdamW by {diff}"
        );
        if *name != "structure_token" && *name != "lm_head.weight" {
            assert!(!got.equal(&init[*name]), "{name} was not updated");
        }
    }
    assert!(
        a.p["structure_token"].equal(&init["structure_token"]),
        "a parameter in no group moved"
    );
    assert!(
        a.p["lm_head.weight"].equal(&init["lm_head.weight"]),
        "no gradient, yet decayed"
    );

    // Interrupted after two steps: state saved, a fresh optimizer on fresh weights loads it.
    let b = net(&init);
    let mut opt_b = optimizer(&b);
    for k in 0..2 {
        step(&b, &mut opt_b, &init, k);
    }
    let state = dir.path().join("optimizer.safetensors");
    opt_b.save(&state).expect("save");
    let weights: BTreeMap<String, Tensor> =
        b.p.iter()
            .map(|(k, v)| ((*k).to_owned(), v.copy()))
            .collect();
    drop((opt_b, b));
    let c = net(&weights);
    let mut opt_c = optimizer(&c);
    opt_c.load(&state).expect("load");
    step(&c, &mut opt_c, &init, 2);
    for (name, got) in &c.p {
        assert!(
            got.equal(&a.p[*name]),
            "{name}: resumed run differs from the uninterrupted one"
        );
    }

    // A state from another model is refused, naming what does not fit.
    let other = VarStore::new(Device::Cpu);
    let _ = other
        .root()
        .sub("sequence_model")
        .var("w1", &[2, 2], Init::Const(0.0));
    let _ = other.root().sub("mlp").var("w3", &[2, 2], Init::Const(0.0));
    let groups = vec![
        ParamGroup {
            name: "sequence_model".into(),
            prefixes: vec!["sequence_model.".into()],
            lr_ratio: RATIO,
        },
        ParamGroup {
            name: "rest".into(),
            prefixes: vec!["mlp.".into()],
            lr_ratio: 1.0,
        },
    ];
    let mut wrong = AdamW::new(&other, groups, AdamWConfig::default()).expect("optimizer");
    let err = wrong
        .load(&state)
        .expect_err("mismatched state")
        .to_string();
    assert!(
        err.contains("mlp.w3: state of shape [6, 3], parameter [2, 2]") && err.contains("shape"),
        "{err}"
    );
}

#[test]
fn a_group_that_matches_nothing_is_an_error() {
    let vs = VarStore::new(Device::Cpu);
    let _ = vs.root().sub("mlp").var("w", &[2], Init::Const(0.0));
    let groups = vec![ParamGroup {
        name: "esm".into(),
        prefixes: vec!["sequence_mdoel.".into()],
        lr_ratio: 0.1,
    }];
    let err = AdamW::new(&vs, groups, AdamWConfig::default())
        .expect_err("typo")
        .to_string();
    assert!(err.contains("sequence_mdoel"), "{err}");
}

#[test]
fn unscaling_divides_gradients_and_finds_overflow() {
    let vs = VarStore::new(Device::Cpu);
    let w = vs.root().sub("mlp").var("w", &[3], Init::Const(1.0));
    let groups = vec![ParamGroup {
        name: "head".into(),
        prefixes: vec!["mlp.".into()],
        lr_ratio: 1.0,
    }];
    let mut opt = AdamW::new(&vs, groups, AdamWConfig::default()).expect("optimizer");
    (&w * Tensor::from_slice(&[2f32, 4., 8.]) * 1024.0)
        .sum(Kind::Float)
        .backward();
    assert!(opt.unscale_grads(1.0 / 1024.0));
    let g: Vec<f32> = Vec::try_from(w.grad()).expect("grad");
    assert_eq!(g, [2.0, 4.0, 8.0]);
    opt.zero_grad();
    (&w * Tensor::from_slice(&[1f32, f32::INFINITY, 1.]))
        .sum(Kind::Float)
        .backward();
    assert!(!opt.unscale_grads(0.5));
}
