//! Data-parallel collectives for tch tensors on PyTorch's own c10d: `TCPStore`,
//! `ProcessGroupGloo` (CPU tensors; the CI path) and `ProcessGroupNCCL` (the `nccl` feature),
//! through a small C++ shim (`csrc/shim.cpp`, the only `unsafe` in `ffi.rs`). Also SyncBatchNorm,
//! which needs collectives inside autograd, and the launchers: torchrun's and Slurm's environment
//! ([`Launch`]) or local ranks spawned by this binary ([`spawn`]).

mod ffi;
pub mod launch;
pub mod spawn;

use std::time::Duration;

use tch::{Device, Tensor};

pub use launch::{Launch, Launcher};

/// The c10d backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CPU tensors (and CUDA tensors through host copies): every machine, and the tests.
    Gloo,
    /// CUDA tensors, one rank per GPU.
    Nccl,
}

impl Backend {
    /// NCCL for CUDA, Gloo otherwise: what `init_process_group` users pick.
    pub fn for_device(device: Device) -> Backend {
        if device.is_cuda() {
            Backend::Nccl
        } else {
            Backend::Gloo
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("{variable}: {problem}")]
    Env { variable: String, problem: String },
    #[error(
        "rank {rank} of {world}: could not join the {backend} process group through the store at {addr}:{port}: {message}"
    )]
    Connect {
        rank: usize,
        world: usize,
        backend: &'static str,
        addr: String,
        port: u16,
        message: String,
    },
    /// A collective failed: a peer died, timed out, or disagreed on shapes.
    #[error("rank {rank} of {world}: {op} failed (a peer rank exited or timed out?): {message}")]
    Collective {
        rank: usize,
        world: usize,
        op: &'static str,
        message: String,
    },
    #[error("rank {rank} of {world}: {message}")]
    Usage {
        rank: usize,
        world: usize,
        message: String,
    },
    #[error("spawning local ranks: {0}")]
    Spawn(String),
}

/// One process group: this rank's connection to every other rank of the job.
#[derive(Debug)]
pub struct Group {
    handle: ffi::Handle,
    rank: usize,
    world: usize,
    backend: Backend,
}

/// torch DDP's default bucket (`bucket_cap_mb = 25`).
pub const BUCKET_BYTES: usize = 25 * 1024 * 1024;

impl Group {
    /// Joins the job's process group (blocks until every rank has joined, at most `timeout`).
    /// Collectives fail after `timeout` too, rather than hang on a dead peer.
    pub fn connect(
        launch: &Launch,
        backend: Backend,
        timeout: Duration,
    ) -> Result<Group, DistError> {
        let is_server = !launch.agent_store && launch.rank == 0;
        let prefix = format!("fusionprot/attempt-{}", launch.attempt);
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let code = match backend {
            Backend::Gloo => 0,
            Backend::Nccl => 1,
        };
        let handle = ffi::group_new(
            code,
            &launch.master_addr,
            launch.master_port,
            launch.rank,
            launch.world_size,
            is_server,
            launch.store_fd.filter(|_| is_server),
            timeout_ms,
            &prefix,
            launch.local_rank as i32,
        )
        .map_err(|message| DistError::Connect {
            rank: launch.rank,
            world: launch.world_size,
            backend: backend.name(),
            addr: launch.master_addr.clone(),
            port: launch.master_port,
            message,
        })?;
        Ok(Group {
            handle,
            rank: launch.rank,
            world: launch.world_size,
            backend,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn fail(&self, op: &'static str) -> impl FnOnce(String) -> DistError {
        let (rank, world) = (self.rank, self.world);
        move |message| DistError::Collective {
            rank,
            world,
            op,
            message,
        }
    }

    /// Sums each tensor over the ranks, in place.
    pub fn all_reduce_sum(&self, ts: &[&Tensor]) -> Result<(), DistError> {
        ffi::all_reduce(&self.handle, ts, false).map_err(self.fail("all-reduce"))
    }

    /// Averages each tensor over the ranks, in place (sum, then ÷ world size, as DDP).
    pub fn all_reduce_mean(&self, ts: &[&Tensor]) -> Result<(), DistError> {
        ffi::all_reduce(&self.handle, ts, true).map_err(self.fail("all-reduce"))
    }

    /// Overwrites each tensor with `root`'s, in place.
    pub fn broadcast(&self, ts: &[&Tensor], root: usize) -> Result<(), DistError> {
        if root >= self.world {
            return Err(DistError::Usage {
                rank: self.rank,
                world: self.world,
                message: format!("broadcast from rank {root}, which does not exist"),
            });
        }
        ffi::broadcast(&self.handle, ts, root).map_err(self.fail("broadcast"))
    }

    /// Every rank's `t` (same shape on every rank), in rank order.
    pub fn all_gather(&self, t: &Tensor) -> Result<Vec<Tensor>, DistError> {
        let t = t.contiguous();
        let outs: Vec<Tensor> = (0..self.world).map(|_| t.empty_like()).collect();
        let refs: Vec<&Tensor> = outs.iter().collect();
        ffi::all_gather(&self.handle, &t, &refs).map_err(self.fail("all-gather"))?;
        Ok(outs)
    }

    /// Every rank's `t`, whose first dimension may differ between ranks (predictions of a
    /// rank's share of the test set), in rank order.
    pub fn all_gather_rows(&self, t: &Tensor) -> Result<Vec<Tensor>, DistError> {
        let rows = t.size().first().copied().unwrap_or(0);
        let counts = self.all_gather(&Tensor::from_slice(&[rows]).to_device(t.device()))?;
        let counts: Vec<i64> = counts.iter().map(|c| c.int64_value(&[0])).collect();
        let most = counts.iter().copied().max().unwrap_or(0);
        let mut shape = t.size();
        let padded = if rows < most {
            shape[0] = most - rows;
            Tensor::cat(
                &[
                    t.shallow_clone(),
                    Tensor::zeros(&shape, (t.kind(), t.device())),
                ],
                0,
            )
        } else {
            t.shallow_clone()
        };
        let all = self.all_gather(&padded)?;
        Ok(all
            .into_iter()
            .zip(counts)
            .map(|(x, n)| x.narrow(0, 0, n))
            .collect())
    }

    /// Waits for every rank.
    pub fn barrier(&self) -> Result<(), DistError> {
        ffi::barrier(&self.handle).map_err(self.fail("barrier"))
    }

    /// Adds to a counter in the job's store and returns its new value (a store round trip, no
    /// tensor: cheap agreement such as "has any rank been asked to stop?").
    pub fn store_add(&self, key: &str, delta: i64) -> Result<i64, DistError> {
        ffi::store_add(&self.handle, key, delta).map_err(self.fail("store add"))
    }

    /// Averages gradients over the ranks as DDP does: flattened into buckets of at most
    /// `bucket_bytes` (one dtype and device each), one all-reduce per bucket, divided by the world
    /// size, copied back. As DDP with `find_unused_parameters`: a parameter some rank used but
    /// this one did not takes part with zeros and receives the average; one no rank used keeps no
    /// gradient (the optimizer skips it, as in one process). Returns the bytes reduced.
    pub fn average_gradients(
        &self,
        params: &[Tensor],
        bucket_bytes: usize,
    ) -> Result<usize, DistError> {
        let used: Vec<f32> = params
            .iter()
            .map(|p| f32::from(u8::from(p.grad().defined())))
            .collect();
        let device = params.first().map_or(Device::Cpu, Tensor::device);
        let used = Tensor::from_slice(&used).to_device(device);
        self.all_reduce_sum(&[&used])?;
        let used = used.to_device(Device::Cpu);
        let used: Vec<f32> = Vec::<f32>::try_from(&used).map_err(|e| DistError::Usage {
            rank: self.rank,
            world: self.world,
            message: e.to_string(),
        })?;
        let mut grads = Vec::with_capacity(params.len());
        for (p, &n) in params.iter().zip(&used) {
            if n == 0.0 {
                continue;
            }
            let mut g = p.grad();
            if !g.defined() {
                ffi::set_grad(p, Some(&p.zeros_like())).map_err(self.fail("set gradient"))?;
                g = p.grad();
            }
            grads.push(g);
        }
        let mut reduced = 0;
        let mut start = 0;
        while start < grads.len() {
            let kind = grads[start].kind();
            let device = grads[start].device();
            let mut end = start;
            let mut bytes = 0;
            while end < grads.len()
                && grads[end].kind() == kind
                && grads[end].device() == device
                && (end == start || bytes + size_of_tensor(&grads[end]) <= bucket_bytes)
            {
                bytes += size_of_tensor(&grads[end]);
                end += 1;
            }
            let bucket = &grads[start..end];
            let flat = Tensor::cat(
                &bucket.iter().map(|g| g.reshape([-1])).collect::<Vec<_>>(),
                0,
            );
            self.all_reduce_mean(&[&flat])?;
            let mut offset = 0;
            for g in bucket {
                let n = g.numel() as i64;
                let mut g = g.shallow_clone();
                tch::no_grad(|| g.copy_(&flat.narrow(0, offset, n).view_as(&g)));
                offset += n;
            }
            reduced += bytes;
            start = end;
        }
        Ok(reduced)
    }

    /// SyncBatchNorm's forward (and, through autograd, its backward) for `x: [N, C, …]`:
    /// statistics over every rank's rows; running statistics updated with the global batch.
    #[allow(clippy::too_many_arguments)]
    pub fn sync_batch_norm(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        momentum: f64,
        eps: f64,
    ) -> Result<Tensor, DistError> {
        ffi::sync_batch_norm(
            &self.handle,
            x,
            weight,
            bias,
            running_mean,
            running_var,
            momentum,
            eps,
        )
        .map_err(self.fail("SyncBatchNorm"))
    }
}

fn size_of_tensor(t: &Tensor) -> usize {
    t.numel() * t.kind().elt_size_in_bytes()
}
