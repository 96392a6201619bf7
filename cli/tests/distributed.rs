//! Data-parallel training through the command users run: `fusionprot train --world-size 2`
//! (2 Gloo ranks on half-batches) against `fusionprot train` (1 process on the whole batch), and
//! a rank killed mid-run.
//!
//! Tolerances. Gradients are sums in another order (float32): one process with `-j 2` instead of
//! `-j 1` differs from itself by 2.4e-4 of the largest gradient after one step, and so do 2 ranks
//! (measured); the test allows 1e-3. Adam's first step moves every weight by ±lr whatever the
//! gradient's size, so a gradient that is noise (the biases feeding a BatchNorm, which cancels
//! them) can flip sign between any two summation orders: weights are held to 2.5·lr after one
//! step. Over a whole run such flips compound, so a run of 2 ranks is held to what the same run
//! differs by under another thread count (3× that, or 1e-3).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::train::{s, setup, variant};
use common::{fusionprot, text};
use tch::Tensor;

/// One test at a time: each starts several ranks (and a Slurm or torchrun), which on 2 cores and
/// one loopback would otherwise compete for the cores and for free ports.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn tensors(run: &Path, file: &str) -> BTreeMap<String, Tensor> {
    let path = run.join("checkpoints/epoch-0001").join(file);
    let path = if path.exists() {
        path
    } else {
        run.join("checkpoints/epoch-0002").join(file)
    };
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|(k, t)| (k, t.to_kind(tch::Kind::Double)))
        .collect()
}

fn max_abs(t: &Tensor) -> f64 {
    if t.numel() == 0 {
        0.0
    } else {
        t.abs().max().double_value(&[])
    }
}

/// The largest |a − b| over the tensors whose name `pick` accepts, and where.
fn largest_difference(
    a: &BTreeMap<String, Tensor>,
    b: &BTreeMap<String, Tensor>,
    pick: impl Fn(&str) -> bool,
) -> (f64, String) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .filter(|(k, _)| pick(k))
        .map(|(k, x)| (max_abs(&(x - &b[k])), k.clone()))
        .fold((0.0, String::new()), |w, d| if d.0 > w.0 { d } else { w })
}

fn evaluations(run: &Path) -> Vec<(String, f64)> {
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).expect("summary"))
            .expect("json");
    let mut out = Vec::new();
    for (i, e) in summary["state"]["evaluations"]
        .as_array()
        .expect("evaluations")
        .iter()
        .enumerate()
    {
        for part in ["valid", "test"] {
            for (k, v) in e[part].as_object().expect("metrics") {
                out.push((
                    format!("evaluation {i} {part}/{k}"),
                    v.as_f64().expect("number"),
                ));
            }
        }
    }
    out
}

fn train(dir: &Path, cfg: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut args = vec!["train", "--config", s(cfg), "--out", s(&out)];
    args.extend(extra);
    let o = fusionprot(&args);
    assert!(o.status.success(), "{name}: {}", text(&o));
    out
}

#[test]
fn one_step_of_two_ranks_on_half_batches_is_one_process_on_the_whole_batch() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = setup(dir.path(), "");
    // 30 training proteins, one optimizer step of 2 accumulated micro-batches: per rank 8 + 7
    // (15 each), in one process 16 + 14.
    let half = variant(
        &cfg,
        "half.toml",
        &[
            ("micro_batch = 3", "micro_batch = 8"),
            ("epochs = 6", "epochs = 1"),
            ("eval_every = 2", "eval_every = 1"),
        ],
    );
    let whole = variant(
        &half,
        "whole.toml",
        &[("micro_batch = 8", "micro_batch = 16")],
    );
    let one = train(dir.path(), &whole, "one", &["-j", "1"]);
    let two = train(dir.path(), &half, "two", &["-j", "1", "--world-size", "2"]);
    let state = |run: &Path| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(run.join("checkpoints/epoch-0001/state.json")).expect("state"),
        )
        .expect("json")
    };
    assert_eq!(state(&one)["step"], 1);
    assert_eq!(
        state(&two)["step"],
        1,
        "one run folder, written by rank 0, one step"
    );

    // Gradients: Adam's first moments are 0.1 × the step's gradient (a sum over ranks instead
    // of DDP's mean doubles them), second moments 0.001 × its square.
    let (o1, o2) = (
        tensors(&one, "optimizer.safetensors"),
        tensors(&two, "optimizer.safetensors"),
    );
    for moment in ["exp_avg.", "exp_avg_sq."] {
        let scale = o1
            .iter()
            .filter(|(k, _)| k.starts_with(moment))
            .map(|(_, t)| max_abs(t))
            .fold(0.0, f64::max);
        let (d, at) = largest_difference(&o1, &o2, |k| k.starts_with(moment));
        assert!(
            d <= 1e-3 * scale,
            "{moment}: {d:e} at {at} (largest {scale:e})"
        );
    }
    // BatchNorm's running statistics: SyncBatchNorm over the whole batch, as one process.
    let (w1, w2) = (
        tensors(&one, "model.safetensors"),
        tensors(&two, "model.safetensors"),
    );
    for (k, x) in w1.iter().filter(|(k, _)| k.contains("running_")) {
        let d = max_abs(&(x - &w2[k]));
        assert!(d <= 1e-3 * max_abs(x).max(1e-3), "{k}: {d:e}");
    }
    let (d, at) = largest_difference(&w1, &w2, |k| !k.contains("running_"));
    assert!(d <= 2.5e-3, "weights: {d:e} at {at} (lr 1e-3)");
    for ((k, a), (_, b)) in evaluations(&one).into_iter().zip(evaluations(&two)) {
        assert!((a - b).abs() <= 1e-3, "{k}: {a} vs {b}");
    }

    // The same job under torchrun (its agent hosts the store: every rank a client) is the same
    // computation: equal to the spawned ranks' run.
    let out = dir.path().join("torchrun");
    let o = std::process::Command::new("torchrun")
        .args([
            "--standalone",
            "--nproc_per_node=2",
            "--no-python",
            env!("CARGO_BIN_EXE_fusionprot"),
        ])
        .args(["train", "--config", s(&half), "--out", s(&out), "-j", "1"])
        .output()
        .expect("torchrun (the venv's; scripts/env puts it on PATH)");
    assert!(o.status.success(), "torchrun: {}", text(&o));
    let (d, at) = largest_difference(&w2, &tensors(&out, "model.safetensors"), |_| true);
    assert!(d <= 1e-6, "torchrun vs --world-size: {d:e} at {at}");

    // Per-rank statistics, by name, are another computation: each rank's BatchNorm sees half.
    let per_rank = train(
        dir.path(),
        &half,
        "per-rank",
        &[
            "-j",
            "1",
            "--world-size",
            "2",
            "--set",
            "distributed.batch_norm=per-rank",
        ],
    );
    let w3 = tensors(&per_rank, "model.safetensors");
    let (d, at) = largest_difference(&w1, &w3, |k| k.contains("running_var"));
    assert!(
        d > 1e-2,
        "per-rank BatchNorm should differ from SyncBatchNorm: {d:e} at {at}"
    );
}

#[test]
fn a_whole_run_of_two_ranks_differs_from_one_process_as_little_as_another_thread_count() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = setup(dir.path(), "");
    // FusionProt's structure token sits after the batch's longest sequence (quirk §6.5), so a
    // protein's features depend on the longest protein of its micro-batch, which can differ
    // between a rank's half and the whole batch: under the reference's DDP as here. Cropping
    // every protein below the shortest one's length (9 residues) takes that out.
    let half = variant(
        &cfg,
        "half.toml",
        &[
            ("max_residues = 100", "max_residues = 8"),
            ("micro_batch = 3", "micro_batch = 2"),
            ("gradient_interval = 2", "gradient_interval = 1"),
            ("epochs = 6", "epochs = 2"),
            ("eval_every = 2", "eval_every = 1"),
        ],
    );
    let whole = variant(
        &half,
        "whole.toml",
        &[("micro_batch = 2", "micro_batch = 4")],
    );
    let one = train(dir.path(), &whole, "one", &["-j", "1"]);
    let other_threads = train(dir.path(), &whole, "one-j2", &["-j", "2"]);
    let two = train(dir.path(), &half, "two", &["-j", "1", "--world-size", "2"]);
    assert_eq!(
        common::train::checkpoint_files(&one),
        common::train::checkpoint_files(&two)
    );
    let (w1, wj, w2) = (
        tensors(&one, "model.safetensors"),
        tensors(&other_threads, "model.safetensors"),
        tensors(&two, "model.safetensors"),
    );
    let (noise, _) = largest_difference(&w1, &wj, |_| true);
    let (d, at) = largest_difference(&w1, &w2, |_| true);
    assert!(
        d <= (3.0 * noise).max(1e-3),
        "weights: {d:e} at {at}; -j 2 vs -j 1: {noise:e}"
    );
    // The 2-rank job split its evaluations (batches round-robin over the ranks) and gathered
    // them: its last test metrics are those of its checkpoint evaluated by one process.
    let predictions = dir.path().join("test-predictions.parquet");
    let o = fusionprot(&[
        "evaluate",
        s(&two.join("checkpoints/epoch-0002")),
        "--out",
        s(&predictions),
        "-j",
        "1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = fusionprot(&["score", s(&predictions), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let scored: serde_json::Value = serde_json::from_slice(&o.stdout).expect("score json");
    let last: Vec<(String, f64)> = evaluations(&two)
        .into_iter()
        .filter(|(k, _)| k.starts_with("evaluation 1 test/"))
        .collect();
    assert!(!last.is_empty());
    for (k, v) in last {
        let name = k.trim_start_matches("evaluation 1 test/");
        let alone = scored[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} in {scored}"));
        assert!(
            (v - alone).abs() <= 1e-6,
            "{k}: gathered {v}, one process {alone}"
        );
    }
    // And its predictions table (written by rank 0 from the gathered predictions) names each
    // protein with its own prediction: as one process predicts them from the best checkpoint.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(two.join("summary.json")).expect("summary"))
            .expect("json");
    let b = summary["state"]["best"]
        .as_u64()
        .expect("a best evaluation") as usize;
    let epoch = summary["state"]["evaluations"][b]["epoch"]
        .as_u64()
        .expect("epoch");
    let checkpoint = two.join(format!("checkpoints/epoch-{epoch:04}"));
    let best = dir.path().join("best-predictions.parquet");
    let o = fusionprot(&["evaluate", s(&checkpoint), "--out", s(&best), "-j", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = std::process::Command::new(common::python())
        .args([
            "-c",
            "import sys, pyarrow.parquet as pq\n\
             a, b = (pq.read_table(p).to_pydict() for p in sys.argv[1:3])\n\
             pa = dict(zip(a['protein_id'], a['prediction']))\n\
             pb = dict(zip(b['protein_id'], b['prediction']))\n\
             assert sorted(pa) == sorted(pb) and len(pa) == 10, (sorted(pa), sorted(pb))\n\
             worst = max(abs(x - y) for k in pa for x, y in zip(pa[k], pb[k]))\n\
             assert worst <= 1e-6, worst\n",
            s(&two.join("test-predictions-best.parquet")),
            s(&best),
        ])
        .output()
        .expect("python");
    assert!(
        o.status.success(),
        "gathered predictions vs one process: {}",
        text(&o)
    );
    let (e1, ej, e2) = (
        evaluations(&one),
        evaluations(&other_threads),
        evaluations(&two),
    );
    for (((k, a), (_, j)), (_, b)) in e1.iter().zip(&ej).zip(&e2) {
        let noise = (a - j).abs();
        assert!(
            (a - b).abs() <= (3.0 * noise).max(1e-3),
            "{k}: {a} vs {b} (-j 2: {j})"
        );
    }
}

/// The ranks `fusionprot --world-size` spawned: (rank, pid).
fn ranks_of(parent: u32) -> Vec<(String, u32)> {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter_map(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let rank = env
                .split(|&b| b == 0)
                .find_map(|kv| kv.strip_prefix(b"RANK="))
                .map(|r| String::from_utf8_lossy(r).into_owned())?;
            Some((rank, pid))
        })
        .collect()
}

/// The tiny EC configuration cropped below the shortest protein (quirk §6.5, see the whole-run
/// test) so that 1 rank on the whole batch and 2 on halves are the same computation, with
/// `epochs` epochs, and its uninterrupted run as 2 ranks (`DIR/full`): what the interrupted runs
/// below must end equal to.
fn cropped_and_uninterrupted(
    dir: &Path,
    epochs: usize,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let cfg = setup(dir, "");
    let epochs = format!("epochs = {epochs}");
    let cfg = variant(
        &cfg,
        "crop.toml",
        &[
            ("max_residues = 100", "max_residues = 8"),
            ("epochs = 6", epochs.as_str()),
        ],
    );
    let full = train(dir, &cfg, "full", &["-j", "1", "--world-size", "2"]);
    (cfg, full)
}

#[test]
fn a_rank_killed_mid_run_ends_every_rank_with_its_name_and_the_run_resumes_on_one_or_two_ranks() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let (cfg, full) = cropped_and_uninterrupted(dir.path(), 4);
    let run = dir.path().join("run");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args([
            "train",
            "--config",
            s(&cfg),
            "--out",
            s(&run),
            "-j",
            "1",
            "--world-size",
            "2",
        ])
        .env("FUSIONPROT_DIST_TIMEOUT", "30")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while !run.join("checkpoints/epoch-0002/state.json").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no checkpoint after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ranks = ranks_of(child.id());
    let victim = ranks
        .iter()
        .find(|(r, _)| r == "1")
        .unwrap_or_else(|| panic!("rank 1 among {ranks:?}"))
        .1;
    let killed = Instant::now();
    let k = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill");
    assert!(k.success());
    let o = child.wait_with_output().expect("wait");
    let err = text(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("rank 1 of 2 was killed by signal 9"),
        "the dead rank is named: {err}"
    );
    // Rank 0 fails on its own (its collective sees the dead peer), not at the 60 s kill.
    assert!(
        killed.elapsed() < Duration::from_secs(45),
        "took {:?}: {err}",
        killed.elapsed()
    );
    assert!(
        err.contains("rank 0 of 2"),
        "rank 0 says what it met: {err}"
    );
    assert!(
        run.join("checkpoints/epoch-0002/model.safetensors")
            .is_file()
    );

    // Resumed on 2 ranks: the uninterrupted run's weights. On 1 rank: its micro-batch doubles to
    // keep the global batch, and the weights agree up to Adam's sign noise (2.5 · lr a step).
    let alone = dir.path().join("alone");
    let o = std::process::Command::new("cp")
        .args(["-r", s(&run), s(&alone)])
        .status()
        .expect("cp");
    assert!(o.success());
    let o = fusionprot(&["train", "--resume", s(&run), "--world-size", "2"]);
    assert!(o.status.success(), "resume on 2 ranks: {}", text(&o));
    let o = fusionprot(&["train", "--resume", s(&alone)]);
    assert!(o.status.success(), "resume on 1 rank: {}", text(&o));
    assert!(
        text(&o).contains("micro-batch per rank changed"),
        "{}",
        text(&o)
    );
    let state = |r: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(r.join("summary.json")).expect("summary"))
            .expect("json")
    };
    let steps = state(&full)["state"]["step"].as_i64().expect("steps");
    for r in [&run, &alone] {
        assert_eq!(state(r)["state"]["step"], steps, "{}", r.display());
    }
    let w = |r: &Path| -> BTreeMap<String, Tensor> {
        let path = r.join("checkpoints/epoch-0004/model.safetensors");
        Tensor::read_safetensors(&path)
            .expect("weights")
            .into_iter()
            .map(|(k, t)| (k, t.to_kind(tch::Kind::Double)))
            .collect()
    };
    let (d, at) = largest_difference(&w(&full), &w(&run), |_| true);
    assert!(d <= 1e-6, "resumed on 2 ranks: {d:e} at {at}");
    let (d, at) = largest_difference(&w(&full), &w(&alone), |_| true);
    assert!(
        d <= 2.5e-3 * steps as f64,
        "resumed on 1 rank: {d:e} at {at} ({steps} steps)"
    );
}

/// Live processes whose environment holds `FUSIONPROT_TEST_JOB=tag` (set on a launcher, so its
/// ranks inherit it): (pid, RANK, TORCHELASTIC_RESTART_COUNT).
fn job_ranks(tag: &str) -> Vec<(u32, String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            continue;
        }
        let var = |name: &str| {
            env.split(|&b| b == 0).find_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                kv.strip_prefix(&format!("{name}=")).map(str::to_owned)
            })
        };
        if var("FUSIONPROT_TEST_JOB").as_deref() == Some(tag)
            && let Some(rank) = var("RANK")
        {
            found.push((
                pid,
                rank,
                var("TORCHELASTIC_RESTART_COUNT").unwrap_or_default(),
            ));
        }
    }
    found
}

fn wait_for(path: &Path, job: &mut std::process::Child) {
    let t0 = Instant::now();
    while !path.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no {} after 5 minutes",
            path.display()
        );
        if let Ok(Some(status)) = job.try_wait() {
            panic!("the job ended ({status}) before {} existed", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn final_weights(run: &Path, epochs: usize) -> BTreeMap<String, Tensor> {
    let path = run.join(format!("checkpoints/epoch-{epochs:04}/model.safetensors"));
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|(k, t)| (k, t.to_kind(tch::Kind::Double)))
        .collect()
}

/// SIGTERM to the `--world-size` spawner alone (a scheduler's kill, `kill PID`) reaches every
/// rank: all stop after the current step with a checkpoint, the job exits 130, no rank is left
/// running, and `--resume` ends equal to the uninterrupted run.
#[test]
fn sigterm_to_the_spawner_stops_every_rank_with_a_checkpoint_and_the_run_resumes() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let (cfg, full) = cropped_and_uninterrupted(dir.path(), 8);
    let run = dir.path().join("run");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(["train", "--config", s(&cfg), "--out", s(&run)])
        .args(["-j", "1", "--world-size", "2"])
        .env("FUSIONPROT_TEST_JOB", "sigterm")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for(&run.join("checkpoints/epoch-0002/state.json"), &mut child);
    let ranks = job_ranks("sigterm");
    assert_eq!(ranks.len(), 2, "{ranks:?}");
    let k = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(k.success());
    let o = child.wait_with_output().expect("wait");
    let err = text(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted after step"), "{err}");
    assert!(!err.contains("rank 0 of 2"), "no rank failed: {err}");
    let t0 = Instant::now();
    while !job_ranks("sigterm").is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "ranks left running after the job ended: {:?}",
            job_ranks("sigterm")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !run.join("summary.json").exists(),
        "summary.json is written at the run's end only"
    );
    assert!(
        !run.join("checkpoints/epoch-0008").exists(),
        "the run was stopped before its end"
    );
    let o = fusionprot(&["train", "--resume", s(&run), "--world-size", "2"]);
    assert!(o.status.success(), "resume: {}", text(&o));
    let (d, at) = largest_difference(&final_weights(&full, 8), &final_weights(&run, 8), |_| true);
    assert!(d <= 1e-6, "resumed after SIGTERM: {d:e} at {at}");
}

/// torchrun's restart-all (`--max-restarts 1`): one rank killed mid-run, torchrun stops the
/// other and starts both again with the same command line; the restarted ranks resume the run
/// folder from its last checkpoint and the job ends equal to the uninterrupted run.
#[test]
fn torchrun_restarts_a_failed_job_and_the_ranks_resume_from_the_last_checkpoint() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let (cfg, full) = cropped_and_uninterrupted(dir.path(), 6);
    let run = dir.path().join("run");
    let mut child = std::process::Command::new("torchrun")
        .args([
            "--standalone",
            "--nproc_per_node=2",
            "--max-restarts=1",
            "--no-python",
            env!("CARGO_BIN_EXE_fusionprot"),
        ])
        .args(["train", "--config", s(&cfg), "--out", s(&run), "-j", "1"])
        .env("FUSIONPROT_TEST_JOB", "restart")
        .env("FUSIONPROT_DIST_TIMEOUT", "30")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("torchrun (the venv's; scripts/env puts it on PATH)");
    wait_for(&run.join("checkpoints/epoch-0002/state.json"), &mut child);
    let ranks = job_ranks("restart");
    let victim = ranks
        .iter()
        .find(|(_, rank, attempt)| rank == "1" && attempt == "0")
        .unwrap_or_else(|| panic!("rank 1 of the first attempt among {ranks:?}"))
        .0;
    let k = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill");
    assert!(k.success());
    let o = child.wait_with_output().expect("wait");
    let out = text(&o);
    assert!(o.status.success(), "the restarted job: {out}");
    assert!(
        out.contains("a restart of the job: resuming its run folder"),
        "the second attempt resumed: {out}"
    );
    assert!(out.contains("resumed after epoch"), "{out}");
    let (d, at) = largest_difference(&final_weights(&full, 6), &final_weights(&run, 6), |_| true);
    assert!(d <= 1e-6, "restarted by torchrun: {d:e} at {at}");
}

/// `workflows/slurm/train.sbatch` on the one-node Slurm of scripts/slurm-cluster: 2 srun tasks
/// are 2 ranks (from SLURM_PROCID / SLURM_STEP_NUM_TASKS) and train as the spawned ranks do.
/// Skipped, saying so, only where Slurm is not installed or the tests do not run as root.
#[test]
fn an_srun_job_of_two_tasks_trains_as_two_spawned_ranks() {
    let _serial = serial();
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("..");
    let dir = tempfile::tempdir().expect("tmp");
    let cluster = match common::SlurmCluster::start(dir.path(), Some((6827, 6828))) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED an_srun_job_of_two_tasks_trains_as_two_spawned_ranks: {why}");
            return;
        }
    };
    let cfg = setup(dir.path(), "");
    let half = variant(
        &cfg,
        "half.toml",
        &[
            ("micro_batch = 3", "micro_batch = 8"),
            ("epochs = 6", "epochs = 1"),
            ("eval_every = 2", "eval_every = 1"),
        ],
    );
    let spawned = train(
        dir.path(),
        &half,
        "spawned",
        &["-j", "1", "--world-size", "2"],
    );
    let out = dir.path().join("slurm");
    let log = dir.path().join("slurm.log");
    let o = std::process::Command::new("timeout")
        .arg("600")
        .arg("sbatch")
        .args(["--wait", "--ntasks=2", "--cpus-per-task=1", "--mem=2G"])
        .arg(format!("--output={}", s(&log)))
        .arg(root.join("workflows/slurm/train.sbatch"))
        .env("SLURM_CONF", &cluster.conf)
        .env("FP_BIN", env!("CARGO_BIN_EXE_fusionprot"))
        .env("FP_CONFIG", &half)
        .env("FP_OUT", &out)
        .env("FP_DEVICE", "cpu")
        .output()
        .expect("sbatch");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(o.status.success(), "{}\n{logs}", text(&o));
    assert!(
        logs.contains("joined the process group") && logs.contains("\"slurm\""),
        "the ranks came from Slurm: {logs}"
    );
    let (d, at) = largest_difference(
        &tensors(&spawned, "model.safetensors"),
        &tensors(&out, "model.safetensors"),
        |_| true,
    );
    assert!(d <= 1e-6, "srun vs --world-size: {d:e} at {at}\n{logs}");
}

/// Pre-training is the same loop: 2 ranks of Multiview Contrast (each rank's InfoNCE over its
/// own micro-batch, as the reference's 4 GPUs) make one run folder and one tracked run, whose
/// params name the job and whose examples are every rank's.
#[test]
fn pretraining_runs_as_two_ranks_with_one_tracked_run() {
    let _serial = serial();
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("..");
    let dir = tempfile::tempdir().expect("tmp");
    let sample = dir.path().join("sample");
    let o = fusionprot(&["prepare", s(&root.join("data/sample")), "--out", s(&sample)]);
    assert!(o.status.success(), "{}", text(&o));
    let run = dir.path().join("mc");
    let db = dir.path().join("fp.db");
    // The recipe names its model config relative to the checkout (as the demo runs it).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .current_dir(&root)
        .args([
            "pretrain",
            "--config",
            s(&root.join("trainer/configs/tiny-mc.toml")),
            "--out",
            s(&run),
            "--set",
            &format!("data.datasets=[{:?}]", s(&sample)),
            "--set",
            "optim.epochs=2",
            "-j",
            "1",
            "--world-size",
            "2",
            "--tracking-uri",
            &format!("sqlite://{}", s(&db)),
        ])
        .output()
        .expect("pretrain");
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).expect("summary"))
            .expect("json");
    // 34 proteins, 17 per rank, micro-batches of 8: 3 steps an epoch; every protein seen (+2 repeats).
    assert_eq!(summary["state"]["step"], 6, "{summary}");
    assert_eq!(summary["train_examples_seen"], 2 * 34, "{summary}");
    let q = fusionprot(&[
        "query",
        "SELECT count(DISTINCT r.run_uuid) AS runs, max(CASE WHEN p.key = 'distributed.world_size' THEN p.value END) AS world FROM runs r JOIN params p USING (run_uuid)",
        "--db",
        s(&db),
        "--format",
        "csv",
    ]);
    assert!(q.status.success(), "{}", text(&q));
    assert!(
        String::from_utf8_lossy(&q.stdout).contains("1,2"),
        "{}",
        text(&q)
    );
    // Each rank's own system metrics, gathered to rank 0, so a straggler shows.
    let q = fusionprot(&[
        "query",
        "SELECT count(DISTINCT key) FROM metrics WHERE key LIKE 'system/rank-%/seconds_per_step' OR key LIKE 'system/rank-%/peak_rss_mib'",
        "--db",
        s(&db),
        "--format",
        "csv",
    ]);
    assert!(q.status.success(), "{}", text(&q));
    assert_eq!(
        String::from_utf8_lossy(&q.stdout).lines().last(),
        Some("4"),
        "{}",
        text(&q)
    );
}

/// `workflows/train.smk` runs a pre-training job as 2 ranks; run again, Snakemake finds it done.
#[test]
fn the_snakemake_training_rule_runs_a_two_rank_job_once() {
    let _serial = serial();
    let root =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("..");
    let snakemake = common::python().with_file_name("snakemake");
    assert!(
        snakemake.exists(),
        "{} missing: run scripts/setup",
        snakemake.display()
    );
    let dir = tempfile::tempdir().expect("tmp");
    let sample = dir.path().join("sample");
    let o = fusionprot(&["prepare", s(&root.join("data/sample")), "--out", s(&sample)]);
    assert!(o.status.success(), "{}", text(&o));
    let run = dir.path().join("mc");
    let config = serde_json::json!({
        "fusionprot": env!("CARGO_BIN_EXE_fusionprot"),
        "command": "pretrain",
        "cfg": s(&root.join("trainer/configs/tiny-mc.toml")),
        "run": s(&run),
        "ranks": 2,
        "extra": format!(
            "--set 'data.datasets=[\"{}\"]' --set 'model.config=\"{}\"' --set optim.epochs=1 --set optim.save_every=1",
            s(&sample),
            s(&root.join("trainer/configs/tiny.toml"))
        ),
    });
    let file = dir.path().join("train.json");
    std::fs::write(&file, config.to_string()).expect("config");
    let go = || {
        std::process::Command::new(&snakemake)
            .current_dir(dir.path())
            .args([
                "-s",
                s(&root.join("workflows/train.smk")),
                "--cores",
                "2",
                "--configfile",
                s(&file),
            ])
            .output()
            .expect("snakemake")
    };
    let o = go();
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(summary["state"]["ranks"], 2, "{summary}");
    let o = go();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Nothing to be done"), "{}", text(&o));
    // A job whose run folder holds checkpoints but no summary (stopped) is continued with --resume.
    std::fs::remove_file(run.join("summary.json")).expect("rm summary");
    let o = go();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed after epoch 1"), "{}", text(&o));
    assert!(run.join("summary.json").is_file());
}
