//! Why a structure file could not be read. The reader knows the line; the caller adds the file.

/// A structure file that cannot be turned into proteins.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("empty file")]
    Empty,
    #[error("not a text file: binary byte 0x{byte:02x} at offset {offset}")]
    Binary { offset: usize, byte: u8 },
    #[error("gzip stream is broken: {0}")]
    Gzip(std::io::Error),
    #[error("gzip stream decompresses to more than the size cap of {max_bytes}")]
    TooLarge {
        max_bytes: crate::prepare::input::Size,
    },
    #[error("unrecognised format: no PDB records and no mmCIF data block at the start")]
    UnknownFormat,
    #[error("line {line}: {cause}")]
    At { line: usize, cause: LineError },
    #[error("mmCIF _atom_site loop at line {line} lacks required column(s): {missing}")]
    MissingColumns { line: usize, missing: String },
    #[error("no atom records in the first model")]
    NoAtoms,
    #[error("no protein: no polymer residue with a CA atom in the first model")]
    NoProtein,
}

/// What is wrong with one line (PDB) or one token (mmCIF).
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("{record} record has {len} columns, needs at least 54 (through z)")]
    ShortAtom { record: &'static str, len: usize },
    #[error("{field} (columns {columns}) is not a number: {text:?}")]
    BadColumn {
        field: &'static str,
        columns: &'static str,
        text: String,
    },
    #[error("_atom_site.{column} is not a number: {text:?}")]
    BadValue { column: &'static str, text: String },
    #[error("unterminated {what}")]
    Unterminated { what: &'static str },
    #[error(
        "loop_ ends after {values} values, not a multiple of its {columns} columns (truncated file?)"
    )]
    RaggedLoop { values: usize, columns: usize },
    #[error("loop_ without any tag")]
    EmptyLoop,
    #[error("non-ASCII byte in {what}")]
    NonAscii { what: &'static str },
}
