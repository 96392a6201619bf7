//! What the loop does as one rank of a data-parallel job (`fit` calls these only when the job has
//! more than one rank): DDP's start (rank 0's parameters and buffers everywhere, BatchNorm made
//! SyncBatchNorm) and each epoch's report — the job's throughput, and every rank's own system
//! metrics (`system/rank-N/…`), gathered to rank 0, the one that logs, so a straggler shows.

use fusionprot_dist::Group;

use super::log::RunLog;
use super::step::Trainer;
use crate::error::ModelError;

/// DDP's start: every rank holds rank 0's parameters and buffers (by name order); with
/// `sync_batch_norm`, every BatchNorm of the model computes its statistics over all ranks.
pub(crate) fn start(
    group: &std::sync::Arc<Group>,
    trainer: &Trainer<'_>,
    sync_batch_norm: bool,
) -> Result<(), ModelError> {
    let mut vars: Vec<(String, tch::Tensor)> = trainer.model.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let refs: Vec<&tch::Tensor> = vars.iter().map(|(_, t)| t).collect();
    tch::no_grad(|| group.broadcast(&refs, 0))?;
    if sync_batch_norm {
        let n = trainer.model.synchronise_batch_norms(group);
        tracing::info!(
            batch_norms = n,
            world = group.world_size(),
            "SyncBatchNorm over the ranks"
        );
    }
    Ok(())
}

/// This process's peak resident memory (VmHWM), MiB; 0 where /proc is not there.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// An epoch's end on every rank: gathers each rank's proteins, seconds, optimizer steps,
/// all-reduce time and peak memory; logs (rank 0's log; the others' drop it) the job's
/// `speed/proteins_per_second` (every rank's proteins over the slowest rank's time), the
/// all-reduce's time (the slowest rank's) and bytes per step, and per rank
/// `system/rank-N/{proteins_per_second, seconds_per_step, all_reduce_seconds_per_step,
/// peak_rss_mib}`.
pub(crate) fn epoch_report(
    group: &Group,
    trainer: &mut Trainer<'_>,
    proteins: usize,
    seconds: f64,
    steps: usize,
    log: &mut dyn RunLog,
    at: i64,
) -> Result<(), ModelError> {
    let comm = std::mem::take(&mut trainer.comm);
    let mine = [
        proteins as f64,
        seconds,
        steps as f64,
        comm.seconds,
        comm.steps as f64,
        comm.bytes as f64,
        peak_rss_mib(),
    ];
    let all: Vec<Vec<f64>> = group
        .all_gather(&tch::Tensor::from_slice(&mine))?
        .iter()
        .map(|t| Vec::<f64>::try_from(t).map_err(ModelError::from))
        .collect::<Result<_, _>>()?;
    let total: f64 = all.iter().map(|r| r[0]).sum();
    let slowest = all.iter().map(|r| r[1]).fold(0.0, f64::max);
    log.metric("speed/proteins_per_second", total / slowest.max(1e-9), at);
    let per_step = |r: &Vec<f64>, i: usize| r[i] / r[4].max(1.0);
    let all_reduce = all.iter().map(|r| per_step(r, 3)).fold(0.0, f64::max);
    log.metric("system/all_reduce_seconds_per_step", all_reduce, at);
    log.metric("system/all_reduce_bytes_per_step", per_step(&all[0], 5), at);
    for (rank, r) in all.iter().enumerate() {
        let key = |k: &str| format!("system/rank-{rank}/{k}");
        log.metric(&key("proteins_per_second"), r[0] / r[1].max(1e-9), at);
        log.metric(&key("seconds_per_step"), r[1] / r[2].max(1.0), at);
        log.metric(&key("all_reduce_seconds_per_step"), per_step(r, 3), at);
        log.metric(&key("peak_rss_mib"), r[6], at);
    }
    Ok(())
}
