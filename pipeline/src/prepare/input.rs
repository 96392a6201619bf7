//! Where structure files come from: files, folders (recursive), `.tar` (also gzipped) and `.zip`
//! archives. [`plan`] lists inputs in a fixed order; [`stream_all`] streams each structure with the
//! name it is known by (`archive.tar/member.cif.gz`, or the path below its folder), leaving plain
//! files for the consumer to read ([`Pending::read`]).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Errors that stop a run before any parsing: an input that does not exist or cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("input {} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("cannot list {}: {source}", .path.display())]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How an input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Tar,
    Zip,
}

/// One file to read: a structure file or an archive of them.
#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    /// Name relative to its input root (for a file given directly, its file name).
    pub name: String,
    pub kind: Kind,
}

/// Names of structure files inside folders and archives; files named directly are always tried.
pub fn is_structure_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let base = lower.strip_suffix(".gz").unwrap_or(&lower);
    [".pdb", ".ent", ".cif", ".mmcif"]
        .iter()
        .any(|ext| base.ends_with(ext))
}

fn archive_kind(name: &str) -> Option<Kind> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".tar") || lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        Some(Kind::Tar)
    } else if lower.ends_with(".zip") {
        Some(Kind::Zip)
    } else {
        None
    }
}

/// Lists the inputs: folders are walked recursively in byte order of their paths; a path given
/// twice is read once.
///
/// # Errors
/// A missing input or an unlistable folder.
pub fn plan(inputs: &[PathBuf]) -> Result<Vec<Item>, InputError> {
    let mut items = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|_| InputError::Missing(input.clone()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            found.sort();
            for path in found {
                let rel = path.strip_prefix(input).unwrap_or(&path);
                let name = rel.to_string_lossy().into_owned();
                let kind = archive_kind(&name);
                if kind.is_some() || is_structure_name(&name) {
                    items.push(Item {
                        path,
                        name,
                        kind: kind.unwrap_or(Kind::File),
                    });
                }
            }
        } else {
            let name = input
                .file_name()
                .map_or_else(|| input.to_string_lossy(), |n| n.to_string_lossy())
                .into_owned();
            items.push(Item {
                path: input.clone(),
                kind: archive_kind(&name).unwrap_or(Kind::File),
                name,
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| seen.insert(i.path.clone()));
    Ok(items)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let list = |source| InputError::List {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(list)? {
        let entry = entry.map_err(list)?;
        let path = entry.path();
        let ty = entry.file_type().map_err(list)?;
        if ty.is_dir() {
            walk(&path, out)?;
        } else if ty.is_file() || (ty.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// One structure's bytes, or why they could not be read.
#[derive(Debug)]
pub struct Source {
    /// Path below its input root (`archive.tar/member` for archive members): the `source` column.
    pub name: String,
    /// The input as given on the command line followed by the path below it, archive members
    /// appended with `/`: what ids are derived from when file names collide.
    pub path: String,
    pub bytes: Result<Vec<u8>, String>,
    /// Index in the plan of the input unit (file or archive) it came from.
    pub item: usize,
}

/// The default cap on one structure's bytes: a file, an archive member, a decompressed gzip stream.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2048 << 20;

/// A byte count as the size-cap messages print it: whole MiB when it is a multiple of one.
#[derive(Debug, Clone, Copy)]
pub struct Size(pub u64);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > 0 && self.0.is_multiple_of(1 << 20) {
            write!(f, "{} MiB", self.0 >> 20)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

/// A buffer kept for reuse from file to file (a read file, decompressed text) is dropped instead
/// when it has grown past this, so one huge file does not hold its memory for the rest of a run.
pub(crate) const MAX_KEPT_BUFFER: usize = 64 << 20;

/// Buffers are sized from a header's claim up to this much; past it they grow as bytes arrive,
/// so a lying header below the cap still allocates only what is really there.
const MAX_PREALLOCATION: u64 = 64 << 20;

/// Reads one structure of `claimed` bytes (the file system's size, or an archive header's claim)
/// from `r`, refusing it when the claim or the bytes really there exceed `max_bytes`. The claim is
/// checked before anything is allocated and reading stops one byte past the cap; fewer bytes than
/// claimed is a truncated file or a lying header, also refused.
fn read_capped(r: impl Read, claimed: u64, max_bytes: u64, what: &str) -> Result<Vec<u8>, String> {
    read_capped_into(r, claimed, max_bytes, what, Vec::new())
}

/// [`read_capped`] into `bytes` (cleared first; its capacity is reused).
fn read_capped_into(
    r: impl Read,
    claimed: u64,
    max_bytes: u64,
    what: &str,
    mut bytes: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let verb = if what == "file" { "is" } else { "claims" };
    if claimed > max_bytes {
        return Err(format!(
            "{what} {verb} {claimed} bytes, over the size cap of {}",
            Size(max_bytes)
        ));
    }
    bytes.clear();
    bytes.reserve(claimed.min(MAX_PREALLOCATION) as usize);
    r.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("broken {what}: {e}"))?;
    let got = bytes.len() as u64;
    if got > max_bytes {
        return Err(format!(
            "{what} holds more than the size cap of {} ({verb} {claimed} bytes)",
            Size(max_bytes)
        ));
    }
    if got < claimed {
        return Err(format!(
            "{what} is truncated: {got} of the {claimed} bytes it {verb}"
        ));
    }
    Ok(bytes)
}

/// A structure on its way to a consumer: a plain file still to be read, so that whoever takes it
/// reads it (parsing workers read in parallel, each into its own reused buffer), or an archive
/// member that the archive's reader has read already.
#[derive(Debug)]
pub enum Pending {
    File {
        name: String,
        path: String,
        file: PathBuf,
        item: usize,
    },
    Read(Source),
}

impl Pending {
    /// Index in the plan of the input unit it comes from.
    pub fn item(&self) -> usize {
        match self {
            Pending::File { item, .. } => *item,
            Pending::Read(s) => s.item,
        }
    }

    /// The structure's bytes; a plain file is read into `buffer` (emptied first, its capacity
    /// reused), under the same size cap as archive members.
    pub fn read(self, max_bytes: u64, buffer: Vec<u8>) -> Source {
        match self {
            Pending::File {
                name,
                path,
                file,
                item,
            } => Source {
                name,
                path,
                bytes: read_file(&file, max_bytes, buffer),
                item,
            },
            Pending::Read(source) => source,
        }
    }
}

/// Hands every item's structures, in order, to `emit`, which returns `false` to stop. Plain files
/// go on unread ([`Pending::File`]); archives are read here, sequentially (tar has no index), and a
/// broken archive member or archive, or one over `max_file_bytes`, is emitted as a source with an
/// error, so it is reported like any bad file.
pub fn stream_all(items: &[Item], max_file_bytes: u64, mut emit: impl FnMut(Pending) -> bool) {
    for (i, item) in items.iter().enumerate() {
        let mut tagged = |mut s: Source| {
            s.item = i;
            emit(Pending::Read(s))
        };
        let keep_going = match item.kind {
            Kind::File => emit(Pending::File {
                name: item.name.clone(),
                path: item.path.to_string_lossy().into_owned(),
                file: item.path.clone(),
                item: i,
            }),
            Kind::Tar => read_tar(item, max_file_bytes, &mut tagged),
            Kind::Zip => read_zip(item, max_file_bytes, &mut tagged),
        };
        if !keep_going {
            return;
        }
    }
}

fn read_file(path: &Path, max_bytes: u64, buffer: Vec<u8>) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    read_capped_into(file, len, max_bytes, "file", buffer)
}

fn member_source(item: &Item, member: &str, bytes: Result<Vec<u8>, String>) -> Source {
    Source {
        name: format!("{}/{member}", item.name),
        path: format!("{}/{member}", item.path.to_string_lossy()),
        bytes,
        item: 0,
    }
}

fn read_tar(item: &Item, max_bytes: u64, emit: &mut impl FnMut(Source) -> bool) -> bool {
    let file = match File::open(&item.path) {
        Ok(f) => f,
        Err(e) => return emit(archive_error(item, &e.to_string())),
    };
    let mut head = [0u8; 2];
    let gz = File::open(&item.path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == [0x1f, 0x8b];
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return emit(archive_error(item, &e.to_string())),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return emit(archive_error(item, &format!("broken tar archive: {e}"))),
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let member = entry.path().map(|p| p.to_string_lossy().into_owned());
        let Ok(member) = member else { continue };
        if !is_structure_name(&member) {
            continue;
        }
        let claimed = entry.size();
        let bytes = read_capped(&mut entry, claimed, max_bytes, "tar member");
        if !emit(member_source(item, &member, bytes)) {
            return false;
        }
    }
    true
}

fn read_zip(item: &Item, max_bytes: u64, emit: &mut impl FnMut(Source) -> bool) -> bool {
    let archive = File::open(&item.path)
        .map_err(|e| e.to_string())
        .and_then(|f| zip::ZipArchive::new(std::io::BufReader::new(f)).map_err(|e| e.to_string()));
    let mut archive = match archive {
        Ok(a) => a,
        Err(e) => return emit(archive_error(item, &format!("broken zip archive: {e}"))),
    };
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                if !emit(archive_error(item, &format!("broken zip member {i}: {e}"))) {
                    return false;
                }
                continue;
            }
        };
        if !entry.is_file() || !is_structure_name(entry.name()) {
            continue;
        }
        let member = entry.name().to_owned();
        // The central directory's uncompressed size is only a claim: the read is capped as well.
        let claimed = entry.size();
        let bytes = read_capped(&mut entry, claimed, max_bytes, "zip member");
        if !emit(member_source(item, &member, bytes)) {
            return false;
        }
    }
    true
}

fn archive_error(item: &Item, why: &str) -> Source {
    Source {
        name: item.name.clone(),
        path: item.path.to_string_lossy().into_owned(),
        bytes: Err(why.to_owned()),
        item: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every structure's source, plain files read as they come.
    fn read_all(items: &[Item], max_file_bytes: u64, mut emit: impl FnMut(Source) -> bool) {
        stream_all(items, max_file_bytes, |p| {
            emit(p.read(max_file_bytes, Vec::new()))
        });
    }

    /// A file that goes away between the plan and its reader (now a parsing worker) is that
    /// file's error, named by the reader, and the others still read.
    #[test]
    fn a_file_gone_before_it_is_read_is_its_own_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["a.pdb", "b.pdb"] {
            std::fs::write(dir.path().join(name), name).expect("write");
        }
        let items = plan(&[dir.path().to_owned()]).expect("plan");
        let mut pending = Vec::new();
        stream_all(&items, DEFAULT_MAX_FILE_BYTES, |p| {
            pending.push(p);
            true
        });
        std::fs::remove_file(dir.path().join("a.pdb")).expect("removed");
        let read: Vec<Source> = pending
            .into_iter()
            .map(|p| p.read(DEFAULT_MAX_FILE_BYTES, b"stale".to_vec()))
            .collect();
        assert_eq!(read[0].name, "a.pdb");
        assert!(
            read[0]
                .bytes
                .as_ref()
                .is_err_and(|e| e.contains("No such file")),
            "{:?}",
            read[0].bytes
        );
        assert_eq!(read[1].bytes.as_deref(), Ok(b"b.pdb".as_slice()));
    }

    /// A reused buffer holds the last file's bytes (longer, shorter, or a failed read's): each
    /// file still reads as itself, and a file over the cap still fails.
    #[test]
    fn reused_buffers_never_leak_an_earlier_files_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bodies: [&[u8]; 4] = [b"a long first file\n", b"b", b"", b"ccc"];
        for (i, body) in bodies.iter().enumerate() {
            std::fs::write(dir.path().join(format!("{i}.pdb")), body).expect("write");
        }
        let items = plan(&[dir.path().to_owned()]).expect("plan");
        let mut read = Vec::new();
        let mut buffer = b"stale bytes, longer than most".to_vec();
        stream_all(&items, 10, |p| {
            let s = p.read(10, std::mem::take(&mut buffer));
            read.push(s.bytes.clone());
            // The consumer keeps the buffer for the next file, whatever it holds now.
            buffer = s
                .bytes
                .unwrap_or_else(|_| b"stale bytes after a failure".to_vec());
            true
        });
        let want: Vec<Result<Vec<u8>, String>> = bodies.iter().map(|b| Ok(b.to_vec())).collect();
        assert_eq!(read[1..], want[1..]);
        assert!(
            read[0]
                .as_ref()
                .is_err_and(|e| e.contains("over the size cap")),
            "{:?}",
            read[0]
        );
    }

    #[test]
    fn structure_names_include_gzipped_variants() {
        for n in [
            "a.pdb",
            "b.CIF",
            "c.ent.gz",
            "d.mmcif.gz",
            "AF-X-F1-model_v4.cif.gz",
        ] {
            assert!(is_structure_name(n), "{n}");
        }
        for n in ["README", "x.tar", "y.gz", "z.pdbqt"] {
            assert!(!is_structure_name(n), "{n}");
        }
    }

    #[test]
    fn folders_are_walked_in_order_and_archives_recognised() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).expect("mkdir");
        for f in ["b.pdb", "a.cif.gz", "notes.txt", "sub/c.ent", "set.tar"] {
            std::fs::write(d.join(f), b"x").expect("write");
        }
        let items = plan(&[d.to_owned()]).expect("plan");
        let names: Vec<(&str, Kind)> = items.iter().map(|i| (i.name.as_str(), i.kind)).collect();
        assert_eq!(
            names,
            [
                ("a.cif.gz", Kind::File),
                ("b.pdb", Kind::File),
                ("set.tar", Kind::Tar),
                ("sub/c.ent", Kind::File)
            ]
        );
        assert!(matches!(
            plan(&[d.join("nope")]),
            Err(InputError::Missing(_))
        ));
    }

    #[test]
    fn tar_and_zip_members_are_read_in_archive_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tar_path = dir.path().join("set.tar");
        {
            let mut b = tar::Builder::new(File::create(&tar_path).expect("create"));
            for (name, body) in [
                ("x/2.pdb", "two"),
                ("readme.txt", "skip"),
                ("x/1.cif", "one"),
            ] {
                let mut h = tar::Header::new_gnu();
                h.set_size(body.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, name, body.as_bytes())
                    .expect("append");
            }
            b.finish().expect("finish");
        }
        let zip_path = dir.path().join("set.zip");
        {
            let mut z = zip::ZipWriter::new(File::create(&zip_path).expect("create"));
            let opts = zip::write::SimpleFileOptions::default();
            z.start_file("m/3.ent.gz", opts).expect("start");
            std::io::Write::write_all(&mut z, b"three").expect("write");
            z.finish().expect("finish");
        }
        let items = plan(&[tar_path, zip_path]).expect("plan");
        let mut got = Vec::new();
        read_all(&items, DEFAULT_MAX_FILE_BYTES, |s| {
            got.push((s.name, s.bytes.expect("readable")));
            true
        });
        let got: Vec<(&str, &[u8])> = got
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("set.tar/x/2.pdb", b"two".as_slice()),
                ("set.tar/x/1.cif", b"one".as_slice()),
                ("set.zip/m/3.ent.gz", b"three".as_slice())
            ]
        );
    }

    #[test]
    fn a_broken_archive_is_reported_as_a_failed_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bad.zip");
        std::fs::write(&p, b"not a zip").expect("write");
        let items = plan(&[p]).expect("plan");
        let mut got = Vec::new();
        read_all(&items, DEFAULT_MAX_FILE_BYTES, |s| {
            got.push(s);
            true
        });
        assert_eq!(got.len(), 1);
        assert!(
            got[0]
                .bytes
                .as_ref()
                .is_err_and(|e| e.contains("broken zip archive"))
        );
    }
}
