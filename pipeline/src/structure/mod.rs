//! Structure files (PDB, mmCIF; plain or gzipped) to the first model's polymer chains.

mod cif;
mod error;
mod gzip;
mod mmcif;
mod model;
mod number;
mod pdb;

pub use error::{LineError, ParseError};
pub use model::{AlphaCarbon, Chain, Format, Residue, Structure};

/// Reads a structure from the bytes of a file: gunzips when the content is gzip, detects the
/// format from the content (not the name), and parses the first model.
///
/// # Errors
/// [`ParseError`] saying what is wrong and, for a bad line, where.
pub fn read_bytes(raw: &[u8]) -> Result<(Format, Structure), ParseError> {
    read_bytes_capped(raw, crate::prepare::input::DEFAULT_MAX_FILE_BYTES)
}

/// [`read_bytes`] with a cap on the decompressed size of gzipped content: a gzip bomb stops at
/// `max_bytes` + 1 bytes and is [`ParseError::TooLarge`].
///
/// # Errors
/// [`ParseError`] saying what is wrong and, for a bad line, where.
pub fn read_bytes_capped(raw: &[u8], max_bytes: u64) -> Result<(Format, Structure), ParseError> {
    // The decompressed text goes into this thread's buffer, kept from file to file (up to a
    // bound), so its pages are not faulted in afresh for every gzipped file.
    thread_local! {
        static TEXT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return parse_checked(raw);
    }
    TEXT.with_borrow_mut(|text| {
        let result = gunzip(raw, max_bytes, text).and_then(|()| parse_checked(text));
        if text.capacity() > crate::prepare::input::MAX_KEPT_BUFFER {
            *text = Vec::new();
        }
        result
    })
}

fn parse_checked(text: &[u8]) -> Result<(Format, Structure), ParseError> {
    let format = detect(text)?;
    let structure = parse_text(format, text)?;
    if structure.residues_with_ca() == 0 {
        return Err(ParseError::NoProtein);
    }
    Ok((format, structure))
}

/// Parses decompressed text in a known format (no detection, no protein check); the fuzz
/// targets drive each reader through this.
///
/// # Errors
/// The reader's [`ParseError`].
pub fn parse_text(format: Format, text: &[u8]) -> Result<Structure, ParseError> {
    match format {
        Format::Pdb => pdb::parse(text),
        Format::Mmcif => mmcif::parse(text),
        // Atom3D frames are LMDB records, read by `import msp`, never text.
        Format::Atom3d => Err(ParseError::UnknownFormat),
    }
}

/// Decompresses a gzip stream (possibly multi-member; recognised by its magic bytes) into `out`.
fn gunzip(raw: &[u8], max_bytes: u64, out: &mut Vec<u8>) -> Result<(), ParseError> {
    gzip::gunzip_into(raw, max_bytes, out).map_err(|e| match e {
        gzip::GunzipError::TooLarge => ParseError::TooLarge {
            max_bytes: crate::prepare::input::Size(max_bytes),
        },
        gzip::GunzipError::Broken => ParseError::Gzip(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "corrupt or truncated deflate data, or a checksum or size that does not match",
        )),
        gzip::GunzipError::OutOfMemory => ParseError::Gzip(std::io::Error::new(
            std::io::ErrorKind::OutOfMemory,
            "no memory for the decompressor",
        )),
    })
}

/// mmCIF starts with a `data_` block (after comments); PDB with fixed-column records.
fn detect(text: &[u8]) -> Result<Format, ParseError> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    // Text files hold no control bytes besides tab, newline, carriage return and form feed.
    let head = &text[..text.len().min(1 << 16)];
    if let Some(offset) = head
        .iter()
        .position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
    {
        return Err(ParseError::Binary {
            offset,
            byte: head[offset],
        });
    }
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    let first_cif_line = lines.clone().find(|l| !l.starts_with(b"#"));
    if first_cif_line.is_some_and(|l| l.len() >= 5 && l[..5].eq_ignore_ascii_case(b"data_")) {
        return Ok(Format::Mmcif);
    }
    const RECORDS: [&[u8]; 14] = [
        b"HEADER", b"TITLE", b"COMPND", b"SOURCE", b"REMARK", b"CRYST1", b"ATOM", b"HETATM",
        b"MODEL", b"EXPDTA", b"AUTHOR", b"SEQRES", b"DBREF", b"KEYWDS",
    ];
    if lines.any(|l| RECORDS.iter().any(|r| l.starts_with(r))) {
        return Ok(Format::Pdb);
    }
    Err(ParseError::UnknownFormat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_binary_files_are_named_as_such() {
        assert!(matches!(read_bytes(b""), Err(ParseError::Empty)));
        assert!(matches!(read_bytes(b"  \n\n"), Err(ParseError::Empty)));
        let err = read_bytes(b"ATOM\x00\x01\x02").expect_err("binary");
        assert_eq!(
            err.to_string(),
            "not a text file: binary byte 0x00 at offset 4"
        );
    }

    /// Gzipped files are parsed from one buffer per thread, kept between files: a big file, a
    /// broken one, then a small one each parse exactly as their plain text does.
    #[test]
    fn gzipped_files_parse_as_their_text_whatever_came_before() {
        let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/real");
        let big = std::fs::read(real.join("4JSV.pdb")).expect("4JSV.pdb");
        let small = std::fs::read(real.join("1grm_single.pdb")).expect("1grm_single.pdb");
        let gz = |b: &[u8]| {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(b).expect("gzip");
            e.finish().expect("gzip")
        };
        let chains = |r: Result<(Format, Structure), ParseError>| {
            let (_, st) = r.expect("parses");
            st.chains
                .iter()
                .map(|c| (c.id.clone(), c.residues.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(chains(read_bytes(&gz(&big))), chains(read_bytes(&big)));
        let broken = gz(&big);
        assert!(read_bytes(&broken[..broken.len() / 2]).is_err());
        assert_eq!(chains(read_bytes(&gz(&small))), chains(read_bytes(&small)));
    }

    #[test]
    fn broken_gzip_is_reported() {
        let err = read_bytes(&[0x1f, 0x8b, 8, 0, 0, 0]).expect_err("truncated gzip");
        assert!(
            err.to_string().starts_with("gzip stream is broken"),
            "{err}"
        );
    }

    #[test]
    fn format_comes_from_content() {
        assert_eq!(
            detect(b"# comment\ndata_1abc\n_entry.id 1ABC\n").ok(),
            Some(Format::Mmcif)
        );
        assert_eq!(detect(b"\nCRYST1    1.000\nATOM\n").ok(), Some(Format::Pdb));
        assert!(matches!(
            detect(b"hello world\n"),
            Err(ParseError::UnknownFormat)
        ));
    }

    #[test]
    fn a_file_without_any_ca_is_not_a_protein() {
        let text =
            "ATOM      1  P    DA B   1       1.000   1.000   1.000  1.00  9.68           P\n";
        assert!(matches!(
            read_bytes(text.as_bytes()),
            Err(ParseError::NoProtein)
        ));
    }
}
