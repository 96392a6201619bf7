//! Shared helpers for the CLI's end-to-end tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub mod archive;
pub mod browser;
pub mod train;

/// The venv's python (scripts/setup installs the test peers into it).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("FUSIONPROT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/fusionprot/venv")
        });
    venv.join("bin/python")
}

/// Runs the `fusionprot` binary built with the tests.
pub fn fusionprot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(args)
        .output()
        .expect("run fusionprot")
}

/// stdout and stderr together, for assertions and their messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The real structure files of `../shared/data/real`, sorted.
pub fn real_files() -> Vec<PathBuf> {
    let dir = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../shared/data/real");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("../shared/data/real")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// A `fusionprot serve` child process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// A server started some other way (a fixed address, retried), whose first stdout line was read.
    pub fn from_parts(
        child: Child,
        addr: String,
        stdout: BufReader<std::process::ChildStdout>,
    ) -> Self {
        Server {
            child,
            addr,
            _stdout: stdout,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fusionprot serve` on a free port with artifacts under `dir`, until the `Server` is dropped.
pub fn serve(dir: &Path, db: &str, extra: &[&str]) -> Server {
    serve_logged(dir, db, extra, &[], None)
}

/// [`serve`] with environment variables set and its log (stderr) kept in `log`.
pub fn serve_logged(
    dir: &Path,
    db: &str,
    extra: &[&str],
    env: &[(&str, &str)],
    log: Option<&Path>,
) -> Server {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
        None => Stdio::null(),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db", db, "--artifacts"])
        .arg(dir.join("artifacts"))
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("addr")
        .to_owned();
    Server {
        child,
        addr,
        _stdout: stdout,
    }
}

/// Registers `ds` with the tracker `server` (`fusionprot register`); the dataset id the server
/// lists first (the only one, in a fresh server).
pub fn register_dataset(server: &Server, ds: &Path) -> String {
    let url = format!("http://{}", server.addr);
    let o = fusionprot(&["register", ds.to_str().expect("utf8"), "--tracker", &url]);
    assert!(o.status.success(), "{}", text(&o));
    let (status, _, body) = http_full(&server.addr, "GET", "/api/fusionprot/datasets/list");
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("json");
    list["datasets"][0]["dataset_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Runs the peer `tests/peer/NAME` with `args` (mlflow's retries and telemetry off), requires `ok`
/// as its last line, and returns the `run_id` of the JSON object on its first line.
pub fn peer_run(name: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peer")
        .join(name);
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .output()
        .expect("python");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && said.trim().lines().last() == Some("ok"),
        "{}",
        text(&out)
    );
    let run: serde_json::Value =
        serde_json::from_str(said.lines().next().expect("run line")).expect("json");
    run["run_id"].as_str().expect("run").to_owned()
}

/// `GET /api/fusionprot/dashboard/breakdown?QUERY`, required to answer 200, as JSON.
pub fn breakdown(server: &Server, query: &str) -> serde_json::Value {
    let (status, _, body) = http_full(
        &server.addr,
        "GET",
        &format!("/api/fusionprot/dashboard/breakdown?{query}"),
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// Runs the Python fixture writer (Atom3D's own LMDB layout, written with the `lmdb` package).
pub fn msp_fixture(dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let real =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../shared/data/real");
    let files = [
        "4JSV.pdb",
        "1AFS.pdb",
        "1a28.pdb.gz",
        "2XHE.pdb",
        "3CRO.pdb",
        "1orc.pdb",
        "1dpx.pdb",
    ];
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer/msp_fixture.py");
    let mut cmd = std::process::Command::new(python());
    cmd.arg(script).arg(dir).args(extra);
    for f in files {
        cmd.arg(real.join(f));
    }
    let o = cmd.output().expect("python");
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected"))
        .expect("json")
}

/// One raw HTTP/1.1 request without a body; returns (status, header lines, body).
pub fn http_full(addr: &str, method: &str, path: &str) -> (u16, String, String) {
    http_with_body(addr, method, path, b"")
}

/// One raw HTTP/1.1 request, its body sent as JSON; returns (status, header lines, body).
pub fn http_with_body(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send");
    s.write_all(body).expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The sha256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A one-node Slurm cluster started by scripts/slurm-cluster in `dir/cluster` (ports `ports`), stopped
/// when the guard drops; None — the caller says SKIPPED — only where Slurm is not installed or the
/// tests do not run as root (the script's exit 3).
#[allow(dead_code)]
pub struct SlurmCluster {
    pub conf: PathBuf,
    script: PathBuf,
    dir: PathBuf,
}

impl SlurmCluster {
    #[allow(dead_code)]
    pub fn start(dir: &Path, ports: Option<(u16, u16)>) -> Result<SlurmCluster, String> {
        let root =
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
                .join("..");
        let script = root.join("scripts/slurm-cluster");
        let cluster = dir.join("cluster");
        let mut cmd = Command::new(&script);
        cmd.args(["start", cluster.to_str().expect("utf8")]);
        if let Some((ctld, d)) = ports {
            cmd.env("FP_SLURMCTLD_PORT", ctld.to_string())
                .env("FP_SLURMD_PORT", d.to_string());
        }
        let up = cmd.output().expect("slurm-cluster");
        if up.status.code() == Some(3) {
            return Err(text(&up).trim().to_owned());
        }
        let guard = SlurmCluster {
            conf: cluster.join("slurm.conf"),
            script,
            dir: cluster,
        };
        assert!(up.status.success(), "{}", text(&up));
        Ok(guard)
    }
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["stop", self.dir.to_str().unwrap_or_default()])
            .output();
    }
}
