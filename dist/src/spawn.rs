//! `--world-size N` without a launcher: this binary starts N local ranks of the same command,
//! each with torchrun's variables (MASTER_ADDR 127.0.0.1, a free port) and
//! `FUSIONPROT_LAUNCHER=spawn`, and waits for them. The first rank to fail ends the job: the
//! others get `grace` to fail on their own (their collectives see the dead peer), then are killed,
//! and the error names the rank and how it ended.

use std::ffi::OsString;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::DistError;

/// A free TCP port on the loopback interface (bound, read, released).
pub fn free_port() -> Result<u16, DistError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DistError::Spawn(format!("no free port on 127.0.0.1: {e}")))
}

fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("was killed by signal {sig}");
        }
    }
    match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "ended".to_owned(),
    }
}

/// Runs `n` ranks of `program args` and waits for all of them.
pub fn run_local_ranks(
    program: &std::path::Path,
    args: &[OsString],
    n: usize,
    grace: Duration,
) -> Result<(), DistError> {
    if n == 0 {
        return Err(DistError::Spawn("--world-size must be at least 1".into()));
    }
    let port = free_port()?;
    let mut children: Vec<Option<Child>> = Vec::with_capacity(n);
    for rank in 0..n {
        let child = Command::new(program)
            .args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("FUSIONPROT_LAUNCHER", "spawn")
            .env_remove("TORCHELASTIC_USE_AGENT_STORE")
            .spawn();
        match child {
            Ok(c) => children.push(Some(c)),
            Err(e) => {
                for c in children.iter_mut().flatten() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(DistError::Spawn(format!(
                    "rank {rank}: {}: {e}",
                    program.display()
                )));
            }
        }
    }
    let mut first_failure: Option<(usize, ExitStatus)> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        let mut running = 0;
        for (rank, slot) in children.iter_mut().enumerate() {
            let Some(child) = slot else { continue };
            match child.try_wait() {
                Ok(Some(status)) => {
                    *slot = None;
                    if !status.success() && first_failure.is_none() {
                        tracing::error!(
                            "rank {rank} {}; stopping the other ranks",
                            describe(status)
                        );
                        first_failure = Some((rank, status));
                        deadline = Some(Instant::now() + grace);
                    }
                }
                Ok(None) => running += 1,
                Err(e) => return Err(DistError::Spawn(format!("waiting for rank {rank}: {e}"))),
            }
        }
        if running == 0 {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            for c in children.iter_mut().flatten() {
                let _ = c.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match first_failure {
        None => Ok(()),
        Some((rank, status)) => Err(DistError::Spawn(format!(
            "rank {rank} of {n} {}; the other ranks were stopped",
            describe(status)
        ))),
    }
}
