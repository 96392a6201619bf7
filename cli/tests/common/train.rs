//! Shared by the training tests: a miniature EC import with a tiny-model config, config
//! variants, runs stopped at their first checkpoint, and queries over the tracker's database.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{fusionprot, real_files, text};
use fusionprot_pipeline::import::Benchmark;
use fusionprot_pipeline::import::fixture::fixture;

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// An imported EC dataset and a tiny-model config over it.
pub fn setup(dir: &Path, extra: &str) -> PathBuf {
    let f = fixture(Benchmark::Ec, &real_files()).expect("fixture");
    let zip = dir.join("EnzymeCommission.zip");
    f.write_zip(&zip).expect("zip");
    let ds = dir.join("ec");
    let o = fusionprot(&["import", "ec", s(&zip), "--out", s(&ds)]);
    assert!(o.status.success(), "{}", text(&o));
    let tiny =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../trainer/configs/tiny.toml");
    let cfg = dir.join("tiny-ec.toml");
    std::fs::write(
        &cfg,
        format!(
            "[data]\ndataset = {:?}\ntask = \"ec\"\nmax_residues = 100\n\n[model]\nkind = \"fusionprot\"\nconfig = {:?}\nrandom_init = true\n\n\
             [optim]\nlr = 1e-3\nmicro_batch = 3\ngradient_interval = 2\nepochs = 6\neval_every = 2\n{extra}",
            s(&ds),
            s(&tiny)
        ),
    )
    .expect("config");
    cfg
}

pub fn checkpoint_files(run: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .expect("checkpoints")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A copy of the config `cfg` named `name` beside it, with `edits` (from, to) applied.
pub fn variant(cfg: &Path, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(cfg).expect("config");
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not in the config");
        text = text.replace(from, to);
    }
    let p = cfg.with_file_name(name);
    std::fs::write(&p, text).expect("write config");
    p
}

/// Starts `fusionprot ARGS` and returns once `run` has its first checkpoint and the run is a
/// little into epoch 3, still running.
pub fn run_until_first_checkpoint(
    args: &[&str],
    run: &Path,
    stderr: std::process::Stdio,
) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while !run.join("checkpoints/epoch-0002/state.json").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no checkpoint after 5 minutes"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before its first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the run finished before it could be stopped"
    );
    child
}

pub fn metrics(db: &Path) -> String {
    sql(
        db,
        "csv",
        "SELECT r.run_name, m.key, m.step, m.value FROM metrics m JOIN runs r USING (run_uuid) \
         WHERE m.key LIKE 'valid/%' OR m.key LIKE 'test%' OR m.key = 'train/loss' ORDER BY r.run_name, m.key, m.step",
    )
}

/// One query over the tracker's database, as `format` (csv, json).
pub fn sql(db: &Path, format: &str, query: &str) -> String {
    let o = fusionprot(&["query", "--db", s(db), "--format", format, query]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Sends SIGINT (Ctrl-C) to a run and waits for it to end.
pub fn interrupt(child: std::process::Child) -> std::process::Output {
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    child.wait_with_output().expect("wait")
}
