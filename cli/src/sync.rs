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
    #[arg(long, env = "FUSIONPROT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
    let sent = fusionprot_tracker::client::replay(&mut client, &args.file)
        .with_context(|| format!("replaying {}", args.file.display()))?;
    println!(
        "replayed {sent} operations from {} into {}",
        args.file.display(),
        args.tracking_uri
    );
    Ok(ExitCode::SUCCESS)
}
