//! The nrPDB annotation TSV and test CSV of TorchDrug's EC / GO archives (spec training.md §1.3–1.4),
//! read with polars: the header lines give each task's vocabulary in file order, the data rows
//! (one per chain) are read as a frame, their cells split into one row per term and joined to the
//! vocabulary frame; a term without a match is an error naming its line.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::sync::Arc;

use polars::prelude::*;

use super::ImportError;

/// One task's vocabulary: label index = position in `terms` (the file's order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vocabulary {
    pub task: String,
    pub terms: Vec<String>,
}

/// The annotation file: vocabularies, and per chain id its label indices per task (sorted,
/// duplicates removed; an empty cell gives an empty list: the chain is all negative).
#[derive(Debug, Clone)]
pub struct Annotation {
    pub tasks: Vec<Vocabulary>,
    pub labels: HashMap<String, Vec<Vec<i32>>>,
}

/// EC or GO: where the vocabularies are and what the data columns hold.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// `(task, header marker, vocabulary line)`, lines 0-based.
    pub tasks: &'static [(&'static str, &'static str, usize)],
    /// Header lines before the first data row.
    pub header_lines: usize,
}

pub const EC: Layout = Layout {
    tasks: &[("ec", "### EC-numbers", 1)],
    header_lines: 3,
};

pub const GO: Layout = Layout {
    tasks: &[
        ("go-mf", "### GO-terms (molecular_function)", 1),
        ("go-bp", "### GO-terms (biological_process)", 5),
        ("go-cc", "### GO-terms (cellular_component)", 9),
    ],
    header_lines: 13,
};

fn polars(file: &str) -> impl Fn(PolarsError) -> ImportError + '_ {
    move |e| ImportError::File {
        file: file.to_owned(),
        line: None,
        message: e.to_string(),
    }
}

/// polars' parse error turned into one that names the line: the first row with more fields than
/// the file's columns (`skip` header lines first; 1-based line numbers), or polars' own words
/// when no row is ragged. polars' advice (`truncate_ragged_lines`) is an option users cannot set.
fn parse_error<'a>(
    file: &'a str,
    bytes: &'a [u8],
    separator: u8,
    columns: usize,
    skip: usize,
) -> impl Fn(PolarsError) -> ImportError + 'a {
    move |e| {
        let ragged = bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .skip(skip)
            .find(|(_, line)| line.iter().filter(|&&b| b == separator).count() >= columns);
        match ragged {
            Some((i, line)) => ImportError::File {
                file: file.to_owned(),
                line: Some(i + 1),
                message: format!(
                    "{} fields where the file has {columns} columns",
                    line.iter().filter(|&&b| b == separator).count() + 1
                ),
            },
            None => polars(file)(e),
        }
    }
}

/// Reads an annotation TSV.
///
/// # Errors
/// A missing header marker or vocabulary line, a term listed twice in a vocabulary, a chain
/// listed twice, a term not in its task's vocabulary: each names `file` and the 1-based line.
pub fn read_annotation(
    layout: Layout,
    file: &str,
    bytes: &[u8],
) -> Result<Annotation, ImportError> {
    let err = |line: usize, message: String| ImportError::File {
        file: file.to_owned(),
        line: Some(line + 1),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| ImportError::File {
        file: file.to_owned(),
        line: None,
        message: format!("not UTF-8: {e}"),
    })?;
    let header: Vec<&str> = text
        .split('\n')
        .take(layout.header_lines)
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    if header.len() < layout.header_lines {
        return Err(err(
            header.len(),
            format!(
                "the file ends inside its {}-line header",
                layout.header_lines
            ),
        ));
    }
    let mut tasks = Vec::new();
    for &(task, marker, line) in layout.tasks {
        if !header[line - 1].starts_with(marker) {
            return Err(err(
                line - 1,
                format!("expected {marker:?}, found {:?}", header[line - 1]),
            ));
        }
        let terms: Vec<String> = header[line]
            .split('\t')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let mut seen = HashMap::new();
        for (i, t) in terms.iter().enumerate() {
            if let Some(j) = seen.insert(t.as_str(), i) {
                return Err(err(
                    line,
                    format!(
                        "term {t:?} is listed twice (columns {} and {})",
                        j + 1,
                        i + 1
                    ),
                ));
            }
        }
        tasks.push(Vocabulary {
            task: task.to_owned(),
            terms,
        });
    }

    let mut names = vec!["protein_id".to_owned()];
    names.extend(tasks.iter().map(|t| t.task.clone()));
    let schema: Schema = names
        .iter()
        .map(|n| Field::new(n.as_str().into(), DataType::String))
        .collect();
    let df = CsvReadOptions::default()
        .with_has_header(false)
        .with_skip_lines(layout.header_lines)
        .with_schema(Some(Arc::new(schema)))
        .with_parse_options(
            CsvParseOptions::default()
                .with_separator(b'\t')
                .with_quote_char(None)
                .with_missing_is_null(true),
        )
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
        .map_err(parse_error(
            file,
            bytes,
            b'\t',
            names.len(),
            layout.header_lines,
        ))?;
    let line_of = |row: usize| layout.header_lines + row;

    // Chains listed twice.
    let ids = df
        .column("protein_id")
        .map_err(polars(file))?
        .str()
        .map_err(polars(file))?;
    let mut first_row: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (row, id) in ids.iter().enumerate() {
        let Some(id) = id.filter(|s| !s.is_empty()) else {
            return Err(err(line_of(row), "no chain id in the first column".into()));
        };
        if let Some(r) = first_row.insert(id, row) {
            return Err(err(
                line_of(row),
                format!("{id} is listed twice (also line {})", line_of(r) + 1),
            ));
        }
    }
    let mut labels: HashMap<String, Vec<Vec<i32>>> = first_row
        .keys()
        .map(|id| ((*id).to_owned(), vec![Vec::new(); tasks.len()]))
        .collect();

    for (t, vocab) in tasks.iter().enumerate() {
        let n = vocab.terms.len();
        let terms = DataFrame::new(
            n,
            vec![
                Column::new("term".into(), vocab.terms.clone()),
                Column::new("label_index".into(), (0..n as i32).collect::<Vec<_>>()),
            ],
        )
        .map_err(polars(file))?;
        // One row per (chain, term): the comma-separated cells, exploded.
        let cells = df
            .column(vocab.task.as_str())
            .map_err(polars(file))?
            .str()
            .map_err(polars(file))?;
        let (mut rows, mut chains, mut words) = (Vec::new(), Vec::new(), Vec::new());
        for (row, (id, cell)) in ids.iter().zip(cells.iter()).enumerate() {
            for term in cell.unwrap_or_default().split(',').map(str::trim) {
                if !term.is_empty() {
                    rows.push(row as u32);
                    chains.push(id.unwrap_or_default().to_owned());
                    words.push(term.to_owned());
                }
            }
        }
        let pairs = DataFrame::new(
            rows.len(),
            vec![
                Column::new("row".into(), rows),
                Column::new("protein_id".into(), chains),
                Column::new("term".into(), words),
            ],
        )
        .map_err(polars(file))?;
        let joined = pairs
            .lazy()
            .join(
                terms.lazy(),
                [col("term")],
                [col("term")],
                JoinArgs::new(JoinType::Left),
            )
            .collect()
            .map_err(polars(file))?;
        let rows = joined
            .column("row")
            .map_err(polars(file))?
            .u32()
            .map_err(polars(file))?;
        let joined_ids = joined
            .column("protein_id")
            .map_err(polars(file))?
            .str()
            .map_err(polars(file))?;
        let term = joined
            .column("term")
            .map_err(polars(file))?
            .str()
            .map_err(polars(file))?;
        let index = joined
            .column("label_index")
            .map_err(polars(file))?
            .i32()
            .map_err(polars(file))?;
        let mut unknown: BTreeMap<usize, String> = BTreeMap::new();
        for (((row, id), term), index) in rows
            .iter()
            .zip(joined_ids.iter())
            .zip(term.iter())
            .zip(index.iter())
        {
            let (Some(row), Some(id)) = (row, id) else {
                continue;
            };
            match index {
                Some(i) => labels
                    .get_mut(id)
                    .expect("every joined row comes from a listed chain")[t]
                    .push(i),
                None => {
                    unknown
                        .entry(row as usize)
                        .or_insert_with(|| term.unwrap_or_default().to_owned());
                }
            }
        }
        if let Some((row, term)) = unknown.into_iter().next() {
            return Err(err(
                line_of(row),
                format!(
                    "{term:?} is not in the {} vocabulary (line {})",
                    vocab.task,
                    layout.tasks[t].2 + 1
                ),
            ));
        }
    }
    for lists in labels.values_mut() {
        for l in lists {
            l.sort_unstable();
            l.dedup();
        }
    }
    Ok(Annotation { tasks, labels })
}

/// The test CSV's identity-cutoff columns, in order.
pub const CUTOFFS: [(&str, &str); 5] = [
    ("0.3", "<30%"),
    ("0.4", "<40%"),
    ("0.5", "<50%"),
    ("0.7", "<70%"),
    ("0.95", "<95%"),
];

/// Per test chain, its five flags (1: below that identity to the training set).
pub type TestFlags = HashMap<String, [bool; 5]>;

/// Reads `nrPDB-*_test.csv` (`PDB-chain,<30%,<40%,<50%,<70%,<95%`; CRLF or LF).
///
/// # Errors
/// Another header, a flag other than 0 or 1, a chain listed twice: naming `file` and the line.
pub fn read_test_flags(file: &str, bytes: &[u8]) -> Result<TestFlags, ImportError> {
    let err = |line: usize, message: String| ImportError::File {
        file: file.to_owned(),
        line: Some(line),
        message,
    };
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let header = String::from_utf8_lossy(first)
        .trim_end_matches('\r')
        .to_owned();
    let expected = std::iter::once("PDB-chain")
        .chain(CUTOFFS.iter().map(|c| c.1))
        .collect::<Vec<_>>()
        .join(",");
    if header != expected {
        return Err(err(1, format!("header {header:?}, expected {expected:?}")));
    }
    let schema: Schema = std::iter::once("PDB-chain")
        .chain(CUTOFFS.iter().map(|c| c.1))
        .map(|n| Field::new(n.into(), DataType::String))
        .collect();
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .with_parse_options(CsvParseOptions::default().with_missing_is_null(true))
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
        .map_err(parse_error(file, bytes, b',', CUTOFFS.len() + 1, 1))?;
    let column = |name: &str| -> Result<Vec<Option<String>>, ImportError> {
        let c = df
            .column(name)
            .map_err(polars(file))?
            .str()
            .map_err(polars(file))?;
        Ok(c.iter().map(|v| v.map(str::to_owned)).collect())
    };
    let ids = column("PDB-chain")?;
    let flags: Vec<Vec<Option<String>>> = CUTOFFS
        .iter()
        .map(|c| column(c.1))
        .collect::<Result<_, _>>()?;
    let mut out = TestFlags::with_capacity(ids.len());
    for (row, id) in ids.into_iter().enumerate() {
        let line = row + 2;
        let Some(id) = id.filter(|s| !s.is_empty()) else {
            return Err(err(line, "no chain id".into()));
        };
        let mut f = [false; 5];
        for (c, values) in flags.iter().enumerate() {
            f[c] = match values[row].as_deref().map(|v| v.trim_end_matches('\r')) {
                Some("1") => true,
                Some("0") => false,
                other => {
                    return Err(err(
                        line,
                        format!("{id}: {} is {other:?}, expected 0 or 1", CUTOFFS[c].1),
                    ));
                }
            };
        }
        if out.insert(id.clone(), f).is_some() {
            return Err(err(line, format!("{id} is listed twice")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoffs_name_the_splits_that_identity_buckets_read() {
        let names: Vec<&str> = CUTOFFS.iter().map(|c| c.0).collect();
        assert_eq!(names, crate::dataset::splits::OFFICIAL_CUTOFFS);
    }

    #[test]
    fn ec_labels_are_positions_in_the_vocabulary_line() {
        let tsv = "### EC-numbers\n1.1.1.1\t3.2.2.-\t3.2.2.9\n### PDB-chain\tEC-numbers\n\
                   4PR3-A\t3.2.2.9,3.2.2.-\n1ABC-B\t1.1.1.1\n";
        let a = read_annotation(EC, "annot.tsv", tsv.as_bytes()).expect("reads");
        assert_eq!(a.tasks[0].terms, ["1.1.1.1", "3.2.2.-", "3.2.2.9"]);
        assert_eq!(a.labels["4PR3-A"], [vec![1, 2]]);
        assert_eq!(a.labels["1ABC-B"], [vec![0]]);
    }

    #[test]
    fn a_term_outside_the_vocabulary_names_the_file_and_line() {
        let tsv = "### EC-numbers\n1.1.1.1\n### PDB-chain\tEC-numbers\n1ABC-A\t1.1.1.1\n2XYZ-B\t9.9.9.9\n";
        let e =
            read_annotation(EC, "nrPDB-EC_annot.tsv", tsv.as_bytes()).expect_err("unknown term");
        let msg = e.to_string();
        assert!(msg.contains("nrPDB-EC_annot.tsv, line 5"), "{msg}");
        assert!(msg.contains("9.9.9.9"), "{msg}");
    }

    #[test]
    fn go_empty_branch_cells_keep_the_chain_all_negative() {
        let mut tsv = String::new();
        for (i, b) in [
            "molecular_function",
            "biological_process",
            "cellular_component",
        ]
        .iter()
        .enumerate()
        {
            tsv += &format!("### GO-terms ({b})\nGO:{i}1\tGO:{i}2\n### GO-names ({b})\nn1\tn2\n");
        }
        tsv += "### PDB-chain\tGO-terms (molecular_function)\tGO-terms (biological_process)\tGO-terms (cellular_component)\n";
        tsv += "1ABC-A\tGO:02\t\tGO:21,GO:22\n2XYZ-B7\t\tGO:11\t\n";
        let a = read_annotation(GO, "go.tsv", tsv.as_bytes()).expect("reads");
        assert_eq!(a.labels["1ABC-A"], [vec![1], vec![], vec![0, 1]]);
        assert_eq!(a.labels["2XYZ-B7"], [vec![], vec![0], vec![]]);
    }

    #[test]
    fn test_flags_with_crlf_line_endings() {
        let csv = "PDB-chain,<30%,<40%,<50%,<70%,<95%\r\n1ABC-A,0,0,1,1,1\r\n2XYZ-B,1,1,1,1,1\r\n";
        let f = read_test_flags("test.csv", csv.as_bytes()).expect("reads");
        assert_eq!(f["1ABC-A"], [false, false, true, true, true]);
        assert_eq!(f["2XYZ-B"], [true; 5]);
        let bad = "PDB-chain,<30%,<40%,<50%,<70%,<95%\n1ABC-A,0,0,2,1,1\n";
        let e = read_test_flags("test.csv", bad.as_bytes()).expect_err("bad flag");
        assert!(e.to_string().contains("test.csv, line 2"), "{e}");
    }
}
