//! GraphPart's remedy for a family too large for the train fraction (`--remove-to-separate`):
//! drop the fewest sequences (greedily) that break it into pieces that fit.

/// GraphPart-style separation of the oversized component (label 0): repeatedly drop the node with
/// the most links inside the heaviest remaining piece (ties to the lower index) until no piece
/// outweighs `room`. Greedy, so "fewest" is approximate; returns the dropped nodes.
pub(super) fn separate(
    links: &[(u32, u32)],
    labels: &[u32],
    weight: &[u32],
    removed: &[bool],
    room: f64,
) -> Vec<u32> {
    let n = labels.len();
    let inside = |x: u32| labels[x as usize] == 0 && !removed[x as usize];
    let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n];
    for &(a, b) in links {
        if a != b && inside(a) && inside(b) {
            adj[a as usize].push(b);
            adj[b as usize].push(a);
        }
    }
    for list in &mut adj {
        list.sort_unstable();
        list.dedup();
    }
    let mut gone = vec![false; n];
    let mut cut = Vec::new();
    loop {
        let mut seen = vec![false; n];
        let mut heaviest = 0u64;
        let mut heaviest_nodes: Vec<u32> = Vec::new();
        for start in (0..n as u32).filter(|&x| inside(x) && !gone[x as usize]) {
            if seen[start as usize] {
                continue;
            }
            seen[start as usize] = true;
            let mut stack = vec![start];
            let mut piece = Vec::new();
            let mut w = 0u64;
            while let Some(x) = stack.pop() {
                piece.push(x);
                w += u64::from(weight[x as usize]);
                for &y in &adj[x as usize] {
                    if !gone[y as usize] && !seen[y as usize] {
                        seen[y as usize] = true;
                        stack.push(y);
                    }
                }
            }
            if w > heaviest {
                heaviest = w;
                heaviest_nodes = piece;
            }
        }
        if heaviest as f64 <= room || heaviest_nodes.is_empty() {
            return cut;
        }
        let degree = |x: u32| {
            adj[x as usize]
                .iter()
                .filter(|&&y| !gone[y as usize])
                .count()
        };
        let pick = heaviest_nodes
            .iter()
            .copied()
            .max_by(|&a, &b| degree(a).cmp(&degree(b)).then(b.cmp(&a)))
            .expect("a non-empty piece");
        gone[pick as usize] = true;
        cut.push(pick);
    }
}
