//! Issue 10, end-to-end: `prepare` never loses a dataset. The real binary is crashed at each step
//! of its table swap (a failpoint aborts it, or it pauses there and is killed with SIGKILL); the
//! next `prepare` or `fusionprot doctor DATASET` must give back the old tables byte for byte, or
//! the whole new set once it was in place. A worker whose spill file fails stops the run.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fusionprot"))
}

fn run(args: &[&str], failpoint: Option<&str>) -> Output {
    let mut cmd = bin();
    cmd.args(args);
    if let Some(f) = failpoint {
        cmd.env("FUSIONPROT_FAILPOINT", f);
    }
    cmd.output().expect("run fusionprot")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sample() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../data/sample")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[track_caller]
fn prepare_ok(inputs: &[&Path], ds: &Path) {
    let mut args = vec!["prepare"];
    args.extend(inputs.iter().map(|p| s(p)));
    args.extend(["--out", s(ds), "--jobs", "2"]);
    let out = run(&args, None);
    assert!(out.status.success(), "{}", text(&out));
}

/// The dataset's visible files (tables, manifest, user files) with their bytes; hidden
/// bookkeeping (`.lock`) excluded. Any leftover of a swap (journal, staging, previous) shows up
/// as a hidden name, which is checked separately.
fn tables(ds: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![ds.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let rel = p
                .strip_prefix(ds)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            if rel.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

fn hidden(ds: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(ds)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".lock")
        .collect();
    v.sort();
    v
}

/// What a user sees of the proteins: `fusionprot show` over all rows.
#[track_caller]
fn show(ds: &Path) -> String {
    let out = run(
        &["show", s(ds), "--table", "proteins", "--limit", "1000"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A dataset of the sample (34 proteins) with a stale split, as users have them.
fn old_dataset(dir: &Path) -> PathBuf {
    let ds = dir.join("ds");
    prepare_ok(&[&sample()], &ds);
    std::fs::create_dir_all(ds.join("splits")).expect("splits");
    std::fs::write(ds.join("splits/part-00000.parquet"), b"old split").expect("write");
    std::fs::write(ds.join("notes.txt"), b"user notes").expect("write");
    ds
}

#[track_caller]
fn assert_crashed(out: &Output) {
    assert!(
        out.status.signal() == Some(6),
        "the failpoint should abort the process:\n{}",
        text(out)
    );
}

/// `fusionprot doctor DATASET --json`: the dataset line's text, or its problem.
fn doctor_dataset(ds: &Path) -> Result<String, String> {
    let out = run(&["doctor", s(ds), "--json"], None);
    let checks: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let c = checks
        .iter()
        .find(|c| c["part"] == "dataset")
        .unwrap_or_else(|| panic!("no dataset line: {}", text(&out)));
    match (c["ok"].as_str(), c["problem"].as_str()) {
        (Some(ok), _) => Ok(ok.to_owned()),
        (_, Some(p)) => Err(p.to_owned()),
        _ => panic!("{c}"),
    }
}

/// Crash points before the new manifest is in place: recovery must restore the old tables.
const BEFORE_COMMIT: [&str; 6] = [
    "swap:journal-written",
    "swap:old-moved:proteins",
    "swap:old-moved:splits",
    "swap:old-moved:manifest.json",
    "swap:new-moved:proteins",
    "swap:new-moved:edges",
];

#[test]
fn issue_10_a_crash_before_the_new_set_is_whole_gives_back_the_old_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = old_dataset(dir.path());
    let before = tables(&ds);
    let shown = show(&ds);
    assert!(
        shown.contains("34 proteins rows") || shown.contains("of 34"),
        "{shown}"
    );
    let new_input = sample().join("1AMY.cif");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    for (i, point) in BEFORE_COMMIT.iter().enumerate() {
        let out = run(
            &["prepare", s(&new_input), "--out", s(&ds), "--jobs", "2"],
            Some(point),
        );
        assert_crashed(&out);
        assert!(
            hidden(&ds).contains(&".swap-journal.json".to_owned()),
            "{point}: {:?}",
            hidden(&ds)
        );
        // Alternate the two ways back: doctor, and the next prepare (here one with nothing to
        // read, which recovers first and then refuses to replace the tables).
        if i % 2 == 0 {
            let ok = doctor_dataset(&ds).unwrap_or_else(|p| panic!("{point}: {p}"));
            assert!(
                ok.contains("34 proteins") && ok.contains("restored the previous tables"),
                "{point}: {ok}"
            );
        } else {
            let out = run(&["prepare", s(&empty), "--out", s(&ds)], None);
            assert!(!out.status.success(), "{}", text(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("the previous tables are back in place")
                    && err.contains("keeps its previous tables"),
                "{point}: {err}"
            );
        }
        assert!(tables(&ds) == before, "{point}: the old tables differ");
        assert_eq!(show(&ds), shown, "{point}");
        assert_eq!(hidden(&ds), Vec::<String>::new(), "{point}");
    }
}

#[test]
fn issue_10_a_crash_after_the_new_set_is_whole_completes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new_input = sample().join("1AMY.cif");
    let want_ds = dir.path().join("want");
    prepare_ok(&[&new_input], &want_ds);
    let want = tables(&want_ds);
    for point in [
        "swap:new-moved:manifest.json",
        "swap:committed",
        "swap:previous-removed",
    ] {
        let sub = dir.path().join(point.replace(':', "_"));
        std::fs::create_dir(&sub).expect("mkdir");
        let ds = old_dataset(&sub);
        let out = run(
            &["prepare", s(&new_input), "--out", s(&ds), "--jobs", "2"],
            Some(point),
        );
        assert_crashed(&out);
        let ok = doctor_dataset(&ds).unwrap_or_else(|p| panic!("{point}: {p}"));
        assert!(
            ok.contains("1 proteins") && ok.contains("finished the swap"),
            "{point}: {ok}"
        );
        let mut got = tables(&ds);
        got.retain(|(n, _)| n != "notes.txt");
        assert!(got == want, "{point}: not the new run's tables");
        assert_eq!(hidden(&ds), Vec::<String>::new(), "{point}");
    }
}

#[test]
fn issue_10_kill_9_in_the_middle_of_the_swap_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = old_dataset(dir.path());
    let before = tables(&ds);
    let shown = show(&ds);
    let mut child = bin()
        .args(["prepare", s(&sample()), "--out", s(&ds), "--truncate", "20"])
        .env("FUSIONPROT_FAILPOINT", "swap:old-moved:residues=pause")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut reached = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        if line.contains("failpoint swap:old-moved:residues reached") {
            reached = true;
            break;
        }
    }
    assert!(reached, "the run never reached the swap");
    // Proteins and residues are aside, edges not yet: the dataset is half-swapped right now.
    assert!(!ds.join("proteins").exists() && !ds.join("residues").exists());
    assert!(ds.join("edges").exists());
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "{status:?}");

    let ok = doctor_dataset(&ds).expect("doctor recovers");
    assert!(ok.contains("restored the previous tables"), "{ok}");
    assert!(tables(&ds) == before, "the old tables differ after kill -9");
    assert_eq!(show(&ds), shown);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let p = e.expect("entry").path();
        let dest = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

#[test]
fn issue_10_kill_9_at_random_moments_leaves_the_old_or_the_new_dataset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new_input = sample().join("1AMY.cif");
    let want_ds = dir.path().join("want");
    prepare_ok(&[&new_input], &want_ds);
    let mut want = tables(&want_ds);
    want.push(("notes.txt".into(), b"user notes".to_vec()));
    want.sort();
    let template = old_dataset(dir.path());
    let old = tables(&template);
    // How long an uninterrupted run takes, to spread the kills over it.
    let t = Instant::now();
    prepare_ok(&[&new_input], &dir.path().join("timing"));
    let run_time = t.elapsed();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let tries = 6u32;
    let (mut saw_old, mut saw_new) = (0, 0);
    for i in 0..tries {
        let ds = dir.path().join(format!("try{i}"));
        copy_dir(&template, &ds);
        let mut child = bin()
            .args(["prepare", s(&new_input), "--out", s(&ds), "--jobs", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let delay = run_time * i / (tries - 1);
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().expect("wait");
        // The next run recovers (it has nothing to read, so it then stops, changing nothing).
        let out = run(&["prepare", s(&empty), "--out", s(&ds)], None);
        assert!(!out.status.success(), "{}", text(&out));
        let got = tables(&ds);
        if got == old {
            saw_old += 1;
        } else if got == want {
            saw_new += 1;
        } else {
            let names: Vec<&String> = got.iter().map(|(n, _)| n).collect();
            panic!("kill after {delay:?}: neither old nor new: {names:?}");
        }
        assert_eq!(hidden(&ds), Vec::<String>::new());
    }
    eprintln!("kill -9 at random moments over {run_time:?}: {saw_old} old, {saw_new} new");
}

/// Runs `args` and fails the test if it has not finished within `limit` (a hang).
fn run_with_deadline(args: &[&str], failpoint: &str, limit: Duration) -> Output {
    let mut child = bin()
        .args(args)
        .env("FUSIONPROT_FAILPOINT", failpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "prepare hung for {limit:?} after a worker error:\n{}",
                text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn issue_10_a_worker_that_cannot_create_its_spill_file_stops_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = old_dataset(dir.path());
    let before = tables(&ds);
    // A path below a regular file cannot be created, even by root: every worker fails at once
    // while the reader still has more files than the channel holds.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").expect("write");
    let spill = blocker.join("spill.bin");
    let out = run_with_deadline(
        &["prepare", s(&sample()), "--out", s(&ds), "--jobs", "2"],
        &format!("spill-file:{}", s(&spill)),
        Duration::from_secs(60),
    );
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}: Not a directory", s(&spill))),
        "{err}"
    );
    assert!(tables(&ds) == before);
    assert_eq!(hidden(&ds), Vec::<String>::new());
}

#[test]
fn issue_10_a_full_disk_under_the_spill_files_stops_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = old_dataset(dir.path());
    let before = tables(&ds);
    // Enough structures that each worker's 1 MiB spill buffer fills (and fails) while the reader
    // is still sending: the real files, eight times over through symbolic links.
    let many = dir.path().join("many");
    let real =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../shared/data/real");
    for copy in 0..8 {
        let sub = many.join(format!("c{copy}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for e in std::fs::read_dir(&real).expect("real files") {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_owned();
            std::os::unix::fs::symlink(&p, sub.join(name)).expect("symlink");
        }
    }
    let out = run_with_deadline(
        &["prepare", s(&many), "--out", s(&ds), "--jobs", "2"],
        "spill-file:/dev/full",
        Duration::from_secs(120),
    );
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/full: No space left on device"), "{err}");
    assert!(tables(&ds) == before);
    assert_eq!(hidden(&ds), Vec::<String>::new());
}
