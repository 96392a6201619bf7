//! Atom3D's atom data frames (pandas `split` orient: `columns`, `data`; spec training.md §2.2) to
//! residue nodes, as FusionProt's `Atom3DDataset.protein_from_data_frame` and `MSPDataset.get_item`
//! build them (training.md §2.4):
//!
//! - atoms whose `element` is not in TorchDrug's atom vocabulary (spelled exactly: `H` and `SE`
//!   are not) are dropped, so hydrogens never count;
//! - a new residue starts whenever `(residue, insertion_code, resname)` changes from the previous
//!   atom (the chain is not part of the key);
//! - nodes are the residues with an atom named `CA` (TorchDrug's `AlphaCarbonNode`), the first one.

use serde::Deserialize;

use crate::protein::ResidueColumns;

/// TorchDrug's `atom_vocab` (`data/feature.py`): elements outside it get type 0 and are dropped.
const ATOM_VOCAB: [&str; 17] = [
    "H", "B", "C", "N", "O", "F", "Mg", "Si", "P", "S", "Cl", "Cu", "Zn", "Se", "Br", "Sn", "I",
];

/// The columns read, in the order the residue builder takes them (`bfactor` may be missing).
const COLUMNS: [&str; 10] = [
    "chain",
    "residue",
    "insertion_code",
    "resname",
    "x",
    "y",
    "z",
    "element",
    "name",
    "bfactor",
];

/// A data frame as pandas writes it with `orient='split'` (the `index` is not needed).
#[derive(Debug, Clone, Deserialize)]
pub struct Frame {
    pub columns: Vec<String>,
    pub data: Vec<Vec<serde_json::Value>>,
}

fn cell_str(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn cell_f64(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What is wrong with an atom frame, by column and row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("no column {0:?} in the atom frame")]
    MissingColumn(&'static str),
    #[error("row {row}: no {what} cell")]
    MissingCell { row: usize, what: &'static str },
    #[error("row {row}: {what} is not text")]
    NotText { row: usize, what: &'static str },
    #[error("row {row}: {what} is not a number")]
    NotNumber { row: usize, what: &'static str },
    #[error("row {row}: residue {residue:?} is not a number")]
    ResidueNumber { row: usize, residue: String },
}

/// The residue nodes of a frame.
///
/// # Errors
/// A missing column or a malformed cell, naming the column and row.
pub fn residues(frame: &Frame) -> Result<ResidueColumns, FrameError> {
    let col = |name: &'static str| {
        frame
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or(FrameError::MissingColumn(name))
    };
    let [
        chain,
        residue,
        icode,
        resname,
        x,
        y,
        z,
        element,
        name,
        bfactor,
    ] = COLUMNS.map(col);
    let (chain, residue, icode, resname, x, y, z, element, name) = (
        chain?, residue?, icode?, resname?, x?, y?, z?, element?, name?,
    );
    let bfactor = bfactor.ok();
    let mut out = ResidueColumns::default();
    let mut key: Option<(String, String, String)> = None;
    let mut has_ca = false;
    for (row, atom) in frame.data.iter().enumerate() {
        let get =
            |c: usize, what: &'static str| atom.get(c).ok_or(FrameError::MissingCell { row, what });
        let text = |c: usize, what: &'static str| -> Result<String, FrameError> {
            cell_str(get(c, what)?).ok_or(FrameError::NotText { row, what })
        };
        // Residues are cut over all atoms, as the reference builds them before dropping atoms.
        let k = (
            text(residue, "residue")?,
            text(icode, "insertion_code")?,
            text(resname, "resname")?,
        );
        if key.as_ref() != Some(&k) {
            key = Some(k);
            has_ca = false;
        }
        let el = text(element, "element")?;
        if !ATOM_VOCAB.contains(&el.as_str()) {
            continue;
        }
        if has_ca || text(name, "name")? != "CA" {
            continue;
        }
        has_ca = true;
        let num = |c: usize, what: &'static str| -> Result<f64, FrameError> {
            cell_f64(get(c, what)?).ok_or(FrameError::NotNumber { row, what })
        };
        let (res, ic, rn) = key.clone().expect("set above");
        let number: i32 = res.trim().parse().map_err(|_| FrameError::ResidueNumber {
            row,
            residue: res.clone(),
        })?;
        out.name.push(rn.trim().into());
        out.chain.push(text(chain, "chain")?.into());
        out.number.push(number);
        out.insertion_code.push(ic.trim().chars().next());
        out.pos.push([
            num(x, "x")? as f32,
            num(y, "y")? as f32,
            num(z, "z")? as f32,
        ]);
        out.b_factor.push(match bfactor {
            Some(b) => num(b, "bfactor")? as f32,
            None => 0.0,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(rows: &[(&str, i64, &str, &str, &str)]) -> Frame {
        // chain, residue, resname, name, element
        Frame {
            columns: COLUMNS.map(String::from).to_vec(),
            data: rows
                .iter()
                .enumerate()
                .map(|(i, (c, r, rn, n, e))| {
                    vec![
                        json!(c),
                        json!(r),
                        json!(" "),
                        json!(rn),
                        json!(i as f64),
                        json!(0.5),
                        json!(-1.25),
                        json!(e),
                        json!(n),
                        json!(10.0),
                    ]
                })
                .collect(),
        }
    }

    #[test]
    fn residues_start_when_number_or_name_changes_and_need_a_carbon_ca() {
        let f = frame(&[
            ("A", 1, "ALA", "N", "N"),
            ("A", 1, "ALA", "CA", "C"),
            ("A", 1, "ALA", "H", "H"),
            // A calcium ion named CA: element CA is outside the vocabulary, dropped.
            ("A", 2, "CA", "CA", "CA"),
            // Same number, other chain, same name: TorchDrug's key ignores the chain, one residue.
            ("B", 2, "GLY", "CA", "C"),
            ("B", 2, "GLY", "CA", "C"),
            // Selenium spelled by Biopython (SE) is dropped, its residue still has its CA.
            ("B", 3, "MSE", "SE", "SE"),
            ("B", 3, "MSE", "CA", "C"),
        ]);
        let r = residues(&f).expect("residues");
        assert_eq!(r.name, ["ALA", "GLY", "MSE"]);
        assert_eq!(r.chain, ["A", "B", "B"]);
        assert_eq!(r.number, [1, 2, 3]);
        assert_eq!(r.pos[0], [1.0, 0.5, -1.25]);
        assert_eq!(r.insertion_code, [None, None, None]);
    }

    #[test]
    fn a_missing_column_is_named() {
        let mut f = frame(&[("A", 1, "ALA", "CA", "C")]);
        f.columns[7] = "elem".into();
        let err = residues(&f).expect_err("no element");
        assert_eq!(err, FrameError::MissingColumn("element"));
        assert!(err.to_string().contains("\"element\""));
    }
}
