//! Extra links from `--split-by`: a column's equal values, or a published cluster file's clusters.

use std::collections::HashMap;

use super::config::{SplitBy, SplitConfig, SplitError, io};
use super::proteins::Proteins;

/// Extra links from `--split-by`: a column's equal values, or a cluster file's clusters.
pub(super) fn group_unions(
    cfg: &SplitConfig,
    p: &Proteins,
    node_of: &[u32],
    links: &mut Vec<(u32, u32)>,
) -> Result<(), SplitError> {
    match &cfg.split_by {
        SplitBy::Sequence => {}
        SplitBy::Column(_) => {
            let mut first: HashMap<&str, u32> = HashMap::new();
            for (i, g) in p.groups.iter().enumerate() {
                if let Some(g) = g {
                    let n = *first.entry(g.as_str()).or_insert(node_of[i]);
                    links.push((n, node_of[i]));
                }
            }
        }
        SplitBy::ClusterFile(path) => {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            let node: HashMap<&str, u32> = p
                .ids
                .iter()
                .map(String::as_str)
                .zip(node_of.iter().copied())
                .collect();
            for (line, row) in text
                .lines()
                .enumerate()
                .filter(|(_, r)| !r.trim().is_empty())
            {
                let mut f = row.split('\t');
                let (Some(rep), Some(member)) = (f.next(), f.next()) else {
                    return Err(SplitError::ClusterFile {
                        path: path.clone(),
                        line: line + 1,
                    });
                };
                // Ids not in this dataset (a published clustering covers more) are skipped.
                if let (Some(&a), Some(&b)) = (node.get(rep.trim()), node.get(member.trim())) {
                    links.push((a, b));
                }
            }
        }
    }
    Ok(())
}
