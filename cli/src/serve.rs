//! `fusionprot serve`: the tracking server (MLflow REST API on SQLite or PostgreSQL).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use fusionprot_tracker::{Durability, ServeConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SyncArg {
    /// SQLite: WAL + synchronous=NORMAL, acknowledged writes survive a killed server.
    /// PostgreSQL: synchronous_commit=on, every commit flushed by the server.
    Normal,
    /// SQLite: synchronous=FULL, also survive an OS crash or power loss (an fsync per commit).
    /// PostgreSQL: the same as normal, which already survives those.
    Full,
}

/// Serve run tracking over MLflow's REST API, backed by SQLite or PostgreSQL.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The database: a SQLite file (created and migrated at start), or an existing PostgreSQL
    /// database as postgres://USER[:PASSWORD]@HOST[:PORT]/DB (migrated at start; a Unix socket
    /// with ?host=/run/postgresql). Give a URL with a password through FUSIONPROT_DB rather than
    /// the command line.
    #[arg(
        long,
        env = "FUSIONPROT_DB",
        hide_env_values = true,
        default_value = "fusionprot.db"
    )]
    pub db: fusionprot_tracker::store::DbLocation,
    /// Address to listen on. Non-loopback addresses need --token (or --insecure).
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: String,
    /// Root folder of run artifacts.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Require `Authorization: Bearer TOKEN` on every request.
    #[arg(long, env = "FUSIONPROT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Allow a non-loopback address without a token.
    #[arg(long)]
    pub insecure: bool,
    #[arg(long, value_enum, default_value = "normal")]
    pub sync: SyncArg,
    /// Largest artifact accepted in one upload, in MiB.
    #[arg(long, default_value_t = 16384)]
    pub max_artifact_mib: u64,
    /// Let clients register datasets by path over HTTP, for folders below this one (without it,
    /// HTTP registration by path is refused; `fusionprot register --db` works locally).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Where new experiments keep their artifacts, as MLflow's `--default-artifact-root`: a URI
    /// clients write to themselves (`file:///data/mlruns`, `s3://bucket/path`) or a local folder
    /// (made a `file://` URI). Default: this server's store (`--artifacts`), as `mlflow-artifacts:`.
    #[arg(long, value_parser = artifact_root)]
    pub default_artifact_root: Option<String>,
}

/// `--default-artifact-root`: a URI with a scheme, or an absolute folder made a `file://` URI.
fn artifact_root(s: &str) -> Result<String, String> {
    if s.contains("://") || s.starts_with("mlflow-artifacts:") {
        return Ok(s.trim_end_matches('/').to_owned());
    }
    let path = std::path::Path::new(s);
    if !path.is_absolute() {
        return Err(format!(
            "{s:?}: give a URI (file:///…, s3://…) or an absolute folder"
        ));
    }
    Ok(format!("file://{}", s.trim_end_matches('/')))
}

pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    let cfg = ServeConfig {
        db: args.db.clone(),
        addr: args.addr.clone(),
        artifacts: args.artifacts.clone(),
        token: args.token.clone().filter(|t| !t.is_empty()),
        insecure: args.insecure,
        durability: match args.sync {
            SyncArg::Normal => Durability::Normal,
            SyncArg::Full => Durability::Full,
        },
        max_artifact_bytes: args.max_artifact_mib.saturating_mul(1 << 20),
        data_root: args.data_root.clone(),
        default_artifact_root: args.default_artifact_root.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let db = args.db.to_string();
    runtime
        .block_on(fusionprot_tracker::serve(cfg, |addr| {
            // A closed stdout (a supervisor that stopped reading) must not stop the server.
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "fusionprot tracking server on http://{addr}  (database {db})"
            );
            let _ = writeln!(out, "log to it with: MLFLOW_TRACKING_URI=http://{addr}");
            let _ = out.flush();
        }))
        .with_context(|| format!("serving {}", args.addr))?;
    Ok(ExitCode::SUCCESS)
}
