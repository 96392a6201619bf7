//! Per-class breakdowns of a predictions table: the protein-specific views no general tracker
//! has (`fusionprot score --by`, the dashboard's breakdown). Each bucket is a sub-table scored by
//! [`score`], so a bucket's numbers are what `fusionprot score` gives on that sub-table:
//!
//! - **EC level-1 class** (tasks named by EC numbers, as the EC benchmark's are): for class k, the
//!   columns of the EC numbers `k.…` and the proteins with at least one of them positive;
//! - **GO term depth** (tasks named by GO terms; depths from a dataset's `go_terms` table): for
//!   each depth bucket, the columns of its terms and the proteins with at least one of them positive;
//! - **protein length** (residues by protein id, e.g. a dataset's `proteins` table): every column,
//!   the proteins of the length bucket (`unknown`: ids without a length);
//! - **a grouping of proteins** ([`by_group`], e.g. each test protein's identity to train from its
//!   split): every column, the proteins of each group.
//!
//! Fmax is TorchDrug's protein-centric `f1_max`, AUPR and AUROC the micro averages (`Ties::Index`).

use std::collections::HashMap;

use serde::Serialize;

use super::formulas::{Ties, score};
use super::predictions::{MetricError, Predictions};

/// One bucket's size and scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub name: String,
    pub proteins: usize,
    pub columns: usize,
    pub positives: usize,
    pub fmax: f64,
    pub auprc: f64,
    pub auroc: f64,
}

/// The length buckets (residues): [lo, hi).
pub const LENGTHS: &[(i64, i64)] = &[
    (0, 100),
    (100, 200),
    (200, 300),
    (300, 500),
    (500, i64::MAX),
];

/// EC level-1 classes by their first number.
pub const EC_CLASSES: &[(&str, &str)] = &[
    ("1", "oxidoreductases"),
    ("2", "transferases"),
    ("3", "hydrolases"),
    ("4", "lyases"),
    ("5", "isomerases"),
    ("6", "ligases"),
    ("7", "translocases"),
];

/// `rows` × `cols` of `p`, in the given orders.
pub fn subset(p: &Predictions, rows: &[usize], cols: &[usize]) -> Predictions {
    let mut prediction = Vec::with_capacity(rows.len() * cols.len());
    let mut target = Vec::with_capacity(rows.len() * cols.len());
    for &r in rows {
        for &c in cols {
            prediction.push(p.prediction[r * p.width + c]);
            target.push(p.target[r * p.width + c]);
        }
    }
    Predictions {
        ids: rows.iter().map(|&r| p.ids[r].clone()).collect(),
        width: cols.len(),
        prediction,
        target,
        tasks: p
            .tasks
            .as_ref()
            .map(|t| cols.iter().map(|&c| t[c].clone()).collect()),
    }
}

/// Scores of a (sub-)table as one bucket.
///
/// # Errors
/// A table too large to rank.
pub fn bucket(name: &str, p: &Predictions) -> Result<Bucket, MetricError> {
    let s = score(p, Ties::Index, false)?;
    Ok(Bucket {
        name: name.to_owned(),
        proteins: p.ids.len(),
        columns: p.width,
        positives: p.target.iter().filter(|&&t| t == 1.0).count(),
        fmax: s.get("f1_max").unwrap_or(f64::NAN),
        auprc: s.get("auprc@micro").unwrap_or(f64::NAN),
        auroc: s.get("auroc@micro").unwrap_or(f64::NAN),
    })
}

/// Whether a task name is an EC number (`1.2.3.4`, `1.2.3.-`, `1.2.-.-`, …).
fn is_ec(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts[0].parse::<u8>().is_ok()
        && parts
            .iter()
            .all(|x| *x == "-" || (!x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric())))
}

/// By EC level-1 class; `None` unless every task is named by an EC number.
///
/// # Errors
/// A table too large to rank.
pub fn by_ec_class(p: &Predictions) -> Result<Option<Vec<Bucket>>, MetricError> {
    let Some(tasks) = p
        .tasks
        .as_ref()
        .filter(|t| !t.is_empty() && t.iter().all(|n| is_ec(n)))
    else {
        return Ok(None);
    };
    let groups = EC_CLASSES.iter().map(|(class, label)| {
        let cols = (0..p.width)
            .filter(|&c| tasks[c].split('.').next() == Some(class))
            .collect();
        (format!("EC {class} {label}"), cols)
    });
    column_groups(p, groups).map(Some)
}

/// Buckets of columns: each group's columns and the proteins with at least one of them positive;
/// groups without columns or without such proteins left out.
fn column_groups(
    p: &Predictions,
    groups: impl IntoIterator<Item = (String, Vec<usize>)>,
) -> Result<Vec<Bucket>, MetricError> {
    let mut out = Vec::new();
    for (name, cols) in groups {
        if cols.is_empty() {
            continue;
        }
        let rows: Vec<usize> = (0..p.ids.len())
            .filter(|&r| cols.iter().any(|&c| p.target[r * p.width + c] == 1.0))
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push(bucket(&name, &subset(p, &rows, &cols))?);
    }
    Ok(out)
}

/// GO term depth buckets (GOATOOLS' `depth`, root 0): [lo, hi].
pub const GO_DEPTHS: &[(i32, i32)] = &[(0, 2), (3, 4), (5, 6), (7, 8), (9, i32::MAX)];

/// By GO term depth, from `depths` (depth by term id, e.g. a dataset's `go_terms` table): for each
/// depth bucket, the columns of its terms and the proteins with at least one of them positive;
/// columns of terms without a depth form `unknown depth`. `None` unless the tasks are GO terms.
///
/// # Errors
/// A table too large to rank.
pub fn by_go_depth(
    p: &Predictions,
    depths: &HashMap<String, i32>,
) -> Result<Option<Vec<Bucket>>, MetricError> {
    let Some(tasks) = p
        .tasks
        .as_ref()
        .filter(|t| !t.is_empty() && t.iter().all(|n| n.starts_with("GO:")))
    else {
        return Ok(None);
    };
    let mut groups: Vec<(String, Vec<usize>)> = GO_DEPTHS
        .iter()
        .map(|&(lo, hi)| {
            let name = if hi == i32::MAX {
                format!("depth ≥ {lo}")
            } else {
                format!("depth {lo}–{hi}")
            };
            let cols = (0..p.width)
                .filter(|&c| depths.get(&tasks[c]).is_some_and(|&d| d >= lo && d <= hi))
                .collect();
            (name, cols)
        })
        .collect();
    groups.push((
        "unknown depth".into(),
        (0..p.width)
            .filter(|&c| !depths.contains_key(&tasks[c]))
            .collect(),
    ));
    column_groups(p, groups).map(Some)
}

/// By protein length, from `lengths` (residues by protein id).
///
/// # Errors
/// A table too large to rank.
pub fn by_length(
    p: &Predictions,
    lengths: &HashMap<String, i64>,
) -> Result<Vec<Bucket>, MetricError> {
    let cols: Vec<usize> = (0..p.width).collect();
    let mut out = Vec::new();
    for &(lo, hi) in LENGTHS {
        let rows: Vec<usize> = (0..p.ids.len())
            .filter(|&r| lengths.get(&p.ids[r]).is_some_and(|&n| n >= lo && n < hi))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let name = if hi == i64::MAX {
            format!("≥ {lo}")
        } else {
            format!("{lo}–{}", hi - 1)
        };
        out.push(bucket(&name, &subset(p, &rows, &cols))?);
    }
    let unknown: Vec<usize> = (0..p.ids.len())
        .filter(|&r| !lengths.contains_key(&p.ids[r]))
        .collect();
    if !unknown.is_empty() {
        out.push(bucket("unknown", &subset(p, &unknown, &cols))?);
    }
    Ok(out)
}

/// By a named grouping of proteins (`of`: each protein's group, e.g. its identity-to-train bucket),
/// every column, groups in `order` (those with no protein left out); proteins without a group last,
/// as `unknown`.
///
/// # Errors
/// A table too large to rank.
pub fn by_group(
    p: &Predictions,
    of: &HashMap<String, String>,
    order: &[String],
) -> Result<Vec<Bucket>, MetricError> {
    let cols: Vec<usize> = (0..p.width).collect();
    let mut out = Vec::new();
    for name in order {
        let rows: Vec<usize> = (0..p.ids.len())
            .filter(|&r| of.get(&p.ids[r]) == Some(name))
            .collect();
        if !rows.is_empty() {
            out.push(bucket(name, &subset(p, &rows, &cols))?);
        }
    }
    let unknown: Vec<usize> = (0..p.ids.len())
        .filter(|&r| of.get(&p.ids[r]).is_none_or(|g| !order.contains(g)))
        .collect();
    if !unknown.is_empty() {
        out.push(bucket("unknown", &subset(p, &unknown, &cols))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Predictions {
        // 4 proteins × 3 EC numbers of classes 1, 1 and 3
        Predictions {
            ids: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            width: 3,
            prediction: vec![
                0.9, 0.1, 0.2, //
                0.2, 0.8, 0.7, //
                0.1, 0.3, 0.9, //
                0.6, 0.4, 0.1,
            ],
            target: vec![
                1.0, 0.0, 0.0, //
                0.0, 1.0, 0.0, //
                0.0, 0.0, 1.0, //
                0.0, 0.0, 0.0,
            ],
            tasks: Some(vec!["1.1.1.1".into(), "1.2.-.-".into(), "3.4.21.4".into()]),
        }
    }

    #[test]
    fn ec_classes_take_their_columns_and_the_proteins_with_a_positive_in_them() {
        let p = table();
        let b = by_ec_class(&p).expect("score").expect("EC tasks");
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].name.as_str(), b[0].proteins, b[0].columns),
            ("EC 1 oxidoreductases", 2, 2)
        );
        assert_eq!(
            (b[1].name.as_str(), b[1].proteins, b[1].columns),
            ("EC 3 hydrolases", 1, 1)
        );
        // the same numbers as scoring the sub-table built by hand
        let hand = Predictions {
            ids: vec!["a".into(), "b".into()],
            width: 2,
            prediction: vec![0.9, 0.1, 0.2, 0.8],
            target: vec![1.0, 0.0, 0.0, 1.0],
            tasks: None,
        };
        let s = score(&hand, Ties::Index, false).expect("score");
        assert_eq!(b[0].fmax, s.get("f1_max").expect("fmax"));
        assert_eq!(b[0].auprc, s.get("auprc@micro").expect("auprc"));
        let mut go = table();
        go.tasks = Some(vec![
            "GO:0003824".into(),
            "1.1.1.1".into(),
            "3.4.21.4".into(),
        ]);
        assert_eq!(by_ec_class(&go).expect("score"), None, "not all EC numbers");
    }

    #[test]
    fn length_buckets_cover_every_protein_once() {
        let p = table();
        let lengths: HashMap<String, i64> = [("a", 50), ("b", 99), ("c", 100)]
            .map(|(k, v)| (k.to_owned(), v))
            .into();
        let b = by_length(&p, &lengths).expect("score");
        let names: Vec<(&str, usize)> = b.iter().map(|x| (x.name.as_str(), x.proteins)).collect();
        assert_eq!(names, [("0–99", 2), ("100–199", 1), ("unknown", 1)]);
        assert_eq!(b.iter().map(|x| x.proteins).sum::<usize>(), 4);
    }

    #[test]
    fn groups_come_in_their_order_and_the_rest_is_unknown() {
        let p = table();
        let of: HashMap<String, String> = [("a", "hi"), ("b", "lo"), ("c", "hi"), ("d", "odd")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let order = ["lo".to_owned(), "mid".to_owned(), "hi".to_owned()];
        let b = by_group(&p, &of, &order).expect("score");
        let names: Vec<(&str, usize)> = b.iter().map(|x| (x.name.as_str(), x.proteins)).collect();
        assert_eq!(names, [("lo", 1), ("hi", 2), ("unknown", 1)]);
        let hi = subset(&p, &[0, 2], &[0, 1, 2]);
        assert_eq!(b[1], bucket("hi", &hi).expect("score"));
    }

    #[test]
    fn go_depth_buckets_take_their_terms_columns() {
        let mut p = table();
        p.tasks = Some(vec!["GO:1".into(), "GO:2".into(), "GO:3".into()]);
        let depths: HashMap<String, i32> = [("GO:1", 2), ("GO:2", 7)]
            .map(|(k, v)| (k.to_owned(), v))
            .into();
        let b = by_go_depth(&p, &depths).expect("score").expect("GO tasks");
        let names: Vec<(&str, usize, usize)> = b
            .iter()
            .map(|x| (x.name.as_str(), x.proteins, x.columns))
            .collect();
        assert_eq!(
            names,
            [
                ("depth 0–2", 1, 1),
                ("depth 7–8", 1, 1),
                ("unknown depth", 1, 1)
            ]
        );
        assert_eq!(
            by_go_depth(&table(), &depths).expect("score"),
            None,
            "EC tasks"
        );
    }
}
