//! The reference's data order: TorchDrug's engine draws every epoch through PyTorch's
//! `DistributedSampler` (shuffle, seed 0, `set_epoch(epoch)`), i.e. `torch.randperm(n)` from a
//! generator seeded with the epoch (not with `--seed`), padded to a multiple of the number of
//! replicas by repeating its head, rank `r` taking every `replicas`-th index from `r`
//! (training.md §3.2). tch cannot seed a generator of its own, and seeding the global one would
//! disturb the model's randomness, so the permutation is computed here: PyTorch's CPU `randperm`
//! (Fisher–Yates drawing `random() % (n − i)`) over its MT19937 engine.

/// MT19937 as PyTorch's CPU generator runs it (`at::mt19937`, seeded through `init_with_uint32`).
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u64) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed as u32;
        for j in 1..624 {
            state[j] = 1_812_433_253u32
                .wrapping_mul(state[j - 1] ^ (state[j - 1] >> 30))
                .wrapping_add(j as u32);
        }
        Self { state, index: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `CPUGeneratorImpl::random64`: two draws, the first as the high half.
    fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        let lo = u64::from(self.next_u32());
        (hi << 32) | lo
    }
}

/// `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` on the CPU.
pub fn randperm(n: usize, seed: u64) -> Vec<usize> {
    let mut g = Mt19937::new(seed);
    let mut r: Vec<usize> = (0..n).collect();
    let small = (n as u64) < u64::from(u32::MAX / 20);
    for i in 0..n.saturating_sub(1) {
        let left = (n - i) as u64;
        let z = if small {
            u64::from(g.next_u32()) % left
        } else {
            g.next_u64() % left
        };
        r.swap(i, i + z as usize);
    }
    r
}

/// The indices rank `rank` of `replicas` visits in `epoch` (seed 0, shuffle on, no drop_last),
/// exactly as `DistributedSampler` yields them.
pub fn epoch_order(n: usize, epoch: u64, replicas: usize, rank: usize) -> Vec<usize> {
    let mut indices = randperm(n, epoch);
    let replicas = replicas.max(1);
    let total = n.div_ceil(replicas) * replicas;
    let mut k = 0;
    while indices.len() < total && n > 0 {
        indices.push(indices[k % n]);
        k += 1;
    }
    indices.into_iter().skip(rank).step_by(replicas).collect()
}

/// Rank `rank`'s micro-batches of `micro_batch` from an epoch cut into micro-batches of
/// `micro_batch × world` (what one process of the job's whole batch would walk): the examples in
/// that order, padded to a multiple of `world` by repeating its head, every `world`-th from
/// `rank`. For the reference's order this is exactly `DistributedSampler(world, rank)` cut into
/// micro-batches, and micro-batch k of every rank together is micro-batch k of one process.
pub fn shard_batches(
    whole: &[Vec<usize>],
    world: usize,
    rank: usize,
    micro_batch: usize,
) -> Vec<Vec<usize>> {
    let mut flat: Vec<usize> = whole.concat();
    let n = flat.len();
    let total = n.div_ceil(world.max(1)) * world.max(1);
    let mut k = 0;
    while flat.len() < total && n > 0 {
        flat.push(flat[k % n]);
        k += 1;
    }
    let mine: Vec<usize> = flat.into_iter().skip(rank).step_by(world.max(1)).collect();
    mine.chunks(micro_batch.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// The micro-batches of one epoch: the reference's order cut into `micro_batch`-sized pieces;
/// with `bucket`, each window of `bucket` examples is sorted by length first and its micro-batches
/// shuffled (seeded by epoch and window), so a micro-batch holds proteins of similar length.
pub fn micro_batches(
    n: usize,
    epoch: usize,
    micro_batch: usize,
    bucket: Option<(usize, &dyn Fn(usize) -> usize)>,
) -> Vec<Vec<usize>> {
    let order = epoch_order(n, epoch as u64, 1, 0);
    let Some((window, length)) = bucket else {
        return order.chunks(micro_batch).map(<[usize]>::to_vec).collect();
    };
    let mut out = Vec::with_capacity(n.div_ceil(micro_batch));
    for (w, block) in order.chunks(window.max(micro_batch)).enumerate() {
        let mut block = block.to_vec();
        block.sort_by_key(|&i| length(i));
        let chunks: Vec<Vec<usize>> = block.chunks(micro_batch).map(<[usize]>::to_vec).collect();
        let shuffle = epoch_order(chunks.len(), (epoch as u64) << 20 | w as u64, 1, 0);
        out.extend(shuffle.into_iter().map(|k| chunks[k].clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_sequence() {
        // std::mt19937 with the default seed 5489: its 10,000th output is 4123659995.
        let mut g = Mt19937::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = g.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn sharded_micro_batches_are_the_distributed_sampler_and_the_whole_batch() {
        for (n, world, b) in [(10, 2, 2), (11, 3, 2), (7, 4, 1), (16, 2, 4)] {
            let whole: Vec<Vec<usize>> = epoch_order(n, 5, 1, 0)
                .chunks(b * world)
                .map(<[usize]>::to_vec)
                .collect();
            let shards: Vec<Vec<Vec<usize>>> = (0..world)
                .map(|r| shard_batches(&whole, world, r, b))
                .collect();
            for (r, s) in shards.iter().enumerate() {
                let expected: Vec<Vec<usize>> = epoch_order(n, 5, world, r)
                    .chunks(b)
                    .map(<[usize]>::to_vec)
                    .collect();
                assert_eq!(s, &expected, "n {n} world {world} rank {r}");
            }
            if n % (b * world) == 0 {
                for (k, w) in whole.iter().enumerate() {
                    let mut union: Vec<usize> = shards.iter().flat_map(|s| s[k].clone()).collect();
                    let mut w = w.clone();
                    union.sort_unstable();
                    w.sort_unstable();
                    assert_eq!(
                        union, w,
                        "micro-batch {k} of the ranks together is the process's"
                    );
                }
            }
        }
    }

    #[test]
    fn ranks_partition_the_padded_permutation() {
        let mut all: Vec<usize> = (0..4).flat_map(|r| epoch_order(10, 3, 4, r)).collect();
        assert_eq!(all.len(), 12);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn bucketing_keeps_every_example_once_and_groups_lengths_within_a_window() {
        let n = 37;
        let length = |i: usize| (i * 7919) % 101;
        let plain = micro_batches(n, 3, 2, None);
        let want: Vec<usize> = epoch_order(n, 3, 1, 0);
        assert_eq!(plain.concat(), want);
        let bucketed = micro_batches(n, 3, 2, Some((8, &length)));
        let mut all = bucketed.concat();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        // Within each window of 8 (4 micro-batches) the batches partition the window's examples
        // sorted by length: no batch straddles another's length range.
        for (w, window) in bucketed.chunks(4).enumerate() {
            let mut members: Vec<usize> = window.concat();
            members.sort_unstable();
            let mut expected: Vec<usize> = want[w * 8..(w * 8 + 8).min(n)].to_vec();
            expected.sort_unstable();
            assert_eq!(members, expected, "window {w}");
            for a in window {
                for b in window {
                    let (amax, bmin) = (
                        a.iter().map(|&i| length(i)).max(),
                        b.iter().map(|&i| length(i)).min(),
                    );
                    let (amin, bmax) = (
                        a.iter().map(|&i| length(i)).min(),
                        b.iter().map(|&i| length(i)).max(),
                    );
                    assert!(a == b || amax <= bmin || bmax <= amin, "{a:?} {b:?}");
                }
            }
        }
        assert_eq!(bucketed, micro_batches(n, 3, 2, Some((8, &length))));
        assert_ne!(bucketed, micro_batches(n, 4, 2, Some((8, &length))));
    }
}
