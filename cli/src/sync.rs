//! `fusionprot sync`: replays a tracking spool file (written while the server was unreachable).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

/// Replay a tracking spool file into a tracker, exactly once.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The spool file (JSON lines) the client wrote while offline.
    pub file: PathBuf,
    /// Where to replay it: http://HOST:PORT or sqlite:///path/fusionprot.db.
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    pub tracking_uri: String,
    /// Bearer token of the tracker (`serve --token`).
    #[arg(long, env = "FUSIONPROT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Move operations the server refuses for good (e.g. a changed param) to FILE.rejected,
    /// each with the server's reason, and replay the rest; without it a refusal stops the
    /// replay at that line.
    #[arg(long)]
    pub skip_refused: bool,
}

pub fn run(args: &SyncArgs) -> Result<ExitCode> {
    if !args.file.is_file() {
        anyhow::bail!("{}: no spool file", args.file.display());
    }
    // Operations that cannot be sent now go to a scratch spool, not back into the one replayed.
    let scratch = PathBuf::from(format!("{}.retry", args.file.display()));
    let mut client = fusionprot_tracker::client::Client::connect(
        &args.tracking_uri,
        args.token.clone(),
        scratch,
    )
    .with_context(|| format!("connecting to {}", args.tracking_uri))?;
    let rejects = PathBuf::from(format!("{}.rejected", args.file.display()));
    let summary = fusionprot_tracker::client::replay_with(
        &mut client,
        &args.file,
        args.skip_refused.then_some(rejects.as_path()),
    )
    .with_context(|| format!("replaying {}", args.file.display()))?;
    println!(
        "replayed {} operations from {} into {}",
        summary.sent,
        args.file.display(),
        args.tracking_uri
    );
    if summary.set_aside > 0 {
        println!(
            "set aside {} refused operations in {} (each with the server's reason)",
            summary.set_aside,
            rejects.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
