//! Times our forward passes for `bench/embed`: ESM-2 alone and FusionProt (same ESM weights,
//! same proteins), and writes the ESM token batch so the PyTorch side times the same input.
//!
//! usage: forward_bench DATASET ESM_WEIGHTS CONFIG.toml PROTEINS LENGTH REPS TOKENS_OUT [cpu|cuda]
//! prints one JSON object: median seconds per forward for esm2 and fusionprot, residues.

use std::path::PathBuf;
use std::time::Instant;

use fusionprot_trainer::data::DatasetGraphs;
use fusionprot_trainer::weights::load::{ModelSpec, build, parse_device};
use fusionprot_trainer::{Batch, ModelKind, ProteinGraph};
use tch::Tensor;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() >= 8,
        "usage: forward_bench DATASET ESM CONFIG PROTEINS LENGTH REPS TOKENS_OUT [DEVICE]"
    );
    let (dataset, esm, config) = (PathBuf::from(&a[1]), a[2].clone(), PathBuf::from(&a[3]));
    let (n, len, reps): (usize, usize, usize) = (a[4].parse()?, a[5].parse()?, a[6].parse()?);
    let device = parse_device(a.get(8).map_or("cpu", String::as_str))?;
    // The n longest proteins, truncated to `len`, so every row is about `len` residues long.
    let mut all: Vec<ProteinGraph> = DatasetGraphs::open(&dataset)?.collect::<Result<_, _>>()?;
    all.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let proteins: Vec<ProteinGraph> = all.iter().take(n).map(|p| p.truncated(len)).collect();
    let residues: usize = proteins.iter().map(ProteinGraph::len).sum();
    let batch = Batch::new(&proteins, device);
    let (tokens, _, _) = batch.esm_tokens(None);
    Tensor::write_safetensors(&[("tokens", tokens.ids.to_device(tch::Device::Cpu))], &a[7])?;
    let mut result = serde_json::json!({ "residues": residues, "proteins": proteins.len() });
    let mut models = Vec::new();
    for kind in [ModelKind::Esm2, ModelKind::Fusionprot] {
        let spec = ModelSpec {
            kind,
            config: Some(config.clone()),
            checkpoint: None,
            esm: Some(esm.clone()),
            random_init: false,
            device,
            seed: 0,
        };
        models.push(build(&spec)?.model);
    }
    // Interleaved, so drift in machine speed hits both models alike.
    let mut times = vec![Vec::new(); models.len()];
    for rep in 0..=reps {
        for (m, model) in models.iter().enumerate() {
            let t = Instant::now();
            let out = tch::no_grad(|| model.forward(&batch, false));
            let _ = out.graph_feature.sum(tch::Kind::Float).double_value(&[]); // synchronise
            if rep > 0 {
                times[m].push(t.elapsed().as_secs_f64()); // rep 0 is the warm-up
            }
        }
    }
    for (model, mut t) in models.iter().zip(times) {
        t.sort_by(f64::total_cmp);
        result[model.kind.name()] = serde_json::json!(t[t.len() / 2]);
        result[format!("{}_parameters", model.kind.name())] =
            serde_json::json!(model.num_parameters());
    }
    println!("{result}");
    Ok(())
}
