//! Connected components (union-find) and the assignment of whole components to splits so that the
//! achieved fractions come as close to the requested ones as whole components allow.

/// Union-find over `0..n` with path halving and union by size.
#[derive(Debug, Clone)]
pub(crate) struct Components {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Components {
    pub fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = self.parent[x as usize];
        }
        x
    }

    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
    }

    /// Component number of every element: components numbered by decreasing weight, ties broken
    /// by their smallest element, so the numbering depends only on the partition.
    pub fn labels(&mut self, weight: &[u32]) -> (Vec<u32>, Vec<u64>) {
        let n = self.parent.len();
        let roots: Vec<u32> = (0..n as u32).map(|i| self.find(i)).collect();
        let mut total = vec![0u64; n];
        let mut first = vec![u32::MAX; n];
        for (i, &r) in roots.iter().enumerate() {
            total[r as usize] += u64::from(weight[i]);
            first[r as usize] = first[r as usize].min(i as u32);
        }
        let mut order: Vec<u32> = (0..n as u32).filter(|&r| roots[r as usize] == r).collect();
        order.sort_by_key(|&r| (std::cmp::Reverse(total[r as usize]), first[r as usize]));
        let mut label = vec![0u32; n];
        for (k, &r) in order.iter().enumerate() {
            label[r as usize] = k as u32;
        }
        let weights = order.iter().map(|&r| total[r as usize]).collect();
        (roots.iter().map(|&r| label[r as usize]).collect(), weights)
    }
}

/// Assigns components (given by weight, largest first) to splits with target `fractions`: each
/// goes to the split furthest below its target count, ties to the earlier split. Largest first is
/// the classic greedy for number partitioning; small components then fill the gaps.
pub(crate) fn assign(weights: &[u64], fractions: &[f64]) -> Vec<u8> {
    let total: u64 = weights.iter().sum();
    let target: Vec<f64> = fractions.iter().map(|f| f * total as f64).collect();
    let mut have = vec![0u64; fractions.len()];
    weights
        .iter()
        .map(|&w| {
            let mut best = 0;
            for s in 1..fractions.len() {
                let deficit = |i: usize| target[i] - have[i] as f64;
                if deficit(s) > deficit(best) {
                    best = s;
                }
            }
            have[best] += w;
            best as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_numbered_by_weight_then_first_member() {
        let mut c = Components::new(6);
        c.union(0, 3);
        c.union(3, 5);
        c.union(1, 2);
        let (labels, weights) = c.labels(&[1; 6]);
        assert_eq!(labels, [0, 1, 1, 0, 2, 0]);
        assert_eq!(weights, [3, 2, 1]);
    }

    #[test]
    fn greedy_assignment_hits_fractions_with_small_components() {
        let weights = vec![1u64; 100];
        let got = assign(&weights, &[0.8, 0.1, 0.1]);
        let count = |s: u8| got.iter().filter(|&&g| g == s).count();
        assert_eq!((count(0), count(1), count(2)), (80, 10, 10));
    }

    #[test]
    fn a_large_component_goes_to_the_largest_split() {
        let got = assign(&[50, 10, 10, 10, 10, 10], &[0.8, 0.1, 0.1]);
        assert_eq!(got[0], 0);
    }
}
