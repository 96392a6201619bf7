//! Reader for PDBx/mmCIF: the first data block's `_atom_site` loop (first model) and the few
//! header items we keep (entry id, title, method, resolution, entity EC numbers, AlphaFold
//! accession). Other categories are tokenized and skipped.

use std::collections::{BTreeMap, HashMap};

use super::cif::{Token, Tokenizer};
use super::error::{LineError, ParseError};
use super::model::{AtomSite, Builder, Polymer, Structure};
use super::pdb::is_ec;

/// Items kept from categories other than `_atom_site`: tag (lower case) → values in order.
const KEPT: &[&str] = &[
    "_entry.id",
    "_struct.title",
    "_exptl.method",
    "_refine.ls_d_res_high",
    "_reflns.d_resolution_high",
    "_em_3d_reconstruction.resolution",
    "_entity.id",
    "_entity.pdbx_ec",
    "_ma_target_ref_db_details.db_accession",
    "_ma_qa_metric_global.metric_value",
];

/// Parses mmCIF text (already decompressed).
///
/// # Errors
/// Tokenizer errors, missing `_atom_site` columns, non-numeric coordinates, a loop cut short.
pub fn parse(text: &[u8]) -> Result<Structure, ParseError> {
    let mut tok = Tokenizer::new(text);
    let mut items: HashMap<String, Vec<String>> = HashMap::new();
    let mut atoms: Option<AtomLoop> = None;
    let mut lookahead: Option<Token<'_>> = None;
    let mut in_block = false;
    while let Some(t) = lookahead
        .take()
        .map_or_else(|| next(&mut tok), |t| Ok(Some(t)))?
    {
        if t.is_data() {
            if in_block {
                break; // only the first data block
            }
            in_block = true;
        } else if t.is_loop() {
            let loop_line = t.line;
            let mut tags: Vec<String> = Vec::new();
            let first_value = loop {
                match next(&mut tok)? {
                    Some(t) if t.is_tag() => tags.push(t.as_str().to_ascii_lowercase()),
                    other => break other,
                }
            };
            if tags.is_empty() {
                return Err(ParseError::At {
                    line: loop_line,
                    cause: LineError::EmptyLoop,
                });
            }
            if tags[0].starts_with("_atom_site.") && atoms.is_none() {
                let (result, after) = read_atom_loop(&mut tok, &tags, first_value, loop_line)?;
                atoms = Some(result);
                lookahead = after;
            } else {
                // Decided once per loop, not per value: loops like _pdbx_poly_seq_scheme are long.
                let keep: Vec<bool> = tags.iter().map(|t| KEPT.contains(&t.as_str())).collect();
                let mut values = 0usize;
                let mut cur = first_value;
                while let Some(v) = cur.filter(|v| !(v.is_tag() || v.is_loop() || v.is_data())) {
                    let column = values % tags.len();
                    if keep[column] {
                        items
                            .entry(tags[column].clone())
                            .or_default()
                            .push(value_text(&v));
                    }
                    values += 1;
                    cur = next(&mut tok)?;
                }
                if !values.is_multiple_of(tags.len()) {
                    let line = cur.map_or(loop_line, |t| t.line);
                    return Err(ParseError::At {
                        line,
                        cause: LineError::RaggedLoop {
                            values,
                            columns: tags.len(),
                        },
                    });
                }
                lookahead = cur;
            }
        } else if t.is_tag() {
            let tag = t.as_str().to_ascii_lowercase();
            match next(&mut tok)? {
                Some(v) if !(v.is_tag() || v.is_loop() || v.is_data()) => {
                    if KEPT.contains(&tag.as_str()) {
                        items.entry(tag).or_default().push(value_text(&v));
                    }
                }
                // A tag without a value: keep going, the next token is read normally.
                other => lookahead = other,
            }
        }
    }
    let atoms = atoms.ok_or(ParseError::NoAtoms)?;
    if atoms.rows == 0 {
        return Err(ParseError::NoAtoms);
    }
    let mut st = Structure::default();
    atoms.builder.finish(&mut st);
    header_from_items(&mut st, &items, &atoms.chain_entity);
    Ok(st)
}

#[inline(always)]
fn next<'a>(tok: &mut Tokenizer<'a>) -> Result<Option<Token<'a>>, ParseError> {
    tok.next_token()
        .map_err(|(line, cause)| ParseError::At { line, cause })
}

/// `?` and `.` become empty strings; everything else its text.
fn value_text(t: &Token<'_>) -> String {
    if t.is_null() {
        String::new()
    } else {
        t.as_str().into_owned()
    }
}

fn first<'a>(items: &'a HashMap<String, Vec<String>>, tag: &str) -> Option<&'a str> {
    items
        .get(tag)
        .and_then(|v| v.iter().find(|s| !s.is_empty()))
        .map(String::as_str)
}

fn header_from_items(
    st: &mut Structure,
    items: &HashMap<String, Vec<String>>,
    chain_entity: &BTreeMap<String, String>,
) {
    st.entry_id = first(items, "_entry.id").map(str::to_owned);
    st.title =
        first(items, "_struct.title").map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "));
    let methods: Vec<&str> = items
        .get("_exptl.method")
        .map(|v| {
            v.iter()
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    st.method = (!methods.is_empty()).then(|| methods.join("; "));
    st.resolution_angstrom = [
        "_refine.ls_d_res_high",
        "_reflns.d_resolution_high",
        "_em_3d_reconstruction.resolution",
    ]
    .iter()
    .find_map(|tag| first(items, tag).and_then(|v| v.parse::<f32>().ok()));

    let mut entity_ec: HashMap<&str, Vec<String>> = HashMap::new();
    if let (Some(ids), Some(ecs)) = (items.get("_entity.id"), items.get("_entity.pdbx_ec")) {
        for (id, ec) in ids.iter().zip(ecs) {
            let list: Vec<String> = ec
                .split(',')
                .map(str::trim)
                .filter(|e| is_ec(e))
                .map(str::to_owned)
                .collect();
            if !list.is_empty() {
                entity_ec.insert(id, list);
            }
        }
    }
    for (chain, entity) in chain_entity {
        if let Some(ec) = entity_ec.get(entity.as_str()) {
            st.ec_by_chain.insert(chain.clone(), ec.clone());
        }
    }
    st.is_alphafold = st
        .entry_id
        .as_deref()
        .is_some_and(|id| id.starts_with("AF-"))
        || st
            .title
            .as_deref()
            .is_some_and(|t| t.to_ascii_uppercase().contains("ALPHAFOLD"));
    if st.is_alphafold {
        st.alphafold_accession =
            first(items, "_ma_target_ref_db_details.db_accession").map(str::to_owned);
    }
}

/// The `_atom_site` loop, read into a builder.
#[derive(Debug)]
struct AtomLoop {
    builder: Builder,
    rows: usize,
    /// Entity of each chain's first polymer atom, to map entity EC numbers to chains.
    chain_entity: BTreeMap<String, String>,
}

/// Column positions within the `_atom_site` loop.
#[derive(Debug)]
struct Columns {
    group: Option<usize>,
    atom: usize,
    comp: usize,
    asym: usize,
    label_seq: Option<usize>,
    auth_seq: Option<usize>,
    icode: Option<usize>,
    x: usize,
    y: usize,
    z: usize,
    b: Option<usize>,
    model: Option<usize>,
    entity: Option<usize>,
}

impl Columns {
    fn find(tags: &[String], line: usize) -> Result<Self, ParseError> {
        let pos = |name: &str| {
            tags.iter()
                .position(|t| t.strip_prefix("_atom_site.") == Some(name))
        };
        let either = |a: &str, b: &str| pos(a).or_else(|| pos(b));
        let mut missing = Vec::new();
        let mut need = |v: Option<usize>, name: &'static str| {
            if v.is_none() {
                missing.push(name);
            }
            v.unwrap_or(0)
        };
        let cols = Self {
            group: pos("group_pdb"),
            atom: need(either("label_atom_id", "auth_atom_id"), "label_atom_id"),
            comp: need(either("label_comp_id", "auth_comp_id"), "label_comp_id"),
            asym: need(either("auth_asym_id", "label_asym_id"), "auth_asym_id"),
            label_seq: pos("label_seq_id"),
            auth_seq: pos("auth_seq_id"),
            icode: pos("pdbx_pdb_ins_code"),
            x: need(pos("cartn_x"), "Cartn_x"),
            y: need(pos("cartn_y"), "Cartn_y"),
            z: need(pos("cartn_z"), "Cartn_z"),
            b: pos("b_iso_or_equiv"),
            model: pos("pdbx_pdb_model_num"),
            entity: pos("label_entity_id"),
        };
        if cols.label_seq.is_none() && cols.auth_seq.is_none() {
            missing.push("auth_seq_id");
        }
        if missing.is_empty() {
            Ok(cols)
        } else {
            Err(ParseError::MissingColumns {
                line,
                missing: missing.join(", "),
            })
        }
    }
}

/// Reads the loop's rows; returns the first token after the loop.
fn read_atom_loop<'a>(
    tok: &mut Tokenizer<'a>,
    tags: &[String],
    first_value: Option<Token<'a>>,
    loop_line: usize,
) -> Result<(AtomLoop, Option<Token<'a>>), ParseError> {
    let cols = Columns::find(tags, loop_line)?;
    let mut out = AtomLoop {
        builder: Builder::default(),
        rows: 0,
        chain_entity: BTreeMap::new(),
    };
    let mut row: Vec<Token<'a>> = Vec::with_capacity(tags.len());
    let mut first_model: Option<Vec<u8>> = None;
    // The residue columns of the row that made the builder's pending residue.
    let mut pending: Option<ResidueKey<'a>> = None;
    let mut take_row = |row: &[Token<'a>]| -> Result<(), ParseError> {
        let keep = match cols.model {
            None => true,
            Some(m) => {
                let model = row[m].text;
                first_model.get_or_insert_with(|| model.to_vec()).as_slice() == model
            }
        };
        if keep {
            let key = ResidueKey::of(row, &cols);
            if pending.as_ref() == Some(&key) {
                atom_of_pending(row, &cols, &mut out)?;
            } else {
                atom_row(row, &cols, &mut out)?;
                pending = Some(key);
            }
        }
        Ok(())
    };
    let mut cur = first_value;
    let mut values = 0usize;
    while let Some(v) = cur.filter(|v| !(v.is_tag() || v.is_loop() || v.is_data())) {
        row.push(v);
        values += 1;
        if row.len() == tags.len() {
            take_row(&row)?;
            row.clear();
            // Rows of plain values (nearly all of them) go straight into `row`; anything else
            // (a quote, a comment, the loop's end) is read token by token.
            while tok.bare_values(tags.len(), &mut row) {
                values += tags.len();
                take_row(&row)?;
                row.clear();
            }
        }
        cur = next(tok)?;
    }
    if !row.is_empty() {
        let line = row.last().map_or(loop_line, |t| t.line);
        return Err(ParseError::At {
            line,
            cause: LineError::RaggedLoop {
                values,
                columns: tags.len(),
            },
        });
    }
    Ok((out, cur))
}

/// The columns that say which residue a row's atom belongs to (chain, residue name, numbers,
/// insertion code): two rows with the same tokens there are atoms of one residue. Missing
/// columns are missing in every row of the loop.
#[derive(Debug, PartialEq, Eq)]
struct ResidueKey<'a>([Option<(&'a [u8], bool)>; 5]);

impl<'a> ResidueKey<'a> {
    fn of(row: &[Token<'a>], c: &Columns) -> Self {
        let tok = |i: Option<usize>| i.map(|i| (row[i].text, row[i].is_quoted()));
        Self([
            tok(Some(c.asym)),
            tok(Some(c.comp)),
            tok(c.auth_seq),
            tok(c.label_seq),
            tok(c.icode),
        ])
    }
}

/// A value as text: `?` and `.` are empty; anything but ASCII is refused, naming the column.
fn text<'r>(row: &'r [Token<'_>], i: usize, what: &'static str) -> Result<&'r str, ParseError> {
    let t = &row[i];
    if t.is_null() {
        return Ok("");
    }
    std::str::from_utf8(t.text)
        .ok()
        .filter(|s| s.is_ascii())
        .ok_or(ParseError::At {
            line: row[0].line,
            cause: LineError::NonAscii { what },
        })
}

fn number(row: &[Token<'_>], i: usize, column: &'static str) -> Result<f64, ParseError> {
    if !row[i].is_null()
        && let Some(v) = super::number::decimal(row[i].text)
    {
        return Ok(v);
    }
    let s = text(row, i, column)?;
    s.parse::<f64>().map_err(|_| ParseError::At {
        line: row[0].line,
        cause: LineError::BadValue {
            column,
            text: String::from_utf8_lossy(row[i].text).into_owned(),
        },
    })
}

/// The atom's B-factor: 0 when absent or unknown.
fn b_factor(row: &[Token<'_>], c: &Columns) -> Result<f32, ParseError> {
    Ok(match c.b {
        Some(i) if !row[i].is_null() => number(row, i, "B_iso_or_equiv")? as f32,
        _ => 0.0,
    })
}

fn position(row: &[Token<'_>], c: &Columns) -> Result<[f32; 3], ParseError> {
    Ok([
        number(row, c.x, "Cartn_x")? as f32,
        number(row, c.y, "Cartn_y")? as f32,
        number(row, c.z, "Cartn_z")? as f32,
    ])
}

/// A row whose residue columns equal those of the row that made the pending residue: its
/// residue columns were read and checked there, so only the atom name and numbers are read.
fn atom_of_pending(row: &[Token<'_>], c: &Columns, out: &mut AtomLoop) -> Result<(), ParseError> {
    // In atom_row's order, so a row with two faults names the same one either way.
    let b_factor = b_factor(row, c)?;
    let name = text(row, c.atom, "label_atom_id")?;
    let pos = position(row, c)?;
    out.builder.atom_of_pending(name.as_bytes(), pos, b_factor);
    out.rows += 1;
    Ok(())
}

fn atom_row(row: &[Token<'_>], c: &Columns, out: &mut AtomLoop) -> Result<(), ParseError> {
    let line = row[0].line;
    let at = |cause| ParseError::At { line, cause };
    let text = |i: usize, what: &'static str| text(row, i, what);
    let label_seq = c.label_seq.map(|i| &row[i]);
    let seq_text = c
        .auth_seq
        .map(|i| &row[i])
        .filter(|t| !t.is_null())
        .or(label_seq.filter(|t| !t.is_null()));
    let seq_num = match seq_text {
        None => 0,
        Some(t) => std::str::from_utf8(t.text)
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .ok_or_else(|| {
                at(LineError::BadValue {
                    column: "auth_seq_id",
                    text: String::from_utf8_lossy(t.text).into_owned(),
                })
            })?,
    };
    let polymer = match label_seq {
        Some(t) if t.is_null() => Polymer::No,
        Some(_) => Polymer::Yes,
        None => Polymer::Unknown,
    };
    let icode = match c.icode {
        Some(i) => text(i, "pdbx_PDB_ins_code")?.chars().next(),
        None => None,
    };
    let chain = text(c.asym, "auth_asym_id")?;
    if polymer == Polymer::Yes
        && let Some(e) = c.entity
        && !out.chain_entity.contains_key(chain)
    {
        out.chain_entity
            .insert(chain.to_owned(), text(e, "label_entity_id")?.to_owned());
    }
    let b_factor = b_factor(row, c)?;
    let atom_name = text(c.atom, "label_atom_id")?;
    let res_name = text(c.comp, "label_comp_id")?;
    let pos = position(row, c)?;
    let site = AtomSite {
        hetero: c
            .group
            .is_some_and(|g| row[g].text.eq_ignore_ascii_case(b"HETATM")),
        atom_name,
        res_name,
        chain,
        seq_num,
        icode,
        pos,
        b_factor,
        polymer,
    };
    out.builder.atom(&site);
    out.rows += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "data_1ABC
_entry.id 1ABC
_struct.title 'A small  protein'
_exptl.method 'X-RAY DIFFRACTION'
_refine.ls_d_res_high 1.50
loop_
_entity.id
_entity.type
_entity.pdbx_ec
1 polymer '3.2.1.17'
2 non-polymer ?
3 water ?
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.label_atom_id
_atom_site.label_comp_id
_atom_site.label_asym_id
_atom_site.label_entity_id
_atom_site.label_seq_id
_atom_site.pdbx_PDB_ins_code
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.B_iso_or_equiv
_atom_site.auth_seq_id
_atom_site.auth_asym_id
_atom_site.pdbx_PDB_model_num
ATOM 1 N LYS A 1 1 ? 1.0 2.0 3.0 10.0 5 X 1
ATOM 2 CA LYS A 1 1 ? 2.388 10.533 9.168 9.68 5 X 1
HETATM 3 N MSE A 1 2 A 0 0 0 1 6 X 1
HETATM 4 CA MSE A 1 2 A 1 1 1 2 6 X 1
HETATM 5 C MSE A 1 2 A 2 2 2 3 6 X 1
HETATM 6 CA CA B 2 . ? 5 5 5 5 101 X 1
HETATM 7 O HOH C 3 . ? 6 6 6 6 201 X 1
ATOM 8 CA LYS A 1 1 ? 9 9 9 9 5 X 2
#
";

    #[test]
    fn reads_first_model_polymer_residues_and_header() {
        let st = parse(SMALL.as_bytes()).expect("valid mmCIF");
        assert_eq!(st.entry_id.as_deref(), Some("1ABC"));
        assert_eq!(st.title.as_deref(), Some("A small protein"));
        assert_eq!(st.resolution_angstrom, Some(1.5));
        assert_eq!(st.ec_by_chain["X"], ["3.2.1.17"]);
        assert_eq!(st.chains.len(), 1);
        let res = &st.chains[0].residues;
        let names: Vec<&str> = res.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["LYS", "MSE"]);
        assert_eq!(res[0].number, 5);
        assert_eq!(res[1].insertion_code, Some('A'));
        assert_eq!(res[0].ca.map(|c| c.pos), Some([2.388, 10.533, 9.168]));
        assert_eq!((st.ligands, st.waters), (1, 1));
    }

    #[test]
    fn missing_coordinate_columns_are_named() {
        let text = SMALL.replace("_atom_site.Cartn_y\n", "");
        let err = parse(text.as_bytes()).expect_err("no Cartn_y");
        let msg = err.to_string();
        assert!(msg.contains("lacks required column(s): Cartn_y"), "{msg}");
    }

    #[test]
    fn truncated_atom_loop_is_reported_with_its_line() {
        let cut = SMALL.find("HETATM 5").expect("row 5");
        let text = &SMALL[..cut + 20];
        let err = parse(text.as_bytes()).expect_err("truncated");
        assert!(err.to_string().contains("truncated file?"), "{err}");
        assert!(err.to_string().starts_with("line 33:"), "{err}");
    }

    #[test]
    fn bad_coordinate_names_column_and_line() {
        let text = SMALL.replace("2.388 10.533", "2.388 1O.533");
        let err = parse(text.as_bytes()).expect_err("bad number");
        assert_eq!(
            err.to_string(),
            "line 30: _atom_site.Cartn_y is not a number: \"1O.533\""
        );
    }
}
