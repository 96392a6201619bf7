//! ESM-2 against fair-esm's `ESM2` and transformers' `EsmModel` (tests/peer/esm_peer.py): the
//! same random weights, loaded from each library's own file format, on a padded batch of four
//! sequences (1 to 40 residues, one with <mask> tokens).
//!
//! Tolerance: 1e-5 absolute on final hidden states (LayerNorm output, |x| ≲ 5), float32 on CPU.
//! Both sides run the same float32 kernels in a different association order (fused SDPA here,
//! bmm + softmax there), which moves results by a few ulp per layer; 1e-5 leaves room for that
//! over three layers and catches any real difference (a wrong scale, rotary or mask is ≥ 1e-2).

mod common;

use std::path::Path;

use fusionprot_trainer::model::esm::{Tokens, alphabet};
use fusionprot_trainer::weights::load::{ModelSpec, build};
use fusionprot_trainer::{Device, ModelError, ModelKind};
use tch::Tensor;

fn spec(esm: &Path, config: Option<&Path>) -> ModelSpec {
    ModelSpec {
        kind: ModelKind::Esm2,
        config: config.map(Path::to_path_buf),
        checkpoint: None,
        esm: Some(esm.display().to_string()),
        random_init: false,
        device: Device::Cpu,
        seed: 0,
    }
}

fn compare(model: &fusionprot_trainer::Model, io: &Path) -> f64 {
    let io = common::read(io);
    let ids = io["tokens"].shallow_clone();
    let tokens = Tokens {
        padding: ids.eq(alphabet::PAD),
        ids,
    };
    let ours = tch::no_grad(|| model.esm().expect("esm").forward(&tokens));
    let keep = tokens.padding.logical_not().unsqueeze(-1);
    common::max_abs_diff(&(ours * &keep), &(&io["hidden"] * &keep))
}

fn tiny_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, "[esm]\nlayers = 3\nembed_dim = 32\nheads = 4\n").expect("write");
    path
}

#[test]
fn esm2_matches_fair_esm_and_transformers() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::peer("esm_peer.py", &[dir.path()]);

    // fair-esm .pt: a torch.save pickle with argparse objects, read without executing it. Its
    // head count is not in the tensors, so the config gives it.
    let cfg = tiny_config(dir.path());
    let fair = build(&spec(&dir.path().join("fair/esm.pt"), Some(&cfg))).expect("load fair-esm");
    let d = compare(&fair.model, &dir.path().join("fair/io.safetensors"));
    eprintln!("fair-esm: max |diff| {d:.2e}");
    assert!(d < 1e-5, "fair-esm: max |diff| {d:e}");

    // HuggingFace folder: config.json gives the architecture.
    let hf = build(&spec(&dir.path().join("hf"), None)).expect("load HF");
    assert_eq!(hf.model.config.esm.layers, 3);
    let d = compare(&hf.model, &dir.path().join("hf/io.safetensors"));
    eprintln!("transformers: max |diff| {d:.2e}");
    assert!(d < 1e-5, "transformers: max |diff| {d:e}");
}

#[test]
fn strict_loading_lists_missing_unexpected_and_misshaped_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::peer("esm_peer.py", &[dir.path()]);
    let mut tensors: Vec<(String, Tensor)> =
        Tensor::read_safetensors(dir.path().join("hf/model.safetensors")).expect("read");
    tensors.retain(|(k, _)| k != "esm.encoder.layer.1.intermediate.dense.bias");
    tensors.push((
        "esm.encoder.layer.0.extra.weight".into(),
        Tensor::zeros([2], (tch::Kind::Float, Device::Cpu)),
    ));
    for (k, t) in &mut tensors {
        if k == "esm.encoder.layer.2.output.dense.weight" {
            *t = Tensor::zeros([32, 100], (tch::Kind::Float, Device::Cpu));
        }
    }
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).expect("mkdir");
    std::fs::copy(dir.path().join("hf/config.json"), bad.join("config.json")).expect("copy");
    Tensor::write_safetensors(&tensors, bad.join("model.safetensors")).expect("write");
    let err = build(&spec(&bad, None)).expect_err("mismatching weights");
    let msg = err.to_string();
    assert!(matches!(err, ModelError::Mismatch { .. }), "{msg}");
    assert!(
        msg.contains("1 missing from the file") && msg.contains("layers.1.fc1.bias"),
        "{msg}"
    );
    assert!(
        msg.contains("unexpected in the file") && msg.contains("extra.weight"),
        "{msg}"
    );
    assert!(
        msg.contains("wrong shape")
            && msg.contains("layers.2.fc2.weight: model [32, 128], file [32, 100]"),
        "{msg}"
    );

    // A config that disagrees with the checkpoint's config.json names each key.
    let cfg = dir.path().join("wrong.toml");
    std::fs::write(&cfg, "[esm]\nlayers = 4\nembed_dim = 32\nheads = 8\n").expect("write");
    let err = build(&spec(&dir.path().join("hf"), Some(&cfg)))
        .expect_err("disagreeing config")
        .to_string();
    assert!(
        err.contains("esm.layers: config 4, checkpoint 3")
            && err.contains("esm.heads: config 8, checkpoint 4"),
        "{err}"
    );

    // fair-esm tensors without a head count, and a size that is not a published one.
    let err = build(&spec(&dir.path().join("fair/esm.pt"), None))
        .expect_err("unknown heads")
        .to_string();
    assert!(err.contains("head count"), "{err}");

    // Not a weights file at all.
    let junk = dir.path().join("junk.pt");
    std::fs::write(&junk, b"PK\x03\x04 not really a zip").expect("write");
    let err = build(&spec(&junk, None)).expect_err("junk").to_string();
    assert!(err.contains("junk.pt") && err.contains("zip"), "{err}");
}
