//! Synthetic protein families with known ground truth, for the split tests and benchmark: random
//! ancestors, members mutated from them to a set identity, "chains" of families each above the
//! threshold to the next, and distant relatives below it.

/// Shape of a synthetic set.
#[derive(Debug, Clone)]
pub struct FamilySpec {
    pub families: usize,
    pub members: usize,
    /// Ancestor length range (inclusive).
    pub length: (usize, usize),
    /// Expected identity of each member to its family's ancestor.
    pub member_identity: f64,
    /// Every `chain_every`-th family starts a chain of 3 families, each ancestor mutated from the
    /// previous one at `chain_identity` (0 = no chains).
    pub chain_every: usize,
    pub chain_identity: f64,
    /// Every `relative_every`-th family gets a distant relative family whose ancestor is mutated
    /// from it at `relative_identity` (0 = none); below the threshold, so free to split apart.
    pub relative_every: usize,
    pub relative_identity: f64,
}

/// One synthetic protein and its ground-truth group: proteins of one group are linked (directly
/// or through a chain) and must share a split.
#[derive(Debug, Clone)]
pub struct Synthetic {
    pub id: String,
    pub sequence: String,
    pub group: usize,
}

const AMINO: &[u8; 20] = b"ACDEFGHIKLMNPQRSTVWY";

use super::rng::SplitMix as Rng;

fn residue(rng: &mut Rng) -> u8 {
    AMINO[(rng.next() % 20) as usize]
}

/// Substitutions only, so identity to the parent is (1 − rate) up to chance repeats.
fn mutate(parent: &[u8], identity: f64, rng: &mut Rng) -> Vec<u8> {
    parent
        .iter()
        .map(|&c| {
            if rng.unit() < identity {
                return c;
            }
            loop {
                let r = residue(rng);
                if r != c {
                    return r;
                }
            }
        })
        .collect()
}

/// Generates the set; ids are `f<family>_m<member>`, in generation order.
pub fn synthetic_families(spec: &FamilySpec, seed: u64) -> Vec<Synthetic> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut family = 0usize;
    let mut group = 0usize;
    let emit =
        |ancestor: &[u8], group: usize, family: usize, rng: &mut Rng, out: &mut Vec<Synthetic>| {
            for m in 0..spec.members {
                out.push(Synthetic {
                    id: format!("f{family:06}_m{m:02}"),
                    sequence: String::from_utf8(mutate(ancestor, spec.member_identity, rng))
                        .expect("ASCII letters"),
                    group,
                });
            }
        };
    while family < spec.families {
        let len = spec.length.0 + (rng.next() as usize) % (spec.length.1 - spec.length.0 + 1);
        let ancestor: Vec<u8> = (0..len).map(|_| residue(&mut rng)).collect();
        let chained = spec.chain_every > 0 && family.is_multiple_of(spec.chain_every);
        let links = if chained { 3 } else { 1 };
        let mut a = ancestor.clone();
        for _ in 0..links.min(spec.families - family) {
            emit(&a, group, family, &mut rng, &mut out);
            family += 1;
            a = mutate(&a, spec.chain_identity, &mut rng);
        }
        group += 1;
        if spec.relative_every > 0
            && family.is_multiple_of(spec.relative_every)
            && family < spec.families
        {
            let relative = mutate(&ancestor, spec.relative_identity, &mut rng);
            emit(&relative, group, family, &mut rng, &mut out);
            family += 1;
            group += 1;
        }
    }
    out
}
