//! The two views of Multiview Contrast, as TorchDrug draws them (training.md §3.3, TD
//! `layers/geometry/function.py`): the graph is built on the whole protein first (the stored
//! edges); each view is a contiguous crop — `SubsequenceNode(max_length)`: start
//! `⌊U·max(L − max_length, 0)⌋`, the whole protein when `L ≤ max_length` — keeping the edges among
//! its residues, then a noise function drawn once per view for the whole micro-batch: Identity,
//! or `RandomEdgeMask(rate)`, which removes `max(1, ⌊rate·E⌋)` edge positions per protein, drawn
//! with replacement (so fewer distinct edges may go).
//!
//! Draws come from a splitmix64 stream seeded by the micro-batch's [`Draw`] and the view, so a
//! resumed run draws exactly the views an uninterrupted one would have. A view can also be given
//! ([`ViewSpec`]: crop window and masked edge positions per protein), since a reference's draws
//! cannot be re-generated: parity tests give the same views to both sides.

use crate::error::ModelError;
use crate::model::ProteinGraph;

use super::objective::Draw;

/// One protein's view: the crop `start .. start + len` and the positions (into the crop's edge
/// list, in stored order) of the edges removed, with repeats as drawn.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ViewSpec {
    pub start: usize,
    pub len: usize,
    pub masked: Vec<usize>,
}

/// How views are made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewRule {
    /// `SubsequenceNode`'s `max_length`.
    pub crop: usize,
    /// `RandomEdgeMask`'s `mask_rate`.
    pub edge_mask_rate: f64,
    /// Whether Identity and edge masking are the noise functions to draw from (the reference's
    /// pair); with `false` only Identity.
    pub edge_mask: bool,
}

/// splitmix64 (the trainer's only generator besides the sampler's MT19937).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `⌊u · max(len − crop, 0)⌋`: the crop's first residue.
pub fn crop_start(u: f64, len: usize, crop: usize) -> usize {
    (u * len.saturating_sub(crop) as f64).floor() as usize
}

/// The views of one micro-batch's proteins for view `which` (0 or 1), drawn at `draw`.
pub fn draw_views(
    graphs: &[ProteinGraph],
    draw: Draw,
    which: u64,
    rule: &ViewRule,
) -> Vec<ViewSpec> {
    let mut rng = SplitMix(draw.seed_for(1 + which));
    // The noise function: one draw for the whole batch (Python's random.sample of the list).
    let masking = rule.edge_mask && rng.unit() >= 0.5;
    graphs
        .iter()
        .map(|g| {
            let start = crop_start(rng.unit(), g.len(), rule.crop);
            let len = rule.crop.min(g.len() - start);
            let edges = window_edges(g, start, len);
            let masked = if masking && edges > 0 {
                let k = ((rule.edge_mask_rate * edges as f64).floor() as usize).max(1);
                (0..k)
                    .map(|_| (rng.unit() * edges as f64).floor() as usize)
                    .collect()
            } else {
                Vec::new()
            };
            ViewSpec { start, len, masked }
        })
        .collect()
}

/// Edges whose both ends lie in `start .. start + len`.
fn window_edges(g: &ProteinGraph, start: usize, len: usize) -> usize {
    let (s, e) = (start as i32, (start + len) as i32);
    g.edges
        .iter()
        .filter(|(a, b, _)| (s..e).contains(a) && (s..e).contains(b))
        .count()
}

/// The view of `g`: its crop (edges among the kept residues, renumbered) without the masked
/// edge positions.
///
/// # Errors
/// A crop past the protein's end, or a masked position past the crop's edges.
pub fn apply(g: &ProteinGraph, v: &ViewSpec) -> Result<ProteinGraph, ModelError> {
    if v.len == 0 || v.start + v.len > g.len() {
        return Err(ModelError::Input(format!(
            "{}: a view of residues {}..{} is not inside the protein's {} residues",
            g.id,
            v.start,
            v.start + v.len,
            g.len()
        )));
    }
    let mut view = g.window(v.start, v.len);
    if let Some(&bad) = v.masked.iter().find(|&&i| i >= view.edges.len()) {
        return Err(ModelError::Input(format!(
            "{}: masked edge position {bad}, but the view has {} edges",
            g.id,
            view.edges.len()
        )));
    }
    if !v.masked.is_empty() {
        let mut keep = vec![true; view.edges.len()];
        for &i in &v.masked {
            keep[i] = false;
        }
        let mut k = keep.iter();
        view.edges.retain(|_| *k.next().unwrap_or(&true));
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> ProteinGraph {
        ProteinGraph {
            id: format!("p{n}"),
            residue_type: vec![1; n],
            onehot: vec![1; n],
            edges: (0..n as i32 - 1)
                .flat_map(|i| [(i, i + 1, 3), (i + 1, i, 1)])
                .collect(),
        }
    }

    fn draw(step: i64) -> Draw {
        Draw {
            seed: 7,
            epoch: 3,
            step,
            micro: 0,
        }
    }

    const RULE: ViewRule = ViewRule {
        crop: 50,
        edge_mask_rate: 0.15,
        edge_mask: true,
    };

    #[test]
    fn crops_start_where_the_rule_says_and_short_proteins_stay_whole() {
        assert_eq!(crop_start(0.0, 120, 50), 0);
        assert_eq!(
            crop_start(0.999_999, 120, 50),
            69,
            "the last start is L − 51"
        );
        assert_eq!(crop_start(0.5, 40, 50), 0);
        let views = draw_views(&[chain(40), chain(300)], draw(1), 0, &RULE);
        assert_eq!((views[0].start, views[0].len), (0, 40));
        assert_eq!(views[1].len, 50);
        assert!(views[1].start <= 250);
    }

    #[test]
    fn the_same_draw_gives_the_same_views_and_another_draw_others() {
        let gs = [chain(200), chain(180), chain(90)];
        let a = draw_views(&gs, draw(5), 0, &RULE);
        assert_eq!(a, draw_views(&gs, draw(5), 0, &RULE));
        assert_ne!(
            a,
            draw_views(&gs, draw(5), 1, &RULE),
            "the two views differ"
        );
        assert_ne!(a, draw_views(&gs, draw(6), 0, &RULE));
    }

    /// Statistics over many draws: starts uniform over 0..=L−51 (mean (L−51)/2, every start
    /// possible), the noise function Identity half the time, and ⌊0.15·E⌋ positions per masked
    /// view, drawn with replacement (some repeat).
    #[test]
    fn draws_follow_the_reference_distributions() {
        let g = [chain(150)];
        let (mut starts, mut masked_views, mut repeats) = (Vec::new(), 0, 0);
        let trials = 4000;
        for step in 0..trials {
            let v = &draw_views(&g, draw(step), 0, &RULE)[0];
            starts.push(v.start);
            assert_eq!(v.len, 50);
            if !v.masked.is_empty() {
                masked_views += 1;
                // 49 pairs of chain edges inside the crop: 98 edges, ⌊0.15·98⌋ = 14.
                assert_eq!(v.masked.len(), 14);
                assert!(v.masked.iter().all(|&i| i < 98));
                let mut d = v.masked.clone();
                d.sort_unstable();
                d.dedup();
                repeats += usize::from(d.len() < v.masked.len());
            }
        }
        let mean = starts.iter().sum::<usize>() as f64 / starts.len() as f64;
        // Uniform on 0..=99: mean 49.5, sd 28.9, so the mean of 4000 is within ±1.4 at 3 sd.
        assert!((mean - 49.5).abs() < 1.4, "{mean}");
        assert_eq!(*starts.iter().max().expect("starts"), 99);
        assert_eq!(*starts.iter().min().expect("starts"), 0);
        // Binomial(4000, 0.5): within ±95 at 3 sd.
        assert!((masked_views as i64 - 2000).abs() < 95, "{masked_views}");
        // 14 draws from 98 repeat with probability ~0.62.
        assert!(repeats > masked_views / 2, "{repeats} of {masked_views}");
    }

    #[test]
    fn a_view_keeps_its_residues_and_loses_exactly_the_masked_edges() {
        let g = chain(10);
        let v = ViewSpec {
            start: 2,
            len: 4,
            masked: vec![0, 0, 3],
        };
        let view = apply(&g, &v).expect("view");
        assert_eq!(view.len(), 4);
        // The crop's 6 edges, in stored order, without positions 0 and 3.
        let crop = g.window(2, 4).edges;
        assert_eq!(view.edges, [crop[1], crop[2], crop[4], crop[5]]);
        let e = apply(
            &g,
            &ViewSpec {
                start: 8,
                len: 5,
                masked: vec![],
            },
        )
        .expect_err("past the end");
        assert!(
            e.to_string()
                .contains("not inside the protein's 10 residues"),
            "{e}"
        );
        let e = apply(
            &g,
            &ViewSpec {
                start: 0,
                len: 3,
                masked: vec![4],
            },
        )
        .expect_err("masked position");
        assert!(e.to_string().contains("the view has 4 edges"), "{e}");
    }
}
