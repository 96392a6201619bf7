//! Real protein graphs from the sample for the peer tests: four proteins of distinct lengths, the
//! batch file the PyTorch peers read, the tiny configuration and a model spec.

use std::path::Path;

use fusionprot_trainer::data::DatasetGraphs;
use fusionprot_trainer::weights::load::ModelSpec;
use fusionprot_trainer::{Device, ModelKind, ProteinGraph};
use tch::Tensor;

/// The bundled sample prepared into `out`.
pub fn prepare_sample(out: &Path) {
    let cfg = fusionprot_pipeline::PrepareConfig {
        inputs: vec![super::sample_dir()],
        out: out.to_owned(),
        proteins: Default::default(),
        jobs: 1,
        strict: false,
        only_ids: None,
        shard: None,
    };
    fusionprot_pipeline::prepare(&cfg, &indicatif::ProgressBar::hidden()).expect("prepare");
}

pub fn proteins(dir: &Path) -> Vec<ProteinGraph> {
    let out = dir.join("dataset");
    prepare_sample(&out);
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

pub fn write_batch(proteins: &[ProteinGraph], extra: &[(&str, Tensor)], path: &Path) {
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
    let mut named: Vec<(&str, Tensor)> = named;
    named.extend(extra.iter().map(|(k, v)| (*k, v.shallow_clone())));
    Tensor::write_safetensors(&named, path).expect("write batch");
}

pub fn tiny_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        "[esm]\nlayers = 33\nembed_dim = 32\nheads = 4\n[gearnet]\nhidden_dims = [16, 16, 16, 16, 16, 16]\n",
    )
    .expect("write config");
    path
}

pub fn spec(kind: ModelKind, config: &Path, checkpoint: &Path) -> ModelSpec {
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
