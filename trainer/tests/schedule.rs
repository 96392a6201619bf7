//! The epoch order and the learning-rate schedule against PyTorch itself
//! (tests/peer/schedule_peer.py): `torch.randperm` with a seeded generator, `DistributedSampler`
//! after `set_epoch`, and `ReduceLROnPlateau` in both modes. Exact for the orders; learning rates
//! to one ulp (the same f64 operations, read back through JSON).

mod common;

use fusionprot_trainer::train::sampler::randperm;
use fusionprot_trainer::train::{Mode, Plateau, PlateauConfig, epoch_order};

fn usizes(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect()
}

#[test]
fn order_and_schedule_equal_pytorch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("peer.json");
    common::peer("schedule_peer.py", &[&out]);
    let peer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("peer output")).expect("json");
    for case in peer["randperm"].as_array().expect("cases") {
        let (n, seed) = (
            case["n"].as_u64().expect("n"),
            case["seed"].as_u64().expect("seed"),
        );
        assert_eq!(
            randperm(n as usize, seed),
            usizes(&case["perm"]),
            "randperm({n}) seed {seed}"
        );
    }
    for case in peer["sampler"].as_array().expect("cases") {
        let get = |k: &str| case[k].as_u64().expect("int");
        assert_eq!(
            epoch_order(
                get("n") as usize,
                get("epoch"),
                get("replicas") as usize,
                get("rank") as usize
            ),
            usizes(&case["order"]),
            "{case}"
        );
    }
    for (mode, name) in [(Mode::Min, "min"), (Mode::Max, "max")] {
        let p = &peer["plateau"][name];
        let mut s = Plateau::new(PlateauConfig {
            mode,
            ..PlateauConfig::default()
        });
        let mut lrs = [2e-5 * 0.08, 2e-5];
        for (m, want) in p["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .zip(p["lrs"].as_array().expect("lrs"))
        {
            s.step(m.as_f64().expect("metric"), &mut lrs);
            let want: Vec<f64> = want
                .as_array()
                .expect("pair")
                .iter()
                .map(|x| x.as_f64().expect("lr"))
                .collect();
            // Equal up to one ulp: serde_json's default float parsing is not always correctly
            // rounded; the cuts themselves (when, and by how much) must match exactly.
            for (g, w) in lrs.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 2.0 * f64::EPSILON * w.abs(),
                    "mode {name} after metric {m}: {lrs:?} vs {want:?}"
                );
            }
        }
    }
}
