//! `--world-size N` without a launcher: this binary starts N local ranks of the same command,
//! each with torchrun's variables (MASTER_ADDR 127.0.0.1, a free port) and
//! `FUSIONPROT_LAUNCHER=spawn`, and waits for them. The first rank to fail ends the job: the
//! others get `grace` to fail on their own (their collectives see the dead peer), then are killed,
//! and the error names the rank and how it ended. SIGINT / SIGTERM sent to the spawner reach
//! every rank, which stop with a checkpoint; the job then exits 130.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::DistError;

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

/// The exit status of a rank (and of the whole job) that Ctrl-C or SIGTERM stopped with a
/// checkpoint: 128 + SIGINT, as shells report it.
pub const INTERRUPTED_EXIT: i32 = 130;

/// How the ranks ended, when none failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every rank finished its work.
    Completed,
    /// A signal stopped them (each wrote what it had to and exited 130): the job is resumable.
    Interrupted,
}

/// Runs `n` ranks of `program args` and waits for all of them.
///
/// Rank 0 inherits the listening socket of its TCPStore: the spawner binds a free port and hands
/// the bound socket down (`FUSIONPROT_STORE_FD`), so no other process can take the port between
/// choosing it and rank 0 listening on it.
///
/// `signal` is where the caller's signal handler stores the number of a signal this process
/// received (SIGINT, SIGTERM); it is forwarded to every rank still running, so a launcher killed
/// on its own (a scheduler's SIGTERM, `kill PID`) stops its ranks with a checkpoint instead of
/// leaving them orphaned. Ctrl-C in a terminal reaches the ranks directly as well; the ranks'
/// handlers only raise a flag, so getting it twice changes nothing.
///
/// # Errors
/// A rank cannot be started, or one ended with a failure (the first is named; the others get
/// `grace` to fail on their own, then are killed).
pub fn run_local_ranks(
    program: &std::path::Path,
    args: &[OsString],
    n: usize,
    grace: Duration,
    signal: &AtomicUsize,
) -> Result<Ended, DistError> {
    if n == 0 {
        return Err(DistError::Spawn("--world-size must be at least 1".into()));
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| DistError::Spawn(format!("no free port on 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| DistError::Spawn(format!("the store's port: {e}")))?
        .port();
    let mut children: Vec<Option<Child>> = Vec::with_capacity(n);
    for rank in 0..n {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("FUSIONPROT_LAUNCHER", "spawn")
            .env_remove("FUSIONPROT_STORE_FD")
            .env_remove("TORCHELASTIC_USE_AGENT_STORE");
        // Rank 0's copy of the socket; the parent's copy closes when this one is dropped after
        // the spawn (the ranks after rank 0 never see it: std opens descriptors close-on-exec).
        let handed = if rank == 0 {
            let fd = crate::ffi::inheritable(listener.as_fd())
                .map_err(|e| DistError::Spawn(format!("handing the store's socket down: {e}")))?;
            command.env("FUSIONPROT_STORE_FD", fd.as_raw_fd().to_string());
            Some(fd)
        } else {
            None
        };
        let child = command.spawn();
        drop(handed);
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
    drop(listener);
    let mut first_failure: Option<(usize, ExitStatus)> = None;
    let mut stopped = false;
    let mut deadline: Option<Instant> = None;
    loop {
        let received = signal.swap(0, Ordering::SeqCst);
        if received != 0 {
            let sig = i32::try_from(received).unwrap_or(libc::SIGTERM);
            tracing::info!(signal = sig, "forwarding the signal to the ranks");
            for (rank, child) in children.iter().enumerate() {
                if let Some(c) = child
                    && let Err(e) = crate::ffi::send_signal(c.id(), sig)
                {
                    tracing::warn!(rank, error = %e, "could not forward the signal");
                }
            }
        }
        let mut running = 0;
        for (rank, slot) in children.iter_mut().enumerate() {
            let Some(child) = slot else { continue };
            match child.try_wait() {
                Ok(Some(status)) => {
                    *slot = None;
                    if status.code() == Some(INTERRUPTED_EXIT) {
                        stopped = true;
                    } else if !status.success() && first_failure.is_none() {
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
        Some((rank, status)) => Err(DistError::Spawn(format!(
            "rank {rank} of {n} {}; the other ranks were stopped",
            describe(status)
        ))),
        None if stopped => Ok(Ended::Interrupted),
        None => Ok(Ended::Completed),
    }
}
