//! The bundled sample is what SOURCES.md says it is: every file listed with its size and hash, and
//! identical to the shared real-data copy when that is present.

use std::path::{Path, PathBuf};

fn sample_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../data/sample")
}

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum (coreutils)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum prints a hash")
        .to_owned()
}

#[test]
fn every_sample_file_is_listed_in_sources_with_its_size_and_hash() {
    let dir = sample_dir();
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).expect("SOURCES.md");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("data/sample")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "SOURCES.md"))
        .collect();
    files.sort();
    assert!((10..=20).contains(&files.len()), "{} files", files.len());
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let row = sources
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("{name} is not listed in SOURCES.md"));
        let size = std::fs::metadata(&path).expect("stat").len();
        let size_text = size
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).expect("digits"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            row.contains(&format!("| {size_text} |")),
            "{name}: size {size} not in {row}"
        );
        let hash = sha256_hex(&path);
        assert!(
            row.contains(&format!("`{}`", &hash[..16])),
            "{name}: sha256 {hash} not in {row}"
        );
        assert!(
            row.contains("CC0") || row.contains("CC-BY-4.0"),
            "{name}: no data licence in {row}"
        );
    }
}

#[test]
fn sample_files_are_unchanged_copies_of_the_shared_real_data() {
    let shared =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../shared/data/real");
    if std::env::var_os("FUSIONPROT_NO_SHARED").is_some() {
        eprintln!(
            "FUSIONPROT_NO_SHARED is set: comparison with {} skipped",
            shared.display()
        );
        return;
    }
    assert!(
        shared.is_dir(),
        "{} not found: tests compare with the shared real data; set FUSIONPROT_NO_SHARED=1 to skip on purpose",
        shared.display()
    );
    for entry in std::fs::read_dir(sample_dir()).expect("data/sample") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().expect("file name");
        if name == "SOURCES.md" {
            continue;
        }
        let original = shared.join(name);
        assert_eq!(
            sha256_hex(&path),
            sha256_hex(&original),
            "{} differs from {}",
            path.display(),
            original.display()
        );
    }
}
