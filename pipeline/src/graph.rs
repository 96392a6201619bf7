//! The residue graph of spec §2.2: seven relations over alpha-carbon nodes, exactly as TorchDrug's
//! `GraphConstruction` (SequentialEdge max 2, SpatialEdge 10 Å / min 5, KNNEdge k 10 / min 5)
//! builds them with torch_cluster's GPU kernels, which the published checkpoints were trained on.

use wide::{CmpLt, f32x8};

/// Relations 0–4: sequential offsets −2…+2 (2 is the self-loop).
pub const SEQUENTIAL_MAX_DISTANCE: usize = 2;
/// Relation 5: neighbours within this radius.
pub const RADIUS_ANGSTROM: f32 = 10.0;
/// torch_cluster's `radius_graph(max_num_neighbors=32)`: the first 32 candidates in index order.
pub const RADIUS_MAX_NEIGHBORS: usize = 32;
/// Relation 6: this many nearest neighbours.
pub const KNN_K: usize = 10;
/// Where fewer than k + 1 nodes lie within the radius, the nearest are first looked for within
/// this many ångström (squared); only when even that holds fewer is the whole row read.
const KNN_FALLBACK_R2: f32 = 20.0 * 20.0;
/// Spatial and KNN edges need |i − j| ≥ this (node indices).
pub const MIN_SEQUENCE_DISTANCE: usize = 5;
/// TorchDrug drops spatial pairs whose distance (the norm, not its square) is below this.
pub const ZERO_DISTANCE_EPS: f32 = 1e-10;
pub const RELATION_RADIUS: i8 = 5;
pub const RELATION_KNN: i8 = 6;
pub const NUM_RELATIONS: usize = 7;

/// Edges as parallel columns: message flows `src → dst` (TorchDrug's node_in → node_out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edges {
    pub src: Vec<i32>,
    pub dst: Vec<i32>,
    pub relation: Vec<i8>,
}

impl Edges {
    pub fn len(&self) -> usize {
        self.src.len()
    }

    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    fn with_capacity(n: usize) -> Self {
        Self {
            src: Vec::with_capacity(n),
            dst: Vec::with_capacity(n),
            relation: Vec::with_capacity(n),
        }
    }

    fn reserve(&mut self, more: usize) {
        self.src.reserve_exact(more);
        self.dst.reserve_exact(more);
        self.relation.reserve_exact(more);
    }

    fn push(&mut self, src: usize, dst: usize, relation: i8) {
        // Node counts come from i32 residue indices, so they fit.
        self.src.push(src as i32);
        self.dst.push(dst as i32);
        self.relation.push(relation);
    }
}

/// Builds all edges for one graph. `pos[i]` is node i's CA position; `chain[i]` a chain key
/// (sequential edges never cross chains; spatial ones may, as in TorchDrug's whole-entry graphs).
///
/// Order: relation 0…6; sequential edges by node, spatial and KNN edges by centre (`dst`), then
/// by the order the reference kernel finds them.
pub fn build(pos: &[[f32; 3]], chain: &[u32]) -> Edges {
    assert_eq!(pos.len(), chain.len(), "one chain key per node");
    let n = pos.len();
    // Room for the usual count (about 19 per node on bench/prepare's corpus), so the columns
    // rarely grow; the nearest-neighbour edges, at most k per node, wait in their own list
    // until the radius edges are in.
    let mut edges = Edges::with_capacity(n * 24);
    let mut knn_found: Vec<(usize, usize)> = Vec::with_capacity(n * KNN_K);
    sequential(chain, &mut edges);
    // Coordinates by axis, so that the distance row below is computed eight lanes at a time.
    let axis = |k: usize| pos.iter().map(|p| p[k]).collect::<Vec<f32>>();
    let (xs, ys, zs) = (axis(0), axis(1), axis(2));
    let mut d2 = vec![0f32; n];
    let mut near: Vec<usize> = Vec::new();
    let mut wider: Vec<usize> = Vec::new();
    let r2 = RADIUS_ANGSTROM * RADIUS_ANGSTROM;
    let min_d2 = *MIN_D2;
    for centre in 0..n {
        distance_row(centre, (&xs, &ys, &zs), r2, &mut d2, &mut near);
        radius_neighbours(centre, &near, &d2, min_d2, &mut edges);
        let candidates = if near.len() >= (KNN_K + 1).min(n) {
            &near
        } else {
            within(&d2, KNN_FALLBACK_R2, &mut wider);
            &wider
        };
        knn_neighbours(centre, &d2, candidates, min_d2, &mut knn_found);
    }
    edges.reserve(knn_found.len());
    for (src, dst) in knn_found {
        edges.push(src, dst, RELATION_KNN);
    }
    edges
}

/// Relation `d + 2` for offset d ∈ −2…2: edge (r + |d| → r) for d < 0, (r → r + d) for d > 0,
/// self-loops for d = 0; both ends in the same chain.
fn sequential(chain: &[u32], edges: &mut Edges) {
    let n = chain.len();
    let max = SEQUENTIAL_MAX_DISTANCE as isize;
    for d in -max..=max {
        let relation = (d + max) as i8;
        let k = d.unsigned_abs();
        for r in 0..n.saturating_sub(k) {
            if chain[r] != chain[r + k] {
                continue;
            }
            match d {
                ..0 => edges.push(r + k, r, relation),
                0 => edges.push(r, r, relation),
                _ => edges.push(r, r + k, relation),
            }
        }
    }
}

/// Squared distances from `centre` to every node into `d2`, accumulated over x, y, z in f32 in
/// that order (`(dx² + dy²) + dz²`, no fused multiply-add), as torch_cluster's radius kernel
/// does; and the nodes with `d2 < r2`, in index order, into `near`. Eight nodes at a time: one
/// vector compare makes a bit mask, and only its set bits are visited, so the far nodes of a
/// large protein cost no branch each.
fn distance_row(
    centre: usize,
    (xs, ys, zs): (&[f32], &[f32], &[f32]),
    r2: f32,
    d2: &mut [f32],
    near: &mut Vec<usize>,
) {
    const LANES: usize = 8;
    near.clear();
    let (cx, cy, cz) = (xs[centre], ys[centre], zs[centre]);
    let (vx, vy, vz, vr2) = (
        f32x8::splat(cx),
        f32x8::splat(cy),
        f32x8::splat(cz),
        f32x8::splat(r2),
    );
    let n = d2.len();
    let full = n - n % LANES;
    for base in (0..full).step_by(LANES) {
        let lanes = |a: &[f32]| {
            let a: [f32; LANES] = a[base..base + LANES].try_into().expect("eight lanes");
            f32x8::from(a)
        };
        let (dx, dy, dz) = (lanes(xs) - vx, lanes(ys) - vy, lanes(zs) - vz);
        let d = dx * dx + dy * dy + dz * dz;
        d2[base..base + LANES].copy_from_slice(&d.to_array());
        let mut mask = d.cmp_lt(vr2).move_mask() as u32;
        while mask != 0 {
            near.push(base + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
    }
    for j in full..n {
        let (dx, dy, dz) = (xs[j] - cx, ys[j] - cy, zs[j] - cz);
        d2[j] = dx * dx + dy * dy + dz * dz;
        if d2[j] < r2 {
            near.push(j);
        }
    }
}

/// The nodes with `d2 < r2`, in index order, into `near`: sixteen comparisons make a bit mask
/// (vector compares), and only the set bits are visited, so the far nodes of a large protein cost
/// no branch each.
fn within(d2: &[f32], r2: f32, near: &mut Vec<usize>) {
    const LANES: usize = 16;
    near.clear();
    let mut chunks = d2.chunks_exact(LANES);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let chunk: &[f32; LANES] = chunk.try_into().expect("an exact chunk");
        let mut mask = 0u32;
        for (k, &d) in chunk.iter().enumerate() {
            mask |= u32::from(d < r2) << k;
        }
        while mask != 0 {
            near.push(c * LANES + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
    }
    let base = d2.len() - chunks.remainder().len();
    near.extend((base..d2.len()).filter(|&j| d2[j] < r2));
}

/// torch_cluster `radius_graph(loop=False, max_num_neighbors=32)` on the GPU: scan candidates in
/// index order, keep d² < r² (self excluded), stop after 32 — then TorchDrug's filters
/// (|i − j| ≥ 5, distance ≥ 1e-10) drop some of those 32. The cap is taken before the filters, so
/// a dense neighbourhood can lose far neighbours even when near ones are filtered out.
///
/// `near` holds the nodes with d² < r² in index order (the centre among them).
fn radius_neighbours(centre: usize, near: &[usize], d2: &[f32], min_d2: f32, out: &mut Edges) {
    for &j in near
        .iter()
        .filter(|&&j| j != centre)
        .take(RADIUS_MAX_NEIGHBORS)
    {
        if keep(centre, j, d2[j], min_d2) {
            out.push(j, centre, RELATION_RADIUS);
        }
    }
}

/// torch_cluster `knn_graph(k=10, loop=False)`: the k + 1 nearest including the centre itself
/// (ties to the lower index), the centre removed, then TorchDrug's filters.
///
/// The nearest are kept by insertion into a sorted list of eleven while candidates are read in
/// index order (so a tie in distance keeps the lower index ahead). Candidates are the nodes with
/// d² below some bound, in index order: when at least 11 lie below it, every node outside ranks
/// after all of them, so the 11 nearest are among them. In a protein the 10 Å radius set (`near`)
/// almost always holds 11 nodes; otherwise the caller offers those within 20 Å; only when that
/// holds fewer than 11 too is the whole row read.
fn knn_neighbours(
    centre: usize,
    d2: &[f32],
    candidates: &[usize],
    min_d2: f32,
    out: &mut Vec<(usize, usize)>,
) {
    let n = d2.len();
    // (distance, index) as one integer: the order of total_cmp, ties to the lower index.
    // Empty slots hold u64::MAX, above every key (an index is below 2^32).
    let mut best = [u64::MAX; KNN_K + 1];
    let mut offer = |j: usize| {
        let key = (u64::from(order_key(d2[j]) as u32 ^ 0x8000_0000) << 32) | j as u64;
        if key >= best[KNN_K] {
            return;
        }
        let mut at = KNN_K;
        while at > 0 && best[at - 1] > key {
            best[at] = best[at - 1];
            at -= 1;
        }
        best[at] = key;
    };
    if candidates.len() >= (KNN_K + 1).min(n) {
        for &j in candidates {
            offer(j);
        }
    } else {
        for j in 0..n {
            offer(j);
        }
    }
    for &key in best.iter().take_while(|&&k| k != u64::MAX) {
        let j = (key & u64::from(u32::MAX)) as usize;
        if j != centre && keep(centre, j, d2[j], min_d2) {
            out.push((j, centre));
        }
    }
}

/// `f32::total_cmp` as an integer: `order_key(a) < order_key(b)` exactly when `a.total_cmp(&b)`
/// is `Less` (the same bit flip the standard library does before its comparison).
#[inline]
fn order_key(d: f32) -> i32 {
    let bits = d.to_bits() as i32;
    bits ^ ((((bits >> 31) as u32) >> 1) as i32)
}

/// The smallest squared distance whose square root is at least [`ZERO_DISTANCE_EPS`]: the
/// square root is correctly rounded and monotonic, so `d2 >= MIN_D2` is exactly
/// `d2.sqrt() >= ZERO_DISTANCE_EPS` (NaN fails both) without a square root per pair.
static MIN_D2: std::sync::LazyLock<f32> = std::sync::LazyLock::new(|| {
    let mut t = ZERO_DISTANCE_EPS * ZERO_DISTANCE_EPS;
    while t.sqrt() >= ZERO_DISTANCE_EPS {
        t = t.next_down();
    }
    while t.sqrt() < ZERO_DISTANCE_EPS {
        t = t.next_up();
    }
    t
});

/// TorchDrug's SpatialEdge/KNNEdge filters: sequence separation and non-zero distance (the
/// norm at least [`ZERO_DISTANCE_EPS`]; `min_d2` is [`MIN_D2`]).
#[inline]
fn keep(centre: usize, j: usize, d2: f32, min_d2: f32) -> bool {
    centre.abs_diff(j) >= MIN_SEQUENCE_DISTANCE && d2 >= min_d2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize, spacing: f32) -> Vec<[f32; 3]> {
        (0..n).map(|i| [i as f32 * spacing, 0.0, 0.0]).collect()
    }

    /// Sources of the `relation` edges into `dst`, in stored order.
    fn into(edges: &Edges, relation: i8, dst: i32) -> Vec<i32> {
        of(edges, relation)
            .into_iter()
            .filter(|&(_, d)| d == dst)
            .map(|(s, _)| s)
            .collect()
    }

    fn of(edges: &Edges, relation: i8) -> Vec<(i32, i32)> {
        (0..edges.len())
            .filter(|&i| edges.relation[i] == relation)
            .map(|i| (edges.src[i], edges.dst[i]))
            .collect()
    }

    #[test]
    fn sequential_edges_follow_torchdrug_direction_and_stay_in_chain() {
        let e = build(&line(4, 100.0), &[0, 0, 1, 1]);
        assert_eq!(of(&e, 0), []); // |d| = 2 crosses the chain break everywhere
        assert_eq!(of(&e, 1), [(1, 0), (3, 2)]);
        assert_eq!(of(&e, 2), [(0, 0), (1, 1), (2, 2), (3, 3)]);
        assert_eq!(of(&e, 3), [(0, 1), (2, 3)]);
        assert_eq!(of(&e, 4), []);
    }

    #[test]
    fn radius_edges_need_sequence_separation_and_point_to_the_centre() {
        // 3.8 Å apart: nodes within 10 Å are at most 2 apart, so no pair passes |i-j| >= 5.
        let e = build(&line(12, 3.8), &[0; 12]);
        assert_eq!(of(&e, RELATION_RADIUS), []);
        // 1 Å apart: 0..=9 within 10 Å of each other (strict <), |i-j| >= 5 keeps 0↔5…9.
        let e = build(&line(12, 1.0), &[0; 12]);
        let to0 = into(&e, RELATION_RADIUS, 0);
        assert_eq!(to0, [5, 6, 7, 8, 9]);
    }

    #[test]
    fn radius_cap_counts_filtered_candidates_in_index_order() {
        // 40 nodes at the same spot except the centre's sequence neighbours are also close:
        // all 39 others are within 10 Å; the first 32 candidates in index order are 1..=32,
        // of which 1..=4 fail |i-j| >= 5, leaving 5..=32 (28 edges) and nothing from 33..39.
        let pos: Vec<[f32; 3]> = (0..40).map(|i| [0.01 * i as f32, 0.0, 0.0]).collect();
        let e = build(&pos, &[0; 40]);
        let to0 = into(&e, RELATION_RADIUS, 0);
        assert_eq!(to0, (5..=32).collect::<Vec<i32>>());
    }

    #[test]
    fn knn_takes_ten_nearest_then_filters() {
        let e = build(&line(30, 1.0), &[0; 30]);
        // Node 0's 10 nearest are 1..=10; the filter keeps 5..=10.
        let to0 = into(&e, RELATION_KNN, 0);
        assert_eq!(to0, [5, 6, 7, 8, 9, 10]);
        // Node 15's nearest are 10..=20 minus itself, ties broken toward the lower index.
        let to15 = into(&e, RELATION_KNN, 15);
        assert_eq!(to15, [10, 20]);
    }

    #[test]
    fn coincident_nodes_get_no_spatial_edge() {
        let mut pos = line(12, 1.0);
        pos[11] = pos[0];
        let e = build(&pos, &[0; 12]);
        assert!(!of(&e, RELATION_RADIUS).contains(&(11, 0)));
        assert!(!of(&e, RELATION_KNN).contains(&(11, 0)));
    }

    /// The builder as it was before the masked scan and the insertion list (every node
    /// filtered one by one, the nearest by select-then-sort): the oracle for the faster one.
    fn build_reference(pos: &[[f32; 3]], chain: &[u32]) -> Edges {
        let n = pos.len();
        let mut edges = Edges::default();
        sequential(chain, &mut edges);
        let axis = |k: usize| pos.iter().map(|p| p[k]).collect::<Vec<f32>>();
        let (xs, ys, zs) = (axis(0), axis(1), axis(2));
        let mut d2 = vec![0f32; n];
        let (mut radius_found, mut knn_found) = (Vec::new(), Vec::new());
        let r2 = RADIUS_ANGSTROM * RADIUS_ANGSTROM;
        for centre in 0..n {
            for j in 0..n {
                let (dx, dy, dz) = (xs[j] - xs[centre], ys[j] - ys[centre], zs[j] - zs[centre]);
                d2[j] = dx * dx + dy * dy + dz * dz;
            }
            let near: Vec<usize> = (0..n).filter(|&j| d2[j] < r2).collect();
            let keep = |centre: usize, j: usize, d2: f32| {
                centre.abs_diff(j) >= MIN_SEQUENCE_DISTANCE && d2.sqrt() >= ZERO_DISTANCE_EPS
            };
            for &j in near
                .iter()
                .filter(|&&j| j != centre)
                .take(RADIUS_MAX_NEIGHBORS)
            {
                if keep(centre, j, d2[j]) {
                    radius_found.push((j, centre));
                }
            }
            let take = (KNN_K + 1).min(n);
            let by = |a: &usize, b: &usize| d2[*a].total_cmp(&d2[*b]).then(a.cmp(b));
            let mut candidates = if near.len() >= take {
                near
            } else {
                (0..n).collect()
            };
            if take < candidates.len() {
                candidates.select_nth_unstable_by(take - 1, by);
            }
            let nearest = &mut candidates[..take];
            nearest.sort_unstable_by(by);
            for &j in nearest.iter() {
                if j != centre && keep(centre, j, d2[j]) {
                    knn_found.push((j, centre));
                }
            }
        }
        for (src, dst) in radius_found {
            edges.push(src, dst, RELATION_RADIUS);
        }
        for (src, dst) in knn_found {
            edges.push(src, dst, RELATION_KNN);
        }
        edges
    }

    /// Uniform numbers in [0, 1) from a xorshift generator: the same points on every run.
    fn uniform(mut state: u64) -> impl FnMut() -> f32 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    /// Random chains (3.8 Å steps), dense blobs on an integer grid (many equal distances),
    /// duplicated and non-finite positions, of every size around the eight-lane chunks.
    #[test]
    fn same_edges_as_the_reference_builder() {
        let mut next = uniform(0x2545_f491_4f6c_dd1d);
        let mut sizes: Vec<usize> = (0..=40).collect();
        sizes.extend([47, 48, 49, 63, 64, 65, 200, 517, 1200]);
        for (case, &n) in sizes.iter().enumerate() {
            let mut pos = Vec::with_capacity(n);
            let mut p = [0f32; 3];
            for i in 0..n {
                match case % 3 {
                    0 => {
                        for c in &mut p {
                            *c += (next() - 0.5) * 4.4;
                        }
                    }
                    1 => {
                        p = [
                            (next() * 12.0).floor(),
                            (next() * 12.0).floor(),
                            (next() * 12.0).floor(),
                        ]
                    }
                    _ => {
                        p = [next() * 30.0, next() * 30.0, next() * 30.0];
                        if i % 7 == 3 {
                            p = pos[i / 2];
                        }
                    }
                }
                pos.push(p);
            }
            if n > 20 && case % 2 == 0 {
                pos[5][1] = f32::NAN;
                pos[n - 1][0] = f32::INFINITY;
            }
            let chain: Vec<u32> = (0..n).map(|i| u32::from(i * 3 > n * 2)).collect();
            assert_eq!(
                build(&pos, &chain),
                build_reference(&pos, &chain),
                "case {case}, {n} nodes"
            );
        }
    }

    /// Sparse points (a 60 Å box): most centres have fewer than 11 nodes within 10 Å, so their
    /// nearest come from the 20 Å set or, for the loneliest, the whole row.
    #[test]
    fn sparse_points_find_their_nearest_beyond_the_radius() {
        let mut next = uniform(0x9e37_79b9_7f4a_7c15);
        let (mut from_wider, mut from_row) = (0, 0);
        for n in [12, 30, 90, 200, 333] {
            let pos: Vec<[f32; 3]> = (0..n)
                .map(|_| [next() * 60.0, next() * 60.0, next() * 60.0])
                .collect();
            for c in 0..n {
                let d2 = |j: usize| (0..3).map(|k| (pos[j][k] - pos[c][k]).powi(2)).sum::<f32>();
                let count = |r2: f32| (0..n).filter(|&j| d2(j) < r2).count();
                if count(RADIUS_ANGSTROM * RADIUS_ANGSTROM) <= KNN_K {
                    if count(KNN_FALLBACK_R2) > KNN_K {
                        from_wider += 1;
                    } else {
                        from_row += 1;
                    }
                }
            }
            let chain = vec![0; n];
            assert_eq!(
                build(&pos, &chain),
                build_reference(&pos, &chain),
                "{n} nodes"
            );
        }
        assert!(from_wider > 100 && from_row > 10, "{from_wider} {from_row}");
    }

    #[test]
    fn the_squared_threshold_is_the_square_root_test() {
        let t = *MIN_D2;
        assert!(t.sqrt() >= ZERO_DISTANCE_EPS && t.next_down().sqrt() < ZERO_DISTANCE_EPS);
        for d in [
            0.0,
            -0.0,
            t.next_down(),
            t,
            t.next_up(),
            1e-30,
            1.0,
            f32::INFINITY,
            f32::NAN,
        ] {
            assert_eq!(d >= t, d.sqrt() >= ZERO_DISTANCE_EPS, "{d:e}");
        }
    }

    #[test]
    fn the_order_key_is_total_cmp() {
        let values = [
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            0.0,
            -0.0,
            1e-45,
            3.5,
            100.0,
            -2.0,
        ];
        for a in values {
            for b in values {
                assert_eq!(order_key(a).cmp(&order_key(b)), a.total_cmp(&b), "{a} {b}");
            }
        }
    }

    #[test]
    fn tiny_graphs_have_only_sequential_edges() {
        let e = build(&line(3, 1.0), &[0; 3]);
        // 3 self-loops, 2 edges at offset ±1 each way, 1 at offset ±2 each way.
        assert_eq!(e.len(), 3 + 2 * 2 + 2);
        assert!(build(&[], &[]).is_empty());
    }
}
