//! Model-level behaviour that needs no peer: parameter counts of the 650M configuration (spec
//! §1.7), the token-position option (quirk §6.5), the separate token relation (quirk §6.2), and
//! configuration errors.

mod common;

use fusionprot_trainer::config::{TokenPosition, TokenRelation};
use fusionprot_trainer::{Batch, Device, Model, ModelConfig, ModelKind, ProteinGraph};

fn count(model: &Model, prefix: &str) -> i64 {
    model
        .vs
        .variables()
        .iter()
        .filter(|(k, t)| k.starts_with(prefix) && t.requires_grad())
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

#[test]
fn the_650m_configuration_has_the_spec_parameter_counts() {
    let model =
        Model::new(ModelKind::Fusionprot, &ModelConfig::default(), Device::Cpu).expect("model");
    // spec §1.7: ESM-2 650M incl. LM head (tied output counted once) and contact regression
    assert_eq!(count(&model, "sequence_model."), 651_043_254);
    assert_eq!(count(&model, "structure_model."), 15_747_072);
    assert_eq!(model.num_parameters(), 674_697_398);
    assert_eq!(
        model.num_parameters() - 651_043_254 - 15_747_072,
        7_907_072,
        "fusion extras"
    );
    assert_eq!(model.output_dim(), 4352);
}

/// A small chain-like protein graph (sequential edges only) of `n` residues.
fn protein(id: &str, n: usize, seed: i64) -> ProteinGraph {
    let residue_type: Vec<i64> = (0..n as i64).map(|i| (i * 7 + seed) % 20).collect();
    let mut edges = Vec::new();
    for i in 0..n as i32 {
        for (off, rel) in [(-2, 0i8), (-1, 1), (0, 2), (1, 3), (2, 4)] {
            let j = i + off;
            if (0..n as i32).contains(&j) {
                edges.push((j, i, rel));
            }
        }
    }
    ProteinGraph {
        id: id.into(),
        onehot: residue_type.clone(),
        residue_type,
        edges,
    }
}

fn embed(model: &Model, proteins: &[ProteinGraph]) -> tch::Tensor {
    tch::no_grad(|| {
        model
            .forward(&Batch::new(proteins, Device::Cpu), false)
            .graph_feature
    })
}

#[test]
fn per_protein_token_position_makes_embeddings_independent_of_the_batch() {
    let short = protein("short", 12, 1);
    let long = protein("long", 40, 2);
    let mut config = ModelConfig::tiny();
    for position in [TokenPosition::BatchEnd, TokenPosition::PerProtein] {
        config.fusion.token_position = position;
        tch::manual_seed(3);
        let model = Model::new(ModelKind::Fusionprot, &config, Device::Cpu).expect("model");
        let alone = embed(&model, std::slice::from_ref(&short));
        let batched = embed(&model, &[short.clone(), long.clone()])
            .get(0)
            .unsqueeze(0);
        let d = common::max_rel_diff(&alone, &batched);
        eprintln!("{position:?}: max relative difference {d:.2e}");
        match position {
            // The reference puts the token at the batch's last column: the short protein's
            // embedding changes with its batch-mates (quirk §6.5).
            TokenPosition::BatchEnd => assert!(
                d > 1e-2,
                "reference layout should depend on the batch, diff {d}"
            ),
            // float32 noise only: a batch of two runs other kernels (shapes) than a batch of
            // one, ~1e-5 relative after 33 layers; the reference layout differs by > 1e-2.
            TokenPosition::PerProtein => {
                assert!(d < 1e-4, "per-protein layout should not, diff {d}")
            }
        }
    }
}

#[test]
fn a_separate_token_relation_adds_one_relation_to_gearnet() {
    let mut config = ModelConfig::tiny();
    config.fusion.token_relation = TokenRelation::Separate;
    let model = Model::new(ModelKind::Fusionprot, &config, Device::Cpu).expect("model");
    let shapes = model.state_shapes();
    let linear0 = shapes
        .iter()
        .find(|(k, _)| k == "structure_model.layers.0.linear.weight")
        .expect("layer 0");
    assert_eq!(linear0.1, vec![16, 8 * 32], "8 relations × ESM width 32");
    let out = embed(&model, &[protein("p", 9, 0)]);
    assert_eq!(out.size(), vec![1, 32 + 6 * 16]);
}

#[test]
fn a_schedule_that_does_not_use_every_gearnet_layer_is_refused() {
    let mut config = ModelConfig::tiny();
    config.gearnet.hidden_dims = vec![16; 5];
    config.fusion.layers_per_injection = Some(5);
    let err = Model::new(ModelKind::Fusionprot, &config, Device::Cpu).expect_err("bad schedule");
    assert!(
        matches!(
            err,
            fusionprot_trainer::config::ConfigError::Schedule {
                injections: 6,
                gearnet_layers: 5,
                ..
            }
        ),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("give 6 injections") && err.contains("GearNet has 5 layers"),
        "{err}"
    );
    // the same config is fine for ESM-GearNet, which has no schedule
    Model::new(ModelKind::EsmGearnet, &config, Device::Cpu).expect("esm-gearnet");
}
