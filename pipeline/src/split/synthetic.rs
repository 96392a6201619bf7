//! Synthetic protein families with known ground truth, for the split tests and benchmark: random
//! ancestors, members mutated from them to a set identity, "chains" of families each above the
//! threshold to the next, distant relatives below it, and partial members that share only one
//! domain (or are a fragment) of their family's ancestor.

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
    /// Every `partial_every`-th family gets one more member that shares only part of the ancestor
    /// (0 = none): a window of `partial_window` of the ancestor's length, mutated to
    /// `partial_identity`, making up `partial_share` of the member; the rest is unrelated sequence
    /// (another domain), split at random between both ends. `partial_share` 1 gives a bare fragment.
    pub partial_every: usize,
    pub partial_window: f64,
    pub partial_share: f64,
    pub partial_identity: f64,
}

/// One synthetic protein and its ground-truth group: proteins of one group are linked (directly
/// or through a chain) and must share a split.
#[derive(Debug, Clone)]
pub struct Synthetic {
    pub id: String,
    pub sequence: String,
    pub group: usize,
    /// A partial member (one shared domain or a fragment; see [`FamilySpec::partial_every`]).
    pub partial: bool,
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

/// A member sharing one window of `ancestor` (see [`FamilySpec::partial_every`]).
fn partial(ancestor: &[u8], spec: &FamilySpec, rng: &mut Rng) -> Vec<u8> {
    if ancestor.is_empty() {
        return Vec::new();
    }
    let window =
        ((spec.partial_window * ancestor.len() as f64).round() as usize).clamp(1, ancestor.len());
    let start = (rng.next() as usize) % (ancestor.len() - window + 1);
    let shared = mutate(&ancestor[start..start + window], spec.partial_identity, rng);
    let length = (window as f64 / spec.partial_share.clamp(0.01, 1.0)).round() as usize;
    let flanks = length.saturating_sub(window);
    let left = (rng.next() as usize) % (flanks + 1);
    let mut out: Vec<u8> = (0..left).map(|_| residue(rng)).collect();
    out.extend(shared);
    out.extend((0..flanks - left).map(|_| residue(rng)));
    out
}

/// Generates the set; ids are `f<family>_m<member>`, in generation order (a partial member comes
/// last in its family).
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
                    partial: false,
                });
            }
            if spec.partial_every > 0 && family.is_multiple_of(spec.partial_every) {
                out.push(Synthetic {
                    id: format!("f{family:06}_m{:02}", spec.members),
                    sequence: String::from_utf8(partial(ancestor, spec, rng))
                        .expect("ASCII letters"),
                    group,
                    partial: true,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::align;

    fn spec() -> FamilySpec {
        FamilySpec {
            families: 6,
            members: 2,
            length: (150, 200),
            member_identity: 0.9,
            chain_every: 0,
            chain_identity: 0.0,
            relative_every: 0,
            relative_identity: 0.0,
            partial_every: 2,
            partial_window: 0.7,
            partial_share: 0.7,
            partial_identity: 0.6,
        }
    }

    #[test]
    fn every_other_family_gets_one_partial_member_of_about_the_ancestors_length() {
        let set = synthetic_families(&spec(), 3);
        let partial: Vec<&Synthetic> = set.iter().filter(|s| s.partial).collect();
        assert_eq!(
            partial.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["f000000_m02", "f000002_m02", "f000004_m02"]
        );
        for p in partial {
            let sibling = &set
                .iter()
                .find(|s| s.id == p.id.replace("_m02", "_m00"))
                .expect("m00");
            let ratio = p.sequence.len() as f64 / sibling.sequence.len() as f64;
            assert!((0.97..=1.03).contains(&ratio), "{} {ratio}", p.id);
            // 70% of it is ~54% identical to the sibling (60% × 90% to the ancestor): ~38% of the
            // shorter length, plus what the local alignment picks up by chance in the flanks.
            let a = align(p.sequence.as_bytes(), sibling.sequence.as_bytes());
            assert!(
                (0.3..0.55).contains(&a.identity_shorter()),
                "{} {a:?}",
                p.id
            );
            assert!(a.cov_a > 0.6, "{} {a:?}", p.id);
        }
    }

    #[test]
    fn a_share_of_one_gives_a_bare_fragment_of_the_window_length() {
        let set = synthetic_families(
            &FamilySpec {
                partial_window: 0.3,
                partial_share: 1.0,
                partial_identity: 1.0,
                members: 1,
                ..spec()
            },
            4,
        );
        let (fragment, member) = (&set[1], &set[0]);
        assert!(fragment.partial && !member.partial);
        let a = align(fragment.sequence.as_bytes(), member.sequence.as_bytes());
        let ratio = fragment.sequence.len() as f64 / member.sequence.len() as f64;
        assert!((0.27..=0.33).contains(&ratio), "{ratio}");
        assert!(a.identity_shorter() > 0.8, "{a:?}");
    }

    #[test]
    fn partial_every_zero_makes_no_partial_members() {
        let plain = FamilySpec {
            partial_every: 0,
            ..spec()
        };
        let set = synthetic_families(&plain, 3);
        assert_eq!(set.len(), 12);
        assert!(set.iter().all(|s| !s.partial));
    }
}
