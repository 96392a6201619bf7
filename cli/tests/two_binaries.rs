//! Two binaries, one command: `fusionprot` links no libtorch and runs the data and tracking
//! commands itself; `train`, `pretrain`, `embed`, `evaluate` and `export` run in the sibling
//! `fusionprot-torch`, which `fusionprot` becomes by `exec` (same pid, arguments, streams, exit
//! code, Ctrl-C), and a missing sibling is named with what to install.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::train::{interrupt, run_until_first_checkpoint, s, setup, variant};
use common::{fusionprot, text};

fn torch_binary() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_fusionprot")).with_file_name("fusionprot-torch")
}

/// The shared libraries an ELF file names (`readelf -d`).
fn needed(binary: &Path) -> Vec<String> {
    let o = Command::new("readelf")
        .arg("-d")
        .arg(binary)
        .output()
        .expect("readelf (binutils)");
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_owned))
        .collect()
}

#[test]
fn fusionprot_neither_links_nor_loads_libtorch() {
    let main = needed(Path::new(env!("CARGO_BIN_EXE_fusionprot")));
    assert!(
        !main
            .iter()
            .any(|l| l.contains("torch") || l.contains("c10")),
        "fusionprot links {main:?}"
    );
    let torch = needed(&torch_binary());
    assert!(
        torch.iter().any(|l| l.starts_with("libtorch_cpu")),
        "fusionprot-torch links {torch:?}"
    );

    // At run time too (nothing opened later): the mapped files of a running server.
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("t.db");
    let server = common::serve(dir.path(), s(&db), &[]);
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", server.child.id())).expect("maps");
    assert!(!maps.contains("libtorch"), "serve mapped libtorch:\n{maps}");
    assert!(!maps.contains("libc10"), "serve mapped libc10");
}

#[test]
fn torch_commands_run_in_the_sibling_with_its_streams_and_exit_codes() {
    // Help, through either form, is the sibling's and says `fusionprot`.
    let direct = Command::new(torch_binary())
        .args(["train", "--help"])
        .output()
        .expect("fusionprot-torch");
    assert!(direct.status.success(), "{}", text(&direct));
    for args in [&["train", "--help"][..], &["help", "train"]] {
        let o = fusionprot(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert_eq!(o.stdout, direct.stdout, "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage: fusionprot train"),
            "{}",
            text(&o)
        );
    }
    // The top-level help lists the torch commands with the others.
    let o = fusionprot(&["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for cmd in [
        "train", "pretrain", "embed", "evaluate", "export", "prepare", "query",
    ] {
        assert!(
            help.contains(&format!("  {cmd} ")),
            "{cmd} missing from:\n{help}"
        );
    }
    // A usage error is clap's exit code 2, a failing command 1, each with the sibling's words.
    let o = fusionprot(&["train", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--no-such-flag"), "{}", text(&o));
    let o = fusionprot(&[
        "evaluate",
        "/nonexistent/run/checkpoints/epoch-0001",
        "--out",
        "/nonexistent/p.parquet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent/run"), "{}", text(&o));
}

/// `fusionprot train` is the training process itself (exec keeps the pid): Ctrl-C to that pid
/// stops the run with a checkpoint and exit code 130, as before the split.
#[test]
fn ctrl_c_to_fusionprot_train_stops_the_run_with_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = setup(dir.path(), "");
    let cfg = variant(&cfg, "long.toml", &[("epochs = 6", "epochs = 60")]);
    let run = dir.path().join("run");
    let child = run_until_first_checkpoint(
        &["train", "--config", s(&cfg), "--out", s(&run), "-j", "1"],
        &run,
        std::process::Stdio::piped(),
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).expect("exe");
    assert_eq!(
        exe.file_name().and_then(|n| n.to_str()),
        Some("fusionprot-torch"),
        "the pid fusionprot started is the training process: {}",
        exe.display()
    );
    let o: Output = interrupt(child);
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(text(&o).contains("interrupted after step"), "{}", text(&o));
    assert!(
        std::fs::read_dir(run.join("checkpoints"))
            .expect("checkpoints")
            .count()
            >= 2
    );
}

/// `fusionprot` alone (copied into an empty folder, PATH without the sibling): the data commands
/// work, a torch command fails naming `fusionprot-torch` and how to get it, doctor says FAIL.
/// With the sibling's folder on PATH, it is found there.
#[test]
fn a_missing_sibling_is_named_and_found_on_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let alone = dir.path().join("bin/fusionprot");
    std::fs::create_dir_all(alone.parent().expect("parent")).expect("mkdir");
    std::fs::copy(env!("CARGO_BIN_EXE_fusionprot"), &alone).expect("copy");
    let run = |path: &str, args: &[&str]| {
        Command::new(&alone)
            .args(args)
            .env("PATH", path)
            .output()
            .expect("run the copy")
    };
    let o = run("/usr/bin:/bin", &["--version"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        "/usr/bin:/bin",
        &["train", "--config", "c.toml", "--out", "r"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("fusionprot-torch is not installed") && err.contains("scripts/setup"),
        "{err}"
    );
    assert!(err.contains(s(alone.parent().expect("dir"))), "{err}");
    assert!(!dir.path().join("r").exists());
    let o = run("/usr/bin:/bin", &["doctor"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("FAIL fusionprot-torch"),
        "{}",
        text(&o)
    );

    let beside = torch_binary();
    let path = format!("{}:/usr/bin:/bin", s(beside.parent().expect("dir")));
    let o = run(&path, &["train", "--help"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&path, &["doctor", "--json"]);
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).expect("json");
    let torch = checks
        .iter()
        .find(|c| c["part"] == "fusionprot-torch")
        .expect("a fusionprot-torch line");
    assert!(
        torch["ok"].as_str().is_some_and(|v| v.contains(s(&beside))),
        "{torch}"
    );
    assert!(checks.iter().any(|c| c["part"] == "libtorch"));
}
