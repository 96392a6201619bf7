//! Shared by the import tests: running `fusionprot import`, and rewriting an archive's members.

use std::path::Path;

use super::fusionprot;

/// `fusionprot import KIND ARCHIVE --out OUT EXTRA…`.
pub fn import(kind: &str, archive: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "import",
        kind,
        archive.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ];
    args.extend(extra);
    fusionprot(&args)
}

/// Maps an archive member (name, bytes) to its new bytes, or `None` to leave it out.
pub type Edit = dyn Fn(&str, Vec<u8>) -> Option<Vec<u8>>;

pub fn rewrite_zip(src: &Path, dst: &Path, edit: &Edit) {
    use std::io::{Read, Write};
    let mut input = zip::ZipArchive::new(std::fs::File::open(src).expect("open")).expect("zip");
    let mut out = zip::ZipWriter::new(std::fs::File::create(dst).expect("create"));
    for i in 0..input.len() {
        let mut m = input.by_index(i).expect("member");
        let name = m.name().to_owned();
        let mut bytes = Vec::new();
        m.read_to_end(&mut bytes).expect("read");
        if let Some(b) = edit(&name, bytes) {
            out.start_file(name, zip::write::SimpleFileOptions::default())
                .expect("start");
            out.write_all(&b).expect("write");
        }
    }
    out.finish().expect("finish");
}
