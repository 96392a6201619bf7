//! `fusionprot serve`: binds, opens the store, serves until SIGTERM / Ctrl-C, then drains.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::future::IntoFuture;

use crate::api::{AppState, Guard, router};
use crate::error::TrackerError;
use crate::store::{Durability, Store};

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub db: crate::store::DbLocation,
    pub addr: String,
    pub artifacts: PathBuf,
    pub token: Option<String>,
    pub insecure: bool,
    pub durability: Durability,
    /// Largest artifact accepted in one upload.
    pub max_artifact_bytes: u64,
    /// Folders below this one may be registered as datasets over HTTP; `None`: none may.
    pub data_root: Option<PathBuf>,
    /// Where new experiments' artifacts go (`--default-artifact-root`); `None`: this server's
    /// store, `mlflow-artifacts:`.
    pub default_artifact_root: Option<String>,
}

/// Checks the address/token combination before anything is opened.
///
/// # Errors
/// A non-loopback address without a token (and without `insecure`), or an unparsable address.
pub fn check_exposure(cfg: &ServeConfig) -> Result<SocketAddr, TrackerError> {
    let addr: SocketAddr = cfg.addr.parse().map_err(|_| {
        TrackerError::invalid(format!(
            "--addr {:?}: expected HOST:PORT such as 127.0.0.1:5000",
            cfg.addr
        ))
    })?;
    if !addr.ip().is_loopback() && cfg.token.is_none() && !cfg.insecure {
        return Err(TrackerError::invalid(format!(
            "refusing to listen on {addr} without a token: anyone who can reach it could read and change your runs. \
             Give --token (or FUSIONPROT_TOKEN), or --insecure if the network is trusted"
        )));
    }
    Ok(addr)
}

pub fn guard_for(addr: SocketAddr, token: Option<String>) -> Guard {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "[::1]".to_owned(),
        "::1".to_owned(),
    ];
    if addr.ip().is_unspecified() || (!addr.ip().is_loopback() && token.is_some()) {
        // Reachable under names we cannot know; the token (or --insecure) is the protection.
        hosts.push("*".to_owned());
    } else {
        hosts.push(addr.ip().to_string());
    }
    Guard {
        token,
        allowed_hosts: hosts,
        tickets: Arc::default(),
    }
}

/// Serves until a shutdown signal. `ready` is called with the bound address once listening.
///
/// # Errors
/// Exposure refused, the database cannot be opened or migrated, or the address cannot be bound.
pub async fn serve(cfg: ServeConfig, ready: impl FnOnce(SocketAddr)) -> Result<(), TrackerError> {
    let addr = check_exposure(&cfg)?;
    std::fs::create_dir_all(&cfg.artifacts).map_err(|source| TrackerError::Io {
        path: cfg.artifacts.display().to_string(),
        source,
    })?;
    let store = Store::open_rooted(
        &cfg.db,
        cfg.durability,
        cfg.default_artifact_root.as_deref(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TrackerError::Io {
            path: addr.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| TrackerError::Io {
        path: addr.to_string(),
        source,
    })?;
    let (stop, shutdown) = crate::api::Shutdown::channel();
    let waiter = shutdown.clone();
    let state = AppState {
        store,
        guard: Arc::new(guard_for(bound, cfg.token.clone())),
        artifacts: cfg
            .artifacts
            .canonicalize()
            .map_err(|source| TrackerError::Io {
                path: cfg.artifacts.display().to_string(),
                source,
            })?,
        max_artifact_bytes: cfg.max_artifact_bytes,
        data_root: match &cfg.data_root {
            Some(root) => Some(root.canonicalize().map_err(|source| TrackerError::Io {
                path: root.display().to_string(),
                source,
            })?),
            None => None,
        },
        sql_gate: crate::api::SqlGate::default(),
        shutdown,
    };
    ready(bound);
    // The long curves of the latest runs, read into the cache while the server waits for its
    // first requests (half the cache's budget; a request for one of them waits for its load).
    let warm = state.store.clone();
    tokio::spawn(async move {
        let t0 = std::time::Instant::now();
        match warm.warm_curves(crate::store::CurveCache::BUDGET / 2).await {
            Ok((0, _)) => {}
            Ok((curves, points)) => tracing::info!(
                curves,
                points,
                secs = t0.elapsed().as_secs_f64(),
                "long metric histories read into the curve cache"
            ),
            Err(e) => tracing::warn!(error = %e, "warming the curve cache failed"),
        }
    });
    // On SIGTERM / Ctrl-C: stop accepting, end the event streams, let requests in flight finish
    // for up to SHUTDOWN_GRACE, then exit whatever is still running.
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let mut graceful = waiter.clone();
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { graceful.begun().await })
        .into_future();
    tokio::select! {
        r = server => r.map_err(|source| TrackerError::Io {
            path: bound.to_string(),
            source,
        })?,
        () = async move {
            let mut w = waiter;
            w.begun().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "requests still running after the shutdown grace period: stopping anyway"
            );
        }
    }
    tracing::info!("server stopped");
    Ok(())
}

/// How long requests in flight may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal: finishing requests in flight");
}
